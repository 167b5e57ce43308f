//! Reading a page of one volume's journal without copying it: the replay path of `sync/changes`.
//!
//! ```text
//!   RocksDB raw iterator ──▶ (key, value) borrowed from the block cache
//!        │  value = FORMAT_V1 ‖ prost JournalEntry
//!        ▼
//!   JournalEntryRef<'_>  (borrowed &str fields, no allocation)  ──▶ visit(entry, prost bytes)
//! ```
//!
//! The visitor writes each entry wherever it wants (the API layer writes JSON or length-delimited
//! protobuf straight into one response buffer). Nothing is copied here: fields borrow the
//! iterator's slices and live only for the visit.
//!
//! The borrowed decoder accepts exactly what it understands (known tags with their wire types,
//! well-formed varints, in-bounds lengths, UTF-8 strings, unknown non-group fields skipped). Any
//! other value is decoded again by prost into an owned [`JournalEntry`], so what decodes and
//! what it decodes to are prost's decision; bytes prost refuses are [`StorageError::Corrupt`].

use prost::Message;
use rocksdb::ReadOptions;

use crate::codec::FORMAT_V1;
use crate::db::{Cf, Db};
use crate::error::StorageError;
use crate::keys;
use crate::records::JournalEntry;

/// One journal entry, its fields borrowed from the stored bytes (see [`JournalEntry`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalEntryRef<'a> {
    pub seq: u64,
    pub volume_id: &'a str,
    pub team_id: &'a str,
    pub source: &'a str,
    pub replica_id: Option<&'a str>,
    pub event_type: &'a str,
    pub path: &'a str,
    pub normalized_path: &'a str,
    pub old_path: Option<&'a str>,
    pub normalized_old_path: Option<&'a str>,
    pub tombstone: bool,
    pub entry_kind: Option<&'a str>,
    pub mode: Option<u32>,
    pub content_ref: Option<&'a str>,
    pub size_bytes: Option<u64>,
    pub metadata_json: Option<&'a str>,
    pub created_at_ms: i64,
}

impl<'a> JournalEntryRef<'a> {
    /// Borrows every field of an owned entry.
    pub fn of(e: &'a JournalEntry) -> Self {
        JournalEntryRef {
            seq: e.seq,
            volume_id: &e.volume_id,
            team_id: &e.team_id,
            source: &e.source,
            replica_id: e.replica_id.as_deref(),
            event_type: &e.event_type,
            path: &e.path,
            normalized_path: &e.normalized_path,
            old_path: e.old_path.as_deref(),
            normalized_old_path: e.normalized_old_path.as_deref(),
            tombstone: e.tombstone,
            entry_kind: e.entry_kind.as_deref(),
            mode: e.mode,
            content_ref: e.content_ref.as_deref(),
            size_bytes: e.size_bytes,
            metadata_json: e.metadata_json.as_deref(),
            created_at_ms: e.created_at_ms,
        }
    }

    /// The owned record, field for field.
    pub fn to_owned_entry(&self) -> JournalEntry {
        JournalEntry {
            seq: self.seq,
            volume_id: self.volume_id.into(),
            team_id: self.team_id.into(),
            source: self.source.into(),
            replica_id: self.replica_id.map(Into::into),
            event_type: self.event_type.into(),
            path: self.path.into(),
            normalized_path: self.normalized_path.into(),
            old_path: self.old_path.map(Into::into),
            normalized_old_path: self.normalized_old_path.map(Into::into),
            tombstone: self.tombstone,
            entry_kind: self.entry_kind.map(Into::into),
            mode: self.mode,
            content_ref: self.content_ref.map(Into::into),
            size_bytes: self.size_bytes,
            metadata_json: self.metadata_json.map(Into::into),
            created_at_ms: self.created_at_ms,
        }
    }

