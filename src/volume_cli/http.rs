//! The HTTP side of `tideline volume`: one client that sends a request with a timeout, decodes
//! the `{"success","data"|"error"}` envelope, and classifies every failure into a [`CliError`]
//! whose kind is the process exit code scripts rely on.
//!
//! ```text
//! request ──send (timeout)──▶ status 2xx ──▶ data / raw body
//!                    │                └─▶ 404→NotFound 409→Conflict 401/403→Auth 503→Unavailable
//!                    └─ connect refused / timed out ──▶ Unavailable
//! ```

use std::fmt;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tideline_types::Reason;

/// Deadline for ordinary JSON requests.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for uploads and downloads (whole body).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);
/// Deadline for opening the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong, as far as a script cares; each kind has a stable exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Auth,
    Unavailable,
    Other,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::NotFound => 3,
            ErrorKind::Conflict => 4,
            ErrorKind::Auth => 5,
            ErrorKind::Unavailable => 6,
            ErrorKind::Other => 1,
        }
    }

    /// The kind a child `tideline` process reported through its exit code.
    pub fn from_exit(code: Option<i32>) -> ErrorKind {
        match code {
            Some(3) => ErrorKind::NotFound,
            Some(4) => ErrorKind::Conflict,
            Some(5) => ErrorKind::Auth,
            Some(6) => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        }
    }

    pub fn from_status(status: StatusCode) -> ErrorKind {
        match status {
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::CONFLICT => ErrorKind::Conflict,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Auth,
            StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        }
    }
}

/// A classified failure with the message shown to the user.
#[derive(Debug)]
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
    /// The error envelope's `details` (`Null` when absent or not from the server).
    pub details: Value,
    /// Which refusal this is (`details.reason`): what callers decide on, never the message.
    /// `None` when the server said none, or one this build does not know (a newer server).
    pub reason: Option<Reason>,
}

impl CliError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CliError {
        CliError { kind, message: message.into(), details: Value::Null, reason: None }
    }

    pub fn other(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::Other, message)
    }

    /// A local I/O failure, with a verb phrase saying what we were doing.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> CliError {
        CliError::other(format!("{what}: {err}"))
    }

    fn transport(url: &str, err: reqwest::Error) -> CliError {
        let kind = if err.is_connect() || err.is_timeout() { ErrorKind::Unavailable } else { ErrorKind::Other };
        // reqwest's Display hides the cause ("error sending request"); show the chain.
        let mut message = format!("reach {url}: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        CliError { kind, message, details: Value::Null, reason: None }
    }

    /// The server's non-2xx answer: classified by status, with the error envelope's message,
    /// details and reason when the body is one.
    pub fn from_answer(status: StatusCode, body: &[u8]) -> CliError {
        let envelope = serde_json::from_slice::<Value>(body).unwrap_or_default();
        let message = envelope["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("server answered {status}"));
        let details = envelope["error"]["details"].clone();
        let reason = details["reason"].as_str().and_then(|r| r.parse().ok());
        CliError { kind: ErrorKind::from_status(status), message, details, reason }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub type CliResult<T> = Result<T, CliError>;

/// A team-token client for the volume, snapshot and file routes under `/api/v1`.
pub struct VolumeClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl VolumeClient {
    pub fn new(server: &str, token: &str) -> CliResult<VolumeClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| CliError::other(format!("build HTTP client: {e}")))?;
        Ok(VolumeClient { http, base: format!("{}/api/v1", server.trim_end_matches('/')), token: token.to_string() })
    }

    /// The WebSocket URL of `path` (below `/api/v1`) and the bearer header value.
    pub fn websocket(&self, path: &str) -> (String, String) {
        let url = format!("{}{path}", self.base);
        let url = match url.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => url,
        };
        (url, format!("Bearer {}", self.token))
    }

    /// A request to `path` (below `/api/v1`) with the bearer token and the given deadline.
    pub fn request(&self, method: Method, path: &str, timeout: Duration) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token).timeout(timeout)
    }

    /// Sends `req`; a non-2xx answer becomes a classified error carrying the envelope's message.
    pub async fn send(&self, req: RequestBuilder) -> CliResult<Response> {
        let (client, req) = req.build_split();
        let req = req.map_err(|e| CliError::other(format!("build request: {e}")))?;
        let url = req.url().to_string();
        let resp = client.execute(req).await.map_err(|e| CliError::transport(&url, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(CliError::from_answer(status, &body))
    }

    /// Sends a JSON request and returns the envelope's `data`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let mut req = self.request(method, path, REQUEST_TIMEOUT).query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(req).await?;
        let url = resp.url().to_string();
        let v: Value = resp.json().await.map_err(|e| CliError::other(format!("read response of {url}: {e}")))?;
        match v.get("data") {
            Some(data) => Ok(data.clone()),
            None => Err(CliError::other(format!("response of {url} has no data: {v}"))),
        }
    }
}

#[cfg(test)]
mod reason_tests {
    use serde_json::json;

    use super::*;

    fn error(status: StatusCode, body: &str) -> CliError {
        CliError::from_answer(status, body.as_bytes())
    }

    #[test]
    fn an_answer_keeps_its_reason_and_an_unknown_one_is_none() {
        let body = json!({ "success": false, "error": { "code": "conflict", "message": "volume is read-only",
            "details": { "reason": "volume_read_only" } } });
        let e = error(StatusCode::CONFLICT, &body.to_string());
        assert_eq!(
            (e.kind, e.message.as_str(), e.reason),
            (ErrorKind::Conflict, "volume is read-only", Some(Reason::VolumeReadOnly))
        );
        assert_eq!(e.details, json!({ "reason": "volume_read_only" }));

        let newer = json!({ "success": false, "error": { "code": "conflict", "message": "m",
            "details": { "reason": "a_reason_from_a_newer_server" } } });
        let e = error(StatusCode::CONFLICT, &newer.to_string());
        assert_eq!(e.reason, None);
        assert_eq!(e.details["reason"], "a_reason_from_a_newer_server", "the details stay as sent");

        // An invalid path's details.reason is prose, not a Reason.
        let path = r#"{"error":{"code":"bad_request","details":{"reason":"a component is \"..\""},"message":"invalid path"},"success":false}"#;
        let e = error(StatusCode::BAD_REQUEST, path);
        assert_eq!((e.kind, e.reason, e.message.as_str()), (ErrorKind::Other, None, "invalid path"));

        let plain =
            error(StatusCode::NOT_FOUND, r#"{"error":{"code":"not_found","message":"not found"},"success":false}"#);
        assert_eq!((plain.kind, plain.reason), (ErrorKind::NotFound, None));
        let garbage = error(StatusCode::BAD_GATEWAY, "<html>");
        assert_eq!((garbage.message.as_str(), garbage.reason), ("server answered 502 Bad Gateway", None));
    }
}
