//! The JSON wire types of the API — defined in `tideline-types` and re-exported here — and
//! their conversions from storage records ([`ToWire`], [`file_info`]), plus time formats and
//! ids. (The time itself comes from the injected clock: [`Ops::now_ms`](crate::ops::Ops::now_ms).)
//!
//! ```text
//!  storage record (strings, prost) ──ToWire: parse closed sets, format times──▶ wire shape (enums)
//! ```
//!
//! Storage keeps its own string constants (`KIND_DIR`, `CONFLICT_OPEN`, …) and on-disk bytes;
//! the assertions at the bottom hold them to the enums' strings and the shared limits.

use tideline_storage::{
    ConflictRecord, ContentRef, JournalEntry, NodeRecord, ReplicaRecord, SnapshotRecord, VolumeRecord,
};
use tideline_types::limits;
pub use tideline_types::wire::*;
use tideline_types::{ConflictStatus, EntryKind, FileType, ParseError, Source};

use crate::error::{ApiError, ApiResult};

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

/// A fresh random id with a readable prefix.
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 12] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// A storage record as the API shows it. Fails only on a stored string outside its closed set
/// (a record no apply writes): an internal error naming the value, never a guessed default.
pub trait ToWire {
    type Wire;
    fn to_wire(&self) -> ApiResult<Self::Wire>;
}

/// A stored string that does not parse.
fn stored(record: &str, id: &str, e: ParseError) -> ApiError {
    tracing::error!(record, id, error = %e, "stored record outside the wire's closed sets");
    ApiError::internal(format!("stored {record} {id}: {e}"))
}

impl ToWire for VolumeRecord {
    type Wire = SandboxVolume;

    fn to_wire(&self) -> ApiResult<SandboxVolume> {
        let c = self.config.clone().unwrap_or_default();
        Ok(SandboxVolume {
            id: self.id.clone(),
            team_id: self.team_id.clone(),
            user_id: self.user_id.clone(),
            source_volume_id: self.source_volume_id.clone(),
            default_posix_uid: c.default_posix_uid,
            default_posix_gid: c.default_posix_gid,
            cache_size: c.cache_size,
            prefetch: c.prefetch,
            buffer_size: c.buffer_size,
            writeback: c.writeback,
            access_mode: c.access_mode.parse().map_err(|e| stored("volume", &self.id, e))?,
            created_at: rfc3339(self.created_at_ms),
            updated_at: rfc3339(self.updated_at_ms),
        })
    }
}

/// A namespace node at `path` as `stat` and `list` show it.
pub fn file_info(path: &str, node: &NodeRecord) -> FileInfo {
    FileInfo {
        name: tideline_types::path::name(path).to_string(),
        path: path.to_string(),
        kind: if node.is_dir() { FileType::Dir } else { FileType::File },
        size: if node.is_dir() { 0 } else { node.size },
        mode: format!("{:04o}", node.mode & 0o7777),
        mod_time: rfc3339(node.mtime_ms),
        is_link: false,
        link_target: None,
        seq: Some(node.seq),
        content_ref: if node.is_dir() { None } else { node.content_ref.clone() },
    }
}

impl ToWire for JournalEntry {
    type Wire = SyncJournalEntry;

    fn to_wire(&self) -> ApiResult<SyncJournalEntry> {
        let bad = |e| stored("journal entry", &format!("{}/{}", self.volume_id, self.seq), e);
        Ok(SyncJournalEntry {
            seq: self.seq,
            volume_id: self.volume_id.clone(),
            team_id: self.team_id.clone(),
            source: self.source.parse().map_err(bad)?,
            replica_id: self.replica_id.clone(),
            event_type: self.event_type.parse().map_err(bad)?,
            path: self.path.clone(),
            normalized_path: self.normalized_path.clone(),
            old_path: self.old_path.clone(),
            normalized_old_path: self.normalized_old_path.clone(),
            tombstone: self.tombstone,
            entry_kind: self.entry_kind.as_deref().map(str::parse).transpose().map_err(bad)?,
            mode: self.mode,
            content_ref: self.content_ref.clone(),
            content_sha256: self.content_ref.as_deref().and_then(ContentRef::parse).map(|r| r.hex()),
            size_bytes: self.size_bytes,
            metadata: self.metadata_json.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            created_at: rfc3339(self.created_at_ms),
        })
    }
}

/// Storage's capabilities record as the wire shows it (and back, for a request's).
pub fn capabilities(c: tideline_storage::Capabilities) -> Capabilities {
    Capabilities {
        case_sensitive: c.case_sensitive,
        unicode_normalization_insensitive: c.unicode_normalization_insensitive,
        windows_compatible_paths: c.windows_compatible_paths,
    }
}

impl ToWire for ReplicaRecord {
    type Wire = SyncReplica;

