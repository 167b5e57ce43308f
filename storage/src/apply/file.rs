//! Namespace changes: write a file, make a directory, remove, move, chmod, invalidate. Each is
//! one journal entry (seq = head + 1) with its namespace and fold rows; a change that changes
//! nothing (mkdir -p of a directory, remove of a missing path) appends nothing.
//!
//! The files API applies them one per command; a replica's batch (`append.rs`) and a restore
//! (`restore.rs`) apply them change by change.

use tideline_types::Reason;

use crate::codec;
use crate::command::{ChangeMode, MakeDir, MovePath, Origin, RemovePath, WriteFile};
use crate::content_ref::ContentRef;
use crate::db::Cf;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, KIND_DIR, KIND_FILE};
use crate::response::{ApplyError, Response};
use crate::rules::{
    being_deleted, checked_path, create_parents, dir_node, journal_base, ok, refuse, team_volume, unmark_garbage,
    writable_volume, Applied,
};
use crate::txn::{Txn, DIR_MODE, FILE_MODE};
use tideline_types::path;

pub(crate) fn write_file(txn: &mut Txn, c: &WriteFile) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    let content = ContentRef::parse(&c.content_ref).ok_or_else(|| ApplyError::bad_request("invalid content_ref"))?;
    if let Some(bytes) = &c.inline {
        if bytes.len() as u64 != c.size || ContentRef::of(bytes) != content {
            return refuse(ApplyError::bad_request("inline content does not match its content_ref"));
        }
    }
    if c.inline.is_none() && being_deleted(txn, &content.0)? {
        return refuse(
            ApplyError::unavailable("this content is being garbage-collected; retry the write")
                .because(Reason::ContentBeingCollected),
        );
    }
    let existing = txn.node(&vol.id, &p)?;
    if c.exclusive && existing.is_some() {
        return refuse(ApplyError::conflict("path already exists").because(Reason::PathAlreadyExists));
    }
    if existing.as_ref().is_some_and(NodeRecord::is_dir) {
        return refuse(ApplyError::conflict("path is a directory").because(Reason::PathIsDirectory));
    }
    let seq = vol.head_seq + 1;
    create_parents(txn, &vol.id, &p, origin, seq)?;
    let mode = existing.map(|n| n.mode).unwrap_or(if c.mode == 0 { FILE_MODE } else { c.mode });
    let node = NodeRecord {
        kind: KIND_FILE.into(),
        mode,
        size: c.size,
        content_ref: Some(content.to_string()),
        mtime_ms: origin.at_ms,
        seq,
        source: origin.source.clone(),
    };
    txn.put_node(&vol.id, &p, &node);
    if let Some(bytes) = &c.inline {
        let mut value = Vec::with_capacity(bytes.len() + 1);
        value.push(codec::FORMAT_V1);
        value.extend_from_slice(bytes);
        txn.put_raw(Cf::Blobs, &content.0, &value);
    }
    txn.put_raw(Cf::VolumeBlobs, &keys::volume_blob(&vol.id, &content.0), &[codec::FORMAT_V1]);
    unmark_garbage(txn, &content.0)?;
    let entry = JournalEntry {
        event_type: "write".into(),
        path: p,
        entry_kind: Some(KIND_FILE.into()),
        mode: Some(mode),
        content_ref: Some(content.to_string()),
        size_bytes: Some(c.size),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

pub(crate) fn make_dir(txn: &mut Txn, c: &MakeDir) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    match txn.node(&vol.id, &p)? {
        Some(n) if n.is_dir() && c.recursive => return ok(0, vol.head_seq),
        Some(n) if n.is_dir() => {
            return refuse(ApplyError::conflict("path already exists").because(Reason::PathAlreadyExists))
        }
        Some(_) => return refuse(ApplyError::conflict("path is not a directory").because(Reason::PathNotDirectory)),
        None => {}
    }
    let seq = vol.head_seq + 1;
    if c.recursive {
        create_parents(txn, &vol.id, &p, origin, seq)?;
    } else {
        let (parent, _) = path::split(&p);
        match txn.node(&vol.id, parent)? {
            None => return refuse(ApplyError::not_found("directory not found").because(Reason::DirectoryNotFound)),
            Some(n) if !n.is_dir() => {
                return refuse(ApplyError::conflict("path is not a directory").because(Reason::PathNotDirectory))
            }
            Some(_) => {}
        }
    }
    let mode = if c.mode == 0 { DIR_MODE } else { c.mode };
    txn.put_node(&vol.id, &p, &dir_node(origin, seq, mode));
    let entry = JournalEntry {
        event_type: "create".into(),
        path: p,
        entry_kind: Some(KIND_DIR.into()),
        mode: Some(mode),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

pub(crate) fn remove(txn: &mut Txn, c: &RemovePath) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    let Some(node) = txn.node(&vol.id, &p)? else {
        return ok(0, vol.head_seq); // idempotent: nothing to remove
    };
    if node.is_dir() {
        for (child, _) in txn.subtree(&vol.id, &p)? {
            txn.delete_node(&vol.id, &child);
        }
    }
    txn.delete_node(&vol.id, &p);
    let entry = JournalEntry {
        event_type: "remove".into(),
        path: p,
        tombstone: true,
        entry_kind: Some(node.kind.clone()),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

pub(crate) fn move_path(txn: &mut Txn, c: &MovePath) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let src = checked_path(&c.source)?;
    let dst = checked_path(&c.destination)?;
    let Some(node) = txn.node(&vol.id, &src)? else {
        return refuse(ApplyError::not_found("file not found").because(Reason::FileNotFound));
    };
    if src == dst {
        return ok(0, vol.head_seq);
    }
    if node.is_dir() && path::is_within(&dst, &src) {
        return refuse(ApplyError::bad_request("cannot move a directory into itself"));
    }
    match txn.node(&vol.id, &dst)? {
        None => {}
        Some(existing) if !existing.is_dir() && !node.is_dir() => {} // a file replaces a file
        Some(_) => {
            return refuse(ApplyError::conflict("destination already exists").because(Reason::DestinationAlreadyExists))
        }
    }
    let seq = vol.head_seq + 1;
    create_parents(txn, &vol.id, &dst, origin, seq)?;
    let below = if node.is_dir() { txn.subtree(&vol.id, &src)? } else { Vec::new() };
    for (old, _) in &below {
        txn.delete_node(&vol.id, old);
    }
    txn.delete_node(&vol.id, &src);
    for (old, n) in &below {
        txn.put_node(&vol.id, &path::rebase(old, &src, &dst), n);
    }
    let moved = NodeRecord { seq, source: origin.source.clone(), ..node.clone() };
    txn.put_node(&vol.id, &dst, &moved);
    let entry = JournalEntry {
        event_type: "rename".into(),
        path: dst,
        old_path: Some(src),
        entry_kind: Some(node.kind.clone()),
        mode: Some(node.mode),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

/// Sets a node's mode (a replica's `chmod`).
/// The files API's chmod: the volume must be writable; only the permission bits change.
pub(crate) fn change_mode(txn: &mut Txn, c: &ChangeMode) -> Applied {
    let (_, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    if c.mode > 0o7777 {
        return refuse(ApplyError::bad_request("mode has bits beyond 7777"));
    }
    chmod(txn, origin, &p, c.mode)
}

pub(crate) fn chmod(txn: &mut Txn, origin: &Origin, p: &str, mode: u32) -> Applied {
    let mut vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    let Some(node) = txn.node(&vol.id, p)? else {
        return refuse(ApplyError::not_found("file not found").because(Reason::FileNotFound));
    };
    let seq = vol.head_seq + 1;
    txn.put_node(&vol.id, p, &NodeRecord { mode, seq, source: origin.source.clone(), ..node.clone() });
    let entry = JournalEntry {
        event_type: "chmod".into(),
        path: p.to_string(),
        entry_kind: Some(node.kind),
        mode: Some(mode),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    Ok(Response { seq, head_seq: vol.head_seq, ..Default::default() })
}

/// Journals an `invalidate` of `p` (a replica telling watchers to re-read it); the namespace
/// is unchanged.
pub(crate) fn invalidate(txn: &mut Txn, origin: &Origin, p: &str) -> Applied {
    let mut vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    let entry = JournalEntry { event_type: "invalidate".into(), path: p.to_string(), ..journal_base(origin) };
    let seq = txn.append_journal(&mut vol, entry);
    Ok(Response { seq, head_seq: vol.head_seq, ..Default::default() })
}
