//! Local changes: the difference between one scan of the directory and the index, as the
//! journal's events. Renames (same inode, new path) travel as `rename`, mode changes as `chmod`;
//! only files whose size, mtime or inode changed are rehashed.
//!
//! A path that is in the index but merely hidden from the scan (gitignored, unsupported type)
//! is not a deletion: only a path that is really gone from disk is removed.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use super::index::{Entry, Index, Kind};
use super::local::{self, local_path, Meta, Scan};

/// One local change, in the order it must be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    MkDir {
        path: String,
        meta: Meta,
    },
    Rename {
        from: String,
        to: String,
    },
    /// New or changed content (`create` when the path was not in the index).
    Write {
        path: String,
        meta: Meta,
        sha256: String,
        create: bool,
    },
    Chmod {
        path: String,
        meta: Meta,
    },
    Remove {
        path: String,
    },
}

impl Change {
    /// The path the change lands on.
    pub fn path(&self) -> &str {
        match self {
            Change::MkDir { path, .. }
            | Change::Write { path, .. }
            | Change::Chmod { path, .. }
            | Change::Remove { path } => path,
            Change::Rename { to, .. } => to,
        }
    }
}

/// What to send, plus index refreshes that need no change (a file touched but not modified).
#[derive(Default, Debug)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub refresh: Vec<(String, Entry)>,
}

/// Computes the changes that bring the volume from `index` to `scan`.
pub fn plan(root: &Path, index: &Index, scan: &Scan) -> io::Result<Plan> {
    let mut view: BTreeMap<String, Entry> = index.entries().clone();
    let mut out = Plan::default();
    let mut renames = Vec::new();

    // Directory renames, outermost first (scan order is sorted, so parents come first).
    let mut gone_dirs = gone_by_inode(root, &view, &scan.entries, Kind::Dir)?;
    for (path, m) in scan.entries.iter().filter(|(_, m)| m.kind == Kind::Dir) {
        if view.contains_key(path) {
            continue;
        }
        if let Some(from) = gone_dirs.remove(&m.inode) {
            let moved =
                view.get(&from).is_some_and(|e| e.mtime_ns == m.mtime_ns || shares_a_child(&view, &from, scan, path));
            if moved && !path.starts_with(&format!("{from}/")) {
                move_subtree(&mut view, &from, path);
                renames.push(Change::Rename { from, to: path.clone() });
            }
        }
    }
    out.changes.extend(renames);

    // Kind changes and new directories.
    for (path, m) in scan.entries.iter().filter(|(_, m)| m.kind == Kind::Dir) {
        match view.get(path) {
            Some(e) if e.kind == Kind::Dir => {
                if e.mode != m.mode {
                    out.changes.push(Change::Chmod { path: path.clone(), meta: *m });
                }
            }
            Some(_) => {
                view.remove(path);
                out.changes.push(Change::Remove { path: path.clone() });
                out.changes.push(Change::MkDir { path: path.clone(), meta: *m });
            }
            None => out.changes.push(Change::MkDir { path: path.clone(), meta: *m }),
        }
    }

    // File renames, then content and modes.
    let mut gone_files = gone_by_inode(root, &view, &scan.entries, Kind::File)?;
    for (path, m) in scan.entries.iter().filter(|(_, m)| m.kind == Kind::File) {
        if !view.contains_key(path) {
            // A rename keeps inode, size and mtime; an inode alone may have been reused.
            let moved = gone_files.get(&m.inode).and_then(|from| view.get(from)).is_some_and(|e| m.same_as(e));
            if let Some(from) = gone_files.remove(&m.inode).filter(|_| moved) {
                if let Some(e) = view.remove(&from) {
                    view.insert(path.clone(), e);
                    out.changes.push(Change::Rename { from, to: path.clone() });
                }
            }
        }
        match view.get(path) {
            Some(e) if e.kind == Kind::File && m.same_as(e) => {
                if e.mode != m.mode {
                    out.changes.push(Change::Chmod { path: path.clone(), meta: *m });
                }
            }
            Some(e) if e.kind == Kind::File => {
                let sha = local::hash_file(&local_path(root, path))?;
                if e.sha256.as_deref() == Some(sha.as_str()) {
                    out.refresh.push((path.clone(), m.entry(Some(sha))));
                    if e.mode != m.mode {
                        out.changes.push(Change::Chmod { path: path.clone(), meta: *m });
                    }
                } else {
                    out.changes.push(Change::Write { path: path.clone(), meta: *m, sha256: sha, create: false });
                }
            }
            Some(_) => {
                out.changes.push(Change::Remove { path: path.clone() });
                let sha = local::hash_file(&local_path(root, path))?;
                out.changes.push(Change::Write { path: path.clone(), meta: *m, sha256: sha, create: true });
            }
            None => {
                let sha = local::hash_file(&local_path(root, path))?;
                out.changes.push(Change::Write { path: path.clone(), meta: *m, sha256: sha, create: true });
            }
        }
    }

    // Removals: only what is really gone, and only the topmost gone path of a subtree.
    let mut removed: Vec<&String> = Vec::new();
    for path in view.keys() {
        if scan.entries.contains_key(path) || removed.iter().any(|r| path.starts_with(&format!("{r}/"))) {
            continue;
        }
        let gone = local::lstat(root, path)?.is_none();
        if gone {
            removed.push(path);
        }
    }
    out.changes.extend(removed.into_iter().map(|p| Change::Remove { path: p.clone() }));
    Ok(out)
}

