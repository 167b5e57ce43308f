//! A replica's batch of changes, applied as one command.
//!
//! ```text
//!  request_id seen (24 h)? ─ same fingerprint ─▶ the stored result, nothing applied again
//!                          └ other payload   ─▶ 409
//!  lease, base_seq (ahead / below floor / regression)
//!  per change: (a) portability  (b) casefold twin  (c) concurrent update   ─▶ conflict record,
//!              else apply it (a refusal — file in the way, missing source — is a conflict too)
//!  conflict with content ─▶ the content is written at the conflict's artifact path
//!  replica lease renewed, request stored with its result
//! ```
//!
//! Each change ends as exactly one of: journaled (`accepted`), a no-op (mkdir of an existing
//! directory, remove of a missing path), or a conflict. Everything runs in the command's one
//! `Txn`, which sees its own writes, so later changes are checked against earlier ones.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::file::{chmod, invalidate, make_dir, move_path, remove, write_file};
use tideline_types::Reason;

use crate::codec;
use crate::command::{AppendChanges, MakeDir, MovePath, Origin, RemovePath, ReplicaChange, WriteFile};
use crate::db::Cf;
use crate::error::StorageError;
use crate::keys;
use crate::records::{
    Capabilities, JournalEntry, ReplicaRecord, KIND_DIR, REPLICA_LEASE_MS, SOURCE_REPLICA, SOURCE_SANDBOX,
};
use crate::response::{ApplyError, ApplyErrorKind, Response};
use crate::rules::{refuse, team_volume, Applied, Halt};
use crate::sync_records::{AppendResult, ConflictIndex, ConflictRecord, PathLatest, RequestRecord, CONFLICT_OPEN};
use crate::txn::Txn;
use tideline_types::conflict_path;
use tideline_types::path;
use tideline_types::portability;

/// Capabilities of a volume no replica has described: a case-sensitive POSIX file system.
const POSIX: Capabilities =
    Capabilities { case_sensitive: true, unicode_normalization_insensitive: false, windows_compatible_paths: false };

/// Why a change became a conflict, and where its rejected content goes.
struct Detected {
    reason: String,
    path: String,
    existing_seq: Option<u64>,
    /// The path the artifact name is derived from.
    artifact_base: String,
    metadata: Map<String, Value>,
}

pub(crate) fn append_changes(txn: &mut Txn, c: &AppendChanges) -> Applied {
    let origin = c.origin.as_ref().ok_or_else(|| ApplyError::bad_request("append without an origin"))?;
    let replica_id = match origin.replica_id.as_deref() {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => return refuse(ApplyError::bad_request("append without a replica")),
    };
    let vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    let replica_key = keys::replica(&vol.id, &replica_id);
    let Some(mut replica) = txn.get::<ReplicaRecord>(Cf::Replicas, &replica_key)? else {
        return refuse(ApplyError::not_found("sync replica not found").because(Reason::ReplicaNotFound));
    };
    let request_key = keys::request(&vol.id, &replica_id, &c.request_id);
    if let Some(stored) = txn.get::<RequestRecord>(Cf::Requests, &request_key)? {
        if !stored.expired_at(origin.at_ms) {
            if stored.fingerprint != c.fingerprint {
                return refuse(
                    ApplyError::conflict("sync request id reused with different payload")
                        .because(Reason::RequestIdReused),
                );
            }
            let result = stored.result.unwrap_or_default();
            return Ok(Response { head_seq: result.head_seq, append: Some(result), ..Default::default() });
        }
    }
    if vol.config.as_ref().is_some_and(|cfg| cfg.access_mode == "ROX") {
        return refuse(ApplyError::conflict("volume is read-only").because(Reason::VolumeReadOnly));
    }
    if origin.at_ms > replica.lease_expires_at_ms() {
        return refuse(ApplyError::conflict("sync replica lease expired").because(Reason::LeaseExpired));
    }
    let mut vol = vol;
    if vol.config.as_ref().is_some_and(|cfg| cfg.access_mode == "RWO") {
        // One writing replica at a time: the write lease passes on only once it has lapsed.
        if let Some(writer) = vol.writer_replica_id.as_deref() {
            if writer != replica_id && origin.at_ms <= vol.writer_lease_until_ms {
                return refuse(
                    ApplyError::conflict(format!("volume is RWO and replica {writer} holds the write lease"))
                        .because(Reason::WriteLeaseHeld),
                );
            }
        }
        vol.writer_replica_id = Some(replica_id.clone());
        vol.writer_lease_until_ms = origin.at_ms + REPLICA_LEASE_MS;
        txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    }
    if c.base_seq > vol.head_seq {
        return refuse(ApplyError::conflict("sync cursor ahead of head").because(Reason::CursorAheadOfHead));
    }
    if c.base_seq < vol.floor_seq {
        return refuse(ApplyError::reseed(vol.floor_seq, vol.head_seq));
    }
    if c.base_seq < replica.last_applied_seq {
        return refuse(ApplyError::conflict("sync cursor regression").because(Reason::CursorRegression));
    }
    let caps = vol.policy.unwrap_or(POSIX);

    let mut result = AppendResult::default();
    for (index, change) in c.changes.iter().enumerate() {
        let savepoint = txn.savepoint();
        let detected = match detect(txn, &vol.id, &caps, &replica_id, c.base_seq, change)? {
            Some(d) => d,
            None => match apply_change(txn, origin, change) {
                Ok(Some(entry)) => {
                    result.accepted.push(entry);
                    continue;
                }
                Ok(None) => continue,
                // Not a conflict: the whole request is to be retried.
                Err(Halt::Refuse(e)) if e.error_kind() == ApplyErrorKind::Unavailable => return refuse(e),
                Err(Halt::Refuse(e)) => {
                    txn.rollback(savepoint);
                    refused(change, &e, c.base_seq)
                }
                Err(fail) => return Err(fail),
            },
        };
        let conflict = record_conflict(txn, origin, &replica_id, c, index, change, detected)?;
        result.conflicts.push(conflict);
    }

    replica.last_seen_at_ms = replica.last_seen_at_ms.max(origin.at_ms);
    replica.updated_at_ms = replica.updated_at_ms.max(origin.at_ms);
    txn.put(Cf::Replicas, &replica_key, &replica);
    let vol = team_volume(txn, &vol.id, &vol.team_id)?;
    result.head_seq = vol.head_seq;
    let stored =
        RequestRecord { fingerprint: c.fingerprint.clone(), result: Some(result.clone()), created_at_ms: origin.at_ms };
    txn.put(Cf::Requests, &request_key, &stored);
    txn.put_raw(Cf::Requests, &keys::request_expiry(origin.at_ms, &request_key), &[codec::FORMAT_V1]);
    Ok(Response { head_seq: vol.head_seq, append: Some(result), ..Default::default() })
}

