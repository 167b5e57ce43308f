//! The bootstrap archive: a `tar.gz` of a volume streamed from a [`Manifest`] plus its blobs.
//!
//! ```text
//!   Manifest entries (sorted) ──▶ tar header (relative name, mode, mtime, size, uid/gid 0)
//!   open(entry) ──▶ body, checked against size and content_ref ──▶ tar ──▶ gzip ──▶ out
//! ```
//!
//! Names are relative and in manifest order; directories end in `/`; only directories and
//! regular files appear. The archive never holds a body that differs from its manifest entry:
//! a short, long or mis-hashed body is an I/O error, and the bytes already written to `out`
//! must then be discarded (they are not a valid archive). A client that unpacks it replays the
//! journal after the manifest's `seq`.

use std::io::{self, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::content_ref::ContentRef;
use crate::manifest::{self, Manifest, ManifestEntry};

/// Writes `manifest` as a `tar.gz` to `out`, reading each file's body through `open`, and
/// returns `out` once the gzip stream is finished.
///
/// The tar mode field holds `entry.mode & 0o7777`: the entry type carries the file type, and
/// type bits (`0o100000`, `0o040000`) in the mode field would contradict it or overflow it.
/// A negative `mtime_ms` (before 1970) is written as 0, which tar's unsigned field can hold.
pub fn write_tar_gz<W: Write>(
    manifest: &Manifest,
    open: &mut dyn FnMut(&ManifestEntry) -> io::Result<Box<dyn Read>>,
    out: W,
) -> io::Result<W> {
    manifest::check_entries(&manifest.entries)
        .map_err(|reason| io::Error::new(io::ErrorKind::InvalidData, format!("manifest: {reason}")))?;
    // Level 1: the archive is made once per bootstrap on the server's CPU and mostly crosses
    // fast links; the default level costs several times the CPU for a few percent in size.
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
    for entry in &manifest.entries {
        let mut header = Header::new_gnu();
        header.set_mode(entry.mode & 0o7777);
        header.set_mtime(entry.mtime_ms.div_euclid(1000).max(0) as u64);
        header.set_uid(0);
        header.set_gid(0);
        let name = manifest::archive_name(entry);
        if entry.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, &name, io::empty())?;
        } else {
            header.set_entry_type(EntryType::Regular);
            header.set_size(entry.size);
            let body = open(entry)?;
            tar.append_data(&mut header, &name, CheckedBody::new(entry, body))?;
        }
    }
    tar.into_inner()?.finish()
}

/// A file body that fails unless it is exactly `size` bytes hashing to `content_ref`.
struct CheckedBody<'a> {
    entry: &'a ManifestEntry,
    inner: Box<dyn Read>,
    remaining: u64,
    hasher: Sha256,
    done: bool,
}

impl<'a> CheckedBody<'a> {
    fn new(entry: &'a ManifestEntry, inner: Box<dyn Read>) -> Self {
        CheckedBody { entry, inner, remaining: entry.size, hasher: Sha256::new(), done: false }
    }

    fn mismatch(&self, what: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("body of {}: {what}", self.entry.path))
    }

    /// At the declared end: the source must be exhausted and the bytes must hash to the address.
    fn finish(&mut self) -> io::Result<()> {
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => return Err(self.mismatch(format!("longer than its size {}", self.entry.size))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if let Some(expected) = self.entry.content_ref.as_deref() {
            let actual = ContentRef(std::mem::take(&mut self.hasher).finalize().into()).to_string();
            if actual != expected {
                return Err(self.mismatch(format!("hashes to {actual}, not {expected}")));
            }
        }
        self.done = true;
        Ok(())
    }
}

impl Read for CheckedBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            let got = self.entry.size - self.remaining;
            return Err(self.mismatch(format!("ended after {got} of {} bytes", self.entry.size)));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}
