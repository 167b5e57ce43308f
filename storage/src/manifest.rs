//! Snapshot manifests: the namespace of one volume frozen at a journal seq (path → kind, mode,
//! size, content_ref), the persisted form of user and bootstrap snapshots.
//!
//! A manifest is built from a RocksDB snapshot handle, so it sees exactly the rows as they were
//! when the handle was taken, and can be built off the apply task. Content is referenced by
//! address, never copied, so snapshots are copy-on-write for free.
//!
//! ```text
//!   RocksDB snapshot ──▶ collect (namespace rows of one volume, sorted by archive name)
//!                    ──▶ encode  ──▶ object store  snapshots/<volume>/<snapshot>/manifest
//!                                                        │
//!   archive::write_tar_gz ◀── decode (magic, checksum, version, trailer) ◀──┘
//! ```
//!
//! Format (version [`MANIFEST_VERSION`]):
//!
//! ```text
//! "TLMANIF\n" | len-delimited ManifestHeader | { len-delimited ManifestEntry }* |
//! len-delimited ManifestTrailer | sha256 of every byte before it (32 bytes)
//! ```
//!
//! Entries are in [`archive_name`] order (relative path, directories with a trailing `/`,
//! compared as bytes), so a directory always precedes what it contains, every path appears once
//! and every entry's parent is a directory listed before it. [`collect`] and [`decode`] both
//! check this; a manifest that does not hold it is refused, never "repaired".

use std::cmp::Ordering;
use std::collections::HashMap;

use object_store::path::Path as ObjectPath;
use prost::Message;
use rocksdb::{Direction, IteratorMode, ReadOptions};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::content_ref::ContentRef;
use crate::db::{Cf, Db};
use crate::error::StorageError;
use crate::keys;
use crate::records::{NodeRecord, KIND_DIR, KIND_FILE};
use tideline_types::path;

/// The manifest format this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
/// First bytes of every manifest.
pub const MAGIC: &[u8; 8] = b"TLMANIF\n";
const CHECKSUM_BYTES: usize = 32;

/// Who and when: the first record of a manifest. Tags are part of the format: never reuse one.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ManifestHeader {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(string, tag = "2")]
    pub volume_id: String,
    #[prost(string, tag = "3")]
    pub snapshot_id: String,
    /// The journal seq the namespace is frozen at: a bootstrap's `replay_after_seq`.
    #[prost(uint64, tag = "4")]
    pub seq: u64,
    #[prost(int64, tag = "5")]
    pub created_at_ms: i64,
}

impl ManifestHeader {
    /// A header of the version this build writes.
    pub fn new(volume_id: &str, snapshot_id: &str, seq: u64, created_at_ms: i64) -> Self {
        ManifestHeader {
            version: MANIFEST_VERSION,
            volume_id: volume_id.to_string(),
            snapshot_id: snapshot_id.to_string(),
            seq,
            created_at_ms,
        }
    }
}

/// One node of the frozen namespace.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ManifestEntry {
    /// A clean absolute path (`/a/b.txt`), never `/`.
    #[prost(string, tag = "1")]
    pub path: String,
    /// [`KIND_FILE`] or [`KIND_DIR`].
    #[prost(string, tag = "2")]
    pub kind: String,
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    /// Bytes of a file's content; 0 for a directory.
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// `sha256:<hex>` of a file's content; none for a directory.
    #[prost(string, optional, tag = "5")]
    pub content_ref: Option<String>,
    #[prost(int64, tag = "6")]
    pub mtime_ms: i64,
}

impl ManifestEntry {
    pub fn is_dir(&self) -> bool {
        self.kind == KIND_DIR
    }
}

/// Counts over the entries: the last record, checked against the entries on decode.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ManifestTrailer {
    #[prost(uint64, tag = "1")]
    pub entries: u64,
    #[prost(uint64, tag = "2")]
    pub files: u64,
    #[prost(uint64, tag = "3")]
    pub directories: u64,
    /// Sum of the entries' sizes (directories count 0).
    #[prost(uint64, tag = "4")]
    pub total_size_bytes: u64,
}

