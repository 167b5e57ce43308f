//! Volume → local: one page of journal entries applied to the directory.
//!
//! Content is fetched by address and its sha256 verified, written to a temp file beside the
//! target and renamed into place, with the entry's mode. An entry is applied only over a path
//! that is clean (what the index recorded, or already the incoming content); a path holding an
//! unsent local edit is moved aside under a conflict name first, so nothing is lost. The
//! worker's own entries are skipped (the index already has them), and every change made here is
//! recorded in the index, so the next scan never sends it back. What a page changed locally is
//! made durable before the index records it ([`Unsynced`]).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::index::{rekey, Entry, Index, Kind};
use super::local::{self, local_path, parent, Capabilities, Meta, TMP_PREFIX};
use super::remote::{JournalEntry, Remote};
use super::status::LocalConflict;
use super::unsynced::Unsynced;
use crate::error::{SyncError, SyncResult};
use tideline_types::{EntryKind, EventType};

const DEFAULT_FILE_MODE: u32 = 0o644;
const DEFAULT_DIR_MODE: u32 = 0o755;

/// What a path holds locally, against the index and an incoming content.
#[derive(Debug, PartialEq, Eq)]
pub enum Local {
    Absent,
    /// As the index recorded it (possibly touched without a content change).
    Clean,
    /// Already the incoming content (e.g. written before a crash, not yet indexed).
    Same,
    /// The content of a later entry of the same page: a worker killed mid-page got this far
    /// before; the earlier entry is skipped, the later one finds its content in place.
    Ahead,
    /// An edit not yet sent: must not be overwritten.
    Dirty,
}

pub struct Applier<'a> {
    pub root: &'a Path,
    pub remote: &'a Remote,
    pub index: &'a mut Index,
    pub caps: Capabilities,
    /// Content this worker sent that the volume refused as a conflict (kept there as an
    /// artifact), by path: local copies of it may be overwritten.
    pub rejected: &'a HashMap<String, String>,
    /// Paths that could not be written here, each naming the path and why.
    pub problems: &'a mut Vec<String>,
    /// Entries this file system cannot hold (also named in `problems`).
    pub local_conflicts: &'a mut Vec<LocalConflict>,
    /// The contents the page being applied writes, by path.
    pub page: HashMap<String, Vec<String>>,
    /// Local changes not yet durable; synced before every index commit that records them.
    pub unsynced: Unsynced,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> SyncError {
    SyncError::io_with(what)
}

