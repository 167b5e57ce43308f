//! Node-to-node HTTP calls: prost bodies, the cluster secret, bounded timeouts, and a fault
//! filter that tests use to cut a node off (both directions) without touching the OS.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prost::Message;

use crate::rpc::{CONTENT_TYPE, SECRET_HEADER};
use crate::typ::NodeId;

/// Header naming the calling node, so a receiver can apply its fault filter.
pub const FROM_HEADER: &str = "x-tideline-from";
/// Connecting to a peer may take this long before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A node-to-node body is at most this large.
pub const PEER_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Nodes this node pretends it cannot reach (and will not answer). Empty in production.
#[derive(Clone, Default)]
pub struct FaultFilter(Arc<RwLock<HashSet<NodeId>>>);

impl FaultFilter {
    pub fn isolate_from(&self, peers: impl IntoIterator<Item = NodeId>) {
        self.0.write().expect("fault filter lock").extend(peers);
    }
    pub fn heal(&self) {
        self.0.write().expect("fault filter lock").clear();
    }
    pub fn blocks(&self, peer: NodeId) -> bool {
        self.0.read().expect("fault filter lock").contains(&peer)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer could not be reached (connection refused, cut off, DNS).
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer answered, but not with a usable response.
    #[error("peer error: {0}")]
    Remote(String),
}

#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    /// `http` or `https` (with `tls`).
    scheme: &'static str,
    secret: Arc<str>,
    self_id: NodeId,
    pub faults: FaultFilter,
}

impl PeerClient {
    /// A client calling peers over plain HTTP, or over TLS with `tls` (see
    /// [`NodeTls::peer_client_config`](crate::tls::NodeTls::peer_client_config)).
    pub fn new(self_id: NodeId, secret: &str, faults: FaultFilter, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut builder = reqwest::Client::builder();
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        let http = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            // Persistent HTTP/1.1 connections (HTTP/2 would hide the caller's header from the
            // jepsen fault proxy): enough idle ones for replication, forwarded batches and
            // read-index calls to the same peer at once.
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .build()
            .expect("build http client");
        PeerClient { http, scheme, secret: secret.into(), self_id, faults }
    }

    /// POSTs `req` to `<scheme>://<addr><path>` and decodes the answer, within `timeout`.
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        target: NodeId,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        if self.faults.blocks(target) {
            return Err(CallError::Unreachable(format!("node {target} is cut off by the fault filter")));
        }
        let send = self
            .http
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(SECRET_HEADER, &*self.secret)
            .header(FROM_HEADER, self.self_id.to_string())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(req.encode_to_vec())
            .send();
        let resp = match tokio::time::timeout(timeout, send).await {
            Err(_) => return Err(CallError::Timeout(timeout)),
            Ok(Err(e)) if e.is_connect() => return Err(CallError::Unreachable(e.to_string())),
            Ok(Err(e)) => return Err(CallError::Remote(e.to_string())),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let body = match tokio::time::timeout(timeout, resp.bytes()).await {
            Err(_) => return Err(CallError::Timeout(timeout)),
            Ok(Err(e)) => return Err(CallError::Remote(e.to_string())),
            Ok(Ok(b)) => b,
        };
        if !status.is_success() {
            return Err(CallError::Remote(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(512)])
            )));
        }
        Resp::decode(body).map_err(|e| CallError::Remote(format!("undecodable response: {e}")))
    }
}
