//! What every handler shares.

use std::sync::Arc;

use tideline_raft::RaftNode;
use tideline_storage::BlobStore;
use tokio::sync::Semaphore;

use crate::auth::token_sha256;

/// Request bodies of file writes are at most this large.
pub const FILE_BYTES_MAX: usize = 100 * 1024 * 1024;
/// File uploads buffered at once, at most (each up to [`FILE_BYTES_MAX`]).
pub const UPLOADS_IN_FLIGHT_MAX: usize = 16;

#[derive(Clone)]
pub struct AppState {
    pub node: RaftNode,
    pub blobs: BlobStore,
    pub admin_token_sha256: [u8; 32],
    /// Shared secret node-to-node requests must carry.
    pub cluster_secret: Arc<str>,
    pub upload_slots: Arc<Semaphore>,
}

impl AppState {
    pub fn new(node: RaftNode, blobs: BlobStore, admin_token: &str, cluster_secret: &str) -> Self {
        AppState {
            node,
            blobs,
            admin_token_sha256: token_sha256(admin_token),
            cluster_secret: cluster_secret.into(),
            upload_slots: Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT_MAX)),
        }
    }
}