impl Applier<'_> {
    /// How `path` stands locally relative to the index and `incoming` (sha256 hex).
    pub fn classify(&self, path: &str, incoming: Option<&str>) -> io::Result<Local> {
        let Some(md) = local::lstat(self.root, path)? else { return Ok(Local::Absent) };
        let Some(m) = Meta::of(&md) else { return Ok(Local::Dirty) };
        let recorded = self.index.get(path);
        if m.kind == Kind::Dir {
            return Ok(match recorded {
                Some(e) if e.kind == Kind::Dir => Local::Clean,
                _ if incoming.is_none() => Local::Same,
                _ => Local::Dirty,
            });
        }
        if let Some(e) = recorded.filter(|e| m.same_as(e)) {
            return Ok(if e.sha256.as_deref() == incoming && incoming.is_some() { Local::Same } else { Local::Clean });
        }
        let sha = local::hash_file(&local_path(self.root, path))?;
        Ok(if Some(sha.as_str()) == incoming {
            Local::Same
        } else if self.page.get(path).is_some_and(|shas| shas.contains(&sha)) {
            Local::Ahead
        } else if recorded.and_then(|e| e.sha256.as_deref()) == Some(sha.as_str())
            || self.rejected.get(path) == Some(&sha)
        {
            Local::Clean
        } else {
            Local::Dirty
        })
    }

    /// Paths this page would change that hold unsent local edits.
    pub fn dirty_targets(&self, page: &[JournalEntry]) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in page.iter().filter(|e| !self.own(e)) {
            let incoming = e.content_sha256.as_deref();
            for p in [Some(e.path.as_str()), e.old_path.as_deref()].into_iter().flatten() {
                if !p.is_empty() && p != "/" && self.classify(p, incoming)? == Local::Dirty {
                    out.push(p.to_string());
                }
            }
        }
        Ok(out)
    }

    fn own(&self, e: &JournalEntry) -> bool {
        e.replica_id.as_deref() == Some(self.remote.replica_id.as_str())
    }

    /// Applies `page` in order and commits the index with the cursor after its last entry.
    pub async fn apply_page(&mut self, page: &[JournalEntry]) -> SyncResult<u64> {
        let mut cursor = self.index.cursor();
        let mut shas: HashMap<String, Vec<String>> = HashMap::new();
        for e in page.iter().filter(|e| !self.own(e)) {
            if let Some(sha) = &e.content_sha256 {
                shas.entry(e.path.clone()).or_default().push(sha.clone());
            }
        }
        self.page = shas;
        for e in page {
            if !self.own(e) && !e.path.is_empty() && e.path != "/" {
                self.apply(e).await?;
            }
            cursor = e.seq;
        }
        self.barrier()?;
        self.index.commit(Some(cursor)).map_err(io_err("record the index".into()))?;
        Ok(cursor)
    }

    /// Makes this page's local changes durable (the index may record them next).
    pub fn barrier(&mut self) -> SyncResult<()> {
        self.unsynced.barrier(self.root).map_err(io_err(format!("sync the changes in {}", self.root.display())))
    }

    async fn apply(&mut self, e: &JournalEntry) -> SyncResult<()> {
        let is_dir = e.entry_kind == Some(EntryKind::Directory);
        match e.event_type {
            EventType::Create if is_dir => self.make_dir(e).map_err(io_err(format!("create directory {}", e.path))),
            EventType::Create | EventType::Write => self.write(e).await,
            EventType::Chmod => self.chmod(&e.path, e.mode).map_err(io_err(format!("chmod {}", e.path))),
            EventType::Rename => match e.old_path.as_deref() {
                Some(from) => self.rename(from, &e.path, e.seq).map_err(io_err(format!("rename to {}", e.path))),
                None => Ok(()),
            },
            EventType::Remove => self.remove(&e.path).map_err(io_err(format!("remove {}", e.path))),
            // The entries around it already say what changed.
            EventType::Invalidate => Ok(()),
        }
    }

    /// True (and noted) when `path` cannot exist beside its siblings on this file system.
    fn unrepresentable(&mut self, path: &str, seq: u64) -> bool {
        let dir = parent(path);
        let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
        let siblings = self
            .index
            .entries()
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/'))
            .map(|(k, _)| k.clone());
        match local::collides(&self.caps, path, siblings) {
            Some(other) => {
                self.local_conflicts.retain(|c| c.path != path);
                self.local_conflicts.push(LocalConflict {
                    path: path.to_string(),
                    reason: "casefold_collision".into(),
                    existing_path: other.clone(),
                    seq,
                });
                self.problems.push(format!(
                    "cannot create {path} here: it collides with {other} on this file system (not written)"
                ));
                true
            }
            None => false,
        }
    }

    fn make_dir(&mut self, e: &JournalEntry) -> io::Result<()> {
        if self.unrepresentable(&e.path, e.seq) {
            return Ok(());
        }
        self.make_room(&e.path, Kind::Dir, e.seq)?;
        self.parents(&e.path)?;
        let target = local_path(self.root, &e.path);
        if !target.is_dir() {
            fs::create_dir(&target)?;
            self.unsynced.entry_of(&target);
        }
        fs::set_permissions(&target, fs::Permissions::from_mode(e.mode.unwrap_or(DEFAULT_DIR_MODE) & 0o7777))?;
        self.record(&e.path, None)
    }

    async fn write(&mut self, e: &JournalEntry) -> SyncResult<()> {
        let (Some(content_ref), Some(sha)) = (e.content_ref.as_deref(), e.content_sha256.as_deref()) else {
            return Ok(()); // a write without content describes nothing to materialize
        };
        if self.unrepresentable(&e.path, e.seq) {
            return Ok(());
        }
        let target = local_path(self.root, &e.path);
        let state = self.classify(&e.path, Some(sha)).map_err(io_err(format!("inspect {}", e.path)))?;
        if state == Local::Ahead {
            return Ok(());
        }
        if state == Local::Same {
            if let Some(mode) = e.mode {
                fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io_err(format!("chmod {}", e.path)))?;
            }
            return self.record(&e.path, Some(sha.to_string())).map_err(io_err(format!("stat {}", e.path)));
        }
        let bytes = self.remote.payload(content_ref).await?;
        let got = local::sha256_hex(&bytes);
        if got != sha {
            return Err(SyncError::Other(format!(
                "content of {} (seq {}) has sha256 {got}, the journal says {sha}: not written",
                e.path, e.seq
            )));
        }
        let keep_mode = fs::symlink_metadata(&target).ok().filter(|m| m.is_file()).map(|m| m.permissions().mode());
        let mode = e.mode.or(keep_mode).unwrap_or(DEFAULT_FILE_MODE) & 0o7777;
        (|| {
            if state == Local::Dirty {
                self.set_aside(&e.path, e.seq)?;
            }
            self.make_room(&e.path, Kind::File, e.seq)?;
            self.parents(&e.path)?;
            write_via_temp(&target, &bytes, mode)?;
            self.unsynced.file(&target);
            self.record(&e.path, Some(sha.to_string()))
        })()
        .map_err(io_err(format!("write {}", e.path)))
    }

    fn chmod(&mut self, path: &str, mode: Option<u32>) -> io::Result<()> {
        let Some(mode) = mode else { return Ok(()) };
        let target = local_path(self.root, path);
        if local::lstat(self.root, path)?.is_none() {
            return Ok(());
        }
        fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))?;
        let sha = self.index.get(path).and_then(|e| e.sha256.clone());
        // Only the mode changed: keep the recorded content identity unless the file is clean.
        match self.index.get(path).cloned() {
            Some(mut e) => {
                e.mode = mode & 0o7777;
                self.index.stage(vec![(path.to_string(), Some(e))]);
                Ok(())
            }
            None => self.record(path, sha),
        }
    }

    fn rename(&mut self, from: &str, to: &str, seq: u64) -> io::Result<()> {
        if self.unrepresentable(to, seq) {
            return Ok(());
        }
        let (src, dst) = (local_path(self.root, from), local_path(self.root, to));
        if local::lstat(self.root, from)?.is_some() {
            let kind = if src.is_dir() { Kind::Dir } else { Kind::File };
            self.make_room(to, kind, seq)?;
            self.parents(to)?;
            fs::rename(&src, &dst)?;
            self.unsynced.entry_of(&src);
            self.unsynced.entry_of(&dst);
        }
        let moves = rekey(self.index, from, to);
        self.index.stage(moves);
        Ok(())
    }

    fn remove(&mut self, path: &str) -> io::Result<()> {
        let subtree = self.index.subtree(path);
        // Deepest first: files that are clean go, edited ones stay (and are sent later as new).
        for (p, e) in subtree.iter().rev() {
            let local = local_path(self.root, p);
            match e.kind {
                Kind::File => {
                    if self.classify(p, None)? == Local::Clean {
                        remove_if_present(&local)?;
                    }
                }
                Kind::Dir => {
                    let _ = fs::remove_dir(&local); // fails while something unsent is inside
                }
            }
            self.unsynced.entry_of(&local);
        }
        if subtree.is_empty() && self.classify(path, None)? == Local::Clean {
            let local = local_path(self.root, path);
            remove_if_present(&local)?;
            self.unsynced.entry_of(&local);
        }
        self.index.stage(subtree.into_iter().map(|(p, _)| (p, None)).collect());
        Ok(())
    }

    /// Clears `path` for an entry of `kind`: a clean entry of the other kind is removed, an
    /// edited one is set aside.
    fn make_room(&mut self, path: &str, kind: Kind, seq: u64) -> io::Result<()> {
        let Some(md) = local::lstat(self.root, path)? else { return Ok(()) };
        let here = Meta::of(&md).map(|m| m.kind);
        if here == Some(kind) && kind == Kind::Dir {
            return Ok(());
        }
        if here == Some(Kind::File) && kind == Kind::File {
            return Ok(()); // overwritten by rename; dirty content was set aside by the caller
        }
        let clean = match here {
            Some(Kind::Dir) => self.subtree_clean(path)?,
            Some(Kind::File) => self.classify(path, None)? == Local::Clean,
            None => false,
        };
        if clean {
            let target = local_path(self.root, path);
            if here == Some(Kind::Dir) {
                fs::remove_dir_all(&target)?;
            } else {
                fs::remove_file(&target)?;
            }
            self.unsynced.entry_of(&target);
            let gone = self.index.subtree(path).into_iter().map(|(p, _)| (p, None)).collect();
            self.index.stage(gone);
            Ok(())
        } else {
            self.set_aside(path, seq)
        }
    }

    fn subtree_clean(&self, path: &str) -> io::Result<bool> {
        let scan = local::scan(&local_path(self.root, path), false)?;
        for (rel, m) in &scan.entries {
            let p = format!("{path}{rel}");
            if m.kind == Kind::File && self.classify(&p, None)? != Local::Clean {
                return Ok(false);
            }
        }
        Ok(scan.problems.is_empty())
    }

    /// Moves an edited local entry to `<stem>.conflict-local-seq-<seq><ext>` beside it.
    fn set_aside(&mut self, path: &str, seq: u64) -> io::Result<()> {
        let src = local_path(self.root, path);
        let aside = free_name(&conflict_name(&src, seq));
        fs::rename(&src, &aside)?;
        self.unsynced.entry_of(&src);
        self.problems.push(format!(
            "{path} had local edits when seq {seq} changed it on the volume: kept as {}",
            aside.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let gone = self.index.subtree(path).into_iter().map(|(p, _)| (p, None)).collect();
        self.index.stage(gone);
        Ok(())
    }

    /// Creates the missing ancestors of `path`, recording each.
    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut ancestors = Vec::new();
        let mut p = parent(path);
        while p != "/" {
            ancestors.push(p.to_string());
            p = parent(p);
        }
        for a in ancestors.into_iter().rev() {
            let target = local_path(self.root, &a);
            match local::lstat(self.root, &a)? {
                Some(md) if md.is_dir() => {}
                Some(_) => {
                    self.set_aside(&a, 0)?;
                    fs::create_dir(&target)?;
                    self.unsynced.entry_of(&target);
                    self.record(&a, None)?;
                }
                None => {
                    fs::create_dir(&target)?;
                    self.unsynced.entry_of(&target);
                    self.record(&a, None)?;
                }
            }
        }
        Ok(())
    }

    /// Records what is on disk at `path` now, with `sha256` as its content.
    fn record(&mut self, path: &str, sha256: Option<String>) -> io::Result<()> {
        let md = fs::symlink_metadata(local_path(self.root, path))?;
        if let Some(m) = Meta::of(&md) {
            let entry: Entry = m.entry(sha256);
            self.index.stage(vec![(path.to_string(), Some(entry))]);
        }
        Ok(())
    }
}

