//! The session task of a watch connection: follows the volume's journal from where it stood
//! when the connection opened, matches every entry against the connection's subscriptions and
//! queues what matched in the [`Outbox`]; reads the client's frames (subscribe, unsubscribe,
//! close) and ends the connection when the client is gone, silent, the volume deleted or the
//! server stopping.
//!
//! ```text
//!  applied index changed ─▶ pump: volume head ─▶ changes(after last, 512) ─▶ match ─▶ outbox
//!  client frame ─▶ subscribe / unsubscribe ─▶ answer (FIFO before its events)
//! ```

use std::sync::Arc;

use axum::extract::ws::{close_code, Message, WebSocket};
use futures::stream::SplitStream;
use futures::StreamExt;
use tideline_storage::{StateMachine, StorageError};
use tideline_types::{path, WatchAction};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::messages::{ClientMessage, ServerMessage};
use super::outbox::{Gone, Outbox};
use super::subscription::Subscription;
use super::writer::{write_loop, AbortOnDrop};
use super::{CLIENT_SILENCE_MAX, CLOSE_FLUSH_MAX, JOURNAL_PAGE_ENTRIES, SUBSCRIPTIONS_PER_CONNECTION_MAX};
use crate::ops::AppliedWatch;
use crate::wire::new_id;

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

impl From<Gone> for End {
    fn from(_: Gone) -> End {
        End::Gone
    }
}

pub(super) struct Session {
    sm: StateMachine,
    volume_id: String,
    /// The last journal seq this session has dispatched (or skipped as nobody's business).
    last: u64,
    subs: Vec<Subscription>,
    outbox: Arc<Outbox>,
}

impl Session {
    /// A session following `volume_id`'s journal from `last` (its head when the connection
    /// opened).
    pub(super) fn new(sm: StateMachine, volume_id: String, last: u64) -> Session {
        Session { sm, volume_id, last, subs: Vec::new(), outbox: Arc::new(Outbox::new()) }
    }

    pub(super) async fn run(mut self, socket: WebSocket, applied: AppliedWatch) {
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
        mut applied: AppliedWatch,
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
        Ok(self.outbox.answer(ServerMessage::Unsubscribed { watch_id: &sub.id }).await?)
    }

    async fn reply_error(&self, error: &str) -> Result<(), End> {
        Ok(self.outbox.answer(ServerMessage::Error { error }).await?)
    }
}
