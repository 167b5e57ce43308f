//! The node's one RocksDB database and its column families.
//!
//! The Raft layer keeps its log and vote in [`Cf::RaftLog`] / [`Cf::RaftMeta`] of this same
//! database; the state machine owns the rest. Opening checks the on-disk format version.

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, DB,
};

use crate::codec;
use crate::error::StorageError;

/// Every column family, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    RaftLog,
    RaftMeta,
    SmMeta,
    Volumes,
    Journal,
    Namespace,
    FoldIndex,
    Tokens,
    Requests,
    Blobs,
    VolumeBlobs,
    Replicas,
    PathLatest,
    Conflicts,
    Snapshots,
    GcMarks,
}

impl Cf {
    pub const ALL: [Cf; 16] = [
        Cf::RaftLog,
        Cf::RaftMeta,
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

    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftMeta => "raft_meta",
            Cf::SmMeta => "sm_meta",
            Cf::Volumes => "volumes",
            Cf::Journal => "journal",
            Cf::Namespace => "namespace",
            Cf::FoldIndex => "fold_index",
            Cf::Tokens => "tokens",
            Cf::Requests => "requests",
            Cf::Blobs => "blobs",
            Cf::VolumeBlobs => "volume_blobs",
            Cf::Replicas => "replicas",
            Cf::PathLatest => "path_latest",
            Cf::Conflicts => "conflicts",
            Cf::Snapshots => "snapshots",
            Cf::GcMarks => "gc_marks",
        }
    }

    /// Whether this family is read by gets of one key (some are also scanned, e.g. volume
    /// listings), so a whole-key bloom filter lets a lookup of an absent key (a new path,
    /// request id or blob) skip SST files. The others are only iterated, where a whole-key
    /// filter is never consulted: the Raft log and the journals (ranges of big-endian
    /// indexes) and the fold index (scanned by the case-folded prefix of a path, `apply/append.rs`).
    fn point_lookups(self) -> bool {
        match self {
            Cf::RaftMeta
            | Cf::SmMeta
            | Cf::Volumes
            | Cf::Namespace
            | Cf::Tokens
            | Cf::Requests
            | Cf::Blobs
            | Cf::VolumeBlobs
            | Cf::Replicas
            | Cf::PathLatest
            | Cf::Conflicts
            | Cf::Snapshots
            | Cf::GcMarks => true,
            Cf::RaftLog | Cf::Journal | Cf::FoldIndex => false,
        }
    }

    /// This family's options: every family reads blocks through the one shared `cache`;
    /// point-lookup families add a bloom filter. Filters only go into SST files written from
    /// now on (a file without one is simply read without it), so the on-disk format and every
    /// existing database stay as they are.
    fn options(self, cache: &Cache) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        let mut opts = Options::default();
        if self.point_lookups() {
            table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
            table.set_whole_key_filtering(true);
            // The memtable gets one too: apply looks up keys that are mostly absent (parents
            // already there, GC marks, fold entries) and most lookups hit the memtable first.
            opts.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
            opts.set_memtable_whole_key_filtering(true);
        }
        opts.set_block_based_table_factory(&table);
        opts
    }
}

/// The block cache all column families share (without one, RocksDB gives every family its
/// own 32 MiB cache).
pub const BLOCK_CACHE_BYTES: usize = 128 * 1024 * 1024;
/// Share of a point-lookup family's memtable given to its bloom filter.
const MEMTABLE_BLOOM_RATIO: f64 = 0.02;
/// Bloom filter size of the point-lookup families: about 1% false positives.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// Key in [`Cf::SmMeta`] holding the database format version.
const FORMAT_KEY: &[u8] = b"format";
/// The database layout this build writes and reads.
pub const DB_FORMAT: u32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
struct FormatRecord {
    #[prost(uint32, tag = "1")]
    version: u32,
}

/// Raw (key, value) rows in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// One raw (key, value) row read by [`Db::iter_raw`].
pub type RawRow = Result<(Box<[u8]>, Box<[u8]>), StorageError>;

/// Shared handle to the database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DB>,
}