/// The conflict checks of API.md, in order.
fn detect(
    txn: &Txn,
    volume: &str,
    caps: &Capabilities,
    replica_id: &str,
    base_seq: u64,
    change: &ReplicaChange,
) -> Result<Option<Detected>, Halt> {
    if change.event_type == "invalidate" {
        return Ok(None);
    }
    let old = change.old_path.as_deref();
    // (a) portability of the names themselves
    let mut issues = portability::path_issues(&change.path, caps);
    if let Some(o) = old {
        issues.extend(portability::path_issues(o, caps));
    }
    if let Some(first) = issues.first() {
        let p = first.path.clone().unwrap_or_else(|| change.path.clone());
        let mut metadata = Map::new();
        metadata.insert("base_seq".into(), json!(base_seq));
        metadata.insert("issues".into(), json!(issues));
        metadata.insert("capabilities".into(), capabilities_json(caps));
        return Ok(Some(Detected {
            reason: first.code.to_string(),
            path: p,
            existing_seq: None,
            artifact_base: conflict_path::portable(&change.path),
            metadata,
        }));
    }
    // (b) a different spelling of the same name already in the namespace
    if !caps.case_sensitive || caps.unicode_normalization_insensitive {
        let target_exists = txn.node(volume, &change.path)?.is_some();
        let creates_name = !matches!(change.event_type.as_str(), "remove" | "chmod") || !target_exists;
        if creates_name {
            if let Some((twin, mine)) = find_twin(txn, volume, caps, &change.path, old)? {
                let node = txn.node(volume, &twin)?.unwrap_or_default();
                let case_only =
                    change.event_type == "rename" && old.map(path::normalized) == Some(path::normalized(&change.path));
                let mut metadata = latest_metadata(node.seq, &twin, "", &node.source, None, base_seq);
                metadata.insert("existing_path".into(), json!(twin));
                return Ok(Some(Detected {
                    reason: if case_only { "case_only_rename_conflict" } else { "casefold_collision" }.to_string(),
                    path: change.path.clone(),
                    existing_seq: Some(node.seq),
                    artifact_base: path::rebase(&change.path, &mine, &twin),
                    metadata,
                }));
            }
        }
    }
    // (c) someone else changed the path after the replica's base
    for candidate in std::iter::once(change.path.as_str()).chain(old) {
        let Some(latest) = txn.get::<PathLatest>(Cf::PathLatest, &keys::path_latest(volume, candidate))? else {
            continue;
        };
        let own = latest.source == SOURCE_REPLICA && latest.replica_id.as_deref() == Some(replica_id);
        if latest.seq > base_seq && !own {
            let mut metadata = latest_metadata(
                latest.seq,
                &latest.path,
                &latest.event_type,
                &latest.source,
                latest.replica_id.as_deref(),
                base_seq,
            );
            // Sandbox0 names the platform of the replica that wrote the latest entry, when that
            // replica is still registered and said its platform.
            if let Some(writer) = latest.replica_id.as_deref() {
                let record = txn.get::<ReplicaRecord>(Cf::Replicas, &keys::replica(volume, writer))?;
                if let Some(platform) = record.and_then(|r| r.platform).filter(|p| !p.trim().is_empty()) {
                    metadata.insert("latest_platform".into(), json!(platform.trim()));
                }
            }
            return Ok(Some(Detected {
                reason: "concurrent_update".into(),
                path: change.path.clone(),
                existing_seq: Some(latest.seq),
                artifact_base: change.path.clone(),
                metadata,
            }));
        }
    }
    Ok(None)
}

