//! [`ReadIndex`]: one leadership confirmation shared by the linearizable reads waiting for it.
//!
//! A read must see every write committed before it arrived, so it may only use a confirmation
//! that *started* after it arrived. Reads that arrive while a round is under way wait for the
//! next round, which starts as soon as the current one ends and serves all of them at once:
//!
//! ```text
//!  read ─▶ waiters ──(no round running)──▶ round: take every waiter ─▶ confirm ─▶ answer all
//!                                                └─ more waiters queued meanwhile? another round
//! ```
//!
//! On the leader a round is one heartbeat to a quorum (`get_read_log_id`); on a follower it is
//! one `/raft/read-index` call to the leader. Either way, N concurrent reads cost one round trip.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::proposer::Failed;

type Answer = Result<u64, Failed>;
type Confirm = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// Reads waiting for a confirmation; clones share them.
#[derive(Clone)]
pub struct ReadIndex {
    state: Arc<Mutex<State>>,
    confirm: Confirm,
}

#[derive(Default)]
struct State {
    running: bool,
    waiters: Vec<oneshot::Sender<Answer>>,
}

/// Reads served by one round, at most (the rest go in the next round).
const ROUND_READS_MAX: usize = 4096;

impl ReadIndex {
    /// `confirm` runs one round: it returns the log index a read must see applied.
    pub fn new<F, Fut>(confirm: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let confirm: Confirm = Arc::new(move || Box::pin(confirm()));
        ReadIndex { state: Arc::new(Mutex::new(State::default())), confirm }
    }

    /// The index this read must wait for: from a round that started after this call.
    pub async fn get(&self) -> Answer {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock().expect("read index lock");
            st.waiters.push(tx);
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            tokio::spawn(self.clone().rounds());
        }
        rx.await.unwrap_or_else(|_| {
            Err(Failed {
                error: crate::ProposeError::Unavailable("the read-index round was dropped".into()),
                retry_safe: true,
            })
        })
    }

    async fn rounds(self) {
        loop {
            let waiters: Vec<_> = {
                let mut st = self.state.lock().expect("read index lock");
                if st.waiters.is_empty() {
                    st.running = false;
                    return;
                }
                let n = st.waiters.len().min(ROUND_READS_MAX);
                st.waiters.drain(..n).collect()
            };
            metrics::histogram!("tideline_read_index_round_reads").record(waiters.len() as f64);
            let answer = (self.confirm)().await;
            for w in waiters {
                let _ = w.send(match &answer {
                    Ok(i) => Ok(*i),
                    Err(f) => Err(Failed { error: f.error.clone(), retry_safe: f.retry_safe }),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_reads_share_rounds_and_never_use_an_older_one() {
        let rounds = Arc::new(AtomicU64::new(0));
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(0u64);
        let counter = rounds.clone();
        let ri = ReadIndex::new(move || {
            let counter = counter.clone();
            let mut gate = gate_rx.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                // Each round waits until the test lets it finish; its answer is its number.
                gate.wait_for(|g| *g >= n).await.expect("gate");
                Ok(n)
            }
        });
        // Round 1 starts with the first read.
        let first = tokio::spawn({
            let ri = ri.clone();
            async move { ri.get().await.map_err(|f| f.error) }
        });
        while rounds.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // 50 reads arrive while round 1 runs: they must all be served by round 2, not round 1.
        let later: Vec<_> = (0..50)
            .map(|_| {
                let ri = ri.clone();
                tokio::spawn(async move { ri.get().await.map_err(|f| f.error) })
            })
            .collect();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate_tx.send(1).expect("gate");
        assert_eq!(first.await.expect("join").expect("read"), 1);
        gate_tx.send(2).expect("gate");
        for r in later {
            assert_eq!(r.await.expect("join").expect("read"), 2, "a later read used an older round");
        }
        assert_eq!(rounds.load(Ordering::SeqCst), 2, "51 reads, two rounds");
    }
}