/// Writes `bytes` to a temp file beside `target` with `mode`, then renames it into place.
pub fn write_via_temp(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
    let result = (|| {
        fs::write(&tmp, bytes)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `dir/stem.conflict-local-seq-N.ext` for `dir/stem.ext`.
pub fn conflict_name(path: &Path, seq: u64) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    path.with_file_name(format!("{stem}.conflict-local-seq-{seq}{ext}"))
}

/// `path`, or `path` with `-2`, `-3`, … before the extension, whichever is free.
fn free_name(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_path_buf();
    }
    (2u32..)
        .map(|n| {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
            path.with_file_name(format!("{stem}-{n}{ext}"))
        })
        .find(|p| !p.exists())
        .expect("some free name")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event: &str, path: &str, kind: &str) -> JournalEntry {
        serde_json::from_value(serde_json::json!({
            "seq": 9, "event_type": event, "path": path, "entry_kind": kind, "replica_id": "other",
            "volume_id": "vol", "team_id": "t", "source": "replica", "normalized_path": path.to_lowercase(),
            "tombstone": false, "created_at": "2026-12-03T00:00:00.000Z"
        }))
        .unwrap()
    }

    /// Applies `page` into `root` with no server reachable (any fetch fails the page);
    /// returns the cursor, the problems noted and the local conflicts.
    async fn apply_offline(
        root: &Path,
        index: &mut Index,
        case_sensitive: bool,
        page: &[JournalEntry],
    ) -> (u64, Vec<String>, Vec<LocalConflict>, u64) {
        let remote = Remote::new("http://127.0.0.1:9", "t", "vol", "me").unwrap();
        let (rejected, mut problems, mut local_conflicts) = (HashMap::new(), Vec::new(), Vec::new());
        let caps = Capabilities {
            case_sensitive,
            unicode_normalization_insensitive: !case_sensitive,
            windows_compatible_paths: false,
        };
        let mut ap = Applier {
            root,
            remote: &remote,
            index,
            caps,
            rejected: &rejected,
            problems: &mut problems,
            local_conflicts: &mut local_conflicts,
            page: HashMap::new(),
            unsynced: Unsynced::default(),
        };
        let cursor = ap.apply_page(page).await.unwrap();
        assert!(ap.unsynced.is_empty(), "every local change is durable before the index records it");
        let barriers = ap.unsynced.barriers();
        (cursor, problems, local_conflicts, barriers)
    }

    #[tokio::test]
    async fn a_name_this_file_system_folds_into_another_is_reported_not_written() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("README.md")).unwrap();
        let mut index = Index::open(state.path()).unwrap();
        let md = fs::symlink_metadata(root.path().join("README.md")).unwrap();
        index.stage(vec![("/README.md".into(), Some(Meta::of(&md).unwrap().entry(None)))]);
        index.commit(Some(8)).unwrap();
        let page = [entry("create", "/readme.md", "directory"), entry("create", "/other", "directory")];
        let (cursor, problems, local, barriers) = apply_offline(root.path(), &mut index, false, &page).await;
        assert_eq!(barriers, 1, "the created directory is synced before the index records it");
        let expected = LocalConflict {
            path: "/readme.md".into(),
            reason: "casefold_collision".into(),
            existing_path: "/README.md".into(),
            seq: 9,
        };
        assert_eq!(local, vec![expected], "listed by `sync conflicts list`");
        assert_eq!(cursor, 9);
        assert!(!root.path().join("readme.md").exists(), "not created beside README.md");
        assert!(root.path().join("other").is_dir(), "the rest of the page applies");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("/readme.md") && problems[0].contains("/README.md"), "{problems:?}");
        assert!(index.get("/readme.md").is_none());
    }

    #[tokio::test]
    async fn a_page_replayed_after_a_crash_finds_its_files_in_place() {
        // The worker wrote v2 (the page's last write of /p) and was killed before recording
        // the page: replaying it fetches nothing, sets nothing aside and records v2.
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        fs::write(root.path().join("p"), "v2").unwrap();
        let mut index = Index::open(state.path()).unwrap();
        let write = |seq: u64, body: &str| -> JournalEntry {
            let sha = local::sha256_hex(body.as_bytes());
            serde_json::from_value(serde_json::json!({
                "seq": seq, "event_type": "write", "path": "/p", "entry_kind": "file", "replica_id": "other",
                "content_ref": format!("sha256:{sha}"), "content_sha256": sha,
                "volume_id": "vol", "team_id": "t", "source": "replica", "normalized_path": "/p",
                "tombstone": false, "created_at": "2026-12-03T00:00:00.000Z"
            }))
            .unwrap()
        };
        let (cursor, problems, local, barriers) =
            apply_offline(root.path(), &mut index, true, &[write(1, "v1"), write(2, "v2")]).await;
        assert_eq!(barriers, 0, "nothing was written here: nothing to sync");
        assert!(local.is_empty());
        assert_eq!(cursor, 2);
        assert_eq!(fs::read_to_string(root.path().join("p")).unwrap(), "v2");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1, "nothing set aside");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(index.get("/p").unwrap().sha256.as_deref(), Some(local::sha256_hex(b"v2").as_str()));
    }

    #[test]
    fn conflict_names_keep_the_extension() {
        assert_eq!(conflict_name(Path::new("/w/notes/plan.md"), 7), Path::new("/w/notes/plan.conflict-local-seq-7.md"));
        assert_eq!(conflict_name(Path::new("/w/Makefile"), 3), Path::new("/w/Makefile.conflict-local-seq-3"));
        assert_eq!(conflict_name(Path::new("/w/.env"), 3), Path::new("/w/.env.conflict-local-seq-3"));
    }
}