/// An existing path that collides with `p` (or with one of its ancestors) under `caps`, and the
/// prefix of `p` it collides with. The rename's own source never counts.
fn find_twin(
    txn: &Txn,
    volume: &str,
    caps: &Capabilities,
    p: &str,
    rename_from: Option<&str>,
) -> Result<Option<(String, String)>, Halt> {
    let mut candidates: Vec<&str> = path::ancestors(p).into_iter().filter(|a| !path::is_root(a)).collect();
    candidates.push(p);
    for mine in candidates {
        let key = portability::collision_key(mine, caps);
        let mut prefix = keys::fold(volume, mine);
        prefix.push(0);
        for (k, _) in txn.scan_raw(Cf::FoldIndex, &prefix)? {
            let Ok(existing) = std::str::from_utf8(&k[prefix.len()..]) else { continue };
            if existing == mine || rename_from.is_some_and(|from| path::is_within(existing, from)) {
                continue;
            }
            if portability::collision_key(existing, caps) == key {
                return Ok(Some((existing.to_string(), mine.to_string())));
            }
        }
    }
    Ok(None)
}

fn latest_metadata(
    seq: u64,
    latest_path: &str,
    event: &str,
    source: &str,
    replica: Option<&str>,
    base_seq: u64,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("latest_seq".into(), json!(seq));
    m.insert("latest_path".into(), json!(latest_path));
    if !event.is_empty() {
        m.insert("latest_event".into(), json!(event));
    }
    if !source.is_empty() {
        m.insert("latest_source".into(), json!(source));
    }
    if let Some(r) = replica {
        m.insert("latest_replica_id".into(), json!(r));
    }
    m.insert("base_seq".into(), json!(base_seq));
    m
}

fn capabilities_json(caps: &Capabilities) -> Value {
    json!({
        "case_sensitive": caps.case_sensitive,
        "unicode_normalization_insensitive": caps.unicode_normalization_insensitive,
        "windows_compatible_paths": caps.windows_compatible_paths,
    })
}

/// A change the namespace refused (a file where a directory must be, a missing source, …).
fn refused(change: &ReplicaChange, e: &ApplyError, base_seq: u64) -> Detected {
    let reason = match e.error_kind() {
        ApplyErrorKind::NotFound => "source_missing",
        ApplyErrorKind::Conflict => "path_type_conflict",
        _ => "invalid_change",
    };
    let mut metadata = Map::new();
    metadata.insert("base_seq".into(), json!(base_seq));
    metadata.insert("message".into(), json!(e.message));
    Detected {
        reason: reason.into(),
        path: change.path.clone(),
        existing_seq: None,
        artifact_base: change.path.clone(),
        metadata,
    }
}

/// Applies one change; `Ok(None)` when it changed nothing.
fn apply_change(txn: &mut Txn, origin: &Origin, change: &ReplicaChange) -> Result<Option<JournalEntry>, Halt> {
    let o = Some(origin.clone());
    let resp = match (change.event_type.as_str(), change.entry_kind.as_deref()) {
        ("create", Some(KIND_DIR)) => make_dir(
            txn,
            &MakeDir { origin: o, path: change.path.clone(), recursive: true, mode: change.mode.unwrap_or(0) },
        )?,
        ("create" | "write", _) => write_file(txn, &write_of(o, &change.path, change))?,
        ("remove", _) => remove(txn, &RemovePath { origin: o, path: change.path.clone() })?,
        ("rename", _) => {
            let source = change.old_path.clone().ok_or_else(|| ApplyError::bad_request("rename without old_path"))?;
            move_path(txn, &MovePath { origin: o, source, destination: change.path.clone() })?
        }
        ("chmod", _) => chmod(txn, origin, &change.path, change.mode.unwrap_or(0))?,
        ("invalidate", _) => invalidate(txn, origin, &change.path)?,
        (other, _) => return refuse(ApplyError::bad_request(format!("unknown event type {other:?}"))),
    };
    if resp.seq == 0 {
        return Ok(None);
    }
    let entry = annotate(txn, &origin.volume_id, resp.seq, |e| {
        e.event_type = change.event_type.clone();
        e.metadata_json = change.metadata_json.clone();
    })?;
    Ok(Some(entry))
}

