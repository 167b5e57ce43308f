//! The watch protocol's messages: what a client sends (subscribe, unsubscribe) and what the
//! server answers (subscribed, event, unsubscribed, error), plus one matched journal entry as
//! queued for a subscription.

use serde::{Deserialize, Serialize};
use tideline_storage::JournalEntry;
use tideline_types::EventType;

#[derive(Deserialize)]
pub(super) struct ClientMessage {
    pub action: String,
    pub path: Option<String>,
    #[serde(default)]
    pub recursive: bool,
    pub watch_id: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum ServerMessage<'a> {
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
    pub(super) fn encode(&self) -> String {
        // Only strings and integers: serializing cannot fail.
        serde_json::to_string(self).expect("a server message serializes")
    }
}

/// One matched journal entry, as queued for a subscription.
pub(super) struct Event {
    event: String,
    path: String,
    old_path: Option<String>,
    seq: u64,
}

impl Event {
    pub(super) fn of(e: &JournalEntry) -> Self {
        Event {
            event: e.event_type.clone(),
            path: e.path.clone(),
            old_path: if e.event_type == EventType::Rename.as_str() { e.old_path.clone() } else { None },
            seq: e.seq,
        }
    }

    pub(super) fn encode(&self, watch_id: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
