//! [`SyncError`]: why a step of the engine failed, classified the way the engine reacts to it.
//! A client failure is sorted by its `details.reason` and status, never by its message text;
//! the engine knows no exit codes (the CLI maps these kinds onto its own).
//!
//! ```text
//! ClientError ──reason reseed_required──▶ Reseed      ──reason lease_expired──▶ LeaseExpired
//!             ──409──▶ Conflict   ──503 / connect / timeout──▶ Unavailable   ──else──▶ Refused
//! io::Error (with what we were doing) ──▶ Io          the engine's own refusals ──▶ Conflict / Other
//! ```

use std::io;

use tideline_client::{ClientError, StatusCode};
use tideline_types::Reason;

/// Why a sync step failed, as the engine (and the caller) reacts to it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The cursor fell below the retention floor: bootstrap again.
    #[error("sync reseed required (retained after {retained_after_seq}, head {head_seq})")]
    Reseed { retained_after_seq: u64, head_seq: u64 },
    /// The replica's lease lapsed: register again, then retry.
    #[error("sync replica lease expired")]
    LeaseExpired,
    /// The server (409) or the engine refuses a change of state; `reason` says which refusal
    /// (`None`: the server named none, or one this build does not know).
    #[error("{message}")]
    Conflict { message: String, reason: Option<Reason> },
    /// The server could not be reached, timed out, or is unavailable (503): try again later.
    #[error("{0}")]
    Unavailable(ClientError),
    /// Any other failure of a call (not found, auth, bad request, decode …), as the client
    /// classified it.
    #[error("{0}")]
    Refused(ClientError),
    /// A local file-system failure, with a verb phrase saying what we were doing.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Anything else the engine cannot go on from (a corrupt answer, a bad local state).
    #[error("{0}")]
    Other(String),
}

impl SyncError {
    /// A local I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> SyncError {
        SyncError::Io { what: what.into(), source }
    }

    /// Maps an `io::Error` into [`SyncError::Io`] with `what` as its context.
    pub fn io_with(what: impl Into<String>) -> impl FnOnce(io::Error) -> SyncError {
        let what = what.into();
        move |source| SyncError::Io { what, source }
    }

    /// A failure while a body streamed, with a verb phrase saying what we were doing.
    pub fn reading(what: &str, mut err: ClientError) -> SyncError {
        err.message = format!("{what}: {}", err.message);
        SyncError::from(err)
    }

    /// Whether trying the same step again later may succeed (the server was out of reach).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SyncError::Unavailable(_))
    }
}

impl From<ClientError> for SyncError {
    fn from(e: ClientError) -> SyncError {
        // By reason and status only: the message is for people and may change.
        match e.reason() {
            Some(Reason::ReseedRequired) => {
                return SyncError::Reseed {
                    retained_after_seq: e.detail_u64("retained_after_seq").unwrap_or(0),
                    head_seq: e.detail_u64("head_seq").unwrap_or(0),
                }
            }
            Some(Reason::LeaseExpired) => return SyncError::LeaseExpired,
            _ => {}
        }
        match e.status {
            Some(StatusCode::CONFLICT) => SyncError::Conflict { reason: e.reason(), message: e.message },
            Some(StatusCode::SERVICE_UNAVAILABLE) => SyncError::Unavailable(e),
            Some(_) => SyncError::Refused(e),
            None if matches!(e.kind, tideline_client::ErrorKind::Connect | tideline_client::ErrorKind::Timeout) => {
                SyncError::Unavailable(e)
            }
            None => SyncError::Refused(e),
        }
    }
}

pub type SyncResult<T> = Result<T, SyncError>;

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn answer(status: StatusCode, body: Value) -> SyncError {
        SyncError::from(ClientError::refused(status, body.to_string().as_bytes()))
    }

    #[test]
    fn refusals_are_told_apart_by_reason_not_message() {
        let reseed = json!({ "success": false, "error": { "code": "conflict", "message": "sync reseed required",
            "details": { "reason": "reseed_required", "retained_after_seq": 4, "head_seq": 9 } } });
        assert!(matches!(
            answer(StatusCode::CONFLICT, reseed),
            SyncError::Reseed { retained_after_seq: 4, head_seq: 9 }
        ));
        let lapsed = json!({ "success": false, "error": { "code": "conflict", "message": "the lease is gone",
            "details": { "reason": "lease_expired" } } });
        assert!(matches!(answer(StatusCode::CONFLICT, lapsed), SyncError::LeaseExpired));
        // The old prose without a reason is just a conflict now.
        let prose =
            json!({ "success": false, "error": { "code": "conflict", "message": "sync replica lease expired" } });
        assert!(matches!(answer(StatusCode::CONFLICT, prose), SyncError::Conflict { reason: None, .. }));
        let other = json!({ "success": false, "error": { "code": "conflict", "message": "sync cursor regression",
            "details": { "reason": "cursor_regression" } } });
        match answer(StatusCode::CONFLICT, other) {
            SyncError::Conflict { reason, .. } => assert_eq!(reason, Some(Reason::CursorRegression)),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn the_status_sorts_the_rest() {
        let plain = json!({"error":{"code":"not_found","message":"not found"},"success":false});
        assert!(matches!(answer(StatusCode::SERVICE_UNAVAILABLE, plain.clone()), SyncError::Unavailable(_)));
        match answer(StatusCode::NOT_FOUND, plain) {
            SyncError::Refused(e) => {
                assert_eq!((e.status, e.message.as_str()), (Some(StatusCode::NOT_FOUND), "not found"))
            }
            e => panic!("{e}"),
        }
    }
}