fn write_of(origin: Option<Origin>, p: &str, change: &ReplicaChange) -> WriteFile {
    WriteFile {
        origin,
        path: p.to_string(),
        content_ref: change.content_ref.clone().unwrap_or_default(),
        size: change.size,
        inline: change.inline.clone(),
        mode: change.mode.unwrap_or(0),
        exclusive: false,
    }
}

/// Rewrites the journal entry just appended at `seq` (event type, metadata); returns it.
fn annotate(txn: &mut Txn, volume: &str, seq: u64, f: impl FnOnce(&mut JournalEntry)) -> Result<JournalEntry, Halt> {
    let key = keys::journal(volume, seq);
    let mut entry: JournalEntry = txn
        .get(Cf::Journal, &key)?
        .ok_or_else(|| StorageError::Invariant(format!("journal entry {seq} of {volume} vanished")))?;
    f(&mut entry);
    txn.put(Cf::Journal, &key, &entry);
    Ok(entry)
}

/// A conflict id every node derives alike: a UUID-shaped hash of where the change came from.
fn conflict_id(volume: &str, replica_id: &str, request_id: &str, index: usize) -> String {
    let mut h = Sha256::new();
    for part in [volume, replica_id, request_id, &index.to_string()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let x = hex::encode(&h.finalize()[..16]);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

/// Stores the conflict, first writing the change's content (if any) at the artifact path.
fn record_conflict(
    txn: &mut Txn,
    origin: &Origin,
    replica_id: &str,
    c: &AppendChanges,
    index: usize,
    change: &ReplicaChange,
    d: Detected,
) -> Result<ConflictRecord, Halt> {
    let id = conflict_id(&origin.volume_id, replica_id, &c.request_id, index);
    let mut metadata = d.metadata;
    let mut artifact_path = String::new();
    if change.content_ref.is_some() {
        let target =
            conflict_path::artifact_path(&d.artifact_base, Some(replica_id), d.existing_seq.unwrap_or(c.base_seq));
        let artifact_origin = Origin { source: SOURCE_SANDBOX.into(), replica_id: None, ..origin.clone() };
        let savepoint = txn.savepoint();
        match write_file(txn, &write_of(Some(artifact_origin), &target, change)) {
            Ok(resp) => {
                let note = json!({ "conflict_artifact": true, "conflict_id": id, "reason": d.reason }).to_string();
                annotate(txn, &origin.volume_id, resp.seq, |e| e.metadata_json = Some(note))?;
                metadata.insert("artifact_materialized".into(), json!(true));
                metadata.insert("artifact_size_bytes".into(), json!(change.size));
                artifact_path = target;
            }
            Err(Halt::Refuse(e)) => {
                txn.rollback(savepoint);
                metadata.insert("artifact_materialized".into(), json!(false));
                metadata.insert("artifact_error".into(), json!(e.message));
            }
            Err(fail) => return Err(fail),
        }
    }
    let mut vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    vol.conflict_count += 1;
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    let record = ConflictRecord {
        id: id.clone(),
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        replica_id: Some(replica_id.to_string()),
        normalized_path: path::normalized(&d.path),
        path: d.path,
        artifact_path,
        incoming_path: Some(change.path.clone()).filter(|p| !p.is_empty()),
        incoming_old_path: change.old_path.clone(),
        existing_seq: d.existing_seq,
        reason: d.reason,
        status: CONFLICT_OPEN.into(),
        metadata_json: Some(Value::Object(metadata).to_string()),
        created_at_ms: origin.at_ms,
        updated_at_ms: origin.at_ms,
        ordinal: vol.conflict_count,
    };
    txn.put(Cf::Conflicts, &keys::conflict(&vol.id, record.ordinal), &record);
    txn.put(Cf::Conflicts, &keys::conflict_id(&vol.id, &id), &ConflictIndex { ordinal: record.ordinal });
    Ok(record)
}