impl ManifestTrailer {
    /// The trailer that describes `entries`.
    pub fn of(entries: &[ManifestEntry]) -> Self {
        let mut t = ManifestTrailer { entries: entries.len() as u64, ..Default::default() };
        for e in entries {
            if e.is_dir() {
                t.directories += 1;
            } else {
                t.files += 1;
            }
            t.total_size_bytes = t.total_size_bytes.saturating_add(e.size);
        }
        t
    }
}

/// A decoded, checked manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub header: ManifestHeader,
    pub entries: Vec<ManifestEntry>,
    pub trailer: ManifestTrailer,
}

/// Why manifest bytes were refused. Both are permanent: reading the same bytes again will not
/// help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is corrupt: {reason}")]
    Corrupt { reason: String },
    #[error("manifest version {0} is not supported by this build (it reads version {MANIFEST_VERSION})")]
    UnsupportedVersion(u32),
}

fn corrupt(reason: impl Into<String>) -> ManifestError {
    ManifestError::Corrupt { reason: reason.into() }
}

/// Where the manifest of `snapshot` of `volume` lives: `snapshots/<volume>/<snapshot>/manifest`.
///
/// Each id is one path segment: a `/` or other reserved character in an id is percent-encoded
/// by `object_store`, never a new directory level.
pub fn location(volume: &str, snapshot: &str) -> ObjectPath {
    debug_assert!(!volume.is_empty() && !snapshot.is_empty(), "volume and snapshot ids are non-empty");
    ObjectPath::from_iter(["snapshots", volume, snapshot, "manifest"])
}

/// The entry's name in a bootstrap archive: its path without the leading `/`, a directory's
/// with a trailing `/` (`/a/b` file → `a/b`, `/a` directory → `a/`).
pub fn archive_name(entry: &ManifestEntry) -> String {
    let mut name = entry.path.strip_prefix('/').unwrap_or(&entry.path).to_string();
    if entry.is_dir() {
        name.push('/');
    }
    name
}

/// Compares two entries by [`archive_name`], as bytes, without building the names.
pub fn archive_order(a: &ManifestEntry, b: &ManifestEntry) -> Ordering {
    fn name_bytes(e: &ManifestEntry) -> impl Iterator<Item = u8> + '_ {
        let p = e.path.strip_prefix('/').unwrap_or(&e.path);
        let slash: &[u8] = if e.is_dir() { b"/" } else { b"" };
        p.bytes().chain(slash.iter().copied())
    }
    name_bytes(a).cmp(name_bytes(b))
}

/// Checks one entry on its own: a clean non-root path, a known kind, a content_ref only on a
/// file (and on every file) in canonical form, a directory of size 0.
pub fn check_entry(e: &ManifestEntry) -> Result<(), String> {
    match path::clean_non_root(&e.path) {
        Ok(clean) if clean == e.path => {}
        _ => return Err(format!("entry path {:?} is not a clean absolute path below the root", e.path)),
    }
    match e.kind.as_str() {
        KIND_FILE => match &e.content_ref {
            Some(r) if ContentRef::parse(r).is_some() => Ok(()),
            Some(r) => Err(format!("file {:?} has an invalid content_ref {r:?}", e.path)),
            None => Err(format!("file {:?} has no content_ref", e.path)),
        },
        KIND_DIR if e.content_ref.is_some() => Err(format!("directory {:?} has a content_ref", e.path)),
        KIND_DIR if e.size != 0 => Err(format!("directory {:?} has size {}", e.path, e.size)),
        KIND_DIR => Ok(()),
        other => Err(format!("entry {:?} has unknown kind {other:?}", e.path)),
    }
}

