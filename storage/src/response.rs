//! What applying a command answers: a [`Response`], or a deterministic refusal ([`ApplyError`]).
//!
//! A refusal is not a failure: the command was applied as a no-op (the applied position still
//! moves) and the caller is told why. Only I/O failures are errors of the state machine.

use serde::{Deserialize, Serialize};
use tideline_types::Reason;

use crate::records::{ReplicaRecord, SnapshotRecord, VolumeRecord};
use crate::sync_records::{AppendResult, ConflictRecord};

/// A deterministic refusal: the command was applied as a no-op and the caller is told why.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct ApplyError {
    #[prost(enumeration = "ApplyErrorKind", tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    /// For [`ApplyErrorKind::Reseed`]: the floor and head the caller must re-bootstrap from.
    #[prost(uint64, optional, tag = "3")]
    pub retained_after_seq: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub head_seq: Option<u64>,
    /// Which refusal this is, as [`Reason::as_str`], for clients to match on instead of the
    /// message. Optional on the wire: a response stored or sent by a node from before reasons
    /// decodes with none, and a reason this build does not know reads as none.
    #[prost(string, optional, tag = "5")]
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration, Serialize, Deserialize)]
#[repr(i32)]
pub enum ApplyErrorKind {
    Unspecified = 0,
    NotFound = 1,
    Conflict = 2,
    BadRequest = 3,
    /// The cursor is below the retained journal: re-bootstrap.
    Reseed = 4,
    /// Try again shortly (content is being garbage-collected).
    Unavailable = 5,
}

impl ApplyError {
    pub fn new(kind: ApplyErrorKind, message: impl Into<String>) -> Self {
        ApplyError {
            kind: kind as i32,
            message: message.into(),
            retained_after_seq: None,
            head_seq: None,
            reason: None,
        }
    }
    pub fn reseed(retained_after_seq: u64, head_seq: u64) -> Self {
        ApplyError {
            retained_after_seq: Some(retained_after_seq),
            head_seq: Some(head_seq),
            ..Self::new(ApplyErrorKind::Reseed, "sync reseed required").because(Reason::ReseedRequired)
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ApplyErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ApplyErrorKind::Conflict, message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApplyErrorKind::BadRequest, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ApplyErrorKind::Unavailable, message)
    }
    /// The same refusal, saying which one it is.
    pub fn because(mut self, reason: Reason) -> Self {
        self.reason = Some(reason.as_str().to_string());
        self
    }
    /// Which refusal this is; `None` when unsaid or not one this build knows.
    pub fn known_reason(&self) -> Option<Reason> {
        self.reason.as_deref().and_then(|r| r.parse().ok())
    }
    pub fn error_kind(&self) -> ApplyErrorKind {
        ApplyErrorKind::try_from(self.kind).unwrap_or(ApplyErrorKind::Unspecified)
    }
}

/// What applying one command produced.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Response {
    #[prost(message, optional, tag = "1")]
    pub error: Option<ApplyError>,
    /// The journal seq this command appended, 0 when it appended none (a no-op).
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    #[prost(uint64, tag = "3")]
    pub head_seq: u64,
    #[prost(message, optional, tag = "4")]
    pub volume: Option<VolumeRecord>,
    #[prost(message, optional, tag = "5")]
    pub replica: Option<ReplicaRecord>,
    #[prost(message, optional, tag = "6")]
    pub append: Option<AppendResult>,
    #[prost(message, optional, tag = "7")]
    pub conflict: Option<ConflictRecord>,
    #[prost(message, optional, tag = "8")]
    pub snapshot: Option<SnapshotRecord>,
    /// For `SweepGarbage`: the digests swept (their objects may now be deleted).
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub swept: Vec<Vec<u8>>,
    /// For a [`CommandBatch`](crate::command::CommandBatch): each command's own response, in order.
    #[prost(message, repeated, tag = "10")]
    pub batch: Vec<Response>,
}

impl Response {
    pub fn err(e: ApplyError) -> Self {
        Response { error: Some(e), ..Default::default() }
    }
    pub fn into_result(self) -> Result<Response, ApplyError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// What a node from before reasons wrote: `ApplyError` with tags 1–4 only.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ApplyErrorWithoutReason {
        #[prost(enumeration = "ApplyErrorKind", tag = "1")]
        kind: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(uint64, optional, tag = "3")]
        retained_after_seq: Option<u64>,
        #[prost(uint64, optional, tag = "4")]
        head_seq: Option<u64>,
    }

    #[test]
    fn the_reason_travels_and_older_bytes_still_decode() {
        let e = ApplyError::conflict("sync replica lease expired").because(Reason::LeaseExpired);
        assert_eq!(e.message, "sync replica lease expired");
        let back = ApplyError::decode(e.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.known_reason(), Some(Reason::LeaseExpired));
        assert_eq!(back.reason.as_deref(), Some("lease_expired"));

        let old = ApplyErrorWithoutReason {
            kind: ApplyErrorKind::Conflict as i32,
            message: "volume is read-only".into(),
            retained_after_seq: None,
            head_seq: None,
        };
        let decoded = ApplyError::decode(old.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, ApplyError::conflict("volume is read-only"));
        assert_eq!(decoded.known_reason(), None);
        // A newer node's reason decodes on an older node: the unknown field is skipped.
        let older = ApplyErrorWithoutReason::decode(e.encode_to_vec().as_slice()).unwrap();
        assert_eq!(older.message, "sync replica lease expired");

        let reseed = ApplyError::reseed(3, 9);
        assert_eq!(reseed.known_reason(), Some(Reason::ReseedRequired));
        let unknown = ApplyError { reason: Some("from_a_newer_node".into()), ..ApplyError::conflict("x") };
        assert_eq!(unknown.known_reason(), None);
        // serde (JSON) without the field, as stored before reasons.
        let json = r#"{"kind":2,"message":"m","retained_after_seq":null,"head_seq":null}"#;
        assert_eq!(serde_json::from_str::<ApplyError>(json).unwrap().reason, None);
    }
}
