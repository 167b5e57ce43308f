//! The sync plane of a volume: `/sandboxvolumes/{id}/sync/…` — replicas, their appends and
//! cursors, the journal (`changes`, long-polled) and its payloads, bootstrap and its archive,
//! conflicts.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use tideline_types::limits::FILE_BYTES_MAX;
use tideline_types::wire::{
    AppendRequest, AppendResponse, BootstrapRequest, BootstrapResponse, ChangesPage, ConflictList, ConflictUpdate,
    CursorRequest, ReplicaRequest, ReplicaResponse, SyncConflict,
};
use tideline_types::ConflictStatus;

use crate::call::{Call, Deadline};
use crate::client::Client;
use crate::error::ClientError;
use crate::stream::ByteStream;

/// How current a read must be (`consistency=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Every write committed before the request (the server's default).
    #[default]
    Linearizable,
    /// Whatever the serving node has applied (may be behind, never wrong).
    Local,
}

impl Consistency {
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Local => "local",
        }
    }
}

/// The query of a `sync/changes` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangesQuery {
    /// Entries with `seq > after`.
    pub after: u64,
    /// Entries per page (the server's default 256 when `None`; at most 2048).
    pub limit: Option<usize>,
    /// Long poll: wait up to this long (≤ 30 s) for the first entry after `after`.
    pub wait: Option<Duration>,
    pub consistency: Option<Consistency>,
}

impl ChangesQuery {
    /// `limit` entries after `after`, no waiting.
    pub fn page(after: u64, limit: usize) -> ChangesQuery {
        ChangesQuery { after, limit: Some(limit), ..ChangesQuery::default() }
    }
}

fn sync<'a>(volume: &'a str, tail: &[&'a str]) -> Vec<&'a str> {
    let mut segments = vec!["sandboxvolumes", volume, "sync"];
    segments.extend_from_slice(tail);
    segments
}

impl Client {
    /// Registers or renews a replica (its lease, its capabilities).
    pub async fn put_replica(
        &self,
        volume: &str,
        replica: &str,
        req: &ReplicaRequest,
    ) -> Result<ReplicaResponse, ClientError> {
        self.json(Call::api(Method::PUT, sync(volume, &["replicas", replica])).json(req)?).await
    }

    pub async fn get_replica(&self, volume: &str, replica: &str) -> Result<ReplicaResponse, ClientError> {
        self.json(Call::api(Method::GET, sync(volume, &["replicas", replica]))).await
    }

    /// Reports the last seq the replica applied (and renews its lease).
    pub async fn put_cursor(&self, volume: &str, replica: &str, seq: u64) -> Result<ReplicaResponse, ClientError> {
        let body = CursorRequest { last_applied_seq: seq };
        self.json(Call::api(Method::PUT, sync(volume, &["replicas", replica, "cursor"])).json(&body)?).await
    }

    /// Sends one batch of the replica's changes. Retried where safe: the server answers a
    /// repeated `request_id` with the first answer.
    pub async fn append(
        &self,
        volume: &str,
        replica: &str,
        req: &AppendRequest,
    ) -> Result<AppendResponse, ClientError> {
        let call = Call::api(Method::POST, sync(volume, &["replicas", replica, "changes"]))
            .json(req)?
            .deadline(Deadline::Transfer)
            .idempotent();
        self.json(call).await
    }

    /// One page of the journal.
    pub async fn changes(&self, volume: &str, q: &ChangesQuery) -> Result<ChangesPage, ClientError> {
        let mut call = Call::api(Method::GET, sync(volume, &["changes"])).query("after", q.after);
        if let Some(limit) = q.limit {
            call = call.query("limit", limit);
        }
        if let Some(wait) = q.wait {
            call = call.query("wait_ms", wait.as_millis()).deadline(Deadline::RequestPlus(wait));
        }
        if let Some(c) = q.consistency {
            call = call.query("consistency", c.as_str());
        }
        self.json(call).await
    }

    /// The bytes behind a journal entry's `content_ref` (at most the 100 MiB of one file).
    pub async fn replay_payload(&self, volume: &str, content_ref: &str) -> Result<Bytes, ClientError> {
        let call = Call::api(Method::GET, sync(volume, &["replay-payload"]))
            .query("content_ref", content_ref)
            .deadline(Deadline::Transfer);
        self.bytes(call, FILE_BYTES_MAX).await
    }

    /// Freezes the namespace for a bootstrap; the archive is at `archive_download_path`.
    pub async fn bootstrap(&self, volume: &str, req: &BootstrapRequest) -> Result<BootstrapResponse, ClientError> {
        self.json(Call::api(Method::POST, sync(volume, &["bootstrap"])).json(req)?).await
    }

    /// The archive (`tar.gz`) at a bootstrap's `archive_download_path`, as it streams.
    pub async fn bootstrap_archive(&self, archive_download_path: &str) -> Result<ByteStream, ClientError> {
        self.stream(Call::root(Method::GET, archive_download_path).deadline(Deadline::Transfer)).await
    }

    /// The volume's conflicts (all statuses when `None`), newest first, at most `limit`
    /// (the server's default 100 when `None`; at most 1 000).
    pub async fn conflicts(
        &self,
        volume: &str,
        status: Option<ConflictStatus>,
        limit: Option<usize>,
    ) -> Result<ConflictList, ClientError> {
        let mut call = Call::api(Method::GET, sync(volume, &["conflicts"]));
        if let Some(s) = status {
            call = call.query("status", s.as_str());
        }
        if let Some(n) = limit {
            call = call.query("limit", n);
        }
        self.json(call).await
    }

    /// Marks a conflict `resolved` or `ignored`; the updated conflict.
    pub async fn update_conflict(
        &self,
        volume: &str,
        conflict: &str,
        req: &ConflictUpdate,
    ) -> Result<SyncConflict, ClientError> {
        self.json(Call::api(Method::PUT, sync(volume, &["conflicts", conflict])).json(req)?).await
    }
}