    /// Decodes prost bytes of a [`JournalEntry`] without allocating; `None` for anything the
    /// borrowed decoder does not handle (the caller falls back to prost, see the module doc).
    pub fn decode(mut buf: &'a [u8]) -> Option<Self> {
        let mut e = JournalEntryRef::default();
        while !buf.is_empty() {
            let key = varint(&mut buf)?;
            if key > u64::from(u32::MAX) {
                return None;
            }
            let (tag, wire) = (key >> 3, key & 7);
            match (tag, wire) {
                (1, 0) => e.seq = varint(&mut buf)?,
                (2, 2) => e.volume_id = string(&mut buf)?,
                (3, 2) => e.team_id = string(&mut buf)?,
                (4, 2) => e.source = string(&mut buf)?,
                (5, 2) => e.replica_id = Some(string(&mut buf)?),
                (6, 2) => e.event_type = string(&mut buf)?,
                (7, 2) => e.path = string(&mut buf)?,
                (8, 2) => e.normalized_path = string(&mut buf)?,
                (9, 2) => e.old_path = Some(string(&mut buf)?),
                (10, 2) => e.normalized_old_path = Some(string(&mut buf)?),
                (11, 0) => e.tombstone = varint(&mut buf)? != 0,
                (12, 2) => e.entry_kind = Some(string(&mut buf)?),
                (13, 0) => e.mode = Some(varint(&mut buf)? as u32),
                (14, 2) => e.content_ref = Some(string(&mut buf)?),
                (15, 0) => e.size_bytes = Some(varint(&mut buf)?),
                (16, 2) => e.metadata_json = Some(string(&mut buf)?),
                (17, 0) => e.created_at_ms = varint(&mut buf)? as i64,
                // A known tag with another wire type is prost's error to report.
                (1..=17, _) | (0, _) => return None,
                (_, 0) => {
                    varint(&mut buf)?;
                }
                (_, 1) => buf = buf.get(8..)?,
                (_, 2) => {
                    bytes(&mut buf)?;
                }
                (_, 5) => buf = buf.get(4..)?,
                _ => return None,
            }
        }
        Some(e)
    }
}

/// A base-128 varint as prost reads it: at most ten bytes, the tenth at most 1.
#[inline]
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        if i == 9 && b > 1 {
            return None;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

#[inline]
fn bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(buf)?).ok()?;
    if len > buf.len() {
        return None;
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Some(head)
}

#[inline]
fn string<'a>(buf: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(bytes(buf)?).ok()
}

/// What [`read_page`] visited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    pub entries: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Prost bytes handed to the visitor (stored values minus their format byte).
    pub value_bytes: usize,
}

