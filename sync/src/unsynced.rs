//! What the worker changed in the synced directory since the index last recorded it, made
//! durable *before* the index that describes it.
//!
//! The index records every file the worker wrote (size, mtime, inode, sha256) and the cursor
//! past the entry that wrote it. Were the index to reach the disk before the file's data, a
//! power cut would leave a truncated or stale file that the next scan takes for a local edit
//! and pushes over the volume's content; a removal that did not reach the disk would come back
//! as a local create. So a commit of the index that covers local changes is preceded by a
//! barrier:
//!
//! ```text
//! apply entries ──▶ note each file written, each directory whose entries changed
//!              ──▶ barrier: syncfs(root) on Linux (one call, however many files);
//!                           elsewhere fsync of each noted file, then each noted directory
//!              ──▶ index commit (fsynced log line with the cursor)
//! ```

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct Unsynced {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    /// Barriers run so far (each made at least one change durable): what tests look at.
    #[cfg(test)]
    barriers: u64,
}

impl Unsynced {
    /// A file created or replaced at `path` (its directory's entry changed too).
    pub fn file(&mut self, path: &Path) {
        self.files.insert(path.to_path_buf());
        self.entry_of(path);
    }

    /// An entry at `path` created, removed or renamed (its directory changed).
    pub fn entry_of(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.dirs.insert(dir.to_path_buf());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    #[cfg(test)]
    pub fn barriers(&self) -> u64 {
        self.barriers
    }

    /// Makes every noted change durable; nothing to do when nothing was noted. A noted path
    /// that is gone by now (moved or removed later in the same page) needs nothing.
    pub fn barrier(&mut self, root: &Path) -> io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sync_changes(root, &self.files, &self.dirs)?;
        self.files.clear();
        self.dirs.clear();
        #[cfg(test)]
        {
            self.barriers += 1;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn sync_changes(root: &Path, _files: &BTreeSet<PathBuf>, _dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let dir = File::open(root)?;
    // SAFETY: `dir` is an open descriptor for the whole call; syncfs only reads it.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync_changes(_root: &Path, files: &BTreeSet<PathBuf>, dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
    for path in files.iter().chain(dirs) {
        match File::open(path) {
            Ok(f) => f.sync_all()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_barrier_runs_only_when_something_changed_and_forgets_what_it_synced() {
        let root = tempfile::tempdir().unwrap();
        let mut u = Unsynced::default();
        u.barrier(root.path()).unwrap();
        assert_eq!(u.barriers(), 0, "nothing noted, nothing synced");
        let f = root.path().join("a");
        std::fs::write(&f, "x").unwrap();
        u.file(&f);
        u.entry_of(&root.path().join("gone-already"));
        assert!(!u.is_empty());
        u.barrier(root.path()).unwrap();
        assert_eq!(u.barriers(), 1);
        assert!(u.is_empty());
        u.barrier(root.path()).unwrap();
        assert_eq!(u.barriers(), 1);
    }
}
