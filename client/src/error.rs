//! [`ClientError`]: every way a call can fail, classified for the caller by value — the HTTP
//! status, the envelope's `code`, the refusal's `details.reason`, or the transport [`ErrorKind`]
//! — never by message text (messages are for people and may be reworded).
//!
//! ```text
//!  send ──connect failed──▶ Connect   (nothing was sent)
//!       ──deadline───────▶ Timeout   (the server may have acted)
//!       ──other I/O──────▶ Transport
//!       ──non-2xx────────▶ Refused   status + code + reason + details from the envelope
//!       ──2xx, bad body──▶ Decode
//! ```

use std::fmt;

use reqwest::StatusCode;
use serde_json::Value;
use tideline_types::{ErrorCode, Reason};

/// What kind of failure a [`ClientError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server answered with a non-2xx status: see `status`, `code`, `reason`, `details`.
    Refused,
    /// No connection could be made: the request was never sent.
    Connect,
    /// The deadline passed; the server may or may not have acted on the request.
    Timeout,
    /// Another transport failure (connection reset, a body cut short).
    Transport,
    /// A 2xx answer whose body is not the route's shape.
    Decode,
    /// The request could not be built (an invalid URL or header value, a body sent twice).
    Request,
}

/// A failed call. `status`, `code` and `reason` are set when the server answered; the kind
/// says what happened otherwise.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    pub kind: ErrorKind,
    /// The HTTP status of a refusal.
    pub status: Option<StatusCode>,
    /// The envelope's `error.code` (`None` if absent or not one this build knows).
    pub code: Option<ErrorCode>,
    /// The envelope's `error.details.reason`, if it is one of [`Reason`]: a reason this build
    /// does not know (a newer server) is none, as API.md asks.
    pub reason: Option<Reason>,
    /// For people: the server's message, or what failed on the way.
    pub message: String,
    /// The envelope's `error.details` (`Null` when absent or not from the server).
    pub details: Value,
}

impl ClientError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> ClientError {
        ClientError { kind, status: None, code: None, reason: None, message: message.into(), details: Value::Null }
    }

    /// The server's non-2xx answer: the error envelope's fields when the body is one, else a
    /// message naming the status.
    pub fn refused(status: StatusCode, body: &[u8]) -> ClientError {
        let envelope = serde_json::from_slice::<Value>(body).unwrap_or_default();
        let error = &envelope["error"];
        let message =
            error["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("server answered {status}"));
        let details = error["details"].clone();
        ClientError {
            kind: ErrorKind::Refused,
            status: Some(status),
            code: error["code"].as_str().and_then(|c| c.parse().ok()),
            reason: details["reason"].as_str().and_then(|r| r.parse().ok()),
            message,
            details,
        }
    }

    /// A transport failure talking to `url`, with reqwest's cause chain (its own message
    /// alone hides the cause: "error sending request").
    pub(crate) fn transport(url: &str, err: &reqwest::Error) -> ClientError {
        let kind = if err.is_connect() {
            ErrorKind::Connect
        } else if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_builder() {
            ErrorKind::Request
        } else {
            ErrorKind::Transport
        };
        ClientError::new(kind, format!("reach {url}: {}", chain(err)))
    }

    /// A failure while reading a body that had started to arrive.
    pub(crate) fn body(err: &reqwest::Error) -> ClientError {
        let kind = if err.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transport };
        ClientError::new(kind, chain(err))
    }

    /// Which refusal this is (`details.reason`), if the server said one this build knows.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// 404: no such volume, file, snapshot, replica, conflict or route (or another team's).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(StatusCode::NOT_FOUND)
    }

    /// 409: the request conflicts with the volume's state (see [`ClientError::reason`]).
    pub fn is_conflict(&self) -> bool {
        self.status == Some(StatusCode::CONFLICT)
    }

    /// 401 or 403: a missing or invalid token, or a missing permission.
    pub fn is_auth(&self) -> bool {
        matches!(self.status, Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN))
    }

    /// The server could not serve it now (503), could not be reached, or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        self.status == Some(StatusCode::SERVICE_UNAVAILABLE)
            || matches!(self.kind, ErrorKind::Connect | ErrorKind::Timeout)
    }

    /// No answer from the server at all (connect, timeout or other transport failure).
    pub fn is_transport(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Transport)
    }

    /// Where the answering node says the leader is (`details.leader_addr`, `host:port`).
    pub fn leader_addr(&self) -> Option<&str> {
        self.details.get("leader_addr")?.as_str().filter(|a| !a.is_empty())
    }

    /// A `u64` of the details, e.g. `retained_after_seq` of a reseed refusal.
    pub fn detail_u64(&self, key: &str) -> Option<u64> {
        self.details.get(key)?.as_u64()
    }

    /// Whether sending the same request again is safe and may succeed: only a request that is
    /// idempotent, and only after a failure that left nothing done or asks to come back later
    /// (no connection, or 503). See the crate's header.
    pub fn retry_safe(&self, idempotent: bool) -> bool {
        idempotent && (self.kind == ErrorKind::Connect || self.status == Some(StatusCode::SERVICE_UNAVAILABLE))
    }
}

