//! What every handler shares.

use std::sync::Arc;

use tideline_raft::RaftNode;
use tideline_storage::BlobStore;
use tokio::sync::Semaphore;

use crate::auth::token_sha256;

/// Request bodies of file writes are at most this large.
pub use tideline_types::limits::FILE_BYTES_MAX;
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
    /// Deliberate bugs for calibrating the jepsen harness (feature `planted-bugs` only).
    #[cfg(feature = "planted-bugs")]
    pub planted: PlantedBugs,
}

/// Bugs the jepsen harness must catch, compiled in only with the `planted-bugs` feature and
/// switched on only by the hidden server flag `--planted-bug NAME`.
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, Default)]
pub struct PlantedBugs {
    /// `ack-before-commit`: a files-API write answers 200 at once, before its Raft entry is
    /// committed: no read barrier, and the proposal runs in a spawned task whose outcome
    /// nobody waits for (a write to a node cut off from the quorum is acknowledged and lost).
    pub ack_before_commit: bool,
    /// `ack-batch-before-commit`: the proposer answers every caller of a batched Raft entry
    /// before the entry is committed (a batch a deposed leader never commits is lost).
    pub ack_batch_before_commit: bool,
}

#[cfg(feature = "planted-bugs")]
impl PlantedBugs {
    /// Parses the names given to `--planted-bug`.
    pub fn parse(names: &[String]) -> Result<PlantedBugs, String> {
        let mut bugs = PlantedBugs::default();
        for n in names {
            match n.as_str() {
                "ack-before-commit" => bugs.ack_before_commit = true,
                "ack-batch-before-commit" => bugs.ack_batch_before_commit = true,
                other => {
                    return Err(format!(
                        "unknown planted bug {other:?} (known: ack-before-commit, ack-batch-before-commit)"
                    ))
                }
            }
        }
        Ok(bugs)
    }
}

impl AppState {
    pub fn new(node: RaftNode, blobs: BlobStore, admin_token: &str, cluster_secret: &str) -> Self {
        AppState {
            node,
            blobs,
            admin_token_sha256: token_sha256(admin_token),
            cluster_secret: cluster_secret.into(),
            upload_slots: Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT_MAX)),
            #[cfg(feature = "planted-bugs")]
            planted: PlantedBugs::default(),
        }
    }
}
