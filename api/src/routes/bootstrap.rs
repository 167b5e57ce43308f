//! `POST /sandboxvolumes/{id}/sync/bootstrap` and `GET …/sync/bootstrap/archive`: a replica's
//! starting point — the namespace frozen at a seq, as a `tar.gz`, plus the journal after it.
//!
//! ```text
//!  POST: CreateSnapshot ─▶ this node's Freezer hands back the namespace at exactly its seq
//!        (collected off the apply loop) ─▶ portability check for the caller's capabilities
//!        ─▶ manifest to the object store ─▶ SealSnapshot ─▶ 201
//!  GET:  manifest (checksum verified) + content ─▶ tar.gz streamed in bounded chunks
//! ```

use std::io::{self, Read, Write};
use tideline_types::Reason;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tideline_storage::manifest::ManifestEntry;
use tideline_storage::{archive, ContentRef};
use tokio::sync::mpsc;

use super::replicas::{capabilities, CapabilitiesBody};
use super::snapshots::{load_manifest, take_snapshot};
use super::team_volume;
use crate::auth::{Permission, Principal};
use crate::envelope::created;
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, Query};
use crate::state::AppState;
use crate::wire::{now_ms, rfc3339, ToWire};

/// Archive bytes handed to the connection per chunk, and chunks buffered ahead of it.
const ARCHIVE_CHUNK_BYTES: usize = 64 * 1024;
const ARCHIVE_CHUNKS_AHEAD: usize = 8;

#[derive(Deserialize, Default)]
pub struct BootstrapBody {
    snapshot_name: Option<String>,
    snapshot_description: Option<String>,
    case_sensitive: Option<bool>,
    capabilities: Option<CapabilitiesBody>,
}

pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<BootstrapBody>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let caps = capabilities(None, body.case_sensitive, body.capabilities.as_ref());
    let name = body.snapshot_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(default_name);
    let vol = team_volume(&st, caller, &id, None).await?;
    let (snap, seq) =
        take_snapshot(&st, &vol, name, body.snapshot_description.filter(|d| !d.is_empty()), "bootstrap", Some(&caps))
            .await?;
    let sid = snap.id.clone();
    Ok(created(json!({
        "snapshot": snap.to_wire()?,
        "replay_after_seq": seq,
        "archive_download_path": format!("/api/v1/sandboxvolumes/{}/sync/bootstrap/archive?snapshot_id={sid}", vol.id),
    }))
    .into_response())
}

fn default_name() -> String {
    let stamp = rfc3339(now_ms());
    // 2026-11-22T12:00:00.123Z -> 20261122-120000
    let digits: String = stamp.chars().take(19).filter(char::is_ascii_digit).collect();
    format!("sync-bootstrap-{}-{}", &digits[..8], &digits[8..])
}

#[derive(Deserialize)]
pub struct ArchiveQuery {
    snapshot_id: Option<String>,
    consistency: Option<String>,
}

pub async fn archive(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::VolumeRead)?;
    let sid =
        q.snapshot_id.filter(|s| !s.trim().is_empty()).ok_or_else(|| ApiError::bad_request("missing snapshot_id"))?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let snap = st
        .node
        .state_machine()
        .snapshot(&vol.id, &sid)?
        .ok_or_else(|| ApiError::not_found("snapshot not found").because(Reason::SnapshotNotFound))?;
    let m = load_manifest(&st, &snap).await?;

    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(ARCHIVE_CHUNKS_AHEAD);
    let runtime = tokio::runtime::Handle::current();
    let sm = st.node.state_machine().clone();
    let blobs = st.blobs.clone();
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
            // The client sees a broken body, never a short archive that looks complete.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"sync-bootstrap-{sid}.tar.gz\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
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
