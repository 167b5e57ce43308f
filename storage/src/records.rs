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
    /// The namespace policy merged from every replica's capabilities (none: no replica yet).
    #[prost(message, optional, tag = "10")]
    pub policy: Option<Capabilities>,
    /// How many sync conflicts the volume has recorded (the last conflict's ordinal).
    #[prost(uint64, tag = "11")]
    pub conflict_count: u64,
    /// RWO: the replica that holds the write lease, and until when.
    #[prost(string, optional, tag = "12")]
    pub writer_replica_id: Option<String>,
    #[prost(int64, tag = "13")]
    pub writer_lease_until_ms: i64,
}

impl VolumeRecord {
    /// The retention floor never passes the head (panics if it does: an invariant of apply).
    pub fn assert_floor_within_head(&self) {
        assert!(
            self.floor_seq <= self.head_seq,
            "volume {} has floor {} above head {}",
            self.id,
            self.floor_seq,
            self.head_seq
        );
    }
}

/// What a file system can represent (a replica's, or a volume's merged policy).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct Capabilities {
    #[prost(bool, tag = "1")]
    pub case_sensitive: bool,
    #[prost(bool, tag = "2")]
    pub unicode_normalization_insensitive: bool,
    #[prost(bool, tag = "3")]
    pub windows_compatible_paths: bool,
}

/// The portability rules take the plain capabilities the sync worker also probes.
impl From<&Capabilities> for tideline_types::portability::Capabilities {
    fn from(c: &Capabilities) -> Self {
        tideline_types::portability::Capabilities {
            case_sensitive: c.case_sensitive,
            unicode_normalization_insensitive: c.unicode_normalization_insensitive,
            windows_compatible_paths: c.windows_compatible_paths,
        }
    }
}

impl From<Capabilities> for tideline_types::portability::Capabilities {
    fn from(c: Capabilities) -> Self {
        (&c).into()
    }
}

impl Capabilities {
    /// The policy that serves both: case-sensitive only if both are, the others if either is.
    pub fn merge(self, other: Capabilities) -> Capabilities {
        Capabilities {
            case_sensitive: self.case_sensitive && other.case_sensitive,
            unicode_normalization_insensitive: self.unicode_normalization_insensitive
                || other.unicode_normalization_insensitive,
            windows_compatible_paths: self.windows_compatible_paths || other.windows_compatible_paths,
        }
    }
}

/// `replicas` family, keyed `<volume> 0 <replica id>`: one sync client's durable state.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct ReplicaRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub volume_id: String,
    #[prost(string, tag = "3")]
    pub team_id: String,
    #[prost(string, optional, tag = "4")]
    pub display_name: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub platform: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub root_path: Option<String>,
    #[prost(message, optional, tag = "7")]
    pub capabilities: Option<Capabilities>,
    #[prost(uint64, tag = "8")]
    pub last_applied_seq: u64,
    /// The lease runs until `last_seen_at_ms + REPLICA_LEASE_MS`.
    #[prost(int64, tag = "9")]
    pub last_seen_at_ms: i64,
    #[prost(int64, tag = "10")]
    pub created_at_ms: i64,
    #[prost(int64, tag = "11")]
    pub updated_at_ms: i64,
}

/// A replica's lease: renewed by upsert, append and cursor updates.
pub const REPLICA_LEASE_MS: i64 = 5 * 60 * 1000;

impl ReplicaRecord {
    pub fn lease_expires_at_ms(&self) -> i64 {
        self.last_seen_at_ms + REPLICA_LEASE_MS
    }
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

/// [`JournalEntry::source`] of mutations made through the files API.
pub const SOURCE_SANDBOX: &str = "sandbox";
/// [`JournalEntry::source`] of mutations made by sync replicas.
pub const SOURCE_REPLICA: &str = "replica";

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
    /// A label for people (`tideline token list`); may be empty.
    #[prost(string, tag = "6")]
    #[serde(default)]
    pub name: String,
    /// When the token stops working, ms since the epoch; 0: never.
    #[prost(int64, tag = "7")]
    #[serde(default)]
    pub expires_at_ms: i64,
}

impl TokenRecord {
    /// Whether the token has stopped working at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms > 0 && now_ms >= self.expires_at_ms
    }
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

/// [`SnapshotRecord::state`] until the manifest is written, then [`SNAPSHOT_READY`].
pub const SNAPSHOT_PENDING: &str = "pending";
pub const SNAPSHOT_READY: &str = "ready";

/// `snapshots` family, keyed `<volume> 0 <snapshot id>`.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct SnapshotRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub volume_id: String,
    #[prost(string, tag = "3")]
    pub team_id: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, optional, tag = "5")]
    pub description: Option<String>,
    /// The journal seq the namespace is frozen at (`replay_after_seq` of a bootstrap).
    #[prost(uint64, tag = "6")]
    pub seq: u64,
    /// `pending` until the manifest is written, then `ready`.
    #[prost(string, tag = "7")]
    pub state: String,
    /// Total bytes of every file in the snapshot.
    #[prost(uint64, tag = "8")]
    pub size_bytes: u64,
    #[prost(uint64, tag = "9")]
    pub files: u64,
    #[prost(uint64, tag = "10")]
    pub directories: u64,
    /// sha256 (hex) of the manifest object.
    #[prost(string, tag = "11")]
    pub manifest_sha256: String,
    #[prost(int64, tag = "12")]
    pub created_at_ms: i64,
    /// `bootstrap` or `user`.
    #[prost(string, tag = "13")]
    pub kind: String,
    /// When the snapshot is deleted by the leader (bootstrap snapshots: a day after creation).
    #[prost(int64, optional, tag = "14")]
    pub expires_at_ms: Option<i64>,
}

/// How long a bootstrap snapshot (and its archive) stays downloadable.
pub const BOOTSTRAP_SNAPSHOT_TTL_MS: i64 = 24 * 60 * 60 * 1000;
