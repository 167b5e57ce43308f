//! The local side: volume paths ↔ local paths, one scan of the directory (`.git/` skipped,
//! `.gitignore` honored), file identity (kind, mode, size, mtime, inode), content hashes, and
//! the file system's capabilities probed from the directory itself.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use tideline_types::portability::collision_key;
pub use tideline_types::portability::Capabilities;

use super::index::{Entry, Kind};

/// Temporary files the worker writes before renaming them into place; never synced, and
/// leftovers from a crash are removed by the next scan.
pub const TMP_PREFIX: &str = ".tideline-tmp-";

/// A local entry's identity as the index compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

impl Meta {
    /// `None` for entry types the volume cannot hold (symlinks, fifos, sockets, devices).
    pub fn of(md: &Metadata) -> Option<Meta> {
        let kind = if md.is_dir() {
            Kind::Dir
        } else if md.is_file() {
            Kind::File
        } else {
            return None;
        };
        Some(Meta {
            kind,
            mode: md.mode() & 0o7777,
            size: if kind == Kind::File { md.len() } else { 0 },
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            inode: md.ino(),
        })
    }

    /// The same local file as when `e` was recorded (content unchanged unless rewritten in place
    /// within one mtime tick, which the periodic rescan's hash catches only on size change).
    pub fn same_as(&self, e: &Entry) -> bool {
        self.kind == e.kind
            && (self.kind == Kind::Dir || (self.size == e.size && self.mtime_ns == e.mtime_ns && self.inode == e.inode))
    }

    pub fn entry(&self, sha256: Option<String>) -> Entry {
        Entry { kind: self.kind, mode: self.mode, size: self.size, mtime_ns: self.mtime_ns, inode: self.inode, sha256 }
    }
}

/// Names an entry type the volume cannot hold.
pub fn unsupported_kind(md: &Metadata) -> &'static str {
    let ft = md.file_type();
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "unknown entry type"
    }
}

/// `/a/b` under `root`.
pub fn local_path(root: &Path, vpath: &str) -> PathBuf {
    root.join(vpath.trim_start_matches('/'))
}

/// The volume path of `rel` (relative to the root), or why it has none.
pub fn volume_path(rel: &Path) -> Result<String, String> {
    let mut out = String::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                let name = name.to_str().ok_or_else(|| format!("name is not valid UTF-8: {}", rel.display()))?;
                out.push('/');
                out.push_str(name);
            }
            _ => return Err(format!("unexpected path component in {}", rel.display())),
        }
    }
    Ok(if out.is_empty() { "/".into() } else { out })
}

/// The parent of a volume path (`/` for top-level names).
pub fn parent(vpath: &str) -> &str {
    match vpath.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &vpath[..i],
    }
}

/// `lstat` of a volume path; `None` when nothing is there.
pub fn lstat(root: &Path, vpath: &str) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(local_path(root, vpath)) {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The sha256 of a file, lowercase hex.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One walk of the directory.
#[derive(Default)]
pub struct Scan {
    pub entries: BTreeMap<String, Meta>,
    /// Entries that cannot be synced, each naming its path (shown by `sync status`).
    pub problems: Vec<String>,
}

/// Walks `root`: `.git/` is skipped, `.gitignore` honored when asked, temp leftovers removed.
pub fn scan(root: &Path, gitignore: bool) -> io::Result<Scan> {
    let mut out = Scan::default();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(gitignore)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git")
        .build();
    for item in walker {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                out.problems.push(format!("cannot read: {e}"));
                continue;
            }
        };
        if item.depth() == 0 {
            continue;
        }
        let rel = item.path().strip_prefix(root).map_err(io::Error::other)?;
        if item.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let _ = fs::remove_file(item.path());
            continue;
        }
        let vpath = match volume_path(rel) {
            Ok(p) => p,
            Err(e) => {
                out.problems.push(e);
                continue;
            }
        };
        let md = match fs::symlink_metadata(item.path()) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.problems.push(format!("cannot stat {vpath}: {e}"));
                continue;
            }
        };
        match Meta::of(&md) {
            Some(m) => {
                out.entries.insert(vpath, m);
            }
            None => out.problems.push(format!("unsupported entry type {}: {vpath}", unsupported_kind(&md))),
        }
    }
    Ok(out)
}

