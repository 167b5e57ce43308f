//! [`VolumeFs`]: one mounted volume as a FUSE file system — each kernel request becomes calls
//! of the typed client, and every change a journal entry.
//!
//! ```text
//!  lookup/getattr ─▶ files/stat (linearizable)        attributes cached by the kernel for 1 s
//!  readdir        ─▶ files/list, one snapshot per opendir
//!  open (read)    ─▶ stat ─▶ content by address ─▶ ContentCache (verified) ─▶ pread
//!  open (write)   ─▶ a staging file per inode (a copy of the content, or empty on O_TRUNC);
//!                    write / truncate stay local
//!  flush / fsync  ─▶ the staged bytes as one files write ─▶ returns after the Raft commit
//!  create         ─▶ an empty file written with exclusive=true: the server decides O_EXCL
//!  mkdir, unlink, rmdir, rename, chmod ─▶ one files call each
//! ```
//!
//! Consistency: an `open` stats the path on the server (close-to-open: it sees every change
//! committed before it), and keeps the kernel's page cache only if the content address did not
//! change. Reads of an inode with staged writes read the staging file (read-your-writes). A
//! failed upload returns the error (`EIO` when the outcome is unknown) and keeps the staged
//! data for the next `flush`. A file unlinked while open stays readable and is not written back.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenAccMode,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use tideline_client::{Client, ClientError, Upload};
use tideline_types::limits::{FILE_BYTES_MAX, PATH_COMPONENT_BYTES_MAX};
use tideline_types::wire::{FileInfo, MoveRequest};
use tideline_types::FileType as WireType;

use crate::content_cache::{address_of, ContentCache};
use crate::errno::errno_of;
use crate::inodes::{Inodes, ROOT_INO};

/// How long the kernel may keep attributes and names without asking again: the bound on how
/// late a change made elsewhere shows in `stat` and `ls`.
pub const ATTR_TTL: Duration = Duration::from_secs(1);

/// What a mount needs besides its client.
pub struct FsConfig {
    pub volume: String,
    pub read_only: bool,
    /// Where open-for-write files are staged.
    pub staging_dir: PathBuf,
    /// Owner of every file (the user who mounted).
    pub uid: u32,
    pub gid: u32,
}

/// The writes of one inode not yet committed, shared by its open handles.
struct Staged {
    file: Arc<File>,
    /// Changed since the last commit.
    dirty: bool,
    /// Bumped by every local change, so a commit only clears `dirty` if nothing changed meanwhile.
    version: u64,
    /// Open writable handles.
    writers: u64,
}

/// One open file.
struct Handle {
    ino: u64,
    writable: bool,
    /// The committed content this handle reads when the inode has nothing staged.
    base: Option<Arc<File>>,
}

#[derive(Default)]
struct State {
    inodes: Inodes,
    handles: HashMap<u64, Handle>,
    staged: HashMap<u64, Staged>,
    /// `opendir` snapshots: (ino, kind, name) per entry.
    dirs: HashMap<u64, Vec<(u64, FileType, String)>>,
    /// Content address last served per inode: an `open` that finds it unchanged keeps the
    /// kernel's page cache.
    served: HashMap<u64, String>,
    next_fh: u64,
    next_staging: u64,
}

pub struct VolumeFs {
    client: Client,
    rt: tokio::runtime::Handle,
    cache: ContentCache,
    config: FsConfig,
    state: Mutex<State>,
}

type FsResult<T> = Result<T, Errno>;

/// `parent/name` for a name the server can hold.
fn child(parent: &str, name: &OsStr) -> FsResult<String> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.len() > PATH_COMPONENT_BYTES_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    Ok(if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") })
}

/// `e`, logged (at debug level) as the answer to a kernel request `op`.
fn refused(op: &'static str, e: Errno) -> Errno {
    tracing::debug!(op, errno = e.code(), "refused");
    e
}

fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_i32).unwrap_or(Errno::EIO)
}