    fn to_wire(&self) -> ApiResult<SyncReplica> {
        let caps = self.capabilities.unwrap_or_default();
        Ok(SyncReplica {
            id: self.id.clone(),
            volume_id: self.volume_id.clone(),
            team_id: self.team_id.clone(),
            display_name: self.display_name.clone(),
            platform: self.platform.clone(),
            root_path: self.root_path.clone(),
            case_sensitive: caps.case_sensitive,
            capabilities: capabilities(caps),
            last_seen_at: rfc3339(self.last_seen_at_ms),
            last_applied_seq: self.last_applied_seq,
            lease_expires_at: rfc3339(self.lease_expires_at_ms()),
            created_at: rfc3339(self.created_at_ms),
            updated_at: rfc3339(self.updated_at_ms),
        })
    }
}

impl ToWire for ConflictRecord {
    type Wire = SyncConflict;

    fn to_wire(&self) -> ApiResult<SyncConflict> {
        Ok(SyncConflict {
            id: self.id.clone(),
            volume_id: self.volume_id.clone(),
            team_id: self.team_id.clone(),
            replica_id: self.replica_id.clone(),
            path: self.path.clone(),
            normalized_path: self.normalized_path.clone(),
            artifact_path: self.artifact_path.clone(),
            incoming_path: self.incoming_path.clone(),
            incoming_old_path: self.incoming_old_path.clone(),
            existing_seq: self.existing_seq,
            reason: self.reason.clone(),
            status: self.status.parse().map_err(|e| stored("conflict", &self.id, e))?,
            metadata: self.metadata_json.as_deref().and_then(|m| serde_json::from_str(m).ok()),
            created_at: rfc3339(self.created_at_ms),
            updated_at: rfc3339(self.updated_at_ms),
        })
    }
}

impl ToWire for SnapshotRecord {
    type Wire = Snapshot;

    fn to_wire(&self) -> ApiResult<Snapshot> {
        Ok(Snapshot {
            id: self.id.clone(),
            volume_id: self.volume_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            size_bytes: self.size_bytes,
            seq: self.seq,
            created_at: snapshot_time(self.created_at_ms),
            expires_at: self.expires_at_ms.map(snapshot_time),
        })
    }
}

/// Every record of a slice as the API shows it.
pub fn to_wire_all<R: ToWire>(records: &[R]) -> ApiResult<Vec<R::Wire>> {
    records.iter().map(ToWire::to_wire).collect()
}

// --- Storage's strings and limits are the wire's -------------------------------------------

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(same(EntryKind::File.as_str(), tideline_storage::KIND_FILE));
const _: () = assert!(same(EntryKind::Directory.as_str(), tideline_storage::KIND_DIR));
const _: () = assert!(same(ConflictStatus::Open.as_str(), tideline_storage::CONFLICT_OPEN));
const _: () = assert!(same(ConflictStatus::Resolved.as_str(), tideline_storage::CONFLICT_RESOLVED));
const _: () = assert!(same(ConflictStatus::Ignored.as_str(), tideline_storage::CONFLICT_IGNORED));
const _: () = assert!(same(Source::Sandbox.as_str(), tideline_storage::state_machine::SOURCE_SANDBOX));
const _: () = assert!(limits::REPLICA_LEASE_MS == tideline_storage::REPLICA_LEASE_MS);
const _: () = assert!(limits::REQUEST_ID_TTL_MS == tideline_storage::REQUEST_TTL_MS);
const _: () = assert!(limits::BOOTSTRAP_SNAPSHOT_TTL_MS == tideline_storage::BOOTSTRAP_SNAPSHOT_TTL_MS);
// Content small enough to ride inside a Raft entry is well under one file.
const _: () = assert!(tideline_storage::INLINE_BYTES_MAX < limits::FILE_BYTES_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn a_stored_string_outside_its_set_is_an_internal_error_naming_it() {
        let mut v = VolumeRecord { id: "vol-1".into(), config: Some(Default::default()), ..Default::default() };
        v.config.as_mut().unwrap().access_mode = "rwx".into();
        let e = v.to_wire().unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.message.contains("vol-1") && e.message.contains("\"rwx\""), "{}", e.message);
        let entry = JournalEntry { seq: 3, event_type: "mkdir".into(), source: "sandbox".into(), ..Default::default() };
        let e = entry.to_wire().unwrap_err();
        assert!(e.message.contains("\"mkdir\""), "{}", e.message);
        let fine = JournalEntry { event_type: "write".into(), ..entry };
        assert_eq!(fine.to_wire().unwrap().event_type, tideline_types::EventType::Write);
        let c = ConflictRecord { id: "c".into(), status: "closed".into(), ..Default::default() };
        assert!(c.to_wire().unwrap_err().message.contains("\"closed\""));
    }
}