/// Probes `root` by creating and looking up test names (removed afterwards).
pub fn probe(root: &Path) -> io::Result<Capabilities> {
    let tag = format!("{TMP_PREFIX}probe-{}", std::process::id());
    let upper = root.join(format!("{tag}-Aa"));
    fs::write(&upper, b"")?;
    let case_sensitive = !root.join(format!("{tag}-aA")).exists();
    let _ = fs::remove_file(&upper);
    // "é" precomposed (NFC) vs decomposed (NFD): one name or two?
    let nfc = root.join(format!("{tag}-\u{e9}"));
    fs::write(&nfc, b"")?;
    let unicode_normalization_insensitive = root.join(format!("{tag}-e\u{301}")).exists();
    let _ = fs::remove_file(&nfc);
    Ok(Capabilities { case_sensitive, unicode_normalization_insensitive, windows_compatible_paths: cfg!(windows) })
}

/// Whether `vpath` can exist beside `siblings` on a file system with `caps`: a name that folds
/// to an existing different name (case, or Unicode normalization) cannot. The folding is the
/// server's own (`tideline_types::portability::collision_key`), so both sides agree.
pub fn collides(caps: &Capabilities, vpath: &str, siblings: impl IntoIterator<Item = String>) -> Option<String> {
    let mine = collision_key(vpath, caps)?;
    siblings.into_iter().find(|s| s != vpath && collision_key(s, caps).as_deref() == Some(mine.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_and_parents() {
        assert_eq!(volume_path(Path::new("a/b.txt")).unwrap(), "/a/b.txt");
        assert_eq!(parent("/a/b.txt"), "/a");
        assert_eq!(parent("/a"), "/");
    }

    #[test]
    fn names_that_fold_together_collide_only_where_the_file_system_folds() {
        let insensitive = Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: false,
        };
        let sensitive = Capabilities { case_sensitive: true, ..insensitive };
        let linux = Capabilities { unicode_normalization_insensitive: false, ..sensitive };
        let sibs = || vec!["/d/README.md".to_string(), "/d/cafe\u{301}".to_string()];
        assert_eq!(collides(&insensitive, "/d/readme.md", sibs()), Some("/d/README.md".into()));
        assert_eq!(collides(&sensitive, "/d/readme.md", sibs()), None);
        assert_eq!(collides(&sensitive, "/d/caf\u{e9}", sibs()), Some("/d/cafe\u{301}".into()));
        assert_eq!(collides(&linux, "/d/caf\u{e9}", sibs()), None);
        assert_eq!(collides(&insensitive, "/d/README.md", sibs()), None);
    }

    #[test]
    fn probing_a_linux_directory_finds_it_case_sensitive() {
        let dir = tempfile::tempdir().unwrap();
        let caps = probe(dir.path()).unwrap();
        assert!(caps.case_sensitive);
        assert!(!caps.unicode_normalization_insensitive);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "probe files are removed");
    }

    #[test]
    fn scan_skips_git_honors_gitignore_and_names_unsupported_entries() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join(".git/objects")).unwrap();
        fs::write(r.join(".git/HEAD"), "x").unwrap();
        fs::write(r.join(".gitignore"), "*.log\nbuild/\n").unwrap();
        fs::write(r.join("a.log"), "x").unwrap();
        fs::create_dir(r.join("build")).unwrap();
        fs::write(r.join("build/out"), "x").unwrap();
        fs::create_dir(r.join("src")).unwrap();
        fs::write(r.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(r.join(format!("{TMP_PREFIX}x")), "leftover").unwrap();
        std::os::unix::fs::symlink("src", r.join("link")).unwrap();
        let s = scan(r, true).unwrap();
        assert_eq!(s.entries.keys().collect::<Vec<_>>(), vec!["/.gitignore", "/src", "/src/main.rs"]);
        assert_eq!(s.problems, vec!["unsupported entry type symlink: /link".to_string()]);
        assert!(!r.join(format!("{TMP_PREFIX}x")).exists());
        let all = scan(r, false).unwrap();
        assert!(all.entries.contains_key("/a.log") && all.entries.contains_key("/build/out"));
        assert!(!all.entries.keys().any(|k| k.starts_with("/.git/")));
    }
}
