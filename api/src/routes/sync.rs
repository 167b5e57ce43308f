//! `/sandboxvolumes/{id}/sync/…`: reading the journal (changes) and its payloads.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tideline_storage::ContentRef;

use super::{content, owned_volume, team_volume};
use crate::auth::{Permission, Principal};
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;
use crate::wire::SyncJournalEntry;

pub const CHANGES_PAGE_ENTRIES_DEFAULT: usize = 256;
pub const CHANGES_PAGE_ENTRIES_MAX: usize = 2048;
/// A long poll waits at most this long for the first new entry.
pub const CHANGES_WAIT_MS_MAX: u64 = 30_000;

#[derive(Deserialize)]
pub struct ChangesQuery {
    after: Option<String>,
    limit: Option<String>,
    wait_ms: Option<String>,
    consistency: Option<String>,
}

fn parse_u64(name: &str, v: Option<&str>) -> ApiResult<Option<u64>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid {name} {s:?}: want a non-negative integer"))),
    }
}

pub async fn changes(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let after = parse_u64("after", q.after.as_deref())?.unwrap_or(0);
    let limit = match parse_u64("limit", q.limit.as_deref())? {
        None | Some(0) => CHANGES_PAGE_ENTRIES_DEFAULT,
        Some(n) => (n as usize).min(CHANGES_PAGE_ENTRIES_MAX),
    };
    let wait = std::time::Duration::from_millis(
        parse_u64("wait_ms", q.wait_ms.as_deref())?.unwrap_or(0).min(CHANGES_WAIT_MS_MAX),
    );
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before the first read, so an entry applied in between still wakes us.
    let mut applied = st.node.raft().metrics();
    let mut vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let sm = st.node.state_machine();
    loop {
        if after < vol.floor_seq {
            return Err(ApiError::reseed_required(vol.floor_seq, vol.head_seq));
        }
        let entries = sm.changes(&vol.id, after, limit)?;
        if entries.first().is_some_and(|e| e.seq != after + 1) {
            // Compacted between reading the floor and the page: never skip silently.
            let now = sm.volume(&vol.id)?.ok_or_else(|| ApiError::not_found("not found"))?;
            return Err(ApiError::reseed_required(now.floor_seq, now.head_seq));
        }
        let waited_out = tokio::time::Instant::now() >= deadline;
        if !entries.is_empty() || waited_out {
            let changes: Vec<SyncJournalEntry> = entries.iter().map(SyncJournalEntry::from).collect();
            // Entries may have been applied after `vol` was read: the head is at least the last.
            let head = entries.last().map_or(vol.head_seq, |e| e.seq.max(vol.head_seq));
            return Ok(ok(json!({ "head_seq": head, "retained_after_seq": vol.floor_seq, "changes": changes })));
        }
        // Long poll: wake on the next apply on this node (or at the deadline), then re-read.
        if tokio::time::timeout_at(deadline, applied.changed()).await.is_ok_and(|r| r.is_err()) {
            return Err(ApiError::unavailable("raft is shutting down"));
        }
        vol = owned_volume(&st, caller, &vol.id)?;
    }
}

#[derive(Deserialize)]
pub struct PayloadQuery {
    content_ref: Option<String>,
    consistency: Option<String>,
}

pub async fn replay_payload(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PayloadQuery>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::VolumeRead)?;
    let r = q
        .content_ref
        .as_deref()
        .and_then(ContentRef::parse)
        .ok_or_else(|| ApiError::bad_request("invalid sync replay payload reference"))?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    // Only content this volume has held is served: a hash is not a capability across teams.
    if !st.node.state_machine().volume_references(&vol.id, &r)? {
        return Err(ApiError::not_found("not found"));
    }
    let bytes = content(&st, &r).await?.ok_or_else(|| ApiError::not_found("not found"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")], bytes)
        .into_response())
}
