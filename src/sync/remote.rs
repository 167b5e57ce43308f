//! The volume side: the sync routes of one volume as the worker uses them, with the failures
//! it must tell apart (reseed, lease expired) classified.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tideline_types::limits::{CONFLICTS_PAGE_MAX, SYNC_PAGE_ENTRIES};
use tideline_types::{ConflictStatus, EntryKind, EventType, Reason};
use tokio::io::AsyncWriteExt;

use super::local::Capabilities;
use crate::volume_cli::http::{CliError, CliResult, VolumeClient, REQUEST_TIMEOUT, TRANSFER_TIMEOUT};

/// Entries asked for per `changes` page (never more than the server serves in one).
pub const PAGE_ENTRIES: usize = SYNC_PAGE_ENTRIES;

/// A journal entry, as far as the worker reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    #[serde(default)]
    pub replica_id: Option<String>,
    pub event_type: EventType,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub old_path: Option<String>,
    #[serde(default)]
    pub entry_kind: Option<EntryKind>,
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub content_ref: Option<String>,
    #[serde(default)]
    pub content_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub head_seq: u64,
    pub changes: Vec<JournalEntry>,
}

#[derive(Debug, Deserialize)]
pub struct Bootstrap {
    pub replay_after_seq: u64,
    pub archive_download_path: String,
}

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

pub type SyncResult<T> = Result<T, SyncError>;

/// One volume's sync routes for one replica.
#[derive(Clone)]
pub struct Remote {
    client: std::sync::Arc<VolumeClient>,
    volume: String,
    pub replica_id: String,
}

impl Remote {
    pub fn new(server: &str, token: &str, volume: &str, replica_id: &str) -> CliResult<Remote> {
        Ok(Remote {
            client: std::sync::Arc::new(VolumeClient::new(server, token)?),
            volume: volume.to_string(),
            replica_id: replica_id.to_string(),
        })
    }

    fn path(&self, tail: &str) -> String {
        format!("/sandboxvolumes/{}{tail}", self.volume)
    }

    /// The volume itself (existence and access check).
    pub async fn volume(&self) -> CliResult<Value> {
        self.client.call(Method::GET, &self.path(""), &[], None).await
    }

    /// Registers (or renews) the replica; returns the head seq.
    pub async fn register(&self, caps: &Capabilities, root: &Path) -> SyncResult<u64> {
        let body = json!({
            "display_name": hostname(),
            "platform": std::env::consts::OS,
            "root_path": root.display().to_string(),
            "case_sensitive": caps.case_sensitive,
            "capabilities": caps,
        });
        let path = self.path(&format!("/sync/replicas/{}", self.replica_id));
        let data = self.client.call(Method::PUT, &path, &[], Some(&body)).await?;
        Ok(data["head_seq"].as_u64().unwrap_or(0))
    }

    /// One page of entries after `after`, waiting up to `wait` for the first one.
    pub async fn changes(&self, after: u64, wait: Duration) -> SyncResult<Page> {
        let (after, limit, wait_ms) = (after.to_string(), PAGE_ENTRIES.to_string(), wait.as_millis().to_string());
        let req = self.client.request(Method::GET, &self.path("/sync/changes"), REQUEST_TIMEOUT + wait).query(&[
            ("after", after.as_str()),
            ("limit", limit.as_str()),
            ("wait_ms", wait_ms.as_str()),
        ]);
        let resp = self.client.send(req).await?;
        let v: Value = resp.json().await.map_err(|e| CliError::other(format!("read changes: {e}")))?;
        serde_json::from_value(v["data"].clone())
            .map_err(|e| SyncError::Other(CliError::other(format!("changes page: {e}"))))
    }

    /// Sends one batch of changes; the answer is `{head_seq, accepted, conflicts}`.
    pub async fn append(&self, request_id: &str, base_seq: u64, changes: &[Value]) -> SyncResult<Value> {
        let body = json!({ "request_id": request_id, "base_seq": base_seq, "changes": changes });
        let path = self.path(&format!("/sync/replicas/{}/changes", self.replica_id));
        let req = self.client.request(Method::POST, &path, TRANSFER_TIMEOUT).json(&body);
        let resp = self.client.send(req).await?;
        let v: Value = resp.json().await.map_err(|e| CliError::other(format!("read append answer: {e}")))?;
        Ok(v["data"].clone())
    }

    /// Reports the replica's cursor (and renews its lease).
    pub async fn put_cursor(&self, seq: u64) -> SyncResult<()> {
        let path = self.path(&format!("/sync/replicas/{}/cursor", self.replica_id));
        self.client.call(Method::PUT, &path, &[], Some(&json!({ "last_applied_seq": seq }))).await?;
        Ok(())
    }

    /// The bytes behind a content ref.
    pub async fn payload(&self, content_ref: &str) -> SyncResult<bytes::Bytes> {
        let req = self
            .client
            .request(Method::GET, &self.path("/sync/replay-payload"), TRANSFER_TIMEOUT)
            .query(&[("content_ref", content_ref)]);
        let resp = self.client.send(req).await?;
        Ok(resp.bytes().await.map_err(|e| CliError::other(format!("read payload {content_ref}: {e}")))?)
    }

    /// Freezes the namespace for a bootstrap.
    pub async fn bootstrap(&self, caps: &Capabilities) -> SyncResult<Bootstrap> {
        let body = json!({ "case_sensitive": caps.case_sensitive, "capabilities": caps,
                           "snapshot_name": format!("bootstrap {}", self.replica_id) });
        let data = self.client.call(Method::POST, &self.path("/sync/bootstrap"), &[], Some(&body)).await?;
        serde_json::from_value(data).map_err(|e| SyncError::Other(CliError::other(format!("bootstrap answer: {e}"))))
    }

    /// Downloads the archive at `download_path` into `to`, reporting bytes as they arrive.
    pub async fn download(&self, download_path: &str, to: &Path, mut progress: impl FnMut(u64)) -> SyncResult<()> {
        let path = download_path.strip_prefix("/api/v1").unwrap_or(download_path);
        let resp = self.client.send(self.client.request(Method::GET, path, TRANSFER_TIMEOUT)).await?;
        let io = |e: std::io::Error| SyncError::Other(CliError::io(format!("write {}", to.display()), e));
        let mut file = tokio::fs::File::create(to).await.map_err(io)?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| CliError::other(format!("download archive: {e}")))?;
            file.write_all(&chunk).await.map_err(io)?;
            progress(chunk.len() as u64);
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }

    /// The volume's conflicts with `status`, newest first (as many as one page holds).
    pub async fn conflicts(&self, status: ConflictStatus) -> CliResult<Vec<Value>> {
        let limit = CONFLICTS_PAGE_MAX.to_string();
        let query = [("status", status.as_str()), ("limit", limit.as_str())];
        let data = self.client.call(Method::GET, &self.path("/sync/conflicts"), &query, None).await?;
        Ok(data["conflicts"].as_array().cloned().unwrap_or_default())
    }

    /// Marks one conflict `resolved` or `ignored`.
    pub async fn mark(&self, conflict_id: &str, status: ConflictStatus) -> CliResult<Value> {
        let path = self.path(&format!("/sync/conflicts/{conflict_id}"));
        let body = json!({ "status": status, "resolution": "marked with tideline sync conflicts mark" });
        self.client.call(Method::PUT, &path, &[], Some(&body)).await
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "tideline".into())
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    fn answer(status: StatusCode, body: Value) -> SyncError {
        SyncError::from(CliError::from_answer(status, body.to_string().as_bytes()))
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
