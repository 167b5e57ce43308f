//! Bringing a directory and a volume into agreement from scratch: the first attach
//! (`--init-from volume|local|auto`) and the re-bootstrap after a reseed 409.
//!
//! Every path goes through a bootstrap archive (the namespace frozen at `replay_after_seq`):
//!
//! | policy      | archive files             | local extras          | used by                      |
//! |-------------|---------------------------|-----------------------|------------------------------|
//! | `Volume`    | written over anything     | removed               | `--init-from volume`         |
//! | `Merge`     | written where absent      | kept (uploaded later) | `auto` when nothing differs  |
//! | `Reconcile` | written over clean paths  | clean ones removed    | re-bootstrap (keeps edits)   |
//! | `IndexOnly` | only recorded             | kept (uploaded later) | `--init-from local`          |
//!
//! With `IndexOnly` the index says "the volume has the archive", so the worker's next plan
//! uploads every local difference and removes what exists only on the volume.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flate2::read::GzDecoder;

use super::apply::{Applier, Local};
use super::index::{Entry, Kind};
use super::local::{self, local_path, Meta, TMP_PREFIX};
use super::unsynced::Unsynced;
use crate::error::{SyncError, SyncResult};
use crate::progress::{Progress, Task};

/// Which side wins on the first attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitFrom {
    /// DIR becomes the volume's tree (local differences are overwritten or removed).
    Volume,
    /// The volume becomes DIR's tree (volume paths absent locally are removed).
    Local,
    /// Whichever side is empty takes the other; if both have files, they merge only when no
    /// path differs.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Volume,
    Merge,
    Reconcile,
    IndexOnly,
}

/// What an archive entry is.
struct Item {
    path: String,
    kind: Kind,
    mode: u32,
}

/// Counts of what a materialization did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub written: u64,
    pub kept_local: u64,
    pub removed: u64,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> SyncError {
    SyncError::io_with(what)
}

/// Freezes the volume, downloads the archive to `staging` and returns `replay_after_seq`.
pub async fn download(ap: &Applier<'_>, staging: &Path, progress: &dyn Progress) -> SyncResult<u64> {
    let boot = ap.remote.bootstrap(&ap.caps).await?;
    let mut meter = progress.start(Task::BootstrapArchive, None);
    // Borrowed mutably, so the future stays `Send` (a `Meter` is `Send`, not `Sync`): the
    // worker may run as a task of a multi-threaded runtime.
    let done = ap
        .remote
        .download(&boot.archive_download_path, staging, |n| {
            if let Some(m) = meter.as_mut() {
                m.advance(n)
            }
        })
        .await;
    if let Some(m) = meter {
        m.finish();
    }
    done?;
    Ok(boot.replay_after_seq)
}

/// Reads the archive at `path`, calling `f` with each entry (files with their content reader).
fn each_item(path: &Path, mut f: impl FnMut(Item, &mut dyn Read) -> io::Result<()>) -> io::Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(fs::File::open(path)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular => Kind::File,
            other => {
                return Err(io::Error::other(format!("archive entry {name} has unsupported type {other:?}")));
            }
        };
        let rel = name.trim_end_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
            return Err(io::Error::other(format!("archive entry name {name:?} is not a clean relative path")));
        }
        let mode = entry.header().mode()? & 0o7777;
        f(Item { path: format!("/{rel}"), kind, mode }, &mut entry)?;
    }
    Ok(())
}

/// An archive's entries: path → (kind, mode, sha256 of a file).
pub type Listing = BTreeMap<String, (Kind, u32, Option<String>)>;

/// Files and directories in the archive, with each file's sha256 (content is hashed, not kept).
pub fn list(archive: &Path) -> io::Result<Listing> {
    let mut out = Listing::new();
    each_item(archive, |item, r| {
        let sha = if item.kind == Kind::File { Some(hash_reader(r)?) } else { None };
        out.insert(item.path, (item.kind, item.mode, sha));
        Ok(())
    })?;
    Ok(out)
}

