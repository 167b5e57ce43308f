//! What the checker knows of a node's final state, as plain data: journals, namespaces,
//! bootstrap trees, and the fold that turns a journal into a namespace. No HTTP here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One journal entry as `sync/changes` returns it. The named fields are the ones the checks
/// read; `rest` keeps every other field so two nodes' entries compare in full.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub event_type: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

impl Entry {
    /// True for an entry that puts file content at `path` (a write, or a replica's create of a
    /// file).
    pub fn is_file_write(&self) -> bool {
        match self.event_type.as_str() {
            "write" => true,
            "create" => self.entry_kind.as_deref() != Some("directory") && self.content_ref.is_some(),
            _ => false,
        }
    }

    /// The lowercase hex sha256 of the content, from `content_ref` = `sha256:<hex>`.
    pub fn sha256(&self) -> Option<&str> {
        self.content_ref.as_deref().map(|r| r.strip_prefix("sha256:").unwrap_or(r))
    }

    /// True for a conflict artifact (the rejected side of a replica change, kept in the volume).
    pub fn is_conflict_artifact(&self) -> bool {
        self.metadata.as_ref().and_then(|m| m.get("conflict_artifact")).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// One volume's retained journal on one node: entries `retained_after_seq + 1 ..= head_seq`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub retained_after_seq: u64,
    pub head_seq: u64,
    pub entries: Vec<Entry>,
}

impl Journal {
    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        let first = self.entries.first()?.seq;
        self.entries.get(seq.checked_sub(first)? as usize).filter(|e| e.seq == seq)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
}

/// A path of a namespace as the checks compare it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub kind: Kind,
    /// Lowercase hex sha256 of a file's content; `None` for a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Permission bits only (`mode & 0o7777`).
    pub mode: u32,
}

/// path → node, without the root.
pub type Namespace = BTreeMap<String, Node>;

/// A bootstrap: the namespace frozen at `replay_after_seq` (from the archive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub replay_after_seq: u64,
    pub tree: Namespace,
}

fn is_within(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

fn ensure_parents(ns: &mut Namespace, path: &str) {
    for (i, _) in path.match_indices('/').skip(1) {
        ns.entry(path[..i].to_string()).or_insert(Node { kind: Kind::Dir, sha256: None, mode: 0o755 });
    }
}

fn subtree(ns: &Namespace, path: &str) -> Vec<String> {
    ns.range(path.to_string()..)
        .take_while(|(k, _)| k.starts_with(path))
        .filter(|(k, _)| is_within(k, path))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Applies one journal entry to `ns`, as a sync client replaying `changes` would (written from
/// API.md, sharing nothing with the server's `apply`).
pub fn fold_entry(ns: &mut Namespace, e: &Entry) {
    let is_dir = e.entry_kind.as_deref() == Some("directory");
    match e.event_type.as_str() {
        "write" | "create" if !is_dir && e.content_ref.is_some() => {
            ensure_parents(ns, &e.path);
            let node = Node {
                kind: Kind::File,
                sha256: e.sha256().map(str::to_string),
                mode: e.mode.unwrap_or(0o644) & 0o7777,
            };
            ns.insert(e.path.clone(), node);
        }
        "create" => {
            ensure_parents(ns, &e.path);
            ns.entry(e.path.clone()).or_insert(Node {
                kind: Kind::Dir,
                sha256: None,
                mode: e.mode.unwrap_or(0o755) & 0o7777,
            });
        }
        "remove" => {
            for k in subtree(ns, &e.path) {
                ns.remove(&k);
            }
        }
        "rename" => {
            let Some(old) = e.old_path.as_deref() else { return };
            let moved: Vec<(String, Node)> = subtree(ns, old)
                .into_iter()
                .map(|k| {
                    let n = ns.remove(&k).expect("listed");
                    (k, n)
                })
                .collect();
            ensure_parents(ns, &e.path);
            for (k, n) in moved {
                let rest = &k[old.len()..];
                ns.insert(format!("{}{rest}", e.path), n);
            }
        }
        "chmod" => {
            if let (Some(n), Some(mode)) = (ns.get_mut(&e.path), e.mode) {
                n.mode = mode & 0o7777;
            }
        }
        _ => {} // invalidate: a marker for clients, not a change of the namespace
    }
}

/// Folds `entries` onto `base`.
pub fn fold<'a>(mut base: Namespace, entries: impl IntoIterator<Item = &'a Entry>) -> Namespace {
    for e in entries {
        fold_entry(&mut base, e);
    }
    base
}

/// The differences between two namespaces, as readable lines (at most `max`), and their total.
pub fn diff(expected: &Namespace, actual: &Namespace, max: usize) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut total = 0;
    let mut push = |v: Value| {
        total += 1;
        if out.len() < max {
            out.push(v);
        }
    };
    for (p, e) in expected {
        match actual.get(p) {
            None => push(serde_json::json!({ "path": p, "expected": e, "actual": null })),
            Some(a) if a != e => push(serde_json::json!({ "path": p, "expected": e, "actual": a })),
            _ => {}
        }
    }
    for (p, a) in actual {
        if !expected.contains_key(p) {
            push(serde_json::json!({ "path": p, "expected": null, "actual": a }));
        }
    }
    (out, total)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn write(seq: u64, path: &str, sha: &str) -> Entry {
        Entry {
            seq,
            event_type: "write".into(),
            path: path.into(),
            entry_kind: Some("file".into()),
            mode: Some(0o644),
            content_ref: Some(format!("sha256:{sha}")),
            size_bytes: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn fold_writes_renames_removes_and_chmods() {
        let mut mv = write(0, "/b", "");
        mv.event_type = "rename".into();
        mv.old_path = Some("/a".into());
        mv.content_ref = None;
        let mut rm = write(0, "/c", "");
        rm.event_type = "remove".into();
        let mut ch = write(0, "/b/x/y", "");
        ch.event_type = "chmod".into();
        ch.mode = Some(0o100600);
        let ns = fold(
            Namespace::new(),
            &[write(1, "/a/x/y", "11"), write(2, "/c/d", "22"), write(3, "/ab", "33"), mv, rm, ch],
        );
        let keys: Vec<&str> = ns.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/ab", "/b", "/b/x", "/b/x/y"]);
        assert_eq!(ns["/b/x/y"], Node { kind: Kind::File, sha256: Some("11".into()), mode: 0o600 });
        assert_eq!(ns["/b/x"].kind, Kind::Dir);
    }
}
