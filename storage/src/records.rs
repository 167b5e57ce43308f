//! Persisted records (prost messages). Tags are part of the on-disk format: never reuse one.

use serde::{Deserialize, Serialize};

/// A volume's user-visible configuration (`SandboxVolume` minus identity and times).
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct VolumeConfig {
    #[prost(string, tag = "1")]
    pub cache_size: String,
    #[prost(string, tag = "2")]
    pub buffer_size: String,
    #[prost(int64, tag = "3")]
    pub prefetch: i64,
    #[prost(bool, tag = "4")]
    pub writeback: bool,
    /// `RWO`, `ROX` or `RWX`.
    #[prost(string, tag = "5")]
    pub access_mode: String,
    #[prost(int64, optional, tag = "6")]
    pub default_posix_uid: Option<i64>,
    #[prost(int64, optional, tag = "7")]
    pub default_posix_gid: Option<i64>,
}

/// `volumes` family: one per volume.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct VolumeRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    #[prost(string, tag = "3")]
    pub user_id: String,
    #[prost(string, optional, tag = "4")]
    pub source_volume_id: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub config: Option<VolumeConfig>,
    #[prost(int64, tag = "6")]
    pub created_at_ms: i64,
    #[prost(int64, tag = "7")]
    pub updated_at_ms: i64,
    /// The seq of the newest journal entry (0: none yet).
    #[prost(uint64, tag = "8")]
    pub head_seq: u64,
    /// Entries with `seq <= floor_seq` have been compacted away.
    #[prost(uint64, tag = "9")]
    pub floor_seq: u64,
}

/// `journal` family: one per (volume, seq). Never changes once written.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct JournalEntry {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    #[prost(string, tag = "2")]
    pub volume_id: String,
    #[prost(string, tag = "3")]
    pub team_id: String,
    /// `replica` or `sandbox`.
    #[prost(string, tag = "4")]
    pub source: String,
    #[prost(string, optional, tag = "5")]
    pub replica_id: Option<String>,
    /// create | write | remove | rename | chmod | invalidate
    #[prost(string, tag = "6")]
    pub event_type: String,
    #[prost(string, tag = "7")]
    pub path: String,
    #[prost(string, tag = "8")]
    pub normalized_path: String,
    #[prost(string, optional, tag = "9")]
    pub old_path: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub normalized_old_path: Option<String>,
    #[prost(bool, tag = "11")]
    pub tombstone: bool,
    /// `file` or `directory`.
    #[prost(string, optional, tag = "12")]
    pub entry_kind: Option<String>,
    #[prost(uint32, optional, tag = "13")]
    pub mode: Option<u32>,
    #[prost(string, optional, tag = "14")]
    pub content_ref: Option<String>,
    #[prost(uint64, optional, tag = "15")]
    pub size_bytes: Option<u64>,
    /// Opaque client metadata, JSON text.
    #[prost(string, optional, tag = "16")]
    pub metadata_json: Option<String>,
    #[prost(int64, tag = "17")]
    pub created_at_ms: i64,
}

/// Kind of a namespace node.
pub const KIND_FILE: &str = "file";
pub const KIND_DIR: &str = "directory";

/// `namespace` family: one per (volume, path); the materialized view of the journal.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct NodeRecord {
    /// [`KIND_FILE`] or [`KIND_DIR`].
    #[prost(string, tag = "1")]
    pub kind: String,
    #[prost(uint32, tag = "2")]
    pub mode: u32,
    #[prost(uint64, tag = "3")]
    pub size: u64,
    #[prost(string, optional, tag = "4")]
    pub content_ref: Option<String>,
    #[prost(int64, tag = "5")]
    pub mtime_ms: i64,
    /// The journal seq that last changed this node (0 for implied parents).
    #[prost(uint64, tag = "6")]
    pub seq: u64,
    #[prost(string, tag = "7")]
    pub source: String,
}

impl NodeRecord {
    pub fn is_dir(&self) -> bool {
        self.kind == KIND_DIR
    }
}

/// `tokens` family, keyed by sha256 of the token: the token itself is never stored.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct TokenRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    /// Who the token acts as (`user_id` of volumes it creates).
    #[prost(string, tag = "3")]
    pub subject: String,
    #[prost(string, repeated, tag = "4")]
    pub permissions: Vec<String>,
    #[prost(int64, tag = "5")]
    pub created_at_ms: i64,
}

/// `sm_meta` family: where the state machine stands in the Raft log.
///
/// `membership` is opaque to storage: the Raft layer encodes and decodes it.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct AppliedMeta {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(uint64, tag = "3")]
    pub leader_id: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub membership: Vec<u8>,
}