/// Paths both sides have with different content or kind (what `auto` refuses to merge).
pub fn differences(root: &Path, listing: &Listing) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for (path, (kind, _, sha)) in listing {
        let Some(md) = local::lstat(root, path)? else { continue };
        let differs = match Meta::of(&md) {
            None => true,
            Some(m) if m.kind != *kind => true,
            Some(_) if *kind == Kind::File => Some(local::hash_file(&local_path(root, path))?) != *sha,
            Some(_) => false,
        };
        if differs {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Brings the directory to the archive under `policy`, then resets the index to the archive
/// with the cursor at `seq`.
pub fn materialize(
    ap: &mut Applier<'_>,
    archive: &Path,
    seq: u64,
    policy: Policy,
    progress: &dyn Progress,
) -> SyncResult<Outcome> {
    let root = ap.root.to_path_buf();
    let mut agreed: BTreeMap<String, Entry> = BTreeMap::new();
    let mut out = Outcome::default();
    // What this writes into the directory, made durable before the index records it.
    let mut changed = Unsynced::default();
    // Counting means reading the archive twice: only worth it when someone watches the bar.
    let meter = if progress.watched() {
        let total = list_len(archive).map_err(io_err(format!("read {}", archive.display())))?;
        progress.start(Task::FilesFromVolume, Some(total))
    } else {
        None
    };
    each_item(archive, |item, content| {
        if let Some(m) = &meter {
            m.advance(1);
        }
        let target = local_path(&root, &item.path);
        if policy == Policy::IndexOnly {
            let sha = if item.kind == Kind::File { Some(hash_reader(content)?) } else { None };
            let size = fs::symlink_metadata(&target).map(|m| m.len()).unwrap_or(0);
            agreed.insert(
                item.path,
                Entry { kind: item.kind, mode: item.mode, size, mtime_ns: 0, inode: 0, sha256: sha },
            );
            return Ok(());
        }
        if item.kind == Kind::Dir {
            match local::lstat(&root, &item.path)? {
                Some(md) if md.is_dir() => {}
                Some(_) => {
                    if policy == Policy::Reconcile && ap.classify(&item.path, None)? == Local::Dirty {
                        out.kept_local += 1;
                        return Ok(()); // an unsent local file stands where the volume has a directory
                    }
                    fs::remove_file(&target)?;
                    fs::create_dir(&target)?;
                    changed.entry_of(&target);
                }
                None => {
                    fs::create_dir_all(&target)?;
                    changed.entry_of(&target);
                }
            }
            fs::set_permissions(&target, fs::Permissions::from_mode(item.mode))?;
            let m = Meta::of(&fs::symlink_metadata(&target)?).expect("a directory");
            agreed.insert(item.path, m.entry(None));
            return Ok(());
        }
        // A file: stream it beside the target while hashing, then decide.
        if let Some(parent) = target.parent() {
            if !parent.is_dir() {
                fs::create_dir_all(parent)?;
                changed.entry_of(parent);
            }
        }
        let tmp = target.with_file_name(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
        let sha = {
            let mut w = HashingWriter::default().tee(fs::File::create(&tmp)?);
            io::copy(content, &mut w)?;
            w.finish()?
        };
        fs::set_permissions(&tmp, fs::Permissions::from_mode(item.mode))?;
        let state = ap.classify(&item.path, Some(&sha))?;
        let keep = match state {
            Local::Same => true,
            Local::Absent | Local::Clean | Local::Ahead => false,
            Local::Dirty => match policy {
                Policy::Volume => false,
                _ => {
                    out.kept_local += 1;
                    // Agreed = the volume's content; the local edit differs from it and is sent.
                    let size = fs::symlink_metadata(&target).map(|m| m.len()).unwrap_or(0);
                    let e = Entry { kind: Kind::File, mode: item.mode, size, mtime_ns: 0, inode: 0, sha256: Some(sha) };
                    agreed.insert(item.path, e);
                    fs::remove_file(&tmp)?;
                    return Ok(());
                }
            },
        };
        if keep {
            fs::remove_file(&tmp)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(item.mode))?;
        } else {
            if fs::symlink_metadata(&target).map(|m| m.is_dir()).unwrap_or(false) {
                fs::remove_dir_all(&target)?;
            }
            fs::rename(&tmp, &target)?;
            changed.file(&target);
            out.written += 1;
        }
        let m = Meta::of(&fs::symlink_metadata(&target)?).expect("a file");
        agreed.insert(item.path, m.entry(Some(sha)));
        Ok(())
    })
    .map_err(io_err(format!("apply the bootstrap archive into {}", root.display())))?;
    if let Some(m) = meter {
        m.finish();
    }

    // Local entries the archive does not have.
    if matches!(policy, Policy::Volume | Policy::Reconcile) {
        let scan = local::scan(&root, true).map_err(io_err(format!("scan {}", root.display())))?;
        let extras: BTreeSet<&String> = scan.entries.keys().filter(|p| !agreed.contains_key(*p)).collect();
        for p in extras.iter().rev() {
            let remove = policy == Policy::Volume
                || (ap.index.get(p).is_some()
                    && ap.classify(p, None).map_err(io_err(format!("inspect {p}")))? == Local::Clean);
            if !remove {
                continue;
            }
            let target = local_path(&root, p);
            let r = if scan.entries[*p].kind == Kind::Dir { fs::remove_dir(&target) } else { fs::remove_file(&target) };
            match r {
                Ok(()) => {
                    changed.entry_of(&target);
                    out.removed += 1;
                }
                Err(e) if policy == Policy::Volume => return Err(io_err(format!("remove {p}"))(e)),
                Err(_) => {} // a directory that still holds kept edits
            }
        }
    }
    changed.barrier(&root).map_err(io_err(format!("sync the changes in {}", root.display())))?;
    ap.index.reset(agreed, seq).map_err(io_err("record the index".into()))?;
    Ok(out)
}

fn list_len(archive: &Path) -> io::Result<u64> {
    let mut n = 0;
    each_item(archive, |_, _| {
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

fn hash_reader(r: &mut dyn Read) -> io::Result<String> {
    let mut w = HashingWriter::default();
    io::copy(r, &mut w)?;
    Ok(hex::encode(sha2::Digest::finalize(w.0)))
}

/// A writer that hashes what passes through it (and optionally writes it on to a file).
#[derive(Default)]
struct HashingWriter(sha2::Sha256);

impl HashingWriter {
    fn tee(self, file: fs::File) -> Tee {
        Tee { hash: self, file: io::BufWriter::new(file) }
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Tee {
    hash: HashingWriter,
    file: io::BufWriter<fs::File>,
}

impl Tee {
    fn finish(mut self) -> io::Result<String> {
        self.file.flush()?;
        Ok(hex::encode(sha2::Digest::finalize(self.hash.0)))
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The refusal of `auto` when both sides have files and some differ.
pub fn refuse_merge(differing: &[String]) -> SyncError {
    let shown: Vec<&str> = differing.iter().take(20).map(String::as_str).collect();
    let more = if differing.len() > shown.len() {
        format!(" and {} more", differing.len() - shown.len())
    } else {
        String::new()
    };
    SyncError::Conflict {
        reason: None,
        message: format!(
            "the directory and the volume both have files and these differ: {}{more}; choose which side wins with \
             --init-from volume or --init-from local",
            shown.join(", ")
        ),
    }
}
