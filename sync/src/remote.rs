//! The volume side: the sync routes of one volume as the worker uses them, through
//! [`tideline_client`], with the failures it must tell apart (reseed, lease expired)
//! classified by their `details.reason`.
//!
//! ```text
//!  worker ─▶ Remote (volume, replica) ─▶ tideline_client::Client ─▶ server
//!                 ◀── SyncError::{Reseed, LeaseExpired, Conflict, …} ◀── ClientError
//! ```

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use tideline_client::{ChangesQuery, Client};
use tideline_types::limits::{CONFLICTS_PAGE_MAX, SYNC_PAGE_ENTRIES};
pub use tideline_types::wire::SyncJournalEntry as JournalEntry;
use tideline_types::wire::{
    AppendRequest, AppendResponse, BootstrapRequest, BootstrapResponse, ChangesPage, ConflictUpdate, ReplicaChange,
    ReplicaRequest, SyncConflict,
};
use tideline_types::ConflictStatus;
use tokio::io::AsyncWriteExt;

use super::local::Capabilities;
use crate::error::{SyncError, SyncResult};

/// Entries asked for per `changes` page (never more than the server serves in one).
pub const PAGE_ENTRIES: usize = SYNC_PAGE_ENTRIES;

/// One volume's sync routes for one replica.
#[derive(Clone)]
pub struct Remote {
    client: Client,
    volume: String,
    pub replica_id: String,
}

impl Remote {
    /// The routes of `volume` as `replica_id`, with the client's default deadlines (10 s to
    /// connect, 30 s per request, 10 min per transfer).
    pub fn new(server: &str, token: &str, volume: &str, replica_id: &str) -> SyncResult<Remote> {
        Ok(Remote {
            client: Client::new(server, token)?,
            volume: volume.to_string(),
            replica_id: replica_id.to_string(),
        })
    }

    /// The volume itself (existence and access check).
    pub async fn volume(&self) -> SyncResult<tideline_types::wire::SandboxVolume> {
        Ok(self.client.get_volume(&self.volume).await?)
    }

    /// Registers (or renews) the replica; returns the head seq.
    pub async fn register(&self, caps: &Capabilities, root: &Path) -> SyncResult<u64> {
        let req = ReplicaRequest {
            display_name: Some(hostname()),
            platform: Some(std::env::consts::OS.to_string()),
            root_path: Some(root.display().to_string()),
            case_sensitive: Some(caps.case_sensitive),
            capabilities: Some(*caps),
        };
        Ok(self.client.put_replica(&self.volume, &self.replica_id, &req).await?.head_seq)
    }

    /// One page of entries after `after`, waiting up to `wait` for the first one.
    pub async fn changes(&self, after: u64, wait: Duration) -> SyncResult<ChangesPage> {
        let q = ChangesQuery { after, limit: Some(PAGE_ENTRIES), wait: Some(wait), consistency: None };
        Ok(self.client.changes(&self.volume, &q).await?)
    }

    /// Sends one batch of changes (retried by the client where safe: the request id makes it
    /// idempotent).
    pub async fn append(
        &self,
        request_id: &str,
        base_seq: u64,
        changes: &[ReplicaChange],
    ) -> SyncResult<AppendResponse> {
        let req = AppendRequest { request_id: request_id.to_string(), base_seq, changes: changes.to_vec() };
        Ok(self.client.append(&self.volume, &self.replica_id, &req).await?)
    }

    /// Reports the replica's cursor (and renews its lease).
    pub async fn put_cursor(&self, seq: u64) -> SyncResult<()> {
        self.client.put_cursor(&self.volume, &self.replica_id, seq).await?;
        Ok(())
    }

    /// The bytes behind a content ref.
    pub async fn payload(&self, content_ref: &str) -> SyncResult<bytes::Bytes> {
        Ok(self.client.replay_payload(&self.volume, content_ref).await?)
    }

    /// Freezes the namespace for a bootstrap.
    pub async fn bootstrap(&self, caps: &Capabilities) -> SyncResult<BootstrapResponse> {
        let req = BootstrapRequest {
            snapshot_name: Some(format!("bootstrap {}", self.replica_id)),
            snapshot_description: None,
            case_sensitive: Some(caps.case_sensitive),
            capabilities: Some(*caps),
        };
        Ok(self.client.bootstrap(&self.volume, &req).await?)
    }

    /// Downloads the archive at `download_path` into `to`, reporting bytes as they arrive.
    pub async fn download(&self, download_path: &str, to: &Path, mut progress: impl FnMut(u64)) -> SyncResult<()> {
        let mut body = self.client.bootstrap_archive(download_path).await?;
        let io = |e: std::io::Error| SyncError::io(format!("write {}", to.display()), e);
        let mut file = tokio::fs::File::create(to).await.map_err(io)?;
        while let Some(chunk) = body.chunk().await.map_err(|e| SyncError::reading("download archive", e))? {
            file.write_all(&chunk).await.map_err(io)?;
            progress(chunk.len() as u64);
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }

    /// The volume's conflicts with `status`, newest first (as many as one page holds).
    pub async fn conflicts(&self, status: ConflictStatus) -> SyncResult<Vec<SyncConflict>> {
        Ok(self.client.conflicts(&self.volume, Some(status), Some(CONFLICTS_PAGE_MAX)).await?.conflicts)
    }

    /// Marks one conflict `resolved` or `ignored`.
    pub async fn mark(&self, conflict_id: &str, status: ConflictStatus) -> SyncResult<SyncConflict> {
        let req =
            ConflictUpdate { status, resolution: Some("marked with tideline sync conflicts mark".into()), note: None };
        Ok(self.client.update_conflict(&self.volume, conflict_id, &req).await?)
    }
}

/// A file's content as an append carries it.
pub fn content_base64(content: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(content)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "tideline".into())
}
