//! [`ContentCache`]: file contents on the local disk, by address (`sha256:<hex>` → a file
//! named by the hex), verified when they arrive, bounded in bytes.
//!
//! An address names its bytes forever, so a cached file never goes stale; a change on the
//! server is a new address. Eviction removes the least recently used files until the cache
//! is under its bound again; a reader that holds a file open keeps its bytes (Linux unlinks,
//! it does not truncate).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The hex of a `sha256:<64 hex>` address, or `None` if it is not one.
pub fn address_hex(content_ref: &str) -> Option<&str> {
    let hex = content_ref.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

/// The address of `bytes`.
pub fn address_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub struct ContentCache {
    dir: PathBuf,
    bytes_max: u64,
    /// hex → (size, last use).
    entries: Mutex<HashMap<String, (u64, Instant)>>,
}

impl ContentCache {
    /// A cache in `dir` (made if missing; files already there are reused) of at most `bytes_max`.
    pub fn open(dir: &Path, bytes_max: u64) -> io::Result<ContentCache> {
        fs::create_dir_all(dir)?;
        let mut entries = HashMap::new();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && e.file_type()?.is_file() {
                entries.insert(name, (e.metadata()?.len(), Instant::now()));
            } else if name.ends_with(".part") {
                let _ = fs::remove_file(e.path()); // a download cut short
            }
        }
        let cache = ContentCache { dir: dir.to_path_buf(), bytes_max, entries: Mutex::new(entries) };
        cache.evict();
        Ok(cache)
    }

    /// The cached file of `content_ref`, opened for reading, if present.
    pub fn open_cached(&self, content_ref: &str) -> Option<File> {
        let hex = address_hex(content_ref)?;
        let file = File::open(self.dir.join(hex)).ok()?;
        if let Some(e) = self.entries.lock().expect("cache lock").get_mut(hex) {
            e.1 = Instant::now();
        }
        Some(file)
    }

    /// Stores `bytes` under `content_ref` after checking they are its bytes, and opens them.
    pub fn insert(&self, content_ref: &str, bytes: &[u8]) -> io::Result<File> {
        let hex = address_hex(content_ref)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not an address: {content_ref}")))?;
        if address_of(bytes) != content_ref {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("content does not match {content_ref}")));
        }
        let path = self.dir.join(hex);
        let part = self.dir.join(format!("{hex}.{}.part", std::process::id()));
        {
            let mut f = File::create(&part)?;
            f.write_all(bytes)?;
        }
        fs::rename(&part, &path)?;
        self.entries.lock().expect("cache lock").insert(hex.to_string(), (bytes.len() as u64, Instant::now()));
        self.evict();
        File::open(path)
    }

    /// Bytes the cache holds now.
    pub fn bytes(&self) -> u64 {
        self.entries.lock().expect("cache lock").values().map(|e| e.0).sum()
    }

    fn evict(&self) {
        let mut entries = self.entries.lock().expect("cache lock");
        let mut total: u64 = entries.values().map(|e| e.0).sum();
        if total <= self.bytes_max {
            return;
        }
        let mut by_age: Vec<(Instant, String, u64)> =
            entries.iter().map(|(h, (size, used))| (*used, h.clone(), *size)).collect();
        by_age.sort();
        for (_, hex, size) in by_age {
            if total <= self.bytes_max {
                break;
            }
            let _ = fs::remove_file(self.dir.join(&hex));
            entries.remove(&hex);
            total -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn content_is_verified_found_again_and_evicted_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ContentCache::open(dir.path(), 10).unwrap();
        let a = address_of(b"123456");
        assert!(cache.insert(&a, b"654321").is_err(), "bytes that are not the address's are refused");
        let mut f = cache.insert(&a, b"123456").unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "123456");
        assert!(cache.open_cached(&a).is_some());
        let b = address_of(b"abcdef");
        cache.insert(&b, b"abcdef").unwrap();
        assert!(cache.open_cached(&a).is_none(), "12 bytes > 10: the older one went");
        assert!(cache.open_cached(&b).is_some());
        assert_eq!(cache.bytes(), 6);
        drop(cache);
        let again = ContentCache::open(dir.path(), 10).unwrap();
        assert!(again.open_cached(&b).is_some(), "a new mount reuses what is on disk");
    }

    #[test]
    fn only_sha256_addresses_are_addresses() {
        assert!(address_hex(&address_of(b"x")).is_some());
        assert!(address_hex("sha256:ABC").is_none());
        assert!(address_hex("md5:00").is_none());
    }
}
