//! [`Outbox`]: what the session has decided to send, in order, bounded per subscription. One
//! FIFO holds answers and events; a subscription holds at most
//! [`SUBSCRIPTION_QUEUED_EVENTS_MAX`] queued events, and one more drops them for a single
//! `invalidate` (raised, not repeated, while it waits). The session pushes and never waits on
//! events; the writer pops.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tideline_storage::JournalEntry;
use tideline_types::EventType;
use tokio::sync::{Notify, Semaphore};

use super::messages::{Event, ServerMessage};
use super::subscription::Subscription;
use super::{ANSWERS_QUEUED_MAX, SUBSCRIPTION_QUEUED_EVENTS_MAX};

/// The writer is gone: nothing queued will be sent.
pub(super) struct Gone;

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
pub(super) enum Out {
    Text(String),
    Close { error: String, code: u16, reason: &'static str },
}

pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Wakes the writer.
    ready: Notify,
    /// Free answer slots; closed when the writer ends, so a waiting session ends too.
    pub(super) answer_slots: Semaphore,
}

impl Outbox {
    pub(super) fn new() -> Self {
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
    pub(super) async fn answer(&self, m: ServerMessage<'_>) -> Result<(), Gone> {
        self.answer_slots.acquire().await.map_err(|_| Gone)?.forget();
        let mut q = self.lock();
        if !q.closing {
            q.items.push_back(Item::Answer(m.encode()));
        }
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a matched entry for a subscription; never waits. A full queue becomes one invalidate.
    pub(super) fn event(&self, sub: &Subscription, e: &JournalEntry) {
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
    pub(super) fn invalidate(&self, sub: &Subscription, seq: u64) {
        let mut q = self.lock();
        if q.closing {
            return;
        }
        q.invalidate(sub, seq);
        drop(q);
        self.ready.notify_one();
    }

    /// Forgets everything queued for a watch id (it was unsubscribed).
    pub(super) fn forget(&self, watch_id: &str) {
        let mut q = self.lock();
        q.drop_events_of(watch_id);
        q.invalidated.remove(watch_id);
        q.items.retain(|i| !matches!(i, Item::Invalidate { watch_id: w, .. } if &**w == watch_id));
    }

    /// Queues the error message and close frame that end the connection; nothing follows them.
    pub(super) fn close(&self, error: String, code: u16, reason: &'static str) {
        let mut q = self.lock();
        if !q.closing {
            q.closing = true;
            q.items.push_back(Item::Close { error, code, reason });
        }
        drop(q);
        self.ready.notify_one();
    }

    pub(super) fn pop(&self) -> Option<Out> {
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
    pub(super) async fn next(&self) -> Out {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(p: &str, recursive: bool) -> Subscription {
        Subscription { id: "w".into(), path: p.into(), recursive, from: 0 }
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
}
