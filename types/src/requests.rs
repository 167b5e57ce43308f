//! The JSON bodies clients send (docs/API.md): one struct per route that takes a body.
//!
//! Every optional field is left out when `None`, so a request carries only what the caller
//! set, as the hand-written `json!` bodies did; the server reads each with its own lenient
//! extractor (`api/src/routes/*`), which these shapes must keep satisfying.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{AccessMode, ConflictStatus, EntryKind, EventType};
use crate::portability::Capabilities;

/// `POST /sandboxvolumes` and `POST /sandboxvolumes/{id}/fork`: a volume's config (all
/// optional; the server fills its defaults, and a fork inherits its source's).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<AccessMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writeback: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_posix_uid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_posix_gid: Option<i64>,
}

impl VolumeRequest {
    /// A volume with this access mode and the server's defaults otherwise.
    pub fn with_access_mode(access_mode: AccessMode) -> VolumeRequest {
        VolumeRequest { access_mode: Some(access_mode), ..VolumeRequest::default() }
    }
}

/// `POST /sandboxvolumes/{id}/snapshots`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /sandboxvolumes/{id}/files/move`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MoveRequest {
    pub source: String,
    pub destination: String,
}

/// `POST /sandboxvolumes/{id}/files/chmod` **[ext]**: `mode` is octal permission bits, `"0755"`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChmodRequest {
    pub path: String,
    pub mode: String,
}

/// `POST /tokens` (admin).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    pub team_id: String,
    pub permissions: Vec<String>,
    /// Recorded as the `user_id` of the volumes the token creates (default: the token's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A label for people (`tideline token list`), at most 128 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The token stops working this many seconds after creation (401 `token_expired`);
    /// absent: it works until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// `POST /cluster/nodes` (admin): a node started with `--join`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddNodeRequest {
    pub node_id: u64,
    /// The address the node advertises (`host:port`).
    pub addr: String,
}

/// `PUT …/sync/replicas/{rid}`: registers or renews a replica (`capabilities` as the sync
/// worker probes them; the same fields as [`crate::wire::Capabilities`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

/// `PUT …/sync/replicas/{rid}/cursor`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CursorRequest {
    pub last_applied_seq: u64,
}

/// `POST …/sync/replicas/{rid}/changes`: one batch of a replica's changes. The server answers
/// a repeated `request_id` with the same payload from memory, so this request may be retried.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendRequest {
    pub request_id: String,
    pub base_seq: u64,
    pub changes: Vec<ReplicaChange>,
}

/// One change of an [`AppendRequest`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaChange {
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_kind: Option<EntryKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl ReplicaChange {
    /// A change of `event_type` at `path`, nothing else set.
    pub fn at(event_type: EventType, path: impl Into<String>) -> ReplicaChange {
        ReplicaChange {
            event_type,
            path: Some(path.into()),
            old_path: None,
            entry_kind: None,
            content_base64: None,
            mode: None,
            content_sha256: None,
            size_bytes: None,
            metadata: None,
        }
    }

    /// A write of `content_base64` (already encoded) at `path`.
    pub fn write(path: impl Into<String>, content_base64: impl Into<String>) -> ReplicaChange {
        ReplicaChange { content_base64: Some(content_base64.into()), ..ReplicaChange::at(EventType::Write, path) }
    }

    /// A rename of `old_path` to `path`.
    pub fn rename(old_path: impl Into<String>, path: impl Into<String>) -> ReplicaChange {
        ReplicaChange { old_path: Some(old_path.into()), ..ReplicaChange::at(EventType::Rename, path) }
    }

    /// A removal of `path` (recursive).
    pub fn remove(path: impl Into<String>) -> ReplicaChange {
        ReplicaChange::at(EventType::Remove, path)
    }
}

/// `POST …/sync/bootstrap`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BootstrapRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

/// `PUT …/sync/conflicts/{cid}`: marks a conflict `resolved` or `ignored`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictUpdate {
    pub status: ConflictStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unset_fields_are_left_out() {
        assert_eq!(serde_json::to_value(VolumeRequest::default()).unwrap(), json!({}));
        assert_eq!(
            serde_json::to_value(VolumeRequest::with_access_mode(AccessMode::Rwx)).unwrap(),
            json!({ "access_mode": "RWX" })
        );
        assert_eq!(
            serde_json::to_value(ReplicaChange::rename("/a", "/b")).unwrap(),
            json!({ "event_type": "rename", "old_path": "/a", "path": "/b" })
        );
        let token = TokenRequest { team_id: "t".into(), permissions: vec!["*".into()], ..Default::default() };
        assert_eq!(serde_json::to_value(token).unwrap(), json!({ "team_id": "t", "permissions": ["*"] }));
    }
}
