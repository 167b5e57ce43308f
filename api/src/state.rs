//! What every handler shares: the operations ([`Ops`]: node, blob store, clock, proposer) and
//! what only the HTTP layer needs (credentials, the upload budget).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::auth::token_sha256;
use crate::ops::Ops;

/// Request bodies of file writes are at most this large.
pub use tideline_types::limits::FILE_BYTES_MAX;
/// File uploads buffered at once, at most (each up to [`FILE_BYTES_MAX`]).
pub const UPLOADS_IN_FLIGHT_MAX: usize = 16;

/// Bugs the jepsen harness must catch (feature `planted-bugs`): see [`Ops::with_planted`].
#[cfg(feature = "planted-bugs")]
pub use crate::ops::PlantedBugs;

#[derive(Clone)]
pub struct AppState {
    pub ops: Ops,
    pub admin_token_sha256: [u8; 32],
    /// Shared secret node-to-node requests must carry.
    pub cluster_secret: Arc<str>,
    /// `/raft/*` also requires a client certificate the cluster CA signed (mutual TLS).
    pub peer_cert_required: bool,
    pub upload_slots: Arc<Semaphore>,
}

impl AppState {
    pub fn new(ops: Ops, admin_token: &str, cluster_secret: &str) -> Self {
        AppState {
            ops,
            admin_token_sha256: token_sha256(admin_token),
            cluster_secret: cluster_secret.into(),
            peer_cert_required: false,
            upload_slots: Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT_MAX)),
        }
    }

    /// Requires peers to prove a cluster certificate on `/raft/*` (served by a
    /// [`TlsListener`](crate::tls::TlsListener) whose configuration verifies them).
    pub fn with_peer_cert_required(mut self) -> Self {
        self.peer_cert_required = true;
        self
    }
}
