//! State-machine snapshot files: built from a RocksDB snapshot, streamed record by record, never
//! held in memory whole; checksummed; installed in bounded batches.
//!
//! ```text
//! "TLSNAP01" | u32 header_len | header (opaque, the Raft layer's meta)
//! { u8 cf_tag (1..) | u32 key_len | key | u32 value_len | value }*
//! u8 0 (end) | sha256 of everything before (32 bytes)
//! ```
//!
//! Installing first writes an "install in progress" marker with the wipe of the old state;
//! if the process dies half-way, [`recover_interrupted_install`] empties the state machine at
//! the next start so the Raft layer fetches a snapshot again — a half-installed state is never
//! served.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use rocksdb::{IteratorMode, ReadOptions, WriteBatch};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::db::{Cf, Db};
use crate::error::StorageError;
use crate::keys;
use crate::records::AppliedMeta;

const MAGIC: &[u8; 8] = b"TLSNAP01";
const INSTALL_MARKER: &[u8] = b"install_in_progress";
/// Flush an install batch once it holds this many bytes.
const INSTALL_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Keys are bounded (volume id + 4096-byte path); this sorts after every one of them.
const KEY_UPPER: [u8; 8192] = [0xff; 8192];
const RECORD_BYTES_MAX: u32 = 256 * 1024 * 1024;

/// The column families a snapshot carries: the whole state machine, not the Raft log.
pub const SNAPSHOT_CFS: [Cf; 14] = [
    Cf::SmMeta,
    Cf::Volumes,
    Cf::Journal,
    Cf::Namespace,
    Cf::FoldIndex,
    Cf::Tokens,
    Cf::Requests,
    Cf::Blobs,
    Cf::VolumeBlobs,
    Cf::Replicas,
    Cf::PathLatest,
    Cf::Conflicts,
    Cf::Snapshots,
    Cf::GcMarks,
];

fn tag_of(cf: Cf) -> u8 {
    SNAPSHOT_CFS.iter().position(|c| *c == cf).expect("snapshot cf") as u8 + 1
}

/// Hashes everything written through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot of the current state machine to `dest`; making it durable is the caller's
/// (an `AtomicWriteFile` it commits). `header` is given the applied position *of the snapshot*
/// and returns the bytes to store as the header.
pub fn build(
    db: &Db,
    dest: impl Write,
    header: impl FnOnce(Option<&AppliedMeta>) -> Result<Vec<u8>, StorageError>,
) -> Result<Option<AppliedMeta>, StorageError> {
    let raw = db.raw();
    let snap = raw.snapshot();
    let applied: Option<AppliedMeta> = match snap.get_cf(db.cf(Cf::SmMeta), keys::APPLIED)? {
        None => None,
        Some(bytes) => Some(codec::decode("sm_meta", keys::APPLIED, &bytes)?),
    };
    let header = header(applied.as_ref())?;
    let mut w = HashingWriter { inner: BufWriter::new(dest), hasher: Sha256::new() };
    w.write_all(MAGIC)?;
    w.write_all(&(header.len() as u32).to_be_bytes())?;
    w.write_all(&header)?;
    for cf in SNAPSHOT_CFS {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&snap);
        for item in raw.iterator_cf_opt(db.cf(cf), ro, IteratorMode::Start) {
            let (k, v) = item?;
            w.write_all(&[tag_of(cf)])?;
            w.write_all(&(k.len() as u32).to_be_bytes())?;
            w.write_all(&k)?;
            w.write_all(&(v.len() as u32).to_be_bytes())?;
            w.write_all(&v)?;
        }
    }
    w.write_all(&[0])?;
    let digest = w.hasher.finalize();
    let mut inner = w.inner;
    inner.write_all(&digest)?;
    inner.flush()?;
    Ok(applied)
}

fn corrupt(reason: impl ToString) -> StorageError {
    StorageError::corrupt("snapshot", b"", reason)
}

