//! Records of the sync plane: conflicts, request idempotency, and the per-path "latest
//! change" index that the concurrent-update check reads.
//!
//! ```text
//! path_latest <volume> 0 <exact path>                  -> PathLatest
//! conflicts   <volume> 0 'o' <ordinal: u64 big-endian> -> ConflictRecord   (newest = largest)
//!             <volume> 0 'i' <conflict id>             -> ConflictIndex    (id -> ordinal)
//! requests    <volume> 0 <replica id> 0 <request id>   -> RequestRecord
//! ```

use serde::{Deserialize, Serialize};

use crate::records::JournalEntry;

/// `path_latest` family: the newest journal entry that touched an exact path (as its `path`
/// or, for a rename, its `old_path`). Survives compaction; an entry at or below the floor can
/// never be newer than a valid `base_seq`, so stale rows do no harm.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct PathLatest {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    #[prost(string, tag = "2")]
    pub source: String,
    #[prost(string, optional, tag = "3")]
    pub replica_id: Option<String>,
    #[prost(string, tag = "4")]
    pub event_type: String,
    #[prost(string, tag = "5")]
    pub path: String,
    #[prost(bool, tag = "6")]
    pub tombstone: bool,
}

/// Conflict status values.
pub const CONFLICT_OPEN: &str = "open";
pub const CONFLICT_RESOLVED: &str = "resolved";
pub const CONFLICT_IGNORED: &str = "ignored";

/// `conflicts` family: a replica change that was neither applied nor journaled.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct ConflictRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub volume_id: String,
    #[prost(string, tag = "3")]
    pub team_id: String,
    #[prost(string, optional, tag = "4")]
    pub replica_id: Option<String>,
    #[prost(string, tag = "5")]
    pub path: String,
    #[prost(string, tag = "6")]
    pub normalized_path: String,
    /// Where the rejected content was written into the volume; empty when the change carried
    /// no content (rename, remove, chmod, directory create) or it could not be placed.
    #[prost(string, tag = "7")]
    pub artifact_path: String,
    #[prost(string, optional, tag = "8")]
    pub incoming_path: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub incoming_old_path: Option<String>,
    #[prost(uint64, optional, tag = "10")]
    pub existing_seq: Option<u64>,
    #[prost(string, tag = "11")]
    pub reason: String,
    #[prost(string, tag = "12")]
    pub status: String,
    /// JSON object text.
    #[prost(string, optional, tag = "13")]
    pub metadata_json: Option<String>,
    #[prost(int64, tag = "14")]
    pub created_at_ms: i64,
    #[prost(int64, tag = "15")]
    pub updated_at_ms: i64,
    /// Position in the volume's conflict list (1, 2, …).
    #[prost(uint64, tag = "16")]
    pub ordinal: u64,
}

/// `conflicts` family, id index: which ordinal a conflict id has.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct ConflictIndex {
    #[prost(uint64, tag = "1")]
    pub ordinal: u64,
}

/// What one replica append produced; stored with its request for idempotent replays.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct AppendResult {
    #[prost(uint64, tag = "1")]
    pub head_seq: u64,
    #[prost(message, repeated, tag = "2")]
    pub accepted: Vec<JournalEntry>,
    #[prost(message, repeated, tag = "3")]
    pub conflicts: Vec<ConflictRecord>,
}

/// How long a `request_id` is remembered.
pub const REQUEST_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// `requests` family: an applied replica append, by `request_id`.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RequestRecord {
    /// sha256 of the request's canonical payload (`base_seq` and `changes`).
    #[prost(bytes = "vec", tag = "1")]
    pub fingerprint: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub result: Option<AppendResult>,
    #[prost(int64, tag = "3")]
    pub created_at_ms: i64,
}

impl RequestRecord {
    pub fn expired_at(&self, now_ms: i64) -> bool {
        now_ms >= self.created_at_ms + REQUEST_TTL_MS
    }
}