/// Checks a whole entry list: every entry valid ([`check_entry`]), strictly increasing in
/// [`archive_order`], each path once, each parent a directory listed earlier (or the root).
pub fn check_entries(entries: &[ManifestEntry]) -> Result<(), String> {
    let mut seen: HashMap<&str, bool> = HashMap::with_capacity(entries.len());
    let mut prev: Option<&ManifestEntry> = None;
    for e in entries {
        check_entry(e)?;
        if let Some(p) = prev {
            if archive_order(p, e) != Ordering::Less {
                return Err(format!("entries out of order: {:?} before {:?}", archive_name(p), archive_name(e)));
            }
        }
        let (parent, _) = path::split(&e.path);
        if !path::is_root(parent) && seen.get(parent) != Some(&true) {
            return Err(format!("parent of {:?} is not a directory listed before it", e.path));
        }
        if seen.insert(&e.path, e.is_dir()).is_some() {
            return Err(format!("path {:?} appears twice", e.path));
        }
        prev = Some(e);
    }
    Ok(())
}

/// Encodes a manifest of `entries` (in manifest order, as [`collect`] returns them) and returns
/// the bytes with the trailer it wrote. The header is written as given: build it with
/// [`ManifestHeader::new`] to write this build's version.
///
/// # Panics
/// If `entries` fail [`check_entries`]: such a manifest could never be read back, and a snapshot
/// that is lost at restore time is worse than a loud failure at creation.
pub fn encode(header: &ManifestHeader, entries: &[ManifestEntry]) -> (Vec<u8>, ManifestTrailer) {
    if let Err(reason) = check_entries(entries) {
        panic!("refusing to encode an unreadable manifest: {reason}");
    }
    let trailer = ManifestTrailer::of(entries);
    let body_len: usize = entries.iter().map(|e| e.encoded_len() + 10).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + header.encoded_len() + body_len + 64);
    out.extend_from_slice(MAGIC);
    header.encode_length_delimited(&mut out).expect("Vec<u8> grows as needed");
    for e in entries {
        e.encode_length_delimited(&mut out).expect("Vec<u8> grows as needed");
    }
    trailer.encode_length_delimited(&mut out).expect("Vec<u8> grows as needed");
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    (out, trailer)
}