impl Db {
    /// Opens (or creates) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Db, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_paranoid_checks(true);
        opts.set_max_background_jobs(2);
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = Cf::ALL.iter().map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf.options(&cache)));
        let inner = DB::open_cf_descriptors(&opts, dir, cfs)?;
        let db = Db { inner: Arc::new(inner) };
        db.check_format()?;
        Ok(db)
    }

    fn check_format(&self) -> Result<(), StorageError> {
        match self.get::<FormatRecord>(Cf::SmMeta, FORMAT_KEY)? {
            Some(f) if f.version == DB_FORMAT => Ok(()),
            Some(f) => Err(StorageError::corrupt(
                "sm_meta",
                FORMAT_KEY,
                format!("database format {} is not supported by this build (wants {DB_FORMAT})", f.version),
            )),
            None => {
                let mut wo = rocksdb::WriteOptions::default();
                wo.set_sync(true);
                let value = codec::encode(&FormatRecord { version: DB_FORMAT });
                self.inner.put_cf_opt(self.cf(Cf::SmMeta), FORMAT_KEY, value, &wo)?;
                Ok(())
            }
        }
    }

    pub fn raw(&self) -> &DB {
        &self.inner
    }

    pub fn cf(&self, cf: Cf) -> &ColumnFamily {
        self.inner.cf_handle(cf.name()).expect("every column family is opened in Db::open")
    }

    /// Reads and decodes one value.
    pub fn get<M: Message + Default>(&self, cf: Cf, key: &[u8]) -> Result<Option<M>, StorageError> {
        match self.inner.get_pinned_cf(self.cf(cf), key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(cf.name(), key, &bytes).map(Some),
        }
    }

    pub fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.inner.get_cf(self.cf(cf), key)?)
    }

    /// Decodes up to `limit` values whose keys start with `prefix`, from `start` (inclusive,
    /// defaults to the prefix itself), in key order.
    pub fn scan<M: Message + Default>(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, M)>, StorageError> {
        let mut ro = ReadOptions::default();
        if !prefix.is_empty() {
            ro.set_iterate_upper_bound(crate::keys::prefix_end(prefix));
        }
        let from = start.unwrap_or(prefix);
        let mut out = Vec::new();
        for item in self.inner.iterator_cf_opt(self.cf(cf), ro, IteratorMode::From(from, Direction::Forward)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            let m = codec::decode(cf.name(), &k, &v)?;
            out.push((k.to_vec(), m));
        }
        Ok(out)
    }

    /// Every raw (key, value) whose key starts with `prefix`, in key order, collected: for a
    /// prefix whose rows the caller needs all of at once (a `Txn` merging them with its overlay).
    /// A pass over a whole column family streams with [`Db::iter_raw`] instead.
    pub fn scan_raw(&self, cf: Cf, prefix: &[u8]) -> Result<Rows, StorageError> {
        self.scan_raw_limit(cf, prefix, usize::MAX)
    }

    /// At most `limit` raw (key, value) rows whose key starts with `prefix`, in key order.
    pub fn scan_raw_limit(&self, cf: Cf, prefix: &[u8], limit: usize) -> Result<Rows, StorageError> {
        let mut ro = ReadOptions::default();
        if !prefix.is_empty() {
            ro.set_iterate_upper_bound(crate::keys::prefix_end(prefix));
        }
        let mut out = Vec::new();
        for item in self.inner.iterator_cf_opt(self.cf(cf), ro, IteratorMode::From(prefix, Direction::Forward)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Every raw (key, value) whose key starts with `prefix`, in key order, read as the caller
    /// goes: nothing is collected, so a whole-store pass holds one row at a time.
    pub fn iter_raw<'d>(&'d self, cf: Cf, prefix: &[u8]) -> impl Iterator<Item = RawRow> + 'd {
        let mut ro = ReadOptions::default();
        if !prefix.is_empty() {
            ro.set_iterate_upper_bound(crate::keys::prefix_end(prefix));
        }
        let mode = IteratorMode::From(prefix, Direction::Forward);
        self.inner.iterator_cf_opt(self.cf(cf), ro, mode).map(|row| row.map_err(StorageError::from))
    }

    /// [`Db::iter_raw`], each value decoded.
    pub fn iter<'d, M: Message + Default + 'd>(
        &'d self,
        cf: Cf,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Box<[u8]>, M), StorageError>> + 'd {
        self.iter_raw(cf, prefix).map(move |row| {
            let (k, v) = row?;
            let m = codec::decode(cf.name(), &k, &v)?;
            Ok((k, m))
        })
    }

    /// Syncs the write-ahead log to disk.
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        Ok(self.inner.flush_wal(true)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_written_without_filters_and_with_them_read_back_alike() {
        let dir = tempfile::tempdir().unwrap();
        tracing::info!("--- a database written by a build without bloom filters or a shared cache");
        {
            let mut opts = Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let cfs = Cf::ALL.iter().map(|cf| ColumnFamilyDescriptor::new(cf.name(), Options::default()));
            let old = DB::open_cf_descriptors(&opts, dir.path(), cfs).unwrap();
            for cf in Cf::ALL {
                let h = old.cf_handle(cf.name()).unwrap();
                old.put_cf(h, b"old", b"1").unwrap();
                old.flush_cf(h).unwrap();
            }
        }
        tracing::info!("--- opened by this build, which flushes new files with filters");
        {
            let db = Db::open(dir.path()).unwrap();
            for cf in Cf::ALL {
                db.raw().put_cf(db.cf(cf), b"new", b"2").unwrap();
                db.raw().flush_cf(db.cf(cf)).unwrap();
            }
        }
        tracing::info!("--- after a reopen, both files answer hits and misses in every family");
        let db = Db::open(dir.path()).unwrap();
        for cf in Cf::ALL {
            assert_eq!(db.get_raw(cf, b"old").unwrap().as_deref(), Some(&b"1"[..]), "{cf:?}");
            assert_eq!(db.get_raw(cf, b"new").unwrap().as_deref(), Some(&b"2"[..]), "{cf:?}");
            assert_eq!(db.get_raw(cf, b"absent").unwrap(), None, "{cf:?}");
            assert_eq!(db.scan_raw(cf, b"").unwrap().iter().filter(|(k, _)| k == b"old" || k == b"new").count(), 2);
        }
    }
}
