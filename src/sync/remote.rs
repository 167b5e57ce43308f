//! The volume side: the sync routes of one volume as the worker uses them, through
//! [`tideline_client`], with the failures it must tell apart (reseed, lease expired)
//! classified by their `details.reason`.
//!
//! ```text
//!  worker ─▶ Remote (volume, replica) ─▶ tideline_client::Client ─▶ server
//!                 ◀── SyncError::{Reseed, LeaseExpired, Other(CliError)} ◀── ClientError
//! ```

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tideline_client::{ChangesQuery, Client, ClientError};
use tideline_types::limits::{CONFLICTS_PAGE_MAX, SYNC_PAGE_ENTRIES};
pub use tideline_types::wire::SyncJournalEntry as JournalEntry;
use tideline_types::wire::{
    AppendRequest, AppendResponse, BootstrapRequest, BootstrapResponse, ChangesPage, ConflictUpdate, ReplicaChange,
    ReplicaRequest, SyncConflict,
};
use tideline_types::{ConflictStatus, Reason};
use tokio::io::AsyncWriteExt;

use super::local::Capabilities;
use crate::volume_cli::http::{self, CliError, CliResult};

/// Entries asked for per `changes` page (never more than the server serves in one).
pub const PAGE_ENTRIES: usize = SYNC_PAGE_ENTRIES;

/// Why a sync call failed, as the worker reacts to it.
#[derive(Debug)]
pub enum SyncError {
    /// The cursor fell below the retention floor: bootstrap again.
    Reseed {
        retained_after_seq: u64,
        head_seq: u64,
    },
    /// The replica's lease lapsed: register again, then retry.
    LeaseExpired,
    Other(CliError),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Reseed { retained_after_seq, head_seq } => {
                write!(f, "sync reseed required (retained after {retained_after_seq}, head {head_seq})")
            }
            SyncError::LeaseExpired => f.write_str("sync replica lease expired"),
            SyncError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl From<CliError> for SyncError {
    fn from(e: CliError) -> SyncError {
        // By reason only: the message is for people and may change.
        match e.reason {
            Some(Reason::ReseedRequired) => SyncError::Reseed {
                retained_after_seq: e.details["retained_after_seq"].as_u64().unwrap_or(0),
                head_seq: e.details["head_seq"].as_u64().unwrap_or(0),
            },
            Some(Reason::LeaseExpired) => SyncError::LeaseExpired,
            _ => SyncError::Other(e),
        }
    }
}

impl From<ClientError> for SyncError {
    fn from(e: ClientError) -> SyncError {
        SyncError::from(CliError::from(e))
    }
}

pub type SyncResult<T> = Result<T, SyncError>;

/// One volume's sync routes for one replica.
#[derive(Clone)]
pub struct Remote {
    client: Client,
    volume: String,
    pub replica_id: String,
}

impl Remote {
    pub fn new(server: &str, token: &str, volume: &str, replica_id: &str) -> CliResult<Remote> {
        Ok(Remote {
            client: http::connect(server, token)?,
            volume: volume.to_string(),
            replica_id: replica_id.to_string(),
        })
    }

    /// The volume itself (existence and access check).
    pub async fn volume(&self) -> CliResult<tideline_types::wire::SandboxVolume> {
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
        let io = |e: std::io::Error| SyncError::Other(CliError::io(format!("write {}", to.display()), e));
        let mut file = tokio::fs::File::create(to).await.map_err(io)?;
        while let Some(chunk) = body.chunk().await.map_err(|e| CliError::reading("download archive", e))? {
            file.write_all(&chunk).await.map_err(io)?;
            progress(chunk.len() as u64);
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }

    /// The volume's conflicts with `status`, newest first (as many as one page holds).
    pub async fn conflicts(&self, status: ConflictStatus) -> CliResult<Vec<SyncConflict>> {
        Ok(self.client.conflicts(&self.volume, Some(status), Some(CONFLICTS_PAGE_MAX)).await?.conflicts)
    }

    /// Marks one conflict `resolved` or `ignored`.
    pub async fn mark(&self, conflict_id: &str, status: ConflictStatus) -> CliResult<SyncConflict> {
        let req =
            ConflictUpdate { status, resolution: Some("marked with tideline sync conflicts mark".into()), note: None };
        Ok(self.client.update_conflict(&self.volume, conflict_id, &req).await?)
    }
}

/// A file's content as an append carries it.
pub fn content_base64(content: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(content)
}

/// Typed answers as JSON values, for printing (keys in the server's byte order).
pub fn to_values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().map(|i| serde_json::to_value(i).unwrap_or(Value::Null)).collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "tideline".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tideline_client::StatusCode;

    use super::*;

    fn answer(status: StatusCode, body: Value) -> SyncError {
        SyncError::from(ClientError::refused(status, body.to_string().as_bytes()))
    }

    #[test]
    fn refusals_are_told_apart_by_reason_not_message() {
        let reseed = json!({ "success": false, "error": { "code": "conflict", "message": "sync reseed required",
            "details": { "reason": "reseed_required", "retained_after_seq": 4, "head_seq": 9 } } });
        assert!(matches!(
            answer(StatusCode::CONFLICT, reseed),
            SyncError::Reseed { retained_after_seq: 4, head_seq: 9 }
        ));
        let lapsed = json!({ "success": false, "error": { "code": "conflict", "message": "the lease is gone",
            "details": { "reason": "lease_expired" } } });
        assert!(matches!(answer(StatusCode::CONFLICT, lapsed), SyncError::LeaseExpired));
        // The old prose without a reason is just a conflict now.
        let prose =
            json!({ "success": false, "error": { "code": "conflict", "message": "sync replica lease expired" } });
        assert!(matches!(answer(StatusCode::CONFLICT, prose), SyncError::Other(_)));
        let other = json!({ "success": false, "error": { "code": "conflict", "message": "sync cursor regression",
            "details": { "reason": "cursor_regression" } } });
        match answer(StatusCode::CONFLICT, other) {
            SyncError::Other(e) => assert_eq!(e.reason, Some(Reason::CursorRegression)),
            e => panic!("{e}"),
        }
    }
}
