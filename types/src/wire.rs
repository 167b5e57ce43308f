//! The JSON shapes of the HTTP API (docs/API.md): what the server sends and clients read.
//!
//! Field names, `Option`s skipped when `None` and the strings of the enum fields are the wire
//! contract; `types/tests/golden.rs` holds them to the bytes checked in under
//! `types/tests/golden/`. The server wraps every shape in an envelope through
//! `serde_json::Value`, whose maps keep keys in byte order, so the bytes on the wire list keys
//! alphabetically whatever the declaration order here. Conversions from storage records live
//! in the `api` crate (this crate knows no storage).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::answers::*;
use crate::domain::{AccessMode, ConflictStatus, EntryKind, ErrorCode, EventType, FileType, Source};
pub use crate::requests::*;

/// A volume (`SandboxVolume`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SandboxVolume {
    pub id: String,
    pub team_id: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_volume_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_posix_uid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_posix_gid: Option<i64>,
    pub cache_size: String,
    pub prefetch: i64,
    pub buffer_size: String,
    pub writeback: bool,
    pub access_mode: AccessMode,
    pub created_at: String,
    pub updated_at: String,
}

/// A path as the files API shows it (`stat`, `list`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    pub name: String,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: FileType,
    pub size: u64,
    /// Permission bits as four octal digits, e.g. `0644`.
    pub mode: String,
    pub mod_time: String,
    pub is_link: bool,
    /// A symlink's target; volumes hold no symlinks yet, so it is never sent today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// **[ext]** The journal seq of the path's last change (what a mount revalidates against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// **[ext]** A file's content address, `sha256:<64 hex>` (fetch it with `sync/replay-payload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<String>,
}

/// One journal entry as `sync/changes` and appends return it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncJournalEntry {
    pub seq: u64,
    pub volume_id: String,
    pub team_id: String,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<String>,
    pub event_type: EventType,
    pub path: String,
    pub normalized_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_old_path: Option<String>,
    pub tombstone: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_kind: Option<EntryKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    pub created_at: String,
}

/// What a file system can represent: a replica's, or a volume's merged policy.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capabilities {
    pub case_sensitive: bool,
    pub unicode_normalization_insensitive: bool,
    pub windows_compatible_paths: bool,
}

/// A sync client's durable state on the server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncReplica {
    pub id: String,
    pub volume_id: String,
    pub team_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_path: Option<String>,
    pub case_sensitive: bool,
    pub capabilities: Capabilities,
    pub last_seen_at: String,
    pub last_applied_seq: u64,
    /// **[ext]** when the lease ends unless renewed by upsert, append or cursor.
    pub lease_expires_at: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A replica change the volume refused: neither applied nor journaled.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncConflict {
    pub id: String,
    pub volume_id: String,
    pub team_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<String>,
    pub path: String,
    pub normalized_path: String,
    pub artifact_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming_old_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_seq: Option<u64>,
    /// `concurrent_update`, `casefold_collision`, a portability issue code, … (open-ended:
    /// new checks may add reasons).
    pub reason: String,
    pub status: ConflictStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// A volume snapshot as the API shows it (bootstrap responses; snapshot routes).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub size_bytes: u64,
    /// **[ext]** the journal seq the snapshot is frozen at.
    pub seq: u64,
    /// `YYYY-MM-DDTHH:MM:SSZ`, whole seconds (unlike the RFC 3339 times elsewhere).
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `data` of `GET …/sync/changes`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangesPage {
    pub changes: Vec<SyncJournalEntry>,
    pub head_seq: u64,
    pub retained_after_seq: u64,
}

/// `data` of `POST …/sync/replicas/{rid}/changes`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendResponse {
    pub accepted: Vec<SyncJournalEntry>,
    pub conflicts: Vec<SyncConflict>,
    pub head_seq: u64,
}

/// `data` of the replica routes (upsert, get, cursor).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaResponse {
    pub head_seq: u64,
    pub replica: SyncReplica,
}

/// `data` of `GET …/sync/conflicts`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictList {
    pub conflicts: Vec<SyncConflict>,
}

/// `data` of `GET …/files/list`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileList {
    pub entries: Vec<FileInfo>,
}

/// The error envelope: `{"success":false,"error":{"code","message","details"?}}`.
///
/// Fields are declared in byte order, the order the server has always written them in.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
    pub success: bool,
}

/// The `error` of an [`ErrorEnvelope`] (fields in byte order).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// Machine-readable specifics, e.g. `{"reason":"reseed_required",…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub message: String,
}

impl ErrorEnvelope {
    pub fn new(code: ErrorCode, message: impl Into<String>, details: Option<Value>) -> ErrorEnvelope {
        ErrorEnvelope { error: ErrorBody { code, details, message: message.into() }, success: false }
    }
}

/// The success envelope `{"success":true,"data":…}` as the server builds it: through a
/// `serde_json::Value`, so every object's keys are in byte order.
pub fn success_body<T: Serialize>(data: &T) -> Result<Value, serde_json::Error> {
    let data = serde_json::to_value(data)?;
    Ok(serde_json::json!({ "success": true, "data": data }))
}
