//! A sealed snapshot as a `tar.gz`, streamed: the manifest (checksum verified) plus each file's
//! content, written by a blocking task into bounded chunks the connection drains.
//!
//! ```text
//!  manifest ─▶ spawn_blocking: archive::write_tar_gz ─▶ ChunkWriter (64 KiB) ─▶ channel (8 ahead)
//!                      ▲ content: inline copy, or the blob store                  ─▶ Stream ─▶ body
//! ```
//!
//! A failure mid-stream ends the stream with an error, so the client sees a broken body, never
//! a short archive that looks complete.

use std::io::{self, Read, Write};

use axum::body::Bytes;
use futures::Stream;
use tideline_storage::manifest::ManifestEntry;
use tideline_storage::{archive, ContentRef, SnapshotRecord};
use tokio::sync::mpsc;

use super::context::Ops;
use super::snapshots::load_manifest;
use crate::error::ApiResult;

/// Archive bytes handed to the connection per chunk, and chunks buffered ahead of it.
const ARCHIVE_CHUNK_BYTES: usize = 64 * 1024;
const ARCHIVE_CHUNKS_AHEAD: usize = 8;

/// The snapshot's archive as a stream of chunks; it starts once the manifest is loaded.
pub async fn archive(ops: &Ops, snap: &SnapshotRecord) -> ApiResult<impl Stream<Item = io::Result<Bytes>>> {
    let m = load_manifest(ops, snap).await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(ARCHIVE_CHUNKS_AHEAD);
    let runtime = tokio::runtime::Handle::current();
    let sm = ops.node().state_machine().clone();
    let blobs = ops.blobs().clone();
    tokio::task::spawn_blocking(move || {
        let mut open = |e: &ManifestEntry| -> io::Result<Box<dyn Read>> {
            let r = e
                .content_ref
                .as_deref()
                .and_then(ContentRef::parse)
                .ok_or_else(|| io::Error::other("no content_ref"))?;
            if let Some(b) = sm.inline_blob(&r).map_err(io::Error::other)? {
                return Ok(Box::new(io::Cursor::new(b)));
            }
            match runtime.block_on(blobs.get(&r)).map_err(io::Error::other)? {
                Some(b) => Ok(Box::new(io::Cursor::new(b))),
                None => Err(io::Error::new(io::ErrorKind::NotFound, format!("content {r} is missing"))),
            }
        };
        let out = ChunkWriter { tx: tx.clone(), buf: Vec::with_capacity(ARCHIVE_CHUNK_BYTES) };
        let result = archive::write_tar_gz(&m, &mut open, out).and_then(|mut w| w.flush());
        if let Err(e) = result {
            tracing::error!(error = %e, "bootstrap archive failed mid-stream");
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// Hands the archive to the connection in bounded chunks; blocks while the client is slow.
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(ARCHIVE_CHUNK_BYTES)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(ARCHIVE_CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= ARCHIVE_CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
