//! The CLI's side of [`tideline_client`]: every failure becomes a [`CliError`] whose kind is
//! the process exit code scripts rely on. The client classifies by value (status, transport
//! kind); this only maps that onto the exit codes.
//!
//! ```text
//! ClientError ──Refused──▶ 404→NotFound 409→Conflict 401/403→Auth 503→Unavailable else Other
//!             ──Connect / Timeout──▶ Unavailable        ──anything else──▶ Other
//! SyncError   ──Unavailable / Refused──▶ as its ClientError   ──Reseed / LeaseExpired / Conflict──▶ Conflict
//!             ──Io / Other──▶ Other
//! ```

use std::fmt;

use serde_json::Value;
use tideline_client::{Client, ClientError, StatusCode};
use tideline_sync::SyncError;
use tideline_types::Reason;

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

    /// The kind of a client failure.
    pub fn of(e: &ClientError) -> ErrorKind {
        match (e.status, e.kind) {
            (Some(status), _) => ErrorKind::from_status(status),
            (None, tideline_client::ErrorKind::Connect | tideline_client::ErrorKind::Timeout) => ErrorKind::Unavailable,
            (None, _) => ErrorKind::Other,
        }
    }
}

/// A classified failure with the message shown to the user.
#[derive(Debug)]
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
    /// The error envelope's `details` (`Null` when absent or not from the server).
    // Kept whole for callers deciding on a refusal; since the sync engine classifies its own
    // failures (`tideline_sync::SyncError`), no command of this binary reads it yet.
    #[allow(dead_code)]
    pub details: Value,
    /// Which refusal this is (`details.reason`): what callers decide on, never the message.
    /// `None` when the server said none, or one this build does not know (a newer server).
    #[allow(dead_code)]
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

    /// A failure while a body streamed, with a verb phrase saying what we were doing.
    pub fn reading(what: impl fmt::Display, err: ClientError) -> CliError {
        CliError { message: format!("{what}: {err}"), ..CliError::from(err) }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        CliError { kind: ErrorKind::of(&e), reason: e.reason(), message: e.message, details: e.details }
    }
}

/// The sync engine's failures as exit codes: its refusals (reseed, lease, conflicts) are
/// conflicts, a call's failure keeps the kind of its status, a local one is `Other`.
impl From<SyncError> for CliError {
    fn from(e: SyncError) -> CliError {
        match e {
            SyncError::Unavailable(c) | SyncError::Refused(c) => CliError::from(c),
            SyncError::Conflict { message, reason } => {
                CliError { reason, ..CliError::new(ErrorKind::Conflict, message) }
            }
            e @ (SyncError::Reseed { .. } | SyncError::LeaseExpired) => {
                CliError::new(ErrorKind::Conflict, e.to_string())
            }
            e @ (SyncError::Io { .. } | SyncError::Other(_)) => CliError::other(e.to_string()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub type CliResult<T> = Result<T, CliError>;

/// The client of `tideline volume` and `tideline sync` (the client's default deadlines: 10 s
/// to connect, 30 s per request, 10 min per transfer).
pub fn connect(server: &str, token: &str) -> CliResult<Client> {
    Ok(Client::new(server, token)?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(status: StatusCode, body: &serde_json::Value) -> CliError {
        CliError::from(ClientError::refused(status, body.to_string().as_bytes()))
    }

    #[test]
    fn a_refusal_keeps_its_message_details_and_reason_and_its_status_is_the_kind() {
        let body = json!({ "success": false, "error": { "code": "conflict", "message": "volume is read-only",
            "details": { "reason": "volume_read_only" } } });
        let e = error(StatusCode::CONFLICT, &body);
        assert_eq!(
            (e.kind, e.message.as_str(), e.reason),
            (ErrorKind::Conflict, "volume is read-only", Some(Reason::VolumeReadOnly))
        );
        assert_eq!(e.details, json!({ "reason": "volume_read_only" }));
        let plain = json!({"error":{"code":"not_found","message":"not found"},"success":false});
        assert_eq!(error(StatusCode::NOT_FOUND, &plain).kind, ErrorKind::NotFound);
        assert_eq!(error(StatusCode::FORBIDDEN, &plain).kind, ErrorKind::Auth);
        assert_eq!(error(StatusCode::SERVICE_UNAVAILABLE, &plain).kind, ErrorKind::Unavailable);
        assert_eq!(error(StatusCode::BAD_REQUEST, &plain).kind, ErrorKind::Other);
    }

    #[test]
    fn nobody_listening_is_unavailable() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let e = rt.block_on(async {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", closed.local_addr().unwrap());
            drop(closed);
            let c = Client::builder(&url, "t").retry(tideline_client::RetryPolicy::none()).build().unwrap();
            c.list_volumes().await.unwrap_err()
        });
        assert_eq!(CliError::from(e).kind, ErrorKind::Unavailable);
    }
}