/// Checks the trailing checksum of a snapshot stream and returns its header.
pub fn verify<R: Read + Seek>(mut r: R) -> Result<Vec<u8>, StorageError> {
    let len = r.seek(SeekFrom::End(0))?;
    if len < (MAGIC.len() + 4 + 1 + 32) as u64 {
        return Err(corrupt("snapshot too short"));
    }
    r.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut reader = BufReader::new(&mut r).take(len - 32);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let mut want = [0u8; 32];
    r.seek(SeekFrom::Start(len - 32))?;
    r.read_exact(&mut want)?;
    if hasher.finalize().as_slice() != want {
        return Err(corrupt("snapshot checksum mismatch"));
    }
    r.seek(SeekFrom::Start(0))?;
    read_header(&mut r)
}

/// Reads the header of a snapshot stream positioned at its start.
pub fn read_header<R: Read>(r: &mut R) -> Result<Vec<u8>, StorageError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(corrupt("not a Tideline snapshot (bad magic)"));
    }
    let len = read_u32(r)?;
    if len > RECORD_BYTES_MAX {
        return Err(corrupt("header too large"));
    }
    let mut header = vec![0u8; len as usize];
    r.read_exact(&mut header)?;
    Ok(header)
}

fn read_u32<R: Read>(r: &mut R) -> Result<u32, StorageError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// Replaces the whole state machine with the snapshot in `file` (verified first).
pub fn install(db: &Db, file: &mut File) -> Result<(), StorageError> {
    verify(&mut *file)?;
    file.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::new(file);
    read_header(&mut r)?;

    let mut wipe = WriteBatch::default();
    for cf in SNAPSHOT_CFS {
        wipe.delete_range_cf(db.cf(cf), &[][..], &KEY_UPPER[..]);
    }
    wipe.put_cf(db.cf(Cf::RaftMeta), INSTALL_MARKER, [codec::FORMAT_V1]);
    write_synced(db, wipe)?;

    let mut batch = WriteBatch::default();
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)?;
        if tag[0] == 0 {
            break;
        }
        let cf = *SNAPSHOT_CFS.get(tag[0] as usize - 1).ok_or_else(|| corrupt("unknown column family tag"))?;
        let key = read_chunk(&mut r)?;
        let value = read_chunk(&mut r)?;
        batch.put_cf(db.cf(cf), key, value);
        if batch.size_in_bytes() >= INSTALL_BATCH_BYTES_MAX {
            db.raw().write(std::mem::take(&mut batch))?;
        }
    }
    batch.delete_cf(db.cf(Cf::RaftMeta), INSTALL_MARKER);
    write_synced(db, batch)
}

fn read_chunk<R: Read>(r: &mut R) -> Result<Vec<u8>, StorageError> {
    let len = read_u32(r)?;
    if len > RECORD_BYTES_MAX {
        return Err(corrupt("record too large"));
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn write_synced(db: &Db, batch: WriteBatch) -> Result<(), StorageError> {
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    db.raw().write_opt(batch, &wo)?;
    Ok(())
}

/// If an install was interrupted, empties the state machine (the Raft layer then rebuilds it
/// from a snapshot or the log). Returns whether it did.
pub fn recover_interrupted_install(db: &Db) -> Result<bool, StorageError> {
    if db.get_raw(Cf::RaftMeta, INSTALL_MARKER)?.is_none() {
        return Ok(false);
    }
    tracing::warn!("a snapshot install was interrupted; emptying the state machine to fetch it again");
    let mut wipe = WriteBatch::default();
    for cf in SNAPSHOT_CFS {
        wipe.delete_range_cf(db.cf(cf), &[][..], &KEY_UPPER[..]);
    }
    wipe.delete_cf(db.cf(Cf::RaftMeta), INSTALL_MARKER);
    write_synced(db, wipe)?;
    Ok(true)
}
