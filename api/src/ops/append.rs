//! A replica's batch of changes: stage every change's content, then propose the batch as one
//! `AppendChanges` command; the state machine decides each change against the journal
//! (journaled, a no-op, or a conflict).
//!
//! ```text
//!  checked changes ─▶ content: inline while the batch's inline budget lasts, else blob store
//!                  ─▶ AppendChanges { origin: replica, at_ms = now, request_id, fingerprint }
//! ```
//!
//! The request is checked in full before this runs (one malformed change refuses the batch);
//! content that cannot be stored refuses it before anything is proposed.

use axum::body::Bytes;
use tideline_storage::command::{AppendChanges, Origin, ReplicaChange};
use tideline_storage::{AppendResult, CommandKind, VolumeRecord};
use tideline_types::{EntryKind, EventType, Source};

use super::context::Ops;
use crate::error::{ApiError, ApiResult};

/// Content inlined into one command, at most; the rest goes to the object store first.
pub const APPEND_INLINE_BYTES_MAX: usize = 1024 * 1024;

/// One checked, normalized change and its decoded content (if it carries any).
pub struct Change {
    pub event: EventType,
    /// Cleaned; `/` for an `invalidate` of the whole volume.
    pub path: String,
    /// A rename's source, cleaned.
    pub old_path: Option<String>,
    pub entry_kind: Option<EntryKind>,
    pub mode: Option<u32>,
    pub content: Option<Bytes>,
    /// The change's `metadata`, as JSON text.
    pub metadata_json: Option<String>,
}

/// A replica's batch, checked.
pub struct Append {
    pub replica_id: String,
    pub request_id: String,
    /// Tells a retry (same payload) from a reused request id.
    pub fingerprint: Vec<u8>,
    pub base_seq: u64,
    pub changes: Vec<Change>,
}

/// Stages the batch's content and proposes it; returns what the state machine decided.
pub async fn append(ops: &Ops, vol: &VolumeRecord, a: Append) -> ApiResult<AppendResult> {
    let mut inline_budget = APPEND_INLINE_BYTES_MAX;
    let mut changes = Vec::with_capacity(a.changes.len());
    for c in a.changes {
        let mut change = ReplicaChange {
            event_type: c.event.as_str().to_string(),
            path: c.path,
            old_path: c.old_path,
            entry_kind: c.entry_kind.map(|k| k.as_str().to_string()),
            mode: c.mode,
            content_ref: None,
            size: c.content.as_ref().map_or(0, |b| b.len() as u64),
            inline: None,
            metadata_json: c.metadata_json,
        };
        if let Some(bytes) = c.content {
            let may_inline = bytes.len() <= inline_budget;
            let (r, inline) = ops.stage(bytes, may_inline).await?;
            inline_budget -= inline.as_ref().map_or(0, Vec::len);
            change.content_ref = Some(r.to_string());
            change.inline = inline;
        }
        changes.push(change);
    }
    let origin = Origin {
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        source: Source::Replica.as_str().into(),
        replica_id: Some(a.replica_id),
        at_ms: ops.now_ms(),
    };
    let cmd = AppendChanges {
        origin: Some(origin),
        request_id: a.request_id,
        fingerprint: a.fingerprint,
        base_seq: a.base_seq,
        changes,
    };
    let resp = ops.propose(CommandKind::AppendChanges(cmd)).await?;
    resp.append.ok_or_else(|| ApiError::internal("append returned no result"))
}

#[cfg(test)]
mod tests {
    use tideline_raft::Clock;

    use super::*;
    use crate::ops::testing::Fixture;

    fn write(path: &str, bytes: Vec<u8>) -> Change {
        Change {
            event: EventType::Write,
            path: path.into(),
            old_path: None,
            entry_kind: Some(EntryKind::File),
            mode: None,
            content: Some(bytes.into()),
            metadata_json: None,
        }
    }

    fn batch(request_id: &str, changes: Vec<Change>) -> Append {
        Append {
            replica_id: "r1".into(),
            request_id: request_id.into(),
            fingerprint: request_id.as_bytes().to_vec(),
            base_seq: 0,
            changes,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_content_cannot_be_stored_applies_none_of_it() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        f.replica(&vol, "r1").await;
        std::fs::write(f.objects().join("blobs"), "in the way").unwrap();
        let (ops, proposed) = f.counting();
        // Past the inline budget, the second change's content must go to the object store.
        let changes = vec![write("/a", vec![1; APPEND_INLINE_BYTES_MAX]), write("/b", vec![2; 10])];
        let e = append(&ops, &vol, batch("req-1", changes)).await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE, "{}", e.message);
        assert_eq!(proposed(), 0);
        assert_eq!(f.head(&vol), 0, "not even the inlined change is journaled");

        tracing::info!("--- with the store back, the same batch applies whole");
        std::fs::remove_file(f.objects().join("blobs")).unwrap();
        let changes = vec![write("/a", vec![1; APPEND_INLINE_BYTES_MAX]), write("/b", vec![2; 10])];
        let r = append(&ops, &vol, batch("req-1", changes)).await.unwrap();
        assert_eq!((r.accepted.len(), r.head_seq), (2, 2));
        assert_eq!(r.accepted[0].created_at_ms, f.clock.now_ms(), "stamped by the injected clock");
    }
}
