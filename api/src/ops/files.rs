//! Files by logical path: write (stage the content, then propose), mkdir, remove, move, and the
//! reads (content, stat, a directory's entries).
//!
//! ```text
//!  write: bytes ─▶ stage (inline, or blob store put first) ─▶ propose WriteFile ─▶ seq
//! ```
//!
//! A write whose content cannot be stored proposes nothing; a write refused after staging
//! leaves only an unreferenced object, which garbage collection removes after its grace period.

use axum::body::Bytes;
use tideline_storage::command::{ChangeMode, MakeDir, MovePath, Origin, RemovePath, WriteFile};
use tideline_storage::{CommandKind, ContentRef, NodeRecord, VolumeRecord};
use tideline_types::limits::DIR_LIST_ENTRIES_MAX as LIST_ENTRIES_MAX;
use tideline_types::{path, Reason, Source};

use super::context::Ops;
use crate::error::{ApiError, ApiResult};

/// A change made through the files API (or a restore): source `sandbox`, stamped now.
pub(super) fn sandbox_origin(ops: &Ops, vol: &VolumeRecord) -> Origin {
    Origin {
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        source: Source::Sandbox.as_str().into(),
        replica_id: None,
        at_ms: ops.now_ms(),
    }
}

/// Writes `body` at `path` (a cleaned, non-root path), creating or replacing the file.
pub async fn write(ops: &Ops, vol: &VolumeRecord, path: String, body: Bytes, how: WriteMode) -> ApiResult<()> {
    let size = body.len() as u64;
    let (r, inline) = ops.stage(body, true).await?;
    let cmd = WriteFile {
        origin: Some(sandbox_origin(ops, vol)),
        path,
        content_ref: r.to_string(),
        size,
        inline,
        mode: how.mode,
        exclusive: how.exclusive,
    };
    ops.propose(CommandKind::WriteFile(cmd)).await?;
    Ok(())
}

/// How a write treats what is already at its path.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteMode {
    /// Refuse if anything is at the path.
    pub exclusive: bool,
    /// Permission bits of a new file; 0 is the default (0644). An existing file keeps its own.
    pub mode: u32,
}

/// Makes a directory (with its missing parents when `recursive`).
pub async fn mkdir(ops: &Ops, vol: &VolumeRecord, path: String, recursive: bool, mode: u32) -> ApiResult<()> {
    let cmd = MakeDir { origin: Some(sandbox_origin(ops, vol)), path, recursive, mode };
    ops.propose(CommandKind::MakeDir(cmd)).await?;
    Ok(())
}

/// Removes a file or a directory with everything below it.
pub async fn remove(ops: &Ops, vol: &VolumeRecord, path: String) -> ApiResult<()> {
    ops.propose(CommandKind::Remove(RemovePath { origin: Some(sandbox_origin(ops, vol)), path })).await?;
    Ok(())
}

/// Moves `source` to `destination` (both cleaned, non-root).
pub async fn move_path(ops: &Ops, vol: &VolumeRecord, source: String, destination: String) -> ApiResult<()> {
    let cmd = MovePath { origin: Some(sandbox_origin(ops, vol)), source, destination };
    ops.propose(CommandKind::Move(cmd)).await?;
    Ok(())
}

/// Sets the permission bits of the file or directory at `path`.
pub async fn chmod(ops: &Ops, vol: &VolumeRecord, path: String, mode: u32) -> ApiResult<()> {
    ops.propose(CommandKind::ChangeMode(ChangeMode { origin: Some(sandbox_origin(ops, vol)), path, mode })).await?;
    Ok(())
}

/// The content of the file at `path` as this node has applied it.
pub async fn read(ops: &Ops, vol: &VolumeRecord, path: &str) -> ApiResult<Bytes> {
    let node = stat(ops, vol, path)?;
    if node.is_dir() {
        return Err(ApiError::conflict("path is a directory").because(Reason::PathIsDirectory));
    }
    let r = node
        .content_ref
        .as_deref()
        .and_then(ContentRef::parse)
        .ok_or_else(|| ApiError::internal("file has no content reference"))?;
    ops.content(&r).await?.ok_or_else(|| {
        tracing::error!(volume = %vol.id, path, content_ref = %r, "content missing for a committed file");
        ApiError::internal("file content is missing")
    })
}

/// The namespace node at `path` (404 `file_not_found` if there is none).
pub fn stat(ops: &Ops, vol: &VolumeRecord, path: &str) -> ApiResult<NodeRecord> {
    ops.node()
        .state_machine()
        .node(&vol.id, path)?
        .ok_or_else(|| ApiError::not_found("file not found").because(Reason::FileNotFound))
}

/// The entries of the directory at `path`, by name; a directory over
/// [`LIST_ENTRIES_MAX`] entries is refused rather than cut short.
pub fn list(ops: &Ops, vol: &VolumeRecord, path: &str) -> ApiResult<Vec<(String, NodeRecord)>> {
    let sm = ops.node().state_machine();
    let node = sm
        .node(&vol.id, path)?
        .ok_or_else(|| ApiError::not_found("directory not found").because(Reason::DirectoryNotFound))?;
    if !node.is_dir() {
        return Err(ApiError::conflict("path is not a directory").because(Reason::PathNotDirectory));
    }
    let children = sm.children(&vol.id, path, LIST_ENTRIES_MAX + 1)?;
    if children.len() > LIST_ENTRIES_MAX {
        return Err(ApiError::conflict(format!(
            "directory has more than {LIST_ENTRIES_MAX} entries; list its subdirectories or read sync/changes"
        )));
    }
    Ok(children.into_iter().map(|(name, n)| (path::join(path, &name), n)).collect())
}

#[cfg(test)]
mod tests {
    use tideline_storage::CommandKind;

    use super::*;
    use crate::ops::testing::Fixture;

    const BIG: usize = tideline_storage::INLINE_BYTES_MAX + 1;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn content_that_cannot_be_stored_proposes_nothing() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        // A file where the blobs directory must go: every put fails.
        std::fs::write(f.objects().join("blobs"), "in the way").unwrap();
        let (ops, proposed) = f.counting();
        let e = write(&ops, &vol, "/big.bin".into(), Bytes::from(vec![7; BIG]), Default::default()).await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE, "{}", e.message);
        assert_eq!(proposed(), 0, "nothing is proposed for content that is not durable");
        assert_eq!(f.head(&vol), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_refused_after_staging_leaves_no_entry_only_an_unreferenced_object() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        let ops = f.refusing(|k| matches!(k, CommandKind::WriteFile(_)));
        let body = Bytes::from(vec![7; BIG]);
        let r = ContentRef::of(&body);
        write(&ops, &vol, "/big.bin".into(), body, Default::default()).await.unwrap_err();
        assert_eq!(f.head(&vol), 0, "no journal entry");
        assert!(stat(&f.ops, &vol, "/big.bin").is_err(), "no namespace row");
        assert!(f.ops.blobs().get(&r).await.unwrap().is_some(), "the staged object stays for GC");
        assert!(
            !f.ops.node().state_machine().referenced_content().unwrap().contains(&r.0),
            "and nothing references it"
        );

        tracing::info!("--- the same write, let through, commits and reads back");
        write(&f.ops, &vol, "/big.bin".into(), Bytes::from(vec![7; BIG]), Default::default()).await.unwrap();
        assert_eq!(read(&f.ops, &vol, "/big.bin").await.unwrap().len(), BIG);
        assert_eq!(f.head(&vol), 1);
    }
}