fn read_all_at(file: &File, offset: u64, size: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

impl VolumeFs {
    /// `rt` runs the client's calls; FUSE's own threads block on them.
    pub fn new(client: Client, rt: tokio::runtime::Handle, cache: ContentCache, config: FsConfig) -> VolumeFs {
        VolumeFs { client, rt, cache, config, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("mount state lock")
    }

    fn call<T>(&self, fut: impl std::future::Future<Output = Result<T, ClientError>>) -> FsResult<T> {
        self.rt.block_on(fut).map_err(|e| {
            tracing::debug!(error = %e, "server call failed");
            errno_of(&e)
        })
    }

    fn path_of(&self, ino: u64) -> FsResult<String> {
        self.state().inodes.path(ino).ok_or(Errno::ESTALE)
    }

    fn writable(&self) -> FsResult<()> {
        if self.config.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// The server's view of `path`; `None` if nothing is there.
    fn stat(&self, path: &str) -> FsResult<Option<FileInfo>> {
        match self.rt.block_on(self.client.stat(&self.config.volume, path)) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(errno_of(&e)),
        }
    }

    fn attr(&self, ino: u64, info: &FileInfo) -> FileAttr {
        let dir = info.kind == WireType::Dir;
        let mtime = humantime::parse_rfc3339_weak(&info.mod_time)
            .or_else(|_| humantime::parse_rfc3339(&info.mod_time))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let perm = u16::from_str_radix(&info.mode, 8).unwrap_or(if dir { 0o755 } else { 0o644 }) & 0o7777;
        let mut attr = FileAttr {
            ino: INodeNo(ino),
            size: info.size,
            blocks: info.size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind: if dir { FileType::Directory } else { FileType::RegularFile },
            perm,
            nlink: if dir { 2 } else { 1 },
            uid: self.config.uid,
            gid: self.config.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        // Writes not yet committed show in the size and times (read-your-writes for stat too).
        if let Some(s) = self.state().staged.get(&ino) {
            if let Ok(meta) = s.file.metadata() {
                attr.size = meta.len();
                attr.blocks = meta.len().div_ceil(512);
                if s.dirty {
                    attr.mtime = meta.modified().unwrap_or(mtime);
                    attr.ctime = attr.mtime;
                }
            }
        }
        attr
    }

    /// Attributes of an inode the server no longer shows (unlinked while open): its local bytes.
    fn orphan_attr(&self, ino: u64) -> FsResult<FileAttr> {
        let st = self.state();
        let file = st
            .staged
            .get(&ino)
            .map(|s| s.file.clone())
            .or_else(|| st.handles.values().find(|h| h.ino == ino).and_then(|h| h.base.clone()))
            .ok_or(Errno::ENOENT)?;
        drop(st);
        let meta = file.metadata().map_err(|e| io_errno(&e))?;
        let t = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(FileAttr {
            ino: INodeNo(ino),
            size: meta.len(),
            blocks: meta.len().div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: FileType::RegularFile,
            perm: 0o644,
            nlink: 0,
            uid: self.config.uid,
            gid: self.config.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn getattr_of(&self, ino: u64) -> FsResult<FileAttr> {
        let (path, unlinked) = {
            let st = self.state();
            let i = st.inodes.get(ino).ok_or(Errno::ESTALE)?;
            (i.path.clone(), i.unlinked)
        };
        if unlinked {
            return self.orphan_attr(ino);
        }
        match self.stat(&path)? {
            Some(info) => Ok(self.attr(ino, &info)),
            None => self.orphan_attr(ino),
        }
    }

    /// The committed content of `info` as an open local file (from the cache, else fetched by
    /// address and verified).
    fn content(&self, info: &FileInfo) -> FsResult<Arc<File>> {
        let content_ref = info.content_ref.clone().ok_or(Errno::EIO)?;
        if let Some(f) = self.cache.open_cached(&content_ref) {
            return Ok(Arc::new(f));
        }
        let bytes = if info.size == 0 {
            Bytes::new()
        } else {
            self.call(self.client.replay_payload(&self.config.volume, &content_ref))?
        };
        let file = self.cache.insert(&content_ref, &bytes).map_err(|e| {
            tracing::warn!(%content_ref, error = %e, "content from the server failed verification");
            Errno::EIO
        })?;
        Ok(Arc::new(file))
    }

    fn new_staging_file(&self) -> FsResult<File> {
        let n = {
            let mut st = self.state();
            st.next_staging += 1;
            st.next_staging
        };
        let path = self.config.staging_dir.join(format!("{}-{n}", std::process::id()));
        let file = File::options().read(true).write(true).create_new(true).open(&path).map_err(|e| io_errno(&e))?;
        // Nothing else names it: the handle keeps it alive, a crash leaves nothing behind.
        std::fs::remove_file(&path).map_err(|e| io_errno(&e))?;
        Ok(file)
    }

    /// Makes sure `ino` has a staging file, one more writer on it, and applies `O_TRUNC`.
    fn stage(&self, ino: u64, info: Option<&FileInfo>, truncate: bool) -> FsResult<()> {
        {
            let mut st = self.state();
            if let Some(s) = st.staged.get_mut(&ino) {
                s.writers += 1;
                if truncate {
                    s.file.set_len(0).map_err(|e| io_errno(&e))?;
                    s.dirty = true;
                    s.version += 1;
                }
                return Ok(());
            }
        }
        let file = self.new_staging_file()?;
        let size = info.map_or(0, |i| i.size);
        if !truncate && size > 0 {
            let base = self.content(info.expect("size > 0 has info"))?;
            let mut from = &*base;
            let mut to = &file;
            io::copy(&mut from, &mut to).map_err(|e| io_errno(&e))?;
        }
        let staged = Staged { file: Arc::new(file), dirty: truncate && size > 0, version: 0, writers: 1 };
        let mut st = self.state();
        match st.staged.get_mut(&ino) {
            // Another open staged it meanwhile: join that one.
            Some(s) => s.writers += 1,
            None => {
                st.staged.insert(ino, staged);
            }
        }
        Ok(())
    }

    fn add_handle(&self, ino: u64, writable: bool, base: Option<Arc<File>>) -> u64 {
        let mut st = self.state();
        st.next_fh += 1;
        let fh = st.next_fh;
        st.handles.insert(fh, Handle { ino, writable, base });
        if let Some(i) = st.inodes.get_mut(ino) {
            i.open += 1;
        }
        fh
    }

    /// Commits `ino`'s staged bytes, if changed, as one write; returns after the Raft commit.
    fn commit(&self, ino: u64) -> FsResult<()> {
        let (file, version, path) = {
            let st = self.state();
            let Some(s) = st.staged.get(&ino) else { return Ok(()) };
            let Some(i) = st.inodes.get(ino) else { return Ok(()) };
            if !s.dirty || i.unlinked {
                return Ok(());
            }
            (s.file.clone(), s.version, i.path.clone())
        };
        let len = file.metadata().map_err(|e| io_errno(&e))?.len();
        if len > FILE_BYTES_MAX as u64 {
            return Err(Errno::EFBIG);
        }
        let bytes = read_all_at(&file, 0, len as u32).map_err(|e| io_errno(&e))?;
        let address = address_of(&bytes);
        let bytes = Bytes::from(bytes);
        self.call(self.client.write_file_with(&self.config.volume, &path, Upload::bytes(bytes.clone()), false, 0))?;
        if let Err(e) = self.cache.insert(&address, &bytes) {
            tracing::debug!(error = %e, "could not cache what was just written");
        }
        let mut st = self.state();
        if let Some(s) = st.staged.get_mut(&ino) {
            if s.version == version {
                s.dirty = false;
            }
        }
        st.served.insert(ino, address);
        Ok(())
    }

    fn open_file(&self, ino: u64, flags: OpenFlags) -> FsResult<(u64, FopenFlags)> {
        let writable = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        if writable || truncate {
            self.writable()?;
        }
        let (path, unlinked, staged) = {
            let st = self.state();
            let i = st.inodes.get(ino).ok_or(Errno::ESTALE)?;
            (i.path.clone(), i.unlinked, st.staged.contains_key(&ino))
        };
        if unlinked {
            return Err(Errno::ENOENT);
        }
        let info = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        if info.kind == WireType::Dir {
            return Err(Errno::EISDIR);
        }
        if writable {
            self.stage(ino, Some(&info), truncate)?;
            return Ok((self.add_handle(ino, true, None), FopenFlags::empty()));
        }
        if staged {
            return Ok((self.add_handle(ino, false, None), FopenFlags::empty()));
        }
        let base = self.content(&info)?;
        let content_ref = info.content_ref.clone().unwrap_or_default();
        let keep = {
            let mut st = self.state();
            let same = st.served.get(&ino) == Some(&content_ref);
            st.served.insert(ino, content_ref);
            same
        };
        let fh = self.add_handle(ino, false, Some(base));
        Ok((fh, if keep { FopenFlags::FOPEN_KEEP_CACHE } else { FopenFlags::empty() }))
    }

    fn create_file(&self, parent: u64, name: &OsStr, mode: u32, umask: u32, flags: i32) -> FsResult<(FileAttr, u64)> {
        self.writable()?;
        let path = child(&self.path_of(parent)?, name)?;
        let perm = mode & !umask & 0o7777;
        let made = self.rt.block_on(self.client.write_file_with(
            &self.config.volume,
            &path,
            Upload::bytes(Bytes::new()),
            true,
            perm,
        ));
        let existed = match made {
            Ok(_) => false,
            Err(e) if errno_of(&e) == Errno::EEXIST && flags & libc::O_EXCL == 0 => true,
            Err(e) => return Err(errno_of(&e)),
        };
        let ino = self.state().inodes.lookup(&path);
        let opened = if existed {
            self.open_file(ino, OpenFlags(flags)).map(|(fh, _)| fh)
        } else {
            self.stage(ino, None, false).map(|()| self.add_handle(ino, true, None))
        };
        let fh = match opened {
            Ok(fh) => fh,
            Err(e) => {
                self.state().inodes.forget(ino, 1);
                return Err(e);
            }
        };
        let info = if existed {
            self.stat(&path)?.ok_or(Errno::ENOENT)?
        } else {
            // Just made empty by this call: no need to ask the server what it holds.
            FileInfo {
                name: tideline_types::path::name(&path).to_string(),
                path: path.clone(),
                kind: WireType::File,
                size: 0,
                mode: format!("{:04o}", if perm == 0 { 0o644 } else { perm }),
                mod_time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                is_link: false,
                link_target: None,
                seq: None,
                content_ref: Some(address_of(b"")),
            }
        };
        Ok((self.attr(ino, &info), fh))
    }

    fn lookup_child(&self, parent: u64, name: &OsStr) -> FsResult<FileAttr> {
        let path = child(&self.path_of(parent)?, name)?;
        let info = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        let ino = self.state().inodes.lookup(&path);
        Ok(self.attr(ino, &info))
    }

    fn set_attr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
    ) -> FsResult<FileAttr> {
        if uid.is_some_and(|u| u != self.config.uid) || gid.is_some_and(|g| g != self.config.gid) {
            return Err(Errno::EPERM);
        }
        let path = self.path_of(ino)?;
        if let Some(mode) = mode {
            self.writable()?;
            self.call(self.client.chmod(&self.config.volume, &path, mode & 0o7777))?;
        }
        if let Some(size) = size {
            self.writable()?;
            if size > FILE_BYTES_MAX as u64 {
                return Err(Errno::EFBIG);
            }
            let held = self.state().staged.contains_key(&ino);
            if !held {
                // truncate(2) by path: no handle will close, so commit at once.
                let info = self.stat(&path)?.ok_or(Errno::ENOENT)?;
                if info.kind == WireType::Dir {
                    return Err(Errno::EISDIR);
                }
                self.stage(ino, Some(&info), false)?;
            }
            {
                let mut st = self.state();
                let s = st.staged.get_mut(&ino).expect("staged above");
                s.file.set_len(size).map_err(|e| io_errno(&e))?;
                s.dirty = true;
                s.version += 1;
            }
            if !held {
                let committed = self.commit(ino);
                self.release_writer(ino);
                committed?;
            }
        }
        // atime/mtime: accepted, not kept — a file's mtime is the time its change committed.
        self.getattr_of(ino)
    }

    /// One writer of `ino` is gone; its staging goes with the last one unless it holds
    /// uncommitted bytes (kept for the next open's flush, and reported).
    fn release_writer(&self, ino: u64) {
        let mut st = self.state();
        let unlinked = st.inodes.get(ino).is_none_or(|i| i.unlinked);
        let Some(s) = st.staged.get_mut(&ino) else { return };
        s.writers = s.writers.saturating_sub(1);
        if s.writers > 0 {
            return;
        }
        if s.dirty && !unlinked {
            tracing::error!(ino, "closed with changes the server did not take; kept for the next flush");
            return;
        }
        st.staged.remove(&ino);
    }

    fn remove_entry(&self, parent: u64, name: &OsStr, dir: bool) -> FsResult<()> {
        self.writable()?;
        let path = child(&self.path_of(parent)?, name)?;
        let info = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        let is_dir = info.kind == WireType::Dir;
        if dir && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !dir && is_dir {
            return Err(Errno::EISDIR);
        }
        if dir && !self.call(self.client.list_dir(&self.config.volume, &path))?.entries.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.call(self.client.delete_path(&self.config.volume, &path))?;
        self.state().inodes.unlink(&path);
        Ok(())
    }

    fn rename_entry(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> FsResult<()> {
        self.writable()?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE) || flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        let from = child(&self.path_of(parent)?, name)?;
        let to = child(&self.path_of(newparent)?, newname)?;
        let src = self.stat(&from)?.ok_or(Errno::ENOENT)?;
        if from == to {
            return Ok(());
        }
        if let Some(dst) = self.stat(&to)? {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            match (src.kind == WireType::Dir, dst.kind == WireType::Dir) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                (true, true) => {
                    if !self.call(self.client.list_dir(&self.config.volume, &to))?.entries.is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                    // The server's move never replaces a directory: an empty one goes first.
                    self.call(self.client.delete_path(&self.config.volume, &to))?;
                }
                (false, false) => {} // the server replaces a file atomically
            }
        }
        let req = MoveRequest { source: from.clone(), destination: to.clone() };
        self.call(self.client.move_path(&self.config.volume, &req))?;
        self.state().inodes.rename(&from, &to);
        Ok(())
    }

    fn list(&self, ino: u64) -> FsResult<Vec<(u64, FileType, String)>> {
        let path = self.path_of(ino)?;
        let listing = self.call(self.client.list_dir(&self.config.volume, &path))?;
        let st = self.state();
        let parent_ino = if path == "/" {
            ROOT_INO
        } else {
            st.inodes.ino_of(tideline_types::path::split(&path).0).unwrap_or(ROOT_INO)
        };
        let mut entries =
            vec![(ino, FileType::Directory, ".".to_string()), (parent_ino, FileType::Directory, "..".to_string())];
        for e in listing.entries {
            let kind = if e.kind == WireType::Dir { FileType::Directory } else { FileType::RegularFile };
            let child_ino = st.inodes.ino_of(&e.path).unwrap_or_else(|| crate::inodes::preferred_ino(&e.path));
            entries.push((child_ino, kind, e.name));
        }
        Ok(entries)
    }
}

impl Filesystem for VolumeFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.lookup_child(parent.0, name) {
            Ok(attr) => reply.entry(&ATTR_TTL, &attr, Generation(0)),
            Err(e) => reply.error(refused("lookup", e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.state().inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.getattr_of(ino.0) {
            Ok(attr) => reply.attr(&ATTR_TTL, &attr),
            Err(e) => reply.error(refused("getattr", e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.set_attr(ino.0, mode, uid, gid, size) {
            Ok(attr) => reply.attr(&ATTR_TTL, &attr),
            Err(e) => reply.error(refused("setattr", e)),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let made = (|| {
            self.writable()?;
            let path = child(&self.path_of(parent.0)?, name)?;
            self.call(self.client.mkdir_mode(&self.config.volume, &path, mode & !umask & 0o7777))?;
            self.lookup_child(parent.0, name)
        })();
        match made {
            Ok(attr) => reply.entry(&ATTR_TTL, &attr, Generation(0)),
            Err(e) => reply.error(refused("mkdir", e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove_entry(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(refused("unlink", e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove_entry(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(refused("rmdir", e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.rename_entry(parent.0, name, newparent.0, newname, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(refused("rename", e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.open_file(ino.0, flags) {
            Ok((fh, how)) => reply.opened(FileHandle(fh), how),
            Err(e) => reply.error(refused("open", e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let file = {
            let st = self.state();
            let Some(h) = st.handles.get(&fh.0) else { return reply.error(Errno::EBADF) };
            match st.staged.get(&h.ino) {
                Some(s) => s.file.clone(),
                None => match &h.base {
                    Some(b) => b.clone(),
                    None => return reply.error(Errno::EBADF),
                },
            }
        };
        match read_all_at(&file, offset, size) {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(io_errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if offset.saturating_add(data.len() as u64) > FILE_BYTES_MAX as u64 {
            return reply.error(Errno::EFBIG);
        }
        let file = {
            let mut st = self.state();
            let Some(h) = st.handles.get(&fh.0) else { return reply.error(Errno::EBADF) };
            if !h.writable {
                return reply.error(Errno::EBADF);
            }
            let ino = h.ino;
            let Some(s) = st.staged.get_mut(&ino) else { return reply.error(Errno::EBADF) };
            s.dirty = true;
            s.version += 1;
            s.file.clone()
        };
        match file.write_all_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(io_errno(&e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let ino = match self.state().handles.get(&fh.0) {
            Some(h) if h.writable => h.ino,
            Some(_) => return reply.ok(),
            None => return reply.error(Errno::EBADF),
        };
        match self.commit(ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(refused("flush", e)),
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let ino = match self.state().handles.get(&fh.0) {
            Some(h) => h.ino,
            None => return reply.error(Errno::EBADF),
        };
        match self.commit(ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(refused("fsync", e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let handle = {
            let mut st = self.state();
            let h = st.handles.remove(&fh.0);
            if let Some(h) = &h {
                if let Some(i) = st.inodes.get_mut(h.ino) {
                    i.open = i.open.saturating_sub(1);
                }
            }
            h
        };
        if let Some(h) = handle {
            if h.writable {
                self.release_writer(h.ino);
            }
            self.state().inodes.collect(h.ino);
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.list(ino.0) {
            Ok(entries) => {
                let mut st = self.state();
                st.next_fh += 1;
                let fh = st.next_fh;
                st.dirs.insert(fh, entries);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(refused("opendir", e)),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let st = self.state();
        let Some(entries) = st.dirs.get(&fh.0) else { return reply.error(Errno::EBADF) };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.state().dirs.remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // A volume has no fixed capacity; report a large one so tools do not refuse to write.
        const BLOCKS: u64 = 1 << 40 >> 12;
        reply.statfs(BLOCKS, BLOCKS, BLOCKS, 1 << 32, 1 << 32, 4096, PATH_COMPONENT_BYTES_MAX as u32, 4096);
    }

    // Not supported, answered without a warning: ENOSYS makes the kernel stop asking for
    // xattrs (it would otherwise ask for `security.capability` before every write).
    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn symlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, _target: &std::path::Path, reply: ReplyEntry) {
        reply.error(Errno::EPERM);
    }

    fn link(&self, _req: &Request, _ino: INodeNo, _newparent: INodeNo, _newname: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EPERM);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.create_file(parent.0, name, mode, umask, flags) {
            Ok((attr, fh)) => reply.created(&ATTR_TTL, &attr, Generation(0), FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(refused("create", e)),
        }
    }
}
