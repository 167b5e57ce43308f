//! JSON wire types of the API and their conversions from storage records.

use serde::{Deserialize, Serialize};
use tideline_storage::{
    Capabilities, ConflictRecord, ContentRef, JournalEntry, NodeRecord, ReplicaRecord, SnapshotRecord, VolumeRecord,
};

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T12:00:00.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// Snapshot times: `YYYY-MM-DDTHH:MM:SSZ`, whole seconds (API.md).
pub fn snapshot_time(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000) * 1000).replace(".000Z", "Z")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A fresh random id with a readable prefix.
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 12] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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
    pub access_mode: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&VolumeRecord> for SandboxVolume {
    fn from(v: &VolumeRecord) -> Self {
        let c = v.config.clone().unwrap_or_default();
        SandboxVolume {
            id: v.id.clone(),
            team_id: v.team_id.clone(),
            user_id: v.user_id.clone(),
            source_volume_id: v.source_volume_id.clone(),
            default_posix_uid: c.default_posix_uid,
            default_posix_gid: c.default_posix_gid,
            cache_size: c.cache_size,
            prefetch: c.prefetch,
            buffer_size: c.buffer_size,
            writeback: c.writeback,
            access_mode: c.access_mode,
            created_at: rfc3339(v.created_at_ms),
            updated_at: rfc3339(v.updated_at_ms),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FileInfo {
    pub name: String,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    pub mode: String,
    pub mod_time: String,
    pub is_link: bool,
}

impl FileInfo {
    pub fn new(path: &str, node: &NodeRecord) -> Self {
        FileInfo {
            name: tideline_storage::path::name(path).to_string(),
            path: path.to_string(),
            kind: if node.is_dir() { "dir" } else { "file" }.into(),
            size: if node.is_dir() { 0 } else { node.size },
            mode: format!("{:04o}", node.mode & 0o7777),
            mod_time: rfc3339(node.mtime_ms),
            is_link: false,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SyncJournalEntry {
    pub seq: u64,
    pub volume_id: String,
    pub team_id: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<String>,
    pub event_type: String,
    pub path: String,
    pub normalized_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_old_path: Option<String>,
    pub tombstone: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
}

impl From<&JournalEntry> for SyncJournalEntry {
    fn from(e: &JournalEntry) -> Self {
        SyncJournalEntry {
            seq: e.seq,
            volume_id: e.volume_id.clone(),
            team_id: e.team_id.clone(),
            source: e.source.clone(),
            replica_id: e.replica_id.clone(),
            event_type: e.event_type.clone(),
            path: e.path.clone(),
            normalized_path: e.normalized_path.clone(),
            old_path: e.old_path.clone(),
            normalized_old_path: e.normalized_old_path.clone(),
            tombstone: e.tombstone,
            entry_kind: e.entry_kind.clone(),
            mode: e.mode,
            content_ref: e.content_ref.clone(),
            content_sha256: e.content_ref.as_deref().and_then(ContentRef::parse).map(|r| r.hex()),
            size_bytes: e.size_bytes,
            metadata: e.metadata_json.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            created_at: rfc3339(e.created_at_ms),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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

impl From<&ReplicaRecord> for SyncReplica {
    fn from(r: &ReplicaRecord) -> Self {
        let caps = r.capabilities.unwrap_or_default();
        SyncReplica {
            id: r.id.clone(),
            volume_id: r.volume_id.clone(),
            team_id: r.team_id.clone(),
            display_name: r.display_name.clone(),
            platform: r.platform.clone(),
            root_path: r.root_path.clone(),
            case_sensitive: caps.case_sensitive,
            capabilities: caps,
            last_seen_at: rfc3339(r.last_seen_at_ms),
            last_applied_seq: r.last_applied_seq,
            lease_expires_at: rfc3339(r.lease_expires_at_ms()),
            created_at: rfc3339(r.created_at_ms),
            updated_at: rfc3339(r.updated_at_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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
    pub reason: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ConflictRecord> for SyncConflict {
    fn from(c: &ConflictRecord) -> Self {
        SyncConflict {
            id: c.id.clone(),
            volume_id: c.volume_id.clone(),
            team_id: c.team_id.clone(),
            replica_id: c.replica_id.clone(),
            path: c.path.clone(),
            normalized_path: c.normalized_path.clone(),
            artifact_path: c.artifact_path.clone(),
            incoming_path: c.incoming_path.clone(),
            incoming_old_path: c.incoming_old_path.clone(),
            existing_seq: c.existing_seq,
            reason: c.reason.clone(),
            status: c.status.clone(),
            metadata: c.metadata_json.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            created_at: rfc3339(c.created_at_ms),
            updated_at: rfc3339(c.updated_at_ms),
        }
    }
}

/// A volume snapshot as the API shows it (bootstrap responses; snapshot routes).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub size_bytes: u64,
    /// **[ext]** the journal seq the snapshot is frozen at.
    pub seq: u64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl From<&SnapshotRecord> for Snapshot {
    fn from(s: &SnapshotRecord) -> Self {
        Snapshot {
            id: s.id.clone(),
            volume_id: s.volume_id.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            size_bytes: s.size_bytes,
            seq: s.seq,
            created_at: snapshot_time(s.created_at_ms),
            expires_at: s.expires_at_ms.map(snapshot_time),
        }
    }
}