/// Whether directory `new` (scanned) holds a name that `old` (indexed) held: an inode reused by
/// an unrelated new directory shares nothing with the one that was deleted.
fn shares_a_child(view: &BTreeMap<String, Entry>, old: &str, scan: &Scan, new: &str) -> bool {
    let (old_prefix, new_prefix) = (format!("{old}/"), format!("{new}/"));
    let children = |keys: Vec<&String>, prefix: &str| -> Vec<String> {
        keys.into_iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter(|r| !r.contains('/'))
            .map(str::to_string)
            .collect()
    };
    let old_children = children(
        view.range(old_prefix.clone()..).take_while(|(k, _)| k.starts_with(&old_prefix)).map(|(k, _)| k).collect(),
        &old_prefix,
    );
    let new_children = children(
        scan.entries
            .range(new_prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&new_prefix))
            .map(|(k, _)| k)
            .collect(),
        &new_prefix,
    );
    old_children.iter().any(|c| new_children.contains(c))
}

/// Index entries of `kind` missing from disk, by their recorded inode (0 = unknown, skipped).
fn gone_by_inode(
    root: &Path,
    view: &BTreeMap<String, Entry>,
    scanned: &BTreeMap<String, Meta>,
    kind: Kind,
) -> io::Result<HashMap<u64, String>> {
    let mut out = HashMap::new();
    for (p, e) in view {
        if e.kind == kind && e.inode != 0 && !scanned.contains_key(p) && local::lstat(root, p)?.is_none() {
            out.insert(e.inode, p.clone());
        }
    }
    Ok(out)
}

fn move_subtree(view: &mut BTreeMap<String, Entry>, from: &str, to: &str) {
    let prefix = format!("{from}/");
    let keys: Vec<String> = view
        .range(from.to_string()..)
        .take_while(|(k, _)| *k == from || k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        if let Some(e) = view.remove(&k) {
            view.insert(format!("{to}{}", &k[from.len()..]), e);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::local::scan;

    /// A directory and an index that agrees with it.
    fn synced(files: &[(&str, &str)]) -> (tempfile::TempDir, Index, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        for (p, body) in files {
            let f = root.path().join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, body).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        let mut index = Index::open(state.path()).unwrap();
        let s = scan(root.path(), true).unwrap();
        let updates = s
            .entries
            .iter()
            .map(|(p, m)| {
                let sha = (m.kind == Kind::File).then(|| local::hash_file(&local_path(root.path(), p)).unwrap());
                (p.clone(), Some(m.entry(sha)))
            })
            .collect();
        index.stage(updates);
        index.commit(Some(1)).unwrap();
        (root, index, state)
    }

    fn changes(root: &Path, index: &Index) -> Vec<String> {
        let s = scan(root, true).unwrap();
        plan(root, index, &s)
            .unwrap()
            .changes
            .iter()
            .map(|c| match c {
                Change::MkDir { path, .. } => format!("mkdir {path}"),
                Change::Rename { from, to } => format!("rename {from} {to}"),
                Change::Write { path, create, .. } => format!("{} {path}", if *create { "create" } else { "write" }),
                Change::Chmod { path, meta } => format!("chmod {path} {:o}", meta.mode),
                Change::Remove { path } => format!("remove {path}"),
            })
            .collect()
    }

    #[test]
    fn an_unchanged_tree_and_a_touched_file_send_nothing() {
        let (root, index, _s) = synced(&[("a.txt", "a"), ("d/b.txt", "b")]);
        assert!(changes(root.path(), &index).is_empty());
        // Rewritten with the same bytes: rehashed, refreshed in the index, not sent.
        fs::write(root.path().join("a.txt"), "a").unwrap();
        let s = scan(root.path(), true).unwrap();
        let p = plan(root.path(), &index, &s).unwrap();
        assert!(p.changes.is_empty());
        assert_eq!(p.refresh.len(), usize::from(index.get("/a.txt").unwrap().mtime_ns != s.entries["/a.txt"].mtime_ns));
    }

    #[test]
    fn renames_of_files_and_directories_travel_as_renames() {
        let (root, index, _s) = synced(&[("a.txt", "a"), ("d/x/b.txt", "b"), ("d/c.txt", "c")]);
        let r = root.path();
        fs::rename(r.join("a.txt"), r.join("A2.txt")).unwrap();
        fs::rename(r.join("d"), r.join("e")).unwrap();
        assert_eq!(changes(r, &index), vec!["rename /d /e", "rename /a.txt /A2.txt"]);
    }

    #[test]
    fn edits_modes_creates_and_only_topmost_removals() {
        let (root, index, _s) = synced(&[("a.txt", "a"), ("gone/x/1", "1"), ("gone/2", "2"), ("keep.log", "l")]);
        let r = root.path();
        fs::write(r.join("a.txt"), "changed").unwrap();
        fs::set_permissions(r.join("keep.log"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_dir_all(r.join("gone")).unwrap();
        fs::create_dir(r.join("new")).unwrap();
        fs::write(r.join("new/n"), "n").unwrap();
        assert_eq!(
            changes(r, &index),
            vec!["mkdir /new", "write /a.txt", "chmod /keep.log 600", "create /new/n", "remove /gone"]
        );
    }

    #[test]
    fn a_path_hidden_from_the_scan_is_not_a_deletion() {
        let (root, index, _s) = synced(&[("a.log", "a"), ("b.txt", "b")]);
        let r = root.path();
        // Now ignored, and a file replaced by a symlink: both still exist, neither is removed.
        fs::write(r.join(".gitignore"), "*.log\n").unwrap();
        fs::remove_file(r.join("b.txt")).unwrap();
        std::os::unix::fs::symlink("a.log", r.join("b.txt")).unwrap();
        assert_eq!(changes(r, &index), vec!["create /.gitignore"]);
    }
}
