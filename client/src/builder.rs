//! [`ClientBuilder`]: the server, the bearer token, the deadlines and the retry policy of a
//! [`Client`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::client::{Client, Inner};
use crate::error::{ClientError, ErrorKind};
use crate::retry::RetryPolicy;

/// Leader hints followed for one request, at most (a hint to a node that hints again is
/// followed this many times, then the refusal is returned).
pub const LEADER_HOPS_MAX: usize = 3;

/// Deadlines of a [`Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection.
    pub connect: Duration,
    /// One JSON request, answer included (a long poll gets its wait on top).
    pub request: Duration,
    /// An upload or a download, whole body included (files up to 100 MiB, archives).
    pub transfer: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
            transfer: Duration::from_secs(600),
        }
    }
}

/// Builds a [`Client`]: `Client::builder(url, token).timeouts(…).retry(…).build()`.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    server: String,
    token: String,
    timeouts: Timeouts,
    retry: RetryPolicy,
    leader_hops_max: usize,
    ca_cert: Option<PathBuf>,
}

/// The environment variable naming a CA file (PEM) every client trusts besides the system's
/// roots: how a `tideline` command started by another (a sync worker) gets its parent's
/// `--ca-cert`.
pub const CA_CERT_ENV: &str = "TIDELINE_CA_CERT";

impl ClientBuilder {
    pub(crate) fn new(server: &str, token: &str) -> ClientBuilder {
        ClientBuilder {
            server: server.to_string(),
            token: token.to_string(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::DEFAULT,
            leader_hops_max: LEADER_HOPS_MAX,
            ca_cert: std::env::var_os(CA_CERT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from),
        }
    }

    /// Trusts the CA certificates of this PEM file for `https://` servers, besides the system's
    /// roots (default: the file [`CA_CERT_ENV`] names, if set).
    pub fn ca_cert_file(mut self, path: impl Into<PathBuf>) -> ClientBuilder {
        self.ca_cert = Some(path.into());
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> ClientBuilder {
        self.timeouts = timeouts;
        self
    }

    pub fn connect_timeout(mut self, d: Duration) -> ClientBuilder {
        self.timeouts.connect = d;
        self
    }

    pub fn request_timeout(mut self, d: Duration) -> ClientBuilder {
        self.timeouts.request = d;
        self
    }

    pub fn transfer_timeout(mut self, d: Duration) -> ClientBuilder {
        self.timeouts.transfer = d;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> ClientBuilder {
        self.retry = retry;
        self
    }

    /// Leader hints followed per request (0: never follow one).
    pub fn leader_hops_max(mut self, hops: usize) -> ClientBuilder {
        self.leader_hops_max = hops;
        self
    }

    /// The client; fails on a server URL that is not an absolute `http(s)://` URL.
    pub fn build(self) -> Result<Client, ClientError> {
        let base = parse_base(&self.server)?;
        let mut http = reqwest::Client::builder().connect_timeout(self.timeouts.connect);
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                ClientError::new(ErrorKind::Request, format!("read CA certificate {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::new(ErrorKind::Request, format!("CA certificate {}: {e}", path.display())))?;
            if certs.is_empty() {
                let why = format!("CA certificate {}: no CERTIFICATE block", path.display());
                return Err(ClientError::new(ErrorKind::Request, why));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| ClientError::new(ErrorKind::Request, format!("build HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: self.token,
                timeouts: self.timeouts,
                retry: self.retry,
                leader_hops_max: self.leader_hops_max,
            }),
        })
    }
}

/// A server's base URL; only an absolute `http(s)://host[:port][/prefix]`.
pub(crate) fn parse_base(server: &str) -> Result<Url, ClientError> {
    let bad = |why: String| ClientError::new(ErrorKind::Request, format!("server URL {server:?}: {why}"));
    let base = Url::parse(server.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() || base.host().is_none() {
        return Err(bad("expected http://host:port or https://host:port".into()));
    }
    Ok(base)
}
