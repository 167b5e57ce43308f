//! The writer task: drains the [`Outbox`] to the socket and pings every [`PING_INTERVAL`];
//! when it ends (the socket failed, or it sent the close), a session waiting for an answer slot
//! is released.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::SinkExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::messages::ServerMessage;
use super::outbox::{Out, Outbox};
use super::PING_INTERVAL;

pub(super) async fn write_loop(mut sink: SplitSink<WebSocket, Message>, outbox: Arc<Outbox>) {
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
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