/// Decodes and checks manifest bytes: magic, checksum, version, every entry and their order
/// ([`check_entries`]), and the trailer's counts. Bad bytes are an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    if bytes.len() < MAGIC.len() + CHECKSUM_BYTES {
        return Err(corrupt(format!("{} bytes is too short to be a manifest", bytes.len())));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(corrupt("bad magic: not a manifest"));
    }
    let (covered, sum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    if Sha256::digest(covered).as_slice() != sum {
        return Err(corrupt("checksum mismatch"));
    }

    let mut rest = &covered[MAGIC.len()..];
    let header_bytes = next_frame(&mut rest)?.ok_or_else(|| corrupt("missing header"))?;
    let header = ManifestHeader::decode(header_bytes).map_err(|e| corrupt(format!("header: {e}")))?;
    if header.version != MANIFEST_VERSION {
        return Err(ManifestError::UnsupportedVersion(header.version));
    }

    // Every frame after the header is an entry except the last, which is the trailer.
    let mut frames = Vec::new();
    while let Some(frame) = next_frame(&mut rest)? {
        frames.push(frame);
    }
    let trailer_bytes = frames.pop().ok_or_else(|| corrupt("missing trailer"))?;
    let trailer = ManifestTrailer::decode(trailer_bytes).map_err(|e| corrupt(format!("trailer: {e}")))?;
    let entries = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| ManifestEntry::decode(f).map_err(|e| corrupt(format!("entry {i}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;

    check_entries(&entries).map_err(corrupt)?;
    let counted = ManifestTrailer::of(&entries);
    if counted != trailer {
        return Err(corrupt(format!("trailer {trailer:?} does not match the entries {counted:?}")));
    }
    Ok(Manifest { header, entries, trailer })
}

/// Splits the next length-delimited frame off `rest`; `None` at the end.
fn next_frame<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ManifestError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let len = prost::decode_length_delimiter(&mut *rest).map_err(|e| corrupt(format!("record length: {e}")))?;
    if len > rest.len() {
        return Err(corrupt(format!("record of {len} bytes runs past the end ({} left)", rest.len())));
    }
    let (frame, tail) = rest.split_at(len);
    *rest = tail;
    Ok(Some(frame))
}

/// Reads every namespace row of `volume` as it was when `snapshot` was taken, as manifest
/// entries in manifest order. Rows written after the snapshot are not seen.
///
/// A row that does not decode, or that no manifest could hold (bad path, kind or content_ref;
/// a parent that is missing or not a directory), is an error: a snapshot of a broken namespace
/// is refused at creation rather than discovered at restore.
pub fn collect(
    db: &Db,
    snapshot: &rocksdb::SnapshotWithThreadMode<'_, rocksdb::DB>,
    volume: &str,
) -> Result<Vec<ManifestEntry>, StorageError> {
    debug_assert!(!volume.is_empty() && !volume.contains('\0'), "volume ids are non-empty and NUL-free");
    let prefix = keys::volume_prefix(volume);
    let cf = Cf::Namespace;
    let mut ro = ReadOptions::default();
    ro.set_snapshot(snapshot);
    ro.set_iterate_upper_bound(keys::prefix_end(&prefix));
    let mut entries = Vec::new();
    for item in db.raw().iterator_cf_opt(db.cf(cf), ro, IteratorMode::From(&prefix, Direction::Forward)) {
        let (key, value) = item?;
        if !key.starts_with(&prefix) {
            break;
        }
        let node: NodeRecord = codec::decode(cf.name(), &key, &value)?;
        let path = keys::node_path(volume, &key)
            .ok_or_else(|| StorageError::corrupt(cf.name(), &key, "key does not name a node path"))?;
        let entry = ManifestEntry {
            path,
            kind: node.kind,
            mode: node.mode,
            size: node.size,
            content_ref: node.content_ref,
            mtime_ms: node.mtime_ms,
        };
        check_entry(&entry).map_err(|reason| StorageError::corrupt(cf.name(), &key, reason))?;
        entries.push(entry);
    }
    entries.sort_unstable_by(archive_order);
    check_entries(&entries)
        .map_err(|reason| StorageError::Invariant(format!("namespace of volume {volume}: {reason}")))?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            kind: kind.into(),
            mode: 0o644,
            size: 0,
            content_ref: (kind == KIND_FILE).then(|| ContentRef::of(b"").to_string()),
            mtime_ms: 0,
        }
    }

    #[test]
    fn check_entries_refuses_what_no_manifest_may_hold() {
        let ok = vec![entry("/a", KIND_DIR), entry("/a/b", KIND_FILE)];
        assert_eq!(check_entries(&ok), Ok(()));
        let orphan = vec![entry("/a/b", KIND_FILE)];
        assert!(check_entries(&orphan).unwrap_err().contains("parent"));
        let under_file = vec![entry("/a", KIND_FILE), entry("/a/b", KIND_FILE)];
        assert!(check_entries(&under_file).unwrap_err().contains("parent"));
        let twice = vec![entry("/a", KIND_FILE), entry("/a", KIND_DIR)];
        assert!(check_entries(&twice).unwrap_err().contains("twice"));
        let unsorted = vec![entry("/b", KIND_FILE), entry("/a", KIND_FILE)];
        assert!(check_entries(&unsorted).unwrap_err().contains("order"));
        for bad in ["/", "a", "/a/", "/a//b", "/a/../b", "/a/./b"] {
            assert!(check_entry(&entry(bad, KIND_FILE)).is_err(), "{bad}");
        }
        assert!(check_entry(&entry("/x", "symlink")).is_err());
        let mut dir_with_ref = entry("/d", KIND_DIR);
        dir_with_ref.content_ref = Some(ContentRef::of(b"").to_string());
        assert!(check_entry(&dir_with_ref).is_err());
        let mut bad_ref = entry("/f", KIND_FILE);
        bad_ref.content_ref = Some("sha256:xyz".into());
        assert!(check_entry(&bad_ref).is_err());
    }

    #[test]
    fn location_keeps_each_id_one_segment() {
        assert_eq!(location("v1", "s1").as_ref(), "snapshots/v1/s1/manifest");
        assert_eq!(location("v/1", "s1").parts().count(), 4);
    }
}
