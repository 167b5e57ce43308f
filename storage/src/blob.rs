//! Content-addressed blob store over `object_store`: `blobs/sha256/<hex>`.
//!
//! Large file content is put here *before* the command that references it is proposed, so a
//! committed journal entry never points at missing bytes. Every read is checked against its
//! hash. For a local directory store, a put is fsynced (file, then directory) before it returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use crate::content_ref::ContentRef;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The store could not be reached or refused the operation; retrying may succeed.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// Bytes came back that do not hash to their address.
    #[error("blob {content_ref} is corrupt: read bytes hash to {actual}")]
    Corrupt { content_ref: String, actual: String },
}

/// An object-store failure as a [`BlobError::Unavailable`], counted by operation in
/// `tideline_object_store_errors_total{op}` (an operator's first sign of a sick store).
fn unavailable(op: &'static str, e: impl std::fmt::Display) -> BlobError {
    metrics::counter!("tideline_object_store_errors_total", "op" => op).increment(1);
    BlobError::Unavailable(e.to_string())
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set for a local directory store: the root to fsync under.
    local_root: Option<PathBuf>,
}

impl BlobStore {
    /// A store in a local directory (created if missing).
    pub fn local(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let root = dir.canonicalize()?;
        let fs = LocalFileSystem::new_with_prefix(&root).map_err(std::io::Error::other)?;
        Ok(BlobStore { store: Arc::new(fs), local_root: Some(root) })
    }

    /// Any `object_store` implementation (S3, memory, …).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        BlobStore { store, local_root: None }
    }

    fn location(content: &ContentRef) -> ObjectPath {
        ObjectPath::from(format!("blobs/sha256/{}", content.hex()))
    }

    /// Stores `bytes` under their address, durably. Idempotent. `now_ms` is the caller's clock
    /// (milliseconds since the epoch), the one garbage collection ages objects by.
    pub async fn put(&self, content: &ContentRef, bytes: Bytes, now_ms: i64) -> Result<(), BlobError> {
        debug_assert_eq!(&ContentRef::of(&bytes), content);
        let location = Self::location(content);
        match self.store.head(&location).await {
            // Already there and fresh: garbage collection leaves objects younger than its grace
            // period alone, so the command about to reference it is safe.
            Ok(meta) if age(meta.last_modified.timestamp_millis(), now_ms) < REFRESH_AGE => return Ok(()),
            // Old enough to be a collection candidate: write it again, which makes it fresh.
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(unavailable("head", e)),
        }
        self.store.put(&location, PutPayload::from_bytes(bytes)).await.map_err(|e| unavailable("put", e))?;
        if let Some(root) = &self.local_root {
            let file = root.join(location.as_ref());
            tokio::task::spawn_blocking(move || fsync_file_and_dir(&file))
                .await
                .map_err(|e| unavailable("fsync", e))?
                .map_err(|e| unavailable("fsync", format!("fsync blob: {e}")))?;
        }
        Ok(())
    }

    /// Reads a blob and checks its hash; `None` if the store does not have it.
    pub async fn get(&self, content: &ContentRef) -> Result<Option<Bytes>, BlobError> {
        let got = match self.store.get(&Self::location(content)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable("get", e)),
        };
        let bytes = got.bytes().await.map_err(|e| unavailable("get", e))?;
        let actual = ContentRef::of(&bytes);
        if &actual != content {
            return Err(BlobError::Corrupt { content_ref: content.to_string(), actual: actual.to_string() });
        }
        Ok(Some(bytes))
    }
}

/// A blob put finds an existing object younger than this and skips the upload; an older one is
/// uploaded again. Must stay well under the collector's grace period.
pub const REFRESH_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How long before `now_ms` a store timestamp was (both milliseconds since the epoch); zero for
/// a timestamp after it. The caller's clock, never this module's: storage reads no clock.
fn age(last_modified_ms: i64, now_ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(now_ms.saturating_sub(last_modified_ms).max(0) as u64)
}

