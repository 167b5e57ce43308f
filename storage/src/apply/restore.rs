//! Restoring a snapshot as ordinary journal entries.
//!
//! The API computes the difference between the live namespace and the snapshot's manifest and
//! proposes it in bounded chunks (`RestoreChunk`), so no single apply is large and other
//! volumes' writes interleave. Each operation becomes one journal entry every replica and
//! watcher sees; the last chunk ends with an `invalidate` of `/`.
//!
//! ```text
//!  remove p          ─▶ "remove" (subtree)
//!  put dir p, mode   ─▶ "remove" of a file in the way, then "create" (or "chmod" if only the mode differs)
//!  put file p, …     ─▶ "remove" of a directory in the way, then "write" with the exact mode
//! ```

use super::file::remove;
use crate::codec;
use crate::command::{Origin, RemovePath, RestoreChunk, RestoreOp};
use crate::content_ref::ContentRef;
use crate::db::Cf;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, VolumeRecord, KIND_DIR, KIND_FILE};
use crate::response::{ApplyError, Response};
use crate::rules::{
    checked_path, create_parents, dir_node, journal_base, team_volume, unmark_garbage, writable_volume, Applied, Halt,
};
use crate::txn::Txn;

pub(crate) fn restore_chunk(txn: &mut Txn, c: &RestoreChunk) -> Applied {
    let (vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    for op in &c.ops {
        let p = checked_path(&op.path)?;
        let existing = txn.node(&vol.id, &p)?;
        if op.remove {
            remove(txn, &RemovePath { origin: Some(origin.clone()), path: p })?;
            continue;
        }
        let want_dir = op.kind == KIND_DIR;
        if existing.as_ref().is_some_and(|n| n.is_dir() != want_dir) {
            remove(txn, &RemovePath { origin: Some(origin.clone()), path: p.clone() })?;
        }
        let existing = txn.node(&vol.id, &p)?;
        if want_dir {
            put_dir(txn, origin, &p, op.mode, existing)?;
        } else {
            put_file(txn, origin, &p, op)?;
        }
    }
    let mut vol = txn.get::<VolumeRecord>(Cf::Volumes, vol.id.as_bytes())?.unwrap_or(vol);
    if let Some(sid) = &c.finished_snapshot_id {
        let entry = JournalEntry {
            event_type: "invalidate".into(),
            path: "/".into(),
            metadata_json: Some(serde_json::json!({ "restored_snapshot_id": sid }).to_string()),
            ..journal_base(origin)
        };
        txn.append_journal(&mut vol, entry);
    }
    Ok(Response { head_seq: vol.head_seq, ..Default::default() })
}

fn put_dir(txn: &mut Txn, origin: &Origin, p: &str, mode: u32, existing: Option<NodeRecord>) -> Result<(), Halt> {
    let mut vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    let seq = vol.head_seq + 1;
    let event = match existing {
        Some(n) if n.mode == mode => return Ok(()),
        Some(n) => {
            txn.put_node(&vol.id, p, &NodeRecord { mode, seq, source: origin.source.clone(), ..n });
            "chmod"
        }
        None => {
            create_parents(txn, &vol.id, p, origin, seq)?;
            txn.put_node(&vol.id, p, &dir_node(origin, seq, mode));
            "create"
        }
    };
    let entry = JournalEntry {
        event_type: event.into(),
        path: p.to_string(),
        entry_kind: Some(KIND_DIR.into()),
        mode: Some(mode),
        ..journal_base(origin)
    };
    txn.append_journal(&mut vol, entry);
    Ok(())
}

fn put_file(txn: &mut Txn, origin: &Origin, p: &str, op: &RestoreOp) -> Result<(), Halt> {
    let mut vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    let content = op
        .content_ref
        .as_deref()
        .and_then(ContentRef::parse)
        .ok_or_else(|| ApplyError::bad_request("restore of a file without a content_ref"))?;
    if let Some(n) = txn.node(&vol.id, p)? {
        if n.mode == op.mode && n.size == op.size && n.content_ref.as_deref() == Some(&content.to_string()) {
            return Ok(());
        }
    }
    let seq = vol.head_seq + 1;
    create_parents(txn, &vol.id, p, origin, seq)?;
    let node = NodeRecord {
        kind: KIND_FILE.into(),
        mode: op.mode,
        size: op.size,
        content_ref: Some(content.to_string()),
        mtime_ms: origin.at_ms,
        seq,
        source: origin.source.clone(),
    };
    txn.put_node(&vol.id, p, &node);
    txn.put_raw(Cf::VolumeBlobs, &keys::volume_blob(&vol.id, &content.0), &[codec::FORMAT_V1]);
    unmark_garbage(txn, &content.0)?;
    let entry = JournalEntry {
        event_type: "write".into(),
        path: p.to_string(),
        entry_kind: Some(KIND_FILE.into()),
        mode: Some(op.mode),
        content_ref: Some(content.to_string()),
        size_bytes: Some(op.size),
        ..journal_base(origin)
    };
    txn.append_journal(&mut vol, entry);
    Ok(())
}
