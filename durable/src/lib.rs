//! Files that survive a crash whole: the one way Tideline replaces a file it must not lose
//! (snapshots, the admin token, the sync worker's records, `tideline volume` downloads).
//!
//! ```text
//! AtomicFile::create(target)  ─▶  .<name>.<pid>.<n>.tmp beside it (O_EXCL, the final mode)
//!   write …                        (dropped before commit: the temp file is removed)
//! commit()  ─▶ fsync(temp) ─▶ rename(temp, target) ─▶ fsync(directory)
//! ```
//!
//! After `commit` returns, a crash leaves `target` with the new bytes; before it, with the old
//! ones (or none). A process killed mid-write leaves a temp file that [`is_temp_name`]
//! recognises, for whoever owns the directory to sweep at start.
//!
//! Why not the `atomic-write-file` crate: it pulls in `nix`, which turns on a `libc` feature,
//! which changes the build hash of everything that depends on `libc` — `librocksdb-sys`
//! included, whose C++ then compiles again (half an hour on two cores). These forty lines of
//! `std` cost nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A new version of `target`, invisible until [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts a new version of `target` (mode `mode` on Unix; the directory must exist).
    pub fn create(target: &Path, mode: u32) -> io::Result<AtomicFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self::create_numbered(target, mode, &NEXT)
    }

    fn create_numbered(target: &Path, mode: u32, next: &AtomicU64) -> io::Result<AtomicFile> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file path is needed"))?
            .to_string_lossy();
        let dir = dir_of(target);
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            match open_new(&temp, mode) {
                Ok(file) => return Ok(AtomicFile { file, temp, target: target.to_path_buf() }),
                // Left by an earlier process with our pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The file being written (to read it back, seek, or hand to code that wants a `File`).
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the new version durable and puts it in place of `target`.
    pub fn commit(self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp, &self.target)?;
        let target = self.target.clone();
        std::mem::forget(self); // the temp file is the target now: nothing to remove
        sync_dir(dir_of(&target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.temp);
    }
}

/// Replaces `target` with `bytes`, whole and durably.
pub fn write(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(target, mode)?;
    f.write_all(bytes)?;
    f.commit()
}

/// The directory `target` is in: `.` for a bare file name (whose `parent()` is empty).
fn dir_of(target: &Path) -> &Path {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes a directory's entries (a rename, a new file) durable. Where directories cannot be
/// opened for syncing (Windows), the rename itself is what the platform offers.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// True for the name of a temp file an [`AtomicFile`] left behind (its process died).
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|r| r.strip_suffix(".tmp")) else { return false };
    let mut parts = rest.rsplitn(3, '.');
    let (n, pid) = (parts.next(), parts.next());
    let numeric = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    numeric(n) && numeric(pid) && parts.next().is_some_and(|s| !s.is_empty())
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().read(true).write(true).create_new(true).mode(mode).open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_commit_replaces_the_target_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("record.json");
        fs::write(&target, "old").unwrap();
        write(&target, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(names(dir.path()), ["record.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn an_abandoned_version_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("current.snap");
        fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target, 0o644).unwrap();
        f.write_all(b"half of the new").unwrap();
        let temp = names(dir.path()).into_iter().find(|n| n != "current.snap").unwrap();
        assert!(is_temp_name(&temp), "{temp}");
        drop(f);
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(names(dir.path()), ["current.snap"]);
    }

    #[test]
    fn a_temp_name_left_by_a_dead_process_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        let stale = format!(".t.{}.0.tmp", std::process::id());
        fs::write(dir.path().join(&stale), "stale").unwrap();
        let mut f = AtomicFile::create_numbered(&target, 0o644, &AtomicU64::new(0)).unwrap();
        f.write_all(b"x").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "x");
        assert_eq!(fs::read_to_string(dir.path().join(&stale)).unwrap(), "stale", "not someone else's to take");
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(dir_of(Path::new("copy.pdf")), Path::new("."));
        assert_eq!(dir_of(Path::new("./copy.pdf")), Path::new("."));
        assert_eq!(dir_of(Path::new("/tmp/copy.pdf")), Path::new("/tmp"));
    }

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_temp_name(".current.snap.123.0.tmp"));
        assert!(is_temp_name(".a.b.c.9.41.tmp"));
        for other in ["current.snap", ".current.snap.tmp", ".x.1.tmp", "..1.2.tmp", ".x.a.2.tmp", "x.1.2.tmp"] {
            assert!(!is_temp_name(other), "{other}");
        }
    }
}
