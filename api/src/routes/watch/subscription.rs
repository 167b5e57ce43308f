//! One subscription of a watch connection and which journal entries it wants.
//!
//! A flat subscription on P sees entries whose `path` or `old_path` is P or a direct child of P;
//! a recursive one, P and everything below. An `invalidate` entry reaches every subscription
//! whose path it contains or lies within; a `remove`/`rename` of an ancestor of P reaches P's
//! subscriptions too, since it removes or replaces what they watch.

use std::sync::Arc;

use tideline_storage::JournalEntry;
use tideline_types::{path, EventType};

pub(super) struct Subscription {
    pub id: Arc<str>,
    pub path: Arc<str>,
    pub recursive: bool,
    /// The volume's head when it subscribed: it gets entries after this only.
    pub from: u64,
}

impl Subscription {
    pub(super) fn wants(&self, e: &JournalEntry) -> bool {
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
}
