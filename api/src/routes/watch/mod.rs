//! `GET /sandboxvolumes/{id}/files/watch`: a volume's file events over a WebSocket.
//!
//! The journal is the only source of events. Each connection has a *session* task that follows
//! the volume's journal from where it stood when the connection opened, matches every entry
//! against the connection's subscriptions and queues what matched, and a *writer* task that
//! drains the queue to the socket. The session never waits on the client: a subscription holds at
//! most [`SUBSCRIPTION_QUEUED_EVENTS_MAX`] queued events, and one whose queue would overflow
//! loses them and gets a single `invalidate` instead (as does every subscription when the
//! journal it still needed was compacted). A client therefore sees every matching entry in `seq`
//! order or is told to rescan — never a silent gap.
//!
//! ```text
//!  raft metrics: applied index ──wake──┐
//!  client frames: subscribe/unsubscribe ┼─▶ session ── changes(volume, last, 512) ◀─ state machine
//!                                        │      │ match entry × subscriptions
//!                                        │      ▼ push: never blocks on events
//!                                        │   Outbox (one FIFO: answers + events; ≤ 256 events per
//!                                        │           watch_id, overflow ⇒ drop them, 1 invalidate)
//!                                        │      ▼ pop
//!                                        └── writer ──▶ socket (+ ping every 30 s)
//! ```
//!
//! Matching: a flat subscription on P sees entries whose `path` or `old_path` is P or a direct
//! child of P; a recursive one, P and everything below. An `invalidate` entry reaches every
//! subscription whose path it contains or lies within; a `remove`/`rename` of an ancestor of P
//! reaches P's subscriptions too, since it removes or replaces what they watch.
//!
//! An `invalidate` at `seq` N means: anything under its path may have changed up to N — rescan;
//! events that follow have `seq` > N. Auth and the volume lookup happen before the upgrade, so
//! refusals are ordinary envelope responses.
//!
//! Files: [`messages`] (the wire), [`subscription`] (matching), [`outbox`] (the bounded
//! queue), [`writer`] (the socket side), [`session`] (the journal side and the client's frames).

mod messages;
mod outbox;
mod session;
mod subscription;
mod writer;

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use tideline_types::{limits, ErrorCode};
use tokio::sync::Semaphore;

use self::session::Session;
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::openapi::VolumeId;
use crate::ops::Consistency;
use crate::state::AppState;

/// Events queued for one subscription, at most; one more and they become a single `invalidate`.
pub const SUBSCRIPTION_QUEUED_EVENTS_MAX: usize = limits::WATCH_QUEUED_EVENTS_MAX;
/// Subscriptions one connection may hold at once.
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = limits::WATCH_SUBSCRIPTIONS_PER_CONNECTION_MAX;
/// Answers (subscribed, unsubscribed, error) queued at once; past this the session stops
/// reading the client's frames until the writer catches up.
pub const ANSWERS_QUEUED_MAX: usize = 64;
/// Journal entries read per page while catching up.
pub const JOURNAL_PAGE_ENTRIES: usize = 512;
/// Watch connections this process serves at once; more are refused before the upgrade.
pub const WATCH_CONNECTIONS_MAX: usize = 4096;
/// A client frame (and message) is at most this large.
pub const CLIENT_MESSAGE_BYTES_MAX: usize = limits::WATCH_CLIENT_MESSAGE_BYTES_MAX;
/// The server pings this often.
pub const PING_INTERVAL: Duration = limits::WATCH_PING_INTERVAL;
/// A client that sends nothing (not even a pong) for this long is gone.
pub const CLIENT_SILENCE_MAX: Duration = limits::WATCH_CLIENT_SILENCE_MAX;
/// After deciding to close, the writer gets this long to say why.
const CLOSE_FLUSH_MAX: Duration = Duration::from_secs(5);

/// Process-wide: connections outlive the request, so the router's in-flight limit cannot count them.
static CONNECTIONS: Semaphore = Semaphore::const_new(WATCH_CONNECTIONS_MAX);

#[utoipa::path(get, path = "/sandboxvolumes/{id}/files/watch", tag = "files", summary = "Watch paths (WebSocket)",
    description = "Upgrades to a WebSocket. Client: `{\"action\":\"subscribe\",\"path\",\"recursive\"}`, `{\"action\":\"unsubscribe\",\"watch_id\"}`. Server: `subscribed`, `event`, `unsubscribed`, `error` messages (docs/API.md).",
    params(VolumeId),
    responses((status = 101, description = "Switching protocols")))]
pub async fn watch(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::FileRead)?;
    let vol = st.ops.team_volume(caller, &id, Consistency::Linearizable).await?;
    let upgrade = upgrade.map_err(|r| ApiError::new(r.status(), ErrorCode::BadRequest, r.body_text()))?;
    let permit = CONNECTIONS.try_acquire().map_err(|_| ApiError::unavailable("too many watch connections"))?;
    // Taken before the session's first journal read, so any apply after that read wakes it.
    let applied = st.ops.applied_watch();
    let session = Session::new(st.ops.node().state_machine().clone(), vol.id, vol.head_seq);
    Ok(upgrade.max_message_size(CLIENT_MESSAGE_BYTES_MAX).max_frame_size(CLIENT_MESSAGE_BYTES_MAX).on_upgrade(
        move |socket| async move {
            let _permit = permit;
            session.run(socket, applied).await;
        },
    ))
}
