//! Freezing a namespace for a snapshot without stalling the apply loop.
//!
//! ```text
//!  handler: expect(id) ──────────────────────────────────────────────▶ await entries
//!  apply(CreateSnapshot id) ─ commit ─▶ on_applied: thread takes a RocksDB snapshot ─┐
//!        (waits only until the snapshot handle exists, microseconds)                  │
//!                                          thread: collect the namespace off-apply ───┘
//! ```
//!
//! The RocksDB snapshot is taken after the command's batch is written and before the next
//! command is applied, so it shows the namespace at exactly the snapshot's `seq`. Only the node
//! that expects a snapshot (the one serving the request) builds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::db::Db;
use crate::error::StorageError;
use crate::manifest::{self, ManifestEntry};

/// A frozen namespace: its seq and its entries in archive order.
pub type Frozen = Result<(u64, Vec<ManifestEntry>), StorageError>;

#[derive(Clone, Default)]
pub struct Freezer {
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Frozen>>>>,
}

impl Freezer {
    /// Registers interest in snapshot `id`; call before proposing its `CreateSnapshot`.
    pub fn expect(&self, id: &str) -> oneshot::Receiver<Frozen> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("freezer lock").insert(id.to_string(), tx);
        rx
    }

    /// Drops interest (the proposal failed).
    pub fn forget(&self, id: &str) {
        self.waiting.lock().expect("freezer lock").remove(id);
    }

    /// Called by apply right after `CreateSnapshot` committed.
    pub(crate) fn on_applied(&self, db: &Db, volume: &str, id: &str, seq: u64) {
        let Some(tx) = self.waiting.lock().expect("freezer lock").remove(id) else {
            return; // another node serves this request
        };
        let (taken_tx, taken_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let db = db.clone();
        let volume = volume.to_string();
        let spawned = std::thread::Builder::new().name("tideline-freeze".into()).spawn(move || {
            let snap = db.raw().snapshot();
            let _ = taken_tx.send(());
            let frozen = manifest::collect(&db, &snap, &volume).map(|entries| (seq, entries));
            let _ = tx.send(frozen);
        });
        match spawned {
            // The next command must not be applied before the snapshot handle exists.
            Ok(_) => {
                let _ = taken_rx.recv();
            }
            Err(e) => tracing::error!(snapshot = id, error = %e, "could not start the freeze thread"),
        }
    }
}