/// Visits the entries of `volume` with `seq > after`, ascending, at most `limit`: each as a
/// borrowed entry and its prost bytes (the stored value without its format-version byte). The
/// visitor returns whether it wants more (a caller's byte budget): `false` ends the page after
/// that entry.
pub fn read_page<F>(db: &Db, volume: &str, after: u64, limit: usize, mut visit: F) -> Result<PageStats, StorageError>
where
    F: FnMut(&JournalEntryRef<'_>, &[u8]) -> bool,
{
    let mut stats = PageStats::default();
    let Some(start_seq) = after.checked_add(1) else { return Ok(stats) };
    if limit == 0 {
        return Ok(stats);
    }
    let prefix = keys::volume_prefix(volume);
    let mut ro = ReadOptions::default();
    ro.set_iterate_upper_bound(keys::prefix_end(&prefix));
    // A replay walks each block of old journal once: blocks already cached (the tail readers
    // share) are used, but a block read from disk is not inserted, so a long replay neither
    // pays for cache inserts and evictions nor pushes out what other reads need.
    ro.fill_cache(false);
    let mut it = db.raw().raw_iterator_cf_opt(db.cf(Cf::Journal), ro);
    it.seek(keys::journal(volume, start_seq));
    let mut more = true;
    while more && stats.entries < limit {
        let (Some(key), Some(value)) = (it.key(), it.value()) else { break };
        if !key.starts_with(&prefix) {
            break;
        }
        let body = match value.split_first() {
            Some((&FORMAT_V1, body)) => body,
            Some((v, _)) => return Err(StorageError::corrupt("journal", key, format!("unknown format version {v}"))),
            None => return Err(StorageError::corrupt("journal", key, "empty value")),
        };
        let seq = match JournalEntryRef::decode(body) {
            Some(e) => {
                more = visit(&e, body);
                e.seq
            }
            None => {
                let owned = JournalEntry::decode(body).map_err(|e| StorageError::corrupt("journal", key, e))?;
                more = visit(&JournalEntryRef::of(&owned), body);
                owned.seq
            }
        };
        stats.first_seq.get_or_insert(seq);
        stats.last_seq = Some(seq);
        stats.entries += 1;
        stats.value_bytes += body.len();
        it.next();
    }
    it.status()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            seq,
            volume_id: "vol-1".into(),
            team_id: "team".into(),
            source: "replica".into(),
            replica_id: Some("r1".into()),
            event_type: "rename".into(),
            path: "/a/ü \"q\"".into(),
            normalized_path: "/a/u".into(),
            old_path: Some("/b".into()),
            normalized_old_path: Some("".into()),
            tombstone: true,
            entry_kind: Some("file".into()),
            mode: Some(0o644),
            content_ref: Some("sha256:00".into()),
            size_bytes: Some(u64::MAX),
            metadata_json: Some("{\"k\":1}".into()),
            created_at_ms: -1,
        }
    }

    #[test]
    fn borrowed_decode_matches_prost() {
        for e in [entry(1), entry(u64::MAX), JournalEntry::default()] {
            let bytes = e.encode_to_vec();
            assert_eq!(JournalEntryRef::decode(&bytes).map(|r| r.to_owned_entry()), Some(e));
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_odd_bytes_fall_back() {
        let mut bytes = entry(7).encode_to_vec();
        // field 99, varint; field 100, length-delimited; field 101, fixed32; field 102, fixed64
        bytes.extend_from_slice(&[0x98, 0x06, 0x05, 0xa2, 0x06, 0x02, b'h', b'i', 0xad, 0x06, 1, 2, 3, 4]);
        bytes.extend_from_slice(&[0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(JournalEntryRef::decode(&bytes).map(|r| r.to_owned_entry()), Some(entry(7)));
        assert_eq!(JournalEntry::decode(bytes.as_slice()).unwrap(), entry(7));
        // a known tag with the wrong wire type, a cut string, a bad varint, invalid UTF-8
        for bad in [
            &[0x0a, 0x00][..],
            &[0x12, 0x05, b'a'],
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            &[0x12, 0x01, 0xff],
        ] {
            assert_eq!(JournalEntryRef::decode(bad), None, "{bad:?}");
            assert!(JournalEntry::decode(bad).is_err(), "prost refuses {bad:?} too");
        }
    }

    #[test]
    fn pages_stop_at_limit_volume_end_and_refuse_corrupt_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let cf = db.cf(Cf::Journal);
        for seq in 1..=5 {
            db.raw().put_cf(cf, keys::journal("vol-1", seq), crate::codec::encode(&entry(seq))).unwrap();
        }
        db.raw().put_cf(cf, keys::journal("vol-10", 1), crate::codec::encode(&entry(1))).unwrap();
        let page = |after, limit| {
            let mut seqs = Vec::new();
            let stats = read_page(&db, "vol-1", after, limit, |e, raw| {
                assert_eq!(JournalEntry::decode(raw).unwrap(), e.to_owned_entry());
                seqs.push(e.seq);
                true
            })
            .unwrap();
            assert_eq!(stats.entries, seqs.len());
            assert_eq!((stats.first_seq, stats.last_seq), (seqs.first().copied(), seqs.last().copied()));
            seqs
        };
        assert_eq!(page(0, 3), [1, 2, 3]);
        assert_eq!(page(3, 100), [4, 5], "vol-10 shares the prefix `vol-1` but not `vol-1\\0`");
        assert_eq!(page(5, 100), Vec::<u64>::new());
        assert_eq!(page(u64::MAX, 100), Vec::<u64>::new());
        assert_eq!(page(0, 0), Vec::<u64>::new());
        let mut seen = Vec::new();
        let stats = read_page(&db, "vol-1", 0, 100, |e, _| {
            seen.push(e.seq);
            e.seq < 2
        })
        .unwrap();
        assert_eq!((seen, stats.entries, stats.last_seq), (vec![1, 2], 2, Some(2)), "the visitor ends the page");

        db.raw().put_cf(cf, keys::journal("vol-1", 6), [1, 0x12, 0x05]).unwrap();
        let err = read_page(&db, "vol-1", 5, 10, |_, _| true).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { cf: "journal", .. }), "{err}");
        db.raw().put_cf(cf, keys::journal("vol-1", 6), [9]).unwrap();
        let err = read_page(&db, "vol-1", 5, 10, |_, _| true).unwrap_err();
        assert!(err.to_string().contains("unknown format version 9"), "{err}");
    }

    proptest! {
        #[test]
        fn any_bytes_decode_as_prost_does(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let prost = JournalEntry::decode(bytes.as_slice()).ok();
            // Where the borrowed decoder declines, read_page falls back to prost itself.
            if let Some(borrowed) = JournalEntryRef::decode(&bytes) {
                prop_assert_eq!(Some(borrowed.to_owned_entry()), prost);
            }
        }

        #[test]
        fn any_entry_round_trips(seq: u64, path in ".{0,20}", meta in proptest::option::of(".{0,20}"), mode: Option<u32>, at: i64, size: Option<u64>, tomb: bool) {
            let e = JournalEntry { seq, path: path.clone(), normalized_path: path, metadata_json: meta, mode, created_at_ms: at, size_bytes: size, tombstone: tomb, ..entry(0) };
            let bytes = e.encode_to_vec();
            prop_assert_eq!(JournalEntryRef::decode(&bytes).map(|r| r.to_owned_entry()), Some(e));
        }
    }
}
