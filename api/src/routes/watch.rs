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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tideline_storage::{JournalEntry, StateMachine, StorageError};
use tideline_types::path;
use tideline_types::{limits, ErrorCode, EventType, WatchAction};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::team_volume;
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::wire::new_id;

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

pub async fn watch(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::FileRead)?;
    let vol = team_volume(&st, caller, &id, None).await?;
    let upgrade = upgrade.map_err(|r| ApiError::new(r.status(), ErrorCode::BadRequest, r.body_text()))?;
    let permit = CONNECTIONS.try_acquire().map_err(|_| ApiError::unavailable("too many watch connections"))?;
    // Taken before the session's first journal read, so any apply after that read wakes it.
    let applied = st.node.raft().metrics();
    let session = Session {
        sm: st.node.state_machine().clone(),
        volume_id: vol.id,
        last: vol.head_seq,
        subs: Vec::new(),
        outbox: Arc::new(Outbox::new()),
    };
    Ok(upgrade.max_message_size(CLIENT_MESSAGE_BYTES_MAX).max_frame_size(CLIENT_MESSAGE_BYTES_MAX).on_upgrade(
        move |socket| async move {
            let _permit = permit;
            session.run(socket, applied).await;
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Wire messages

#[derive(Deserialize)]
struct ClientMessage {
    action: String,
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
    watch_id: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerMessage<'a> {
    Subscribed {
        watch_id: &'a str,
        path: &'a str,
    },
    Event {
        watch_id: &'a str,
        event: &'a str,
        path: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        old_path: Option<&'a str>,
        seq: u64,
    },
    Unsubscribed {
        watch_id: &'a str,
    },
    Error {
        error: &'a str,
    },
}

impl ServerMessage<'_> {
    fn encode(&self) -> String {
        // Only strings and integers: serializing cannot fail.
        serde_json::to_string(self).expect("a server message serializes")
    }
}

/// One matched journal entry, as queued for a subscription.
struct Event {
    event: String,
    path: String,
    old_path: Option<String>,
    seq: u64,
}

impl Event {
    fn of(e: &JournalEntry) -> Self {
        Event {
            event: e.event_type.clone(),
            path: e.path.clone(),
            old_path: if e.event_type == EventType::Rename.as_str() { e.old_path.clone() } else { None },
            seq: e.seq,
        }
    }

    fn encode(&self, watch_id: &str) -> String {
        ServerMessage::Event {
            watch_id,
            event: &self.event,
            path: &self.path,
            old_path: self.old_path.as_deref(),
            seq: self.seq,
        }
        .encode()
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

struct Subscription {
    id: Arc<str>,
    path: Arc<str>,
    recursive: bool,
    /// The volume's head when it subscribed: it gets entries after this only.
    from: u64,
}

impl Subscription {
    fn wants(&self, e: &JournalEntry) -> bool {
        let old = e.old_path.as_deref();
        match e.event_type.parse::<EventType>() {
            Ok(EventType::Invalidate) => path::is_within(&self.path, &e.path) || path::is_within(&e.path, &self.path),
            // Removing or replacing the watched path or one of its ancestors changes it too.
            Ok(EventType::Remove) => self.covers(&e.path) || path::is_within(&self.path, &e.path),
            Ok(EventType::Rename) => {
                self.covers(&e.path)
                    || old.is_some_and(|p| self.covers(p))
                    || path::is_within(&self.path, &e.path)
                    || old.is_some_and(|p| path::is_within(&self.path, p))
            }
            _ => self.covers(&e.path) || old.is_some_and(|p| self.covers(p)),
        }
    }

    /// The watched path itself, its direct children, and (recursive) everything below.
    fn covers(&self, p: &str) -> bool {
        if self.recursive {
            path::is_within(p, &self.path)
        } else {
            p == &*self.path || (!path::is_root(p) && path::split(p).0 == &*self.path)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outbox: what the session has decided to send, in order, bounded per subscription.

enum Item {
    Answer(String),
    Event {
        watch_id: Arc<str>,
        event: Event,
    },
    /// Its `seq` lives in [`Queue::invalidated`], raised while it waits.
    Invalidate {
        watch_id: Arc<str>,
        path: Arc<str>,
    },
    /// The last item: an error message, then a close frame.
    Close {
        error: String,
        code: u16,
        reason: &'static str,
    },
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Events queued per watch id (invalidates not counted).
    queued: HashMap<Arc<str>, usize>,
    /// Watch ids with an `invalidate` in `items`, and the seq it will carry.
    invalidated: HashMap<Arc<str>, u64>,
    closing: bool,
}

impl Queue {
    fn drop_events_of(&mut self, watch_id: &str) {
        self.items.retain(|i| !matches!(i, Item::Event { watch_id: w, .. } if &**w == watch_id));
        self.queued.remove(watch_id);
    }

    /// Queues (or raises) the subscription's single pending invalidate.
    fn invalidate(&mut self, sub: &Subscription, seq: u64) {
        if let Some(pending) = self.invalidated.get_mut(&sub.id) {
            *pending = (*pending).max(seq);
            return;
        }
        self.invalidated.insert(sub.id.clone(), seq);
        self.items.push_back(Item::Invalidate { watch_id: sub.id.clone(), path: sub.path.clone() });
    }
}

/// What the writer sends next.
enum Out {
    Text(String),
    Close { error: String, code: u16, reason: &'static str },
}

struct Outbox {
    queue: Mutex<Queue>,
    /// Wakes the writer.
    ready: Notify,
    /// Free answer slots; closed when the writer ends, so a waiting session ends too.
    answer_slots: Semaphore,
}

impl Outbox {
    fn new() -> Self {
        Outbox {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            answer_slots: Semaphore::new(ANSWERS_QUEUED_MAX),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent between statements; a panicking holder cannot tear it.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an answer to the client, waiting for a slot. `Err`: the writer is gone.
    async fn answer(&self, m: ServerMessage<'_>) -> Result<(), End> {
        self.answer_slots.acquire().await.map_err(|_| End::Gone)?.forget();
        let mut q = self.lock();
        if !q.closing {
            q.items.push_back(Item::Answer(m.encode()));
        }
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a matched entry for a subscription; never waits. A full queue becomes one invalidate.
    fn event(&self, sub: &Subscription, e: &JournalEntry) {
        let mut q = self.lock();
        if q.closing {
            return;
        }
        if let Some(pending) = q.invalidated.get_mut(&sub.id) {
            // Not yet sent: the invalidate already tells the client to rescan; it now covers this.
            *pending = e.seq;
            return;
        }
        let n = q.queued.get(&sub.id).copied().unwrap_or(0);
        if n >= SUBSCRIPTION_QUEUED_EVENTS_MAX {
            tracing::debug!(watch_id = %sub.id, seq = e.seq, "watch queue overflow: invalidating");
            q.drop_events_of(&sub.id);
            q.invalidate(sub, e.seq);
        } else {
            q.queued.insert(sub.id.clone(), n + 1);
            q.items.push_back(Item::Event { watch_id: sub.id.clone(), event: Event::of(e) });
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Tells the subscription that entries up to `seq` it needed are gone from the journal.
    fn invalidate(&self, sub: &Subscription, seq: u64) {
        let mut q = self.lock();
        if q.closing {
            return;
        }
        q.invalidate(sub, seq);
        drop(q);
        self.ready.notify_one();
    }

    /// Forgets everything queued for a watch id (it was unsubscribed).
    fn forget(&self, watch_id: &str) {
        let mut q = self.lock();
        q.drop_events_of(watch_id);
        q.invalidated.remove(watch_id);
        q.items.retain(|i| !matches!(i, Item::Invalidate { watch_id: w, .. } if &**w == watch_id));
    }

    /// Queues the error message and close frame that end the connection; nothing follows them.
    fn close(&self, error: String, code: u16, reason: &'static str) {
        let mut q = self.lock();
        if !q.closing {
            q.closing = true;
            q.items.push_back(Item::Close { error, code, reason });
        }
        drop(q);
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Out> {
        let mut q = self.lock();
        let out = match q.items.pop_front()? {
            Item::Answer(text) => {
                self.answer_slots.add_permits(1);
                Out::Text(text)
            }
            Item::Event { watch_id, event } => {
                match q.queued.get_mut(&watch_id) {
                    Some(n) if *n > 1 => *n -= 1,
                    _ => {
                        q.queued.remove(&watch_id);
                    }
                }
                drop(q);
                Out::Text(event.encode(&watch_id))
            }
            Item::Invalidate { watch_id, path } => {
                let seq = q.invalidated.remove(&watch_id).unwrap_or(0);
                drop(q);
                Out::Text(
                    ServerMessage::Event {
                        watch_id: &watch_id,
                        event: EventType::Invalidate.as_str(),
                        path: &path,
                        old_path: None,
                        seq,
                    }
                    .encode(),
                )
            }
            Item::Close { error, code, reason } => Out::Close { error, code, reason },
        };
        Some(out)
    }

    /// The next thing to send, waiting for it. Cancel-safe: an item is popped and returned in
    /// the same poll.
    async fn next(&self) -> Out {
        loop {
            if let Some(out) = self.pop() {
                return out;
            }
            // `notify_one` keeps a permit when nobody waits, so a push between `pop` and here
            // still wakes us.
            self.ready.notified().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writer task

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, outbox: Arc<Outbox>) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let out = tokio::select! {
            biased;
            _ = ping.tick() => None,
            out = outbox.next() => Some(out),
        };
        let sent = match out {
            None => sink.send(Message::Ping(Default::default())).await,
            Some(Out::Text(text)) => sink.send(Message::Text(text.into())).await,
            Some(Out::Close { error, code, reason }) => {
                let text = ServerMessage::Error { error: &error }.encode();
                if sink.send(Message::Text(text.into())).await.is_ok() {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                }
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    // A session waiting for an answer slot must not wait forever.
    outbox.answer_slots.close();
}

/// Aborts the task when dropped: a session never leaves its writer behind.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Session task

/// Why a session ends.
enum End {
    /// The client is gone (closed, reset, or the writer failed): nothing more to send.
    Gone,
    /// The client said close: let its close reply go out.
    ClientClosed,
    /// The server ends it: an error message, then a close frame.
    Close { error: String, code: u16, reason: &'static str },
}

impl End {
    fn deleted() -> End {
        End::Close { error: "volume deleted".into(), code: close_code::NORMAL, reason: "volume deleted" }
    }
    fn shutting_down() -> End {
        End::Close { error: "server shutting down".into(), code: close_code::AWAY, reason: "shutting down" }
    }
    fn silent() -> End {
        let error = format!("nothing from the client (not even a pong) for {}s", CLIENT_SILENCE_MAX.as_secs());
        End::Close { error, code: close_code::AWAY, reason: "client silent" }
    }
    fn storage(e: StorageError) -> End {
        tracing::error!(error = %e, "storage failure while watching a volume");
        End::Close { error: "internal storage error".into(), code: close_code::ERROR, reason: "internal error" }
    }
}

type Metrics =
    tokio::sync::watch::Receiver<openraft::RaftMetrics<tideline_raft::typ::NodeId, tideline_raft::typ::Node>>;

struct Session {
    sm: StateMachine,
    volume_id: String,
    /// The last journal seq this session has dispatched (or skipped as nobody's business).
    last: u64,
    subs: Vec<Subscription>,
    outbox: Arc<Outbox>,
}

impl Session {
    async fn run(mut self, socket: WebSocket, applied: Metrics) {
        tracing::debug!(volume = %self.volume_id, "watch connection opened");
        let (sink, mut stream) = socket.split();
        let mut writer = AbortOnDrop(tokio::spawn(write_loop(sink, self.outbox.clone())));
        let end = self.serve(&mut stream, &mut writer.0, applied).await;
        match end {
            End::Gone => {}
            End::ClientClosed => {
                // Reading once more flushes the close reply tungstenite queued for us.
                let _ = tokio::time::timeout(CLOSE_FLUSH_MAX, stream.next()).await;
            }
            End::Close { error, code, reason } => {
                self.outbox.close(error, code, reason);
                let _ = tokio::time::timeout(CLOSE_FLUSH_MAX, &mut writer.0).await;
            }
        }
        tracing::debug!(volume = %self.volume_id, "watch connection closed");
    }

    async fn serve(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        writer: &mut JoinHandle<()>,
        mut applied: Metrics,
    ) -> End {
        let mut applied_index = applied.borrow_and_update().last_applied.map(|l| l.index);
        // Entries may have been applied since the volume was read.
        if let Err(end) = self.pump().await {
            return end;
        }
        let mut silent_until = Instant::now() + CLIENT_SILENCE_MAX;
        loop {
            let step = tokio::select! {
                frame = stream.next() => {
                    silent_until = Instant::now() + CLIENT_SILENCE_MAX;
                    self.on_frame(frame).await
                }
                changed = applied.changed() => match changed {
                    Err(_) => Err(End::shutting_down()),
                    Ok(()) => {
                        // Metrics change for many reasons; only a new applied index can mean new entries.
                        let now = applied.borrow_and_update().last_applied.map(|l| l.index);
                        if now == applied_index {
                            Ok(())
                        } else {
                            applied_index = now;
                            self.pump().await
                        }
                    }
                },
                _ = &mut *writer => Err(End::Gone),
                _ = tokio::time::sleep_until(silent_until) => Err(End::silent()),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<(), End> {
        match frame {
            None | Some(Err(_)) => Err(End::Gone),
            Some(Ok(Message::Close(_))) => Err(End::ClientClosed),
            Some(Ok(Message::Text(text))) => self.on_message(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => self.reply_error("binary messages are not supported: send JSON text").await,
            // Liveness only: tungstenite answers pings itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
        }
    }

    /// Dispatches every journal entry after `last`, a page at a time, until caught up.
    async fn pump(&mut self) -> Result<(), End> {
        loop {
            // The volume before the page: every entry up to its head is in the journal unless
            // compacted, so a missing one below the head is a gap, never a race with an apply.
            let vol = self.sm.volume(&self.volume_id).map_err(End::storage)?.ok_or_else(End::deleted)?;
            if self.subs.is_empty() {
                self.last = vol.head_seq;
                return Ok(());
            }
            if self.last >= vol.head_seq {
                return Ok(());
            }
            let page = self.sm.changes(&self.volume_id, self.last, JOURNAL_PAGE_ENTRIES).map_err(End::storage)?;
            let missing_to = page.first().map_or(vol.head_seq, |e| e.seq.saturating_sub(1));
            if missing_to > self.last {
                // Compacted below us: whoever needed those entries must rescan.
                tracing::debug!(volume = %self.volume_id, after = self.last, missing_to, "watch below journal floor");
                for sub in self.subs.iter().filter(|s| s.from < missing_to) {
                    self.outbox.invalidate(sub, missing_to);
                }
                self.last = missing_to;
            }
            for e in &page {
                debug_assert_eq!(e.seq, self.last + 1, "journal pages are gapless above the floor");
                for sub in self.subs.iter().filter(|s| e.seq > s.from && s.wants(e)) {
                    self.outbox.event(sub, e);
                }
                self.last = e.seq;
            }
            // A long backlog must not starve the runtime.
            tokio::task::yield_now().await;
        }
    }

    async fn on_message(&mut self, text: &str) -> Result<(), End> {
        let m: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return self.reply_error(&format!("invalid message: {e}")).await,
        };
        match m.action.parse::<WatchAction>() {
            Ok(WatchAction::Subscribe) => self.subscribe(m.path.as_deref().unwrap_or(""), m.recursive).await,
            Ok(WatchAction::Unsubscribe) => self.unsubscribe(m.watch_id.as_deref().unwrap_or("")).await,
            Err(_) => {
                let other = &m.action;
                self.reply_error(&format!("unknown action {other:?}: use subscribe or unsubscribe")).await
            }
        }
    }

    async fn subscribe(&mut self, raw_path: &str, recursive: bool) -> Result<(), End> {
        let clean = match path::clean(raw_path) {
            Ok(p) => p,
            Err(e) => return self.reply_error(&e.to_string()).await,
        };
        if self.subs.len() >= SUBSCRIPTIONS_PER_CONNECTION_MAX {
            let msg = format!("too many subscriptions on this connection (limit {SUBSCRIPTIONS_PER_CONNECTION_MAX})");
            return self.reply_error(&msg).await;
        }
        let vol = self.sm.volume(&self.volume_id).map_err(End::storage)?.ok_or_else(End::deleted)?;
        if self.subs.is_empty() {
            // Nobody needs what lies before the head.
            self.last = vol.head_seq;
        }
        let sub = Subscription { id: new_id("watch-").into(), path: clean.into(), recursive, from: vol.head_seq };
        // Answer first: the FIFO then puts `subscribed` before any of its events.
        self.outbox.answer(ServerMessage::Subscribed { watch_id: &sub.id, path: &sub.path }).await?;
        self.subs.push(sub);
        Ok(())
    }

    async fn unsubscribe(&mut self, watch_id: &str) -> Result<(), End> {
        if watch_id.is_empty() {
            return self.reply_error("watch_id is required").await;
        }
        let Some(i) = self.subs.iter().position(|s| &*s.id == watch_id) else {
            return self.reply_error(&format!("unknown watch_id {watch_id:?}")).await;
        };
        let sub = self.subs.swap_remove(i);
        self.outbox.forget(&sub.id);
        self.outbox.answer(ServerMessage::Unsubscribed { watch_id: &sub.id }).await
    }

    async fn reply_error(&self, error: &str) -> Result<(), End> {
        self.outbox.answer(ServerMessage::Error { error }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(p: &str, recursive: bool) -> Subscription {
        Subscription { id: "w".into(), path: p.into(), recursive, from: 0 }
    }

    fn entry(event_type: &str, p: &str, old: Option<&str>) -> JournalEntry {
        JournalEntry {
            event_type: event_type.into(),
            path: p.into(),
            old_path: old.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn matching() {
        let flat = sub("/d", false);
        let deep = sub("/d", true);
        let root = sub("/", false);
        for (e, f, d) in [
            (entry("write", "/d", None), true, true),
            (entry("write", "/d/f", None), true, true),
            (entry("write", "/d/s/g", None), false, true),
            (entry("write", "/dd", None), false, false),
            (entry("rename", "/x", Some("/d/f")), true, true),
            (entry("rename", "/d/s/x", Some("/y")), false, true),
            (entry("remove", "/", None), true, true),
            (entry("rename", "/d", Some("/z")), true, true),
            (entry("invalidate", "/d/s/g", None), true, true),
            (entry("invalidate", "/", None), true, true),
            (entry("invalidate", "/e", None), false, false),
        ] {
            assert_eq!(flat.wants(&e), f, "flat {} {}", e.event_type, e.path);
            assert_eq!(deep.wants(&e), d, "deep {} {}", e.event_type, e.path);
        }
        assert!(root.wants(&entry("create", "/a", None)));
        assert!(!root.wants(&entry("create", "/a/b", None)));
        assert!(root.wants(&entry("write", "/", None)));
    }

    #[test]
    fn overflow_becomes_one_invalidate() {
        let outbox = Outbox::new();
        let s = sub("/", true);
        for seq in 1..=SUBSCRIPTION_QUEUED_EVENTS_MAX as u64 + 10 {
            outbox
                .event(&s, &JournalEntry { seq, event_type: "write".into(), path: "/f".into(), ..Default::default() });
        }
        let Some(Out::Text(t)) = outbox.pop() else { panic!("expected the invalidate") };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["event"], "invalidate");
        assert_eq!(v["seq"], SUBSCRIPTION_QUEUED_EVENTS_MAX as u64 + 10);
        assert!(outbox.pop().is_none());
        outbox
            .event(&s, &JournalEntry { seq: 999, event_type: "write".into(), path: "/f".into(), ..Default::default() });
        let Some(Out::Text(t)) = outbox.pop() else { panic!("expected the event") };
        assert!(t.contains("\"seq\":999"));
    }

    #[test]
    fn message_types_are_the_wire_set() {
        use tideline_types::WatchMessageType as T;
        let messages = [
            (ServerMessage::Subscribed { watch_id: "w", path: "/" }, T::Subscribed),
            (ServerMessage::Event { watch_id: "w", event: "write", path: "/f", old_path: None, seq: 1 }, T::Event),
            (ServerMessage::Unsubscribed { watch_id: "w" }, T::Unsubscribed),
            (ServerMessage::Error { error: "e" }, T::Error),
        ];
        for (m, want) in messages {
            let v: serde_json::Value = serde_json::from_str(&m.encode()).unwrap();
            assert_eq!(v["type"].as_str().unwrap().parse::<T>(), Ok(want), "{v}");
        }
    }
}