/// An error and its sources, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Decode => "decode",
            ErrorKind::Request => "request",
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_refusal_keeps_status_code_reason_and_details() {
        let body = json!({ "success": false, "error": { "code": "conflict", "message": "volume is read-only",
            "details": { "reason": "volume_read_only" } } });
        let e = ClientError::refused(StatusCode::CONFLICT, body.to_string().as_bytes());
        assert_eq!(
            (e.kind, e.status, e.code, e.reason(), e.message.as_str()),
            (
                ErrorKind::Refused,
                Some(StatusCode::CONFLICT),
                Some(ErrorCode::Conflict),
                Some(Reason::VolumeReadOnly),
                "volume is read-only"
            )
        );
        assert!(e.is_conflict() && !e.is_not_found() && !e.is_unavailable());
        assert_eq!(e.details, json!({ "reason": "volume_read_only" }));
    }

    #[test]
    fn an_unknown_reason_is_none_and_prose_is_not_a_reason() {
        let newer = json!({ "success": false, "error": { "code": "conflict", "message": "m",
            "details": { "reason": "a_reason_from_a_newer_server" } } });
        let e = ClientError::refused(StatusCode::CONFLICT, newer.to_string().as_bytes());
        assert_eq!(e.reason(), None);
        assert_eq!(e.details["reason"], "a_reason_from_a_newer_server", "the details stay as sent");
        let path = r#"{"error":{"code":"bad_request","details":{"reason":"a component is \"..\""},"message":"invalid path"},"success":false}"#;
        let e = ClientError::refused(StatusCode::BAD_REQUEST, path.as_bytes());
        assert_eq!((e.code, e.reason(), e.message.as_str()), (Some(ErrorCode::BadRequest), None, "invalid path"));
    }

    #[test]
    fn a_body_that_is_no_envelope_names_the_status() {
        let e = ClientError::refused(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!((e.message.as_str(), e.code, e.reason()), ("server answered 502 Bad Gateway", None, None));
    }

    #[test]
    fn only_idempotent_requests_after_no_connection_or_503_are_retried() {
        let busy = ClientError::refused(StatusCode::SERVICE_UNAVAILABLE, b"{}");
        let gone = ClientError::new(ErrorKind::Connect, "reach x: refused");
        let late = ClientError::new(ErrorKind::Timeout, "reach x: timed out");
        let conflict = ClientError::refused(StatusCode::CONFLICT, b"{}");
        assert!(busy.retry_safe(true) && gone.retry_safe(true));
        assert!(!busy.retry_safe(false) && !gone.retry_safe(false));
        assert!(!late.retry_safe(true), "a timed-out request may have been served");
        assert!(!conflict.retry_safe(true));
        assert!(busy.is_unavailable() && gone.is_unavailable() && late.is_unavailable());
    }
}