/// Garbage collection of content-addressed objects.
impl BlobStore {
    /// Every content blob in the store with its age at `now_ms`, at most `limit`.
    pub async fn list_blobs(
        &self,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<(ContentRef, std::time::Duration)>, BlobError> {
        use futures::TryStreamExt;
        let prefix = ObjectPath::from("blobs/sha256");
        let mut stream = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = stream.try_next().await.map_err(|e| unavailable("list", e))? {
            let name = meta.location.filename().unwrap_or_default();
            if let Some(r) = ContentRef::parse(&format!("sha256:{name}")) {
                out.push((r, age(meta.last_modified.timestamp_millis(), now_ms)));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes a blob only if it is still at least `min_age` old at `now_ms` (a writer that
    /// re-put it since the collector listed it has made it young again). Returns whether it was
    /// deleted.
    pub async fn delete_if_older(
        &self,
        content: &ContentRef,
        min_age: std::time::Duration,
        now_ms: i64,
    ) -> Result<bool, BlobError> {
        let location = Self::location(content);
        match self.store.head(&location).await {
            Ok(meta) if age(meta.last_modified.timestamp_millis(), now_ms) >= min_age => {}
            Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(unavailable("head", e)),
        }
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(unavailable("delete", e)),
        }
    }
}

fn fsync_file_and_dir(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Named objects that are not content-addressed (snapshot manifests): the caller names the
/// location and the object carries its own checksum.
impl BlobStore {
    /// Stores `bytes` at `location`, replacing what was there, durably: for a local store the
    /// file and every directory up to the root are fsynced before this returns (a new
    /// `snapshots/<volume>/<snapshot>/` chain must survive a crash too). Writing the same bytes
    /// again is harmless, so any node may finish a write another started.
    pub async fn put_object(&self, location: &ObjectPath, bytes: Bytes) -> Result<(), BlobError> {
        debug_assert!(!location.as_ref().starts_with("blobs/"), "blobs/ is written only by `put`, by address");
        self.store.put(location, PutPayload::from_bytes(bytes)).await.map_err(|e| unavailable("put", e))?;
        if let Some(root) = &self.local_root {
            let root = root.clone();
            let file = root.join(location.as_ref());
            tokio::task::spawn_blocking(move || fsync_file_and_ancestors(&root, &file))
                .await
                .map_err(|e| unavailable("fsync", e))?
                .map_err(|e| unavailable("fsync", format!("fsync object: {e}")))?;
        }
        Ok(())
    }

    /// Reads the object at `location`; `None` if there is none.
    pub async fn get_object(&self, location: &ObjectPath) -> Result<Option<Bytes>, BlobError> {
        let got = match self.store.get(location).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable("get", e)),
        };
        got.bytes().await.map(Some).map_err(|e| unavailable("get", e))
    }

    /// Deletes the object at `location`; one that is already gone is not an error.
    pub async fn delete_object(&self, location: &ObjectPath) -> Result<(), BlobError> {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable("delete", e)),
        }
    }
}

/// Fsyncs `file`, its directory, and each directory above it up to and including `root`.
fn fsync_file_and_ancestors(root: &Path, file: &Path) -> std::io::Result<()> {
    fsync_file_and_dir(file)?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        dir = d.parent();
        if let Some(parent) = dir {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_verifies_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let data = Bytes::from_static(b"some content");
        let r = ContentRef::of(&data);
        assert_eq!(store.get(&r).await.unwrap(), None);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        store.put(&r, data.clone(), now).await.unwrap();
        store.put(&r, data.clone(), now).await.unwrap();
        assert_eq!(store.get(&r).await.unwrap(), Some(data));

        let on_disk = dir.path().join(format!("blobs/sha256/{}", r.hex()));
        std::fs::write(&on_disk, b"tampered").unwrap();
        assert!(matches!(store.get(&r).await, Err(BlobError::Corrupt { .. })));
    }
}
