//! Replays journal entries into an in-memory namespace: what any sync client does with the
//! `changes` feed. It shares no code with `apply`, so comparing the two checks both.

use std::collections::BTreeMap;

use crate::records::{JournalEntry, KIND_DIR, KIND_FILE};

/// A replayed node: what a client can know about a path from the journal alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayNode {
    pub kind: String,
    pub mode: u32,
    pub size: u64,
    pub content_ref: Option<String>,
    pub mtime_ms: i64,
}

pub type Namespace = BTreeMap<String, ReplayNode>;

/// Applies one entry to `ns`.
pub fn replay_entry(ns: &mut Namespace, e: &JournalEntry) {
    let is_dir = e.entry_kind.as_deref() == Some(KIND_DIR);
    match e.event_type.as_str() {
        // A replica's create of a file carries its content like a write does.
        "write" | "create" if !is_dir => {
            ensure_parents(ns, &e.path, e.created_at_ms);
            let node = ReplayNode {
                kind: KIND_FILE.into(),
                mode: e.mode.unwrap_or(0o644),
                size: e.size_bytes.unwrap_or(0),
                content_ref: e.content_ref.clone(),
                mtime_ms: e.created_at_ms,
            };
            ns.insert(e.path.clone(), node);
        }
        "create" => {
            ensure_parents(ns, &e.path, e.created_at_ms);
            ns.entry(e.path.clone()).or_insert(ReplayNode {
                kind: KIND_DIR.into(),
                mode: e.mode.unwrap_or(0o755),
                size: 0,
                content_ref: None,
                mtime_ms: e.created_at_ms,
            });
        }
        "remove" => remove_subtree(ns, &e.path),
        "rename" => {
            let Some(old) = e.old_path.as_deref() else {
                return;
            };
            ensure_parents(ns, &e.path, e.created_at_ms);
            let moved: Vec<(String, ReplayNode)> = ns
                .range(old.to_string()..)
                .take_while(|(p, _)| p.starts_with(old))
                .filter(|(p, _)| tideline_types::path::is_within(p, old))
                .map(|(p, n)| (p.clone(), n.clone()))
                .collect();
            remove_subtree(ns, old);
            for (p, n) in moved {
                ns.insert(tideline_types::path::rebase(&p, old, &e.path), n);
            }
        }
        "chmod" => {
            if let (Some(n), Some(mode)) = (ns.get_mut(&e.path), e.mode) {
                n.mode = mode;
            }
        }
        "invalidate" => {}
        _ => {}
    }
}

/// Replays `entries` (ascending seq) into an empty namespace.
pub fn replay<'a>(entries: impl IntoIterator<Item = &'a JournalEntry>) -> Namespace {
    let mut ns = Namespace::new();
    for e in entries {
        replay_entry(&mut ns, e);
    }
    ns
}

fn ensure_parents(ns: &mut Namespace, p: &str, at_ms: i64) {
    for dir in tideline_types::path::ancestors(p) {
        ns.entry(dir.to_string()).or_insert(ReplayNode {
            kind: KIND_DIR.into(),
            mode: 0o755,
            size: 0,
            content_ref: None,
            mtime_ms: at_ms,
        });
    }
}

fn remove_subtree(ns: &mut Namespace, p: &str) {
    let doomed: Vec<String> = ns
        .range(p.to_string()..)
        .take_while(|(k, _)| k.starts_with(p))
        .filter(|(k, _)| tideline_types::path::is_within(k, p))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        ns.remove(&k);
    }
}
