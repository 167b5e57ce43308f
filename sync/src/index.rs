//! The crash-safe local index: for every synced path, what the worker last agreed with the
//! volume (kind, mode, size, mtime, inode, sha256), plus the journal cursor.
//!
//! Stored as a snapshot (`index.snap`) and an append-only log (`index.log`) of batches, each one
//! JSON line written and fsynced as a unit: a batch's entries and its cursor land together or
//! not at all (a torn last line is ignored). The log is folded into a new snapshot once it has
//! grown; replaying a log over the snapshot it was folded into yields that same snapshot, so a
//! crash between the two steps is harmless.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Log batches after which the log is folded into the snapshot.
const LOG_BATCHES_MAX: usize = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
}

/// One path as last agreed: the local file's identity and the content both sides have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    /// 0 when no local file backs the entry yet (known only from the volume).
    pub inode: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// An index change: set a path's entry, or drop it.
pub type Update = (String, Option<Entry>);

#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    cursor: u64,
    entries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Batch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    updates: Vec<Update>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<u64>,
}

pub struct Index {
    dir: PathBuf,
    entries: BTreeMap<String, Entry>,
    cursor: u64,
    log: File,
    batches: usize,
    /// Updates applied in memory but not yet made durable by [`Index::commit`].
    staged: Vec<Update>,
}

impl Index {
    /// Loads the index kept in `dir` (empty if there is none yet).
    pub fn open(dir: &Path) -> io::Result<Index> {
        fs::create_dir_all(dir)?;
        let snap: Snapshot = match fs::read(dir.join("index.snap")) {
            Ok(raw) => serde_json::from_slice(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(e),
        };
        let mut idx = Index {
            dir: dir.to_path_buf(),
            entries: snap.entries,
            cursor: snap.cursor,
            log: OpenOptions::new().create(true).append(true).read(true).open(dir.join("index.log"))?,
            batches: 0,
            staged: Vec::new(),
        };
        let reader = BufReader::new(File::open(dir.join("index.log"))?);
        for line in reader.lines() {
            let line = line?;
            // A torn final line (crash mid-write) never reached fsync: the batch did not happen.
            let Ok(batch) = serde_json::from_str::<Batch>(&line) else { break };
            idx.fold(batch.updates, batch.cursor);
            idx.batches += 1;
        }
        Ok(idx)
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was synced yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `path` and everything below it, parents first.
    pub fn subtree(&self, path: &str) -> Vec<(String, Entry)> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut out: Vec<(String, Entry)> =
            self.entries.get(path).map(|e| (path.to_string(), e.clone())).into_iter().collect();
        out.extend(
            self.entries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    /// Applies `updates` in memory at once; they become durable with the next [`Index::commit`]
    /// (a crash before it forgets them, together with the cursor that would have covered them).
    pub fn stage(&mut self, updates: Vec<Update>) {
        self.fold(updates.clone(), None);
        self.staged.extend(updates);
    }

    /// Makes the staged updates and the cursor (if given) durable as one batch.
    pub fn commit(&mut self, cursor: Option<u64>) -> io::Result<()> {
        if self.staged.is_empty() && cursor.is_none_or(|c| c == self.cursor) {
            return Ok(());
        }
        let batch = Batch { updates: std::mem::take(&mut self.staged), cursor };
        let mut line = serde_json::to_vec(&batch).map_err(io::Error::other)?;
        line.push(b'\n');
        self.log.write_all(&line)?;
        self.log.sync_data()?;
        if let Some(c) = cursor {
            self.cursor = c;
        }
        self.batches += 1;
        if self.batches >= LOG_BATCHES_MAX {
            self.fold_log()?;
        }
        Ok(())
    }

    /// Replaces the whole index (a fresh attach or a re-bootstrap).
    pub fn reset(&mut self, entries: BTreeMap<String, Entry>, cursor: u64) -> io::Result<()> {
        self.staged.clear();
        self.entries = entries;
        self.cursor = cursor;
        self.fold_log()
    }

    fn fold(&mut self, updates: Vec<Update>, cursor: Option<u64>) {
        for (path, entry) in updates {
            match entry {
                Some(e) => self.entries.insert(path, e),
                None => self.entries.remove(&path),
            };
        }
        if let Some(c) = cursor {
            self.cursor = c;
        }
    }

    /// Writes the in-memory state as the snapshot and empties the log.
    fn fold_log(&mut self) -> io::Result<()> {
        let snap = Snapshot { cursor: self.cursor, entries: std::mem::take(&mut self.entries) };
        let raw = serde_json::to_vec(&snap).map_err(io::Error::other);
        self.entries = snap.entries;
        tideline_durable::write(&self.dir.join("index.snap"), &raw?, 0o600)?;
        self.log.set_len(0)?;
        self.log.sync_all()?;
        self.batches = 0;
        Ok(())
    }
}

/// The updates that move `from` (and everything below it) to `to`.
pub fn rekey(index: &Index, from: &str, to: &str) -> Vec<Update> {
    let mut out = Vec::new();
    for (p, e) in index.subtree(from) {
        let moved = format!("{to}{}", &p[from.len()..]);
        out.push((p, None));
        out.push((moved, Some(e)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(sha: &str) -> Entry {
        Entry { kind: Kind::File, mode: 0o644, size: 1, mtime_ns: 1, inode: 7, sha256: Some(sha.into()) }
    }

    #[test]
    fn batches_survive_reopen_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = Index::open(dir.path()).unwrap();
        idx.stage(vec![("/a".into(), Some(file("1"))), ("/d/b".into(), Some(file("2")))]);
        idx.commit(Some(4)).unwrap();
        idx.stage(vec![("/a".into(), None)]);
        idx.commit(Some(5)).unwrap();
        idx.stage(vec![("/never".into(), Some(file("3")))]);
        drop(idx);
        let mut log = OpenOptions::new().append(true).open(dir.path().join("index.log")).unwrap();
        log.write_all(b"{\"updates\":[[\"/x\",{\"kind\":\"fi").unwrap();
        let idx = Index::open(dir.path()).unwrap();
        assert_eq!(idx.cursor(), 5);
        assert_eq!(idx.entries().keys().collect::<Vec<_>>(), vec!["/d/b"]);
    }

    #[test]
    fn folding_keeps_the_state_and_rekey_moves_subtrees() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = Index::open(dir.path()).unwrap();
        let dir_entry = Entry { kind: Kind::Dir, sha256: None, ..file("") };
        idx.stage(vec![
            ("/d".into(), Some(dir_entry)),
            ("/d/x".into(), Some(file("1"))),
            ("/dd".into(), Some(file("2"))),
        ]);
        idx.commit(Some(2)).unwrap();
        let moves = rekey(&idx, "/d", "/e");
        idx.stage(moves);
        idx.commit(Some(3)).unwrap();
        idx.fold_log().unwrap();
        let idx = Index::open(dir.path()).unwrap();
        assert_eq!(idx.entries().keys().collect::<Vec<_>>(), vec!["/dd", "/e", "/e/x"]);
        assert_eq!(idx.cursor(), 3);
    }
}
