//! `/sandboxvolumes/{id}/sync/…`: reading the journal (changes) and its payloads.
//!
//! ```text
//!   changes: volume (barrier unless the page is applied here) ─▶ spawn_blocking:
//!            RocksDB iterator ─▶ borrowed entries ─▶ JSON (journal_json) or compact (journal_proto)
//!            into one buffer ─▶ response body
//! ```

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tideline_storage::journal_page::read_page;
use tideline_storage::{ContentRef, PageStats, StateMachine, StorageError};
use tideline_types::Reason;

use super::consistency;
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::journal_json::JsonPage;
use crate::journal_proto::{self, ProtoPage};
use crate::openapi::{Binary, ReadQuery as ReadParams, Success, VolumeId};
use crate::ops::Consistency;
use crate::state::AppState;
use crate::wire::{ChangesPage, ErrorEnvelope};

pub use tideline_types::limits::{
    CHANGES_PAGE_BYTES_MAX, CHANGES_PAGE_ENTRIES_DEFAULT, CHANGES_PAGE_ENTRIES_MAX, CHANGES_WAIT_MS_MAX,
};

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

#[utoipa::path(get, path = "/sandboxvolumes/{id}/sync/changes", tag = "volume-sync", summary = "Replay the journal",
    description = "Entries with `seq > after`, ascending. `wait_ms` long-polls for the first new entry.",
    params(VolumeId,
        ("after" = Option<u64>, Query, description = "Last seq the caller has (default 0)"),
        ("limit" = Option<u32>, Query, description = "Page size, default 256, at most 2048"),
        ("wait_ms" = Option<u64>, Query, description = "Long-poll up to this long (at most 30000) when nothing is newer"),
        ReadParams),
    responses((status = 200, description = "A page of the journal", body = Success<ChangesPage>),
        (status = 409, description = "`after` is below the retained floor: reseed", body = ErrorEnvelope)))]
pub async fn changes(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ChangesQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::VolumeRead)?;
    let compact = journal_proto::wants_compact(&headers);
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
    let mut applied = st.ops.applied_watch();
    // A full page this node has already applied needs no barrier: a committed entry never
    // changes, so any linearizable read of it returns these same bytes.
    let level = consistency(q.consistency.as_deref())?;
    let applied_here = match level {
        Consistency::Linearizable => st.ops.owned_volume(caller, &id).ok(),
        Consistency::Local => None,
    };
    let mut vol = match applied_here {
        Some(v) if after.checked_add(limit as u64).is_some_and(|end| v.head_seq >= end) => v,
        _ => st.ops.team_volume(caller, &id, level).await?,
    };
    let sm = st.ops.node().state_machine().clone();
    loop {
        if after < vol.floor_seq {
            return Err(ApiError::reseed_required(vol.floor_seq, vol.head_seq));
        }
        let page = {
            let (sm, volume, head, floor) = (sm.clone(), vol.id.clone(), vol.head_seq, vol.floor_seq);
            tokio::task::spawn_blocking(move || Page::read(&sm, &volume, after, limit, compact, head, floor))
                .await
                .map_err(|e| ApiError::internal(format!("building a changes page: {e}")))??
        };
        if page.stats.first_seq.is_some_and(|seq| seq != after + 1) {
            // Compacted between reading the floor and the page: never skip silently.
            let now =
                sm.volume(&vol.id)?.ok_or_else(|| ApiError::not_found("not found").because(Reason::VolumeNotFound))?;
            return Err(ApiError::reseed_required(now.floor_seq, now.head_seq));
        }
        let waited_out = tokio::time::Instant::now() >= deadline;
        if page.stats.entries > 0 || waited_out {
            return Ok(page.into_response());
        }
        // Long poll: wake on the next apply on this node (or at the deadline), then re-read.
        if tokio::time::timeout_at(deadline, applied.changed()).await.is_ok_and(|r| r.is_err()) {
            return Err(ApiError::unavailable("raft is shutting down"));
        }
        vol = st.ops.owned_volume(caller, &vol.id)?;
    }
}

// A page is cut after the entry that brings its body to CHANGES_PAGE_BYTES_MAX: with `limit`
// it bounds a page in bytes as well as in entries (2048 ordinary entries are about 1 MiB).
/// A page's buffer starts with room for this many bytes per entry (it grows if need be).
const ENTRY_BYTES_GUESS: usize = 512;

/// One `changes` page, serialized.
struct Page {
    body: Bytes,
    compact: bool,
    stats: PageStats,
}

impl Page {
    /// Reads and serializes a page (blocking: RocksDB reads). `head_seq` and `retained_after_seq`
    /// are the volume's as read before the page; the head is at least the page's last entry.
    fn read(
        sm: &StateMachine,
        volume: &str,
        after: u64,
        limit: usize,
        compact: bool,
        head_seq: u64,
        retained_after_seq: u64,
    ) -> Result<Page, StorageError> {
        let capacity = limit.saturating_mul(ENTRY_BYTES_GUESS).min(CHANGES_PAGE_BYTES_MAX);
        let head = |stats: &PageStats| stats.last_seq.map_or(head_seq, |last| last.max(head_seq));
        let (body, stats) = if compact {
            let mut page = ProtoPage::with_capacity(capacity);
            let stats = read_page(sm.db(), volume, after, limit, |_, raw| {
                page.push(raw);
                page.len() < CHANGES_PAGE_BYTES_MAX
            })?;
            (page.finish(head(&stats), retained_after_seq), stats)
        } else {
            let mut page = JsonPage::with_capacity(capacity);
            let stats = read_page(sm.db(), volume, after, limit, |e, _| {
                page.push(e);
                page.len() < CHANGES_PAGE_BYTES_MAX
            })?;
            (Bytes::from(page.finish(head(&stats), retained_after_seq)), stats)
        };
        Ok(Page { body, compact, stats })
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let content_type = if self.compact { journal_proto::MEDIA_TYPE } else { "application/json" };
        ([(header::CONTENT_TYPE, content_type), (header::VARY, "accept")], self.body).into_response()
    }
}

#[derive(Deserialize)]
pub struct PayloadQuery {
    content_ref: Option<String>,
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/sync/replay-payload", tag = "volume-sync", summary = "Download an entry's content",
    params(VolumeId, ("content_ref" = String, Query, description = "An entry's `content_ref`"), ReadParams),
    responses((status = 200, description = "The content", body = Binary, content_type = "application/octet-stream")))]
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
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    // Only content this volume has held is served: a hash is not a capability across teams.
    if !st.ops.node().state_machine().volume_references(&vol.id, &r)? {
        return Err(ApiError::not_found("not found"));
    }
    let bytes = st.ops.content(&r).await?.ok_or_else(|| ApiError::not_found("not found"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")], bytes)
        .into_response())
}
