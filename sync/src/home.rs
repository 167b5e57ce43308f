//! Machine-wide sync state under `~/.tideline/` (or `TIDELINE_HOME`): one directory per
//! attachment holding its record, index, status, log and the worker's lock.
//!
//! ```text
//! $TIDELINE_HOME/attachments/<key>/attachment.json  volume, dir, server, token (0600), replica
//!                                  index.snap + index.log  the crash-safe index and cursor
//!                                  status.json   what the worker is doing (for `sync status`)
//!                                  worker.log    the background worker's log
//!                                  worker.lock   held (flock) by the live worker
//! ```

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{SyncError, SyncResult};

/// What `attach` decided and the worker needs to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attachment {
    pub volume_id: String,
    /// The local directory, canonical.
    pub dir: PathBuf,
    pub server: String,
    pub token: String,
    pub replica_id: String,
    /// The directory's inode when attached: a different one means it was replaced.
    pub root_inode: u64,
    /// Honor `.gitignore` files (default true).
    pub gitignore: bool,
    pub attached_at: String,
}

/// The state directory of one attachment.
#[derive(Clone, Debug)]
pub struct AttachDir {
    pub path: PathBuf,
}

impl AttachDir {
    pub fn record(&self) -> PathBuf {
        self.path.join("attachment.json")
    }
    pub fn status(&self) -> PathBuf {
        self.path.join("status.json")
    }
    pub fn log(&self) -> PathBuf {
        self.path.join("worker.log")
    }
    pub fn lock(&self) -> PathBuf {
        self.path.join("worker.lock")
    }
    pub fn staging(&self) -> PathBuf {
        self.path.join("bootstrap.tar.gz.part")
    }

    pub fn load(&self) -> SyncResult<Attachment> {
        let raw = fs::read(self.record()).map_err(SyncError::io_with(format!("read {}", self.record().display())))?;
        serde_json::from_slice(&raw).map_err(|e| SyncError::Other(format!("parse {}: {e}", self.record().display())))
    }

    pub fn save(&self, att: &Attachment) -> SyncResult<()> {
        fs::create_dir_all(&self.path).map_err(SyncError::io_with(format!("create {}", self.path.display())))?;
        let raw = serde_json::to_vec_pretty(att)
            .map_err(|e| SyncError::Other(format!("encode {}: {e}", self.record().display())))?;
        tideline_durable::write(&self.record(), &raw, 0o600)
            .map_err(SyncError::io_with(format!("write {}", self.record().display())))
    }

    /// Takes the worker lock without waiting; `None` when another worker holds it.
    pub fn try_lock(&self) -> io::Result<Option<File>> {
        fs::create_dir_all(&self.path)?;
        let f = OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(self.lock())?;
        // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            Ok(Some(f))
        } else {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }

    /// The live worker's pid, if one holds the lock.
    pub fn worker_pid(&self) -> Option<u32> {
        match self.try_lock() {
            Ok(None) => fs::read_to_string(self.lock()).ok().and_then(|s| s.trim().parse().ok()),
            _ => None,
        }
    }
}

/// The machine-wide state root.
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// `TIDELINE_HOME`, else `~/.tideline`.
    pub fn locate() -> SyncResult<Home> {
        if let Some(h) = std::env::var_os("TIDELINE_HOME").filter(|h| !h.is_empty()) {
            return Ok(Home { root: PathBuf::from(h) });
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(Home { root: PathBuf::from(h).join(".tideline") }),
            None => Err(SyncError::Other("neither TIDELINE_HOME nor HOME is set: cannot place sync state".into())),
        }
    }

    fn attachments(&self) -> PathBuf {
        self.root.join("attachments")
    }

    /// The state directory for a (canonical) local directory.
    pub fn dir_for(&self, dir: &Path) -> AttachDir {
        let key = hex::encode(&Sha256::digest(dir.as_os_str().as_encoded_bytes())[..10]);
        AttachDir { path: self.attachments().join(key) }
    }

    /// Every attachment, in directory order.
    pub fn list(&self) -> SyncResult<Vec<(AttachDir, Attachment)>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(self.attachments()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(SyncError::io("list attachments", e)),
        };
        for ent in rd {
            let ad = AttachDir { path: ent.map_err(SyncError::io_with("list attachments"))?.path() };
            if let Ok(att) = ad.load() {
                out.push((ad, att));
            }
        }
        out.sort_by(|a, b| a.1.dir.cmp(&b.1.dir));
        Ok(out)
    }

    /// The attachment whose directory is `dir` or contains it (the current directory by default).
    pub fn find(&self, dir: Option<&Path>) -> SyncResult<(AttachDir, Attachment)> {
        let here = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_dir().map_err(SyncError::io_with("find the current directory"))?,
        };
        let here = fs::canonicalize(&here).unwrap_or(here);
        self.list()?
            .into_iter()
            .filter(|(_, a)| here.starts_with(&a.dir))
            .max_by_key(|(_, a)| a.dir.components().count())
            .ok_or_else(|| {
                SyncError::Other(format!(
                    "{} is not inside an attached directory (see `tideline sync list`)",
                    here.display()
                ))
            })
    }
}

/// The inode of a directory (0 when it does not exist).
pub fn inode_of(dir: &Path) -> u64 {
    fs::metadata(dir).map(|m| m.ino()).unwrap_or(0)
}
