//! Bugs the jepsen harness must catch, compiled in only with the `planted-bugs` feature and
//! switched on only by the hidden server flag `--planted-bug NAME`. They wrap the proposer
//! ([`AckBeforeCommit`]) or configure Raft's (`ack-batch-before-commit`); no operation branches
//! on them.

use std::sync::Arc;

use futures::future::BoxFuture;
use tideline_storage::{Command, CommandKind, Response};

use super::context::Ops;
use super::proposer::Propose;
use crate::error::ApiResult;

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

impl Ops {
    /// The operations with the API's planted bugs switched on (`ack-batch-before-commit` lives
    /// in Raft's proposer: `RaftNodeConfig::planted_ack_batch_before_commit`).
    pub fn with_planted(self, bugs: PlantedBugs) -> Ops {
        if bugs.ack_before_commit {
            self.wrap_proposer(|inner| Arc::new(AckBeforeCommit { inner }))
        } else {
            self
        }
    }
}

/// PLANTED BUG (jepsen calibration) `ack-before-commit`: a file write (`WriteFile`, what the
/// files API's write proposes) is answered at once with an empty response while its proposal
/// runs in a task nobody waits for. Every other command goes through unchanged.
pub struct AckBeforeCommit {
    inner: Arc<dyn Propose>,
}

impl Propose for AckBeforeCommit {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, ApiResult<Response>> {
        if !matches!(cmd.kind, Some(CommandKind::WriteFile(_))) {
            return self.inner.propose(cmd);
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.propose(cmd).await {
                tracing::warn!(error = ?e, "planted bug: an acknowledged write was not committed");
            }
        });
        Box::pin(async { Ok(Response::default()) })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;
    use crate::ops::files;
    use crate::ops::testing::Fixture;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ack_before_commit_acknowledges_file_writes_that_never_commit_and_nothing_else() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        let bugs = PlantedBugs { ack_before_commit: true, ..Default::default() };
        // Every proposal refused: a write acknowledged anyway is a lost write.
        let ops = f.refusing(|_| true).with_planted(bugs);
        files::write(&ops, &vol, "/lost".into(), Bytes::from_static(b"x"), Default::default()).await.unwrap();
        files::mkdir(&ops, &vol, "/d".into(), false, 0).await.unwrap_err();
        assert_eq!(f.head(&vol), 0, "nothing committed");
        let off = f.refusing(|_| true).with_planted(PlantedBugs::default());
        files::write(&off, &vol, "/lost".into(), Bytes::from_static(b"x"), Default::default()).await.unwrap_err();
    }
}
