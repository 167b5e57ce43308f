//! [`Client`]: sends a [`Call`] to the server, follows leader hints, retries where the crate
//! header's rule allows, and decodes the `{"success","data"|"error"}` envelope.
//!
//! ```text
//!  call ─▶ retry (backon: jittered exponential, bounded tries and sleep; only retry-safe)
//!            └─▶ leader hops (≤ LEADER_HOPS_MAX): send ─▶ 2xx ─▶ data / byte stream
//!                                                   └─ refusal with details.leader_addr
//!                                                      ─▶ send again at the leader
//! ```

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use bytes::{Bytes, BytesMut};
use reqwest::{header, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::builder::{parse_base, ClientBuilder, Timeouts};
use crate::call::{Call, Deadline, Target};
use crate::error::{ClientError, ErrorKind};
use crate::retry::RetryPolicy;
use crate::stream::ByteStream;

/// The largest JSON answer read (a `changes` page is at most about 8 MiB, a directory listing
/// 10 000 entries): a body past it is an error, not an allocation.
pub const JSON_ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The largest part of an error answer read (its envelope is small; the rest is dropped).
const ERROR_BODY_BYTES_MAX: usize = 64 * 1024;

/// A typed client of one Tideline server (any node of a cluster) with one bearer token.
/// Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub base: Url,
    pub token: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub leader_hops_max: usize,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

impl Client {
    /// A client with the default deadlines and retry policy.
    pub fn new(server: &str, token: &str) -> Result<Client, ClientError> {
        Client::builder(server, token).build()
    }

    pub fn builder(server: &str, token: &str) -> ClientBuilder {
        ClientBuilder::new(server, token)
    }

    /// The same server and settings with another token (e.g. a team token made with the
    /// admin one); the connection pool is shared.
    pub fn with_token(&self, token: &str) -> Client {
        Client { inner: Arc::new(Inner { token: token.to_string(), ..self.clone_inner() }) }
    }

    /// The same token and settings against another node; the connection pool is shared.
    pub fn with_server(&self, server: &str) -> Result<Client, ClientError> {
        Ok(Client { inner: Arc::new(Inner { base: parse_base(server)?, ..self.clone_inner() }) })
    }

    /// The same server and token with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Client {
        Client { inner: Arc::new(Inner { retry, ..self.clone_inner() }) }
    }

    fn clone_inner(&self) -> Inner {
        let i = &self.inner;
        Inner {
            http: i.http.clone(),
            base: i.base.clone(),
            token: i.token.clone(),
            timeouts: i.timeouts,
            retry: i.retry,
            leader_hops_max: i.leader_hops_max,
        }
    }

    /// The server's base URL, as given (without a trailing `/`).
    pub fn server(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    pub fn token(&self) -> &str {
        &self.inner.token
    }

    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// Sends `call` and decodes the envelope's `data` as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        let resp = self.send(&call).await?;
        let url = resp.url().to_string();
        let body = read_bounded(resp, JSON_ANSWER_BYTES_MAX).await?;
        serde_json::from_slice::<Data<T>>(&body)
            .map(|d| d.data)
            .map_err(|e| ClientError::new(ErrorKind::Decode, format!("read response of {url}: {e}")))
    }

    /// Sends `call` and reads the whole (raw) answer, at most `max` bytes.
    pub(crate) async fn bytes(&self, call: Call, max: usize) -> Result<Bytes, ClientError> {
        read_bounded(self.send(&call).await?, max).await
    }

    /// Sends `call` and hands back the answer's body as it arrives.
    pub(crate) async fn stream(&self, call: Call) -> Result<ByteStream, ClientError> {
        Ok(ByteStream::new(self.send(&call).await?))
    }

    /// Sends `call` until it succeeds, fails in a way that is not retry-safe, or the policy's
    /// bounds are reached; the last error then.
    pub(crate) async fn send(&self, call: &Call) -> Result<reqwest::Response, ClientError> {
        (|| self.send_following_leader(call))
            .retry(self.inner.retry.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &ClientError| call.resendable() && e.retry_safe(call.idempotent))
            .await
    }

    /// One try: the configured node, then wherever its refusals point (bounded hops). A node
    /// answers with `details.leader_addr` before doing anything, so every call may hop.
    async fn send_following_leader(&self, call: &Call) -> Result<reqwest::Response, ClientError> {
        let mut base = self.inner.base.clone();
        let mut hops = 0;
        loop {
            match self.send_at(&base, call).await {
                Err(e) if hops < self.inner.leader_hops_max && call.resendable() => {
                    match e.leader_addr().and_then(|addr| leader_base(&base, addr)) {
                        Some(leader) => {
                            base = leader;
                            hops += 1;
                        }
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Sends `call` once to the node at `base`; a non-2xx answer becomes a refusal.
    async fn send_at(&self, base: &Url, call: &Call) -> Result<reqwest::Response, ClientError> {
        let url = self.url(base, call)?;
        let shown = url.to_string();
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), url)
            .bearer_auth(&self.inner.token)
            .timeout(self.deadline(call.deadline));
        if call.accept_json {
            req = req.header(header::ACCEPT, "application/json");
        }
        let resp = call.body(req)?.send().await.map_err(|e| ClientError::transport(&shown, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        Err(ClientError::refused(status, &read_prefix(resp, ERROR_BODY_BYTES_MAX).await))
    }

    fn deadline(&self, d: Deadline) -> Duration {
        match d {
            Deadline::Request => self.inner.timeouts.request,
            Deadline::RequestPlus(wait) => self.inner.timeouts.request + wait,
            Deadline::Transfer => self.inner.timeouts.transfer,
        }
    }

    /// The URL of `call` at the node `base`.
    pub(crate) fn url(&self, base: &Url, call: &Call) -> Result<Url, ClientError> {
        let bad = |why: &str| ClientError::new(ErrorKind::Request, format!("request URL: {why}"));
        let mut url = base.clone();
        match &call.target {
            Target::Api(segments) => {
                url.path_segments_mut()
                    .map_err(|_| bad("the server URL cannot take a path"))?
                    .pop_if_empty()
                    .extend(["api", "v1"])
                    .extend(segments);
            }
            Target::Root(path) => {
                url = url.join(path).map_err(|e| bad(&format!("{path:?}: {e}")))?;
            }
        }
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &call.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

/// The base URL of the leader at `addr` (`host:port`) for a request made at `base`; `None` if
/// it is not a usable address or is `base` itself (a node pointing at itself is no hint).
fn leader_base(base: &Url, addr: &str) -> Option<Url> {
    let leader = Url::parse(&format!("{}://{addr}", base.scheme())).ok()?;
    let same = leader.host_str() == base.host_str() && leader.port_or_known_default() == base.port_or_known_default();
    (!same && leader.host().is_some()).then_some(leader)
}

/// The whole body, refused past `max` bytes; one buffer, sized by `Content-Length` when given.
pub(crate) async fn read_bounded(mut resp: reqwest::Response, max: usize) -> Result<Bytes, ClientError> {
    let url = resp.url().to_string();
    let too_large =
        |n: u64| ClientError::new(ErrorKind::Decode, format!("answer of {url} is {n} bytes, more than {max}"));
    let declared = resp.content_length();
    if let Some(n) = declared.filter(|n| *n > max as u64) {
        return Err(too_large(n));
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| ClientError::body(&e))? {
        if buf.len() + chunk.len() > max {
            return Err(too_large((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// At most the first `max` bytes of a body (an error answer; a broken one reads as empty).
async fn read_prefix(mut resp: reqwest::Response, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = max - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() == max {
            break;
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use reqwest::Method;

    use super::*;

    fn client(server: &str) -> Client {
        Client::new(server, "t").unwrap()
    }

    #[test]
    fn api_paths_are_percent_encoded_segments_under_the_base() {
        let c = client("http://127.0.0.1:7070/");
        let call = Call::api(Method::GET, ["sandboxvolumes", "a/b c?", "files"]).query("path", "/x y&z");
        assert_eq!(
            c.url(&c.inner.base, &call).unwrap().as_str(),
            "http://127.0.0.1:7070/api/v1/sandboxvolumes/a%2Fb%20c%3F/files?path=%2Fx+y%26z"
        );
        let prefixed = client("http://h:1/tl");
        let call = Call::api(Method::GET, ["cluster"]);
        assert_eq!(prefixed.url(&prefixed.inner.base, &call).unwrap().as_str(), "http://h:1/tl/api/v1/cluster");
    }

    #[test]
    fn a_root_path_keeps_its_query() {
        let c = client("http://h:1");
        let call = Call::root(Method::GET, "/api/v1/sandboxvolumes/v/sync/bootstrap/archive?snapshot_id=s1");
        assert_eq!(
            c.url(&c.inner.base, &call).unwrap().as_str(),
            "http://h:1/api/v1/sandboxvolumes/v/sync/bootstrap/archive?snapshot_id=s1"
        );
    }

    #[test]
    fn a_leader_hint_is_another_node_or_none() {
        let base = Url::parse("http://127.0.0.1:7070").unwrap();
        assert_eq!(leader_base(&base, "127.0.0.1:7071").unwrap().as_str(), "http://127.0.0.1:7071/");
        assert!(leader_base(&base, "127.0.0.1:7070").is_none(), "itself");
        assert!(leader_base(&base, "").is_none());
    }

    #[test]
    fn a_bad_server_url_is_refused_up_front() {
        for bad in ["127.0.0.1:7070", "ftp://h", "not a url"] {
            let e = Client::new(bad, "t").unwrap_err();
            assert_eq!(e.kind, ErrorKind::Request, "{bad}: {e}");
        }
    }
}
