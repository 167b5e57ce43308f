//! `tideline mount`: a volume as a POSIX directory through FUSE (`fuser`, no libfuse).
//!
//! ```text
//!  kernel VFS ──/dev/fuse──▶ VolumeFs (FUSE threads) ──block_on──▶ typed Client ──HTTP──▶ any node
//!                               │  Inodes        path ⇄ stable inode number
//!                               │  ContentCache  file contents by sha256, verified, bounded
//!                               └  staging       one local file per inode open for writing
//! ```
//!
//! What a mount promises (and `tests/mount.rs` checks): close-to-open (an `open` sees every
//! change committed before it), read-your-writes inside the mount, `fsync` and `close` return
//! after the change is committed through Raft, atomic rename over a file, `O_CREAT|O_EXCL`
//! decided by the server, `ENOTEMPTY`, files readable after unlink while open. Each committed
//! change is one journal entry with `source:"sandbox"`, so sync workers, watchers and other
//! mounts see it; a change made elsewhere shows here within [`ATTR_TTL`] for metadata and at
//! the next `open` for content. Not supported: symlinks and hard links (`EPERM`), xattrs,
//! ownership other than the mounting user's, keeping a set `mtime` (a file's mtime is the time
//! its change committed).

mod content_cache;
mod errno;
mod inodes;
mod volume_fs;

use std::io;
use std::path::{Path, PathBuf};

use fuser::{Config, MountOption, Session, SessionACL};
use tideline_client::Client;

pub use content_cache::{address_of, ContentCache};
pub use inodes::{preferred_ino, Inodes, ROOT_INO};
pub use volume_fs::{FsConfig, VolumeFs, ATTR_TTL};

/// One mount to make.
pub struct MountOptions {
    pub volume: String,
    pub mountpoint: PathBuf,
    pub read_only: bool,
    /// Content cache and staging live here (per volume).
    pub cache_dir: PathBuf,
    /// Bound of the content cache in bytes (the volume's `cache_size`).
    pub cache_bytes_max: u64,
    /// FUSE request threads (each blocks on one server call at a time).
    pub threads: usize,
}

/// A mounted volume, not yet serving: [`Mounted::run`] serves until it is unmounted.
pub struct Mounted {
    session: Session<VolumeFs>,
}

/// Unmounts a mount served by this process (from a signal handler thread, say).
pub struct Unmounter(fuser::SessionUnmounter);

impl Unmounter {
    pub fn unmount(&mut self) -> io::Result<()> {
        self.0.unmount()
    }
}

/// Mounts `opts.volume` at `opts.mountpoint`. `rt` runs the client's calls; it must not be
/// the thread that later calls [`Mounted::run`] (run it on a blocking thread).
pub fn mount(client: Client, rt: tokio::runtime::Handle, opts: &MountOptions) -> io::Result<Mounted> {
    let staging_dir = opts.cache_dir.join("staging");
    std::fs::create_dir_all(&staging_dir)?;
    let cache = ContentCache::open(&opts.cache_dir.join("content"), opts.cache_bytes_max)?;
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let fs = VolumeFs::new(
        client,
        rt,
        cache,
        FsConfig { volume: opts.volume.clone(), read_only: opts.read_only, staging_dir, uid, gid },
    );
    let mut mount_options = vec![
        MountOption::FSName(format!("tideline:{}", opts.volume)),
        MountOption::Subtype("tideline".into()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    mount_options.push(if opts.read_only { MountOption::RO } else { MountOption::RW });
    let mut config = Config::default();
    config.mount_options = mount_options;
    config.acl = SessionACL::Owner;
    config.n_threads = Some(opts.threads.max(1));
    let session = Session::new(fs, &opts.mountpoint, &config)?;
    Ok(Mounted { session })
}

impl Mounted {
    /// A handle that ends [`Mounted::run`] by unmounting.
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(self.session.unmount_callable())
    }

    /// Serves kernel requests until the file system is unmounted.
    pub fn run(self) -> io::Result<()> {
        self.session.run()
    }
}

/// Whether `path` is a mount point now (per `/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else { return false };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = path.to_string_lossy().replace(' ', "\\040");
    info.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Unmounts the FUSE mount at `path` (`umount2`, then `fusermount3 -u` for a user without
/// the right to call it).
pub fn unmount(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    for helper in ["fusermount3", "fusermount"] {
        if let Ok(status) = std::process::Command::new(helper).arg("-u").arg(path).status() {
            if status.success() {
                return Ok(());
            }
        }
    }
    Err(err)
}

/// Bytes of a size like the volume's `cache_size`: `"1G"`, `"512M"`, `"64K"`, `"1048576"`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches('B').trim_end_matches('I') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("64Ki"), Some(64 << 10));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1X"), None);
        assert_eq!(parse_size(""), None);
    }
}
