//! [`Proposer`]: the node's group commit. openraft 0.9 makes one log entry per `client_write`
//! and awaits each append's WAL sync before the next, so commands proposed one by one cost one
//! fsync each on every node. The proposer takes the commands waiting at the moment it is free
//! and proposes them as one entry ([`CommandBatch`]): one WAL sync on each node and one apply
//! `WriteBatch` serve them all, and every caller still gets its own response.
//!
//! ```text
//!  propose(cmd) ─▶ bounded queue ─▶ proposer task: take the first, wait for an in-flight slot,
//!                                   then drain what is waiting (≤ BATCH_COMMANDS_MAX, ≤ BATCH_BYTES_MAX)
//!                                      │ leader here?   ── client_write(one entry) ─▶ split responses
//!                                      │ leader elsewhere ── POST /raft/propose (the whole batch)
//!                                      └ no leader    ── every caller retries after a pause
//! ```
//!
//! A lone command is proposed at once, as itself: nothing waits on a timer. While
//! `in_flight` batches are being committed, new commands queue and become the next batch;
//! that is where batches come from under load. The leader's proposer also takes the batches
//! followers forward, so they merge with its own commands.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use prost::Message;
use tideline_storage::{Command, CommandBatch, CommandKind, Response};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::peer_client::{CallError, PeerClient};
use crate::rpc::{ProposeResponse, RemoteRefusal};
use crate::typ::*;
use crate::ProposeError;

/// Commands in one Raft entry, at most.
pub const BATCH_COMMANDS_MAX: usize = 512;
/// Encoded bytes of the commands in one Raft entry, at most (a single larger command is
/// proposed alone: a replica's append may carry up to 8 MiB).
pub const BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Batches being committed at once by one node, by default. One: openraft appends one entry
/// at a time (each waits for the previous one's WAL sync), so a second batch in flight cannot
/// overlap anything; it only cuts the next batch early. Measured (`benches/single-node.sh`, 64
/// connections, alternating): 1 in flight 11 466–11 921 writes/s at 83–88 µs of CPU each; 2 in
/// flight 8 576–8 852 at 122–125 µs; 4 and 8 less still. Three nodes: 1 and 2 the same.
pub const IN_FLIGHT_DEFAULT: usize = 1;
/// The most batches one node may have in flight (`--proposals-in-flight`).
pub const IN_FLIGHT_MAX: usize = 16;
/// Callers waiting for the proposer, at most; more wait to enqueue.
const QUEUE_MAX: usize = 4096;
/// How long one batch may take to commit, whatever its callers' deadlines.
const BATCH_TIMEOUT: Duration = crate::node::PROPOSE_TIMEOUT;

/// Why a proposal failed, and whether proposing it again is safe.
#[derive(Debug)]
pub struct Failed {
    pub error: ProposeError,
    /// The commands were certainly not committed (never sent, or refused before proposing):
    /// trying again cannot apply them twice.
    pub retry_safe: bool,
}

impl Failed {
    fn definite(error: ProposeError) -> Self {
        Failed { error, retry_safe: true }
    }
    fn indeterminate(error: ProposeError) -> Self {
        Failed { error, retry_safe: false }
    }
}

/// One caller's commands: a lone command, or a batch another node forwarded.
struct Item {
    commands: Vec<Command>,
    bytes: usize,
    /// Only this node may propose these (a forwarded batch is never forwarded again).
    local_only: bool,
    reply: oneshot::Sender<Result<Vec<Response>, Failed>>,
}

impl Item {
    fn batchable(&self) -> bool {
        self.commands.iter().all(Command::batchable)
    }
}

/// What the proposer task needs of the node.
struct Ctx {
    id: NodeId,
    raft: Raft,
    peers: PeerClient,
    /// Planted bug (jepsen calibration): answer a batch's callers before its entry commits.
    ack_batch_before_commit: bool,
}

/// The handle callers submit through; clones share one proposer task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Item>,
}

impl Proposer {
    /// Starts the proposer task for this node (on the current runtime).
    pub fn start(id: NodeId, raft: Raft, peers: PeerClient, in_flight: usize, ack_batch_before_commit: bool) -> Self {
        assert!((1..=IN_FLIGHT_MAX).contains(&in_flight), "proposals in flight: {in_flight}");
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        let ctx = Arc::new(Ctx { id, raft, peers, ack_batch_before_commit });
        tokio::spawn(run(ctx, rx, in_flight));
        Proposer { tx }
    }

    /// Proposes `commands` (in one batch with whatever else is waiting) and returns each one's
    /// response, in order. One attempt: the caller decides whether to try again.
    pub async fn submit(
        &self,
        commands: Vec<Command>,
        local_only: bool,
        deadline: Instant,
    ) -> Result<Vec<Response>, Failed> {
        let bytes = commands.iter().map(Message::encoded_len).sum();
        let (reply, rx) = oneshot::channel();
        let item = Item { commands, bytes, local_only, reply };
        match tokio::time::timeout_at(deadline, self.tx.send(item)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Failed::definite(ProposeError::Unavailable("the proposer stopped".into()))),
            Err(_) => return Err(Failed::definite(ProposeError::Unavailable("the proposal queue is full".into()))),
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failed::indeterminate(ProposeError::Unavailable("the proposer stopped".into()))),
            Err(_) => Err(Failed::indeterminate(ProposeError::Unavailable("timed out waiting for the commit".into()))),
        }
    }
}

async fn run(ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Item>, in_flight: usize) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut carried: Option<Item> = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut group = Group::new(first);
        // Take what queued while we waited for the slot; nothing waits for more to arrive.
        while group.batchable && group.commands < BATCH_COMMANDS_MAX && group.bytes < BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(item) if group.fits(&item) => group.push(item),
                Ok(item) => {
                    carried = Some(item);
                    break;
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("tideline_proposer_batch_commands").record(group.commands as f64);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            ctx.propose(group).await;
            drop(slot);
        });
    }
}

/// The callers whose commands go into one Raft entry.
struct Group {
    items: Vec<Item>,
    commands: usize,
    bytes: usize,
    batchable: bool,
}

impl Group {
    fn new(first: Item) -> Self {
        Group { commands: first.commands.len(), bytes: first.bytes, batchable: first.batchable(), items: vec![first] }
    }

    fn fits(&self, item: &Item) -> bool {
        item.batchable()
            && self.commands + item.commands.len() <= BATCH_COMMANDS_MAX
            && self.bytes + item.bytes <= BATCH_BYTES_MAX
    }

    fn push(&mut self, item: Item) {
        self.commands += item.commands.len();
        self.bytes += item.bytes;
        self.items.push(item);
    }

    /// The entry's payload: a lone command as itself, anything else as a batch.
    fn command(&self) -> Command {
        if let [item] = self.items.as_slice() {
            if let [cmd] = item.commands.as_slice() {
                return cmd.clone();
            }
        }
        let commands = self.items.iter().flat_map(|i| i.commands.iter().cloned()).collect();
        CommandKind::Batch(CommandBatch { commands }).into()
    }

    /// Hands each caller its share of the entry's response.
    fn answer(self, response: Response) {
        let lone = self.items.len() == 1 && self.commands == 1 && response.batch.is_empty();
        if lone {
            let item = self.items.into_iter().next().expect("one item");
            let _ = item.reply.send(Ok(vec![response]));
            return;
        }
        if response.batch.len() != self.commands {
            let got = response.batch.len();
            return self.fail_with(|| {
                Failed::indeterminate(ProposeError::Unavailable(format!(
                    "a batch response has {got} responses for its commands"
                )))
            });
        }
        let mut responses = response.batch.into_iter();
        for item in self.items {
            let mine: Vec<Response> = responses.by_ref().take(item.commands.len()).collect();
            let _ = item.reply.send(Ok(mine));
        }
    }

    fn fail_with(self, failed: impl Fn() -> Failed) {
        for item in self.items {
            let _ = item.reply.send(Err(failed()));
        }
    }
}

impl Ctx {
    async fn propose(&self, group: Group) {
        match known_leader(&self.raft) {
            (Some(l), _) if l == self.id => self.write_here(group).await,
            (Some(l), Some(addr)) => {
                let (local, forward): (Vec<Item>, Vec<Item>) = group.items.into_iter().partition(|i| i.local_only);
                for item in local {
                    let not_leader = ProposeError::NotLeader { leader_id: Some(l), leader_addr: Some(addr.clone()) };
                    let _ = item.reply.send(Err(Failed::definite(not_leader)));
                }
                if let Some(first) = forward.into_iter().fold(None::<Group>, |g, item| match g {
                    None => Some(Group::new(item)),
                    Some(mut g) => {
                        g.push(item);
                        Some(g)
                    }
                }) {
                    self.forward(first, l, &addr).await
                }
            }
            _ => group.fail_with(|| Failed::definite(ProposeError::Unavailable("no leader is known yet".into()))),
        }
    }

    async fn write_here(&self, group: Group) {
        let cmd = group.command();
        if self.ack_batch_before_commit && group.commands > 1 {
            // PLANTED BUG (jepsen calibration): every caller of a batch hears "applied" before
            // its entry is even appended; an entry a deposed leader never commits is lost.
            let raft = self.raft.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(BATCH_TIMEOUT, raft.client_write(cmd)).await;
            });
            let commands = group.commands;
            return group.answer(Response { batch: vec![Response::default(); commands], ..Default::default() });
        }
        match tokio::time::timeout(BATCH_TIMEOUT, self.raft.client_write(cmd)).await {
            Ok(Ok(resp)) => group.answer(resp.data),
            // Refused before the entry was appended: safe to try again (elsewhere).
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                let error = match (f.leader_id.filter(|l| *l != self.id), f.leader_node) {
                    (Some(id), Some(node)) => {
                        ProposeError::NotLeader { leader_id: Some(id), leader_addr: Some(node.addr) }
                    }
                    _ => ProposeError::Unavailable("leadership is changing".into()),
                };
                group.fail_with(|| Failed::definite(error.clone()))
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                group.fail_with(|| Failed::definite(ProposeError::Unavailable(e.to_string())))
            }
            Ok(Err(RaftError::Fatal(e))) => {
                group.fail_with(|| Failed::indeterminate(ProposeError::Unavailable(e.to_string())))
            }
            Err(_) => group.fail_with(|| {
                Failed::indeterminate(ProposeError::Unavailable("timed out waiting for the commit".into()))
            }),
        }
    }

    async fn forward(&self, group: Group, leader: NodeId, addr: &str) {
        let cmd = group.command();
        metrics::counter!("tideline_proposals_forwarded_total").increment(group.commands as u64);
        let answer: Result<ProposeResponse, CallError> =
            self.peers.call(leader, addr, "/raft/propose", &cmd, BATCH_TIMEOUT).await;
        match answer {
            Ok(ProposeResponse { response: Some(r), .. }) => group.answer(r),
            Ok(ProposeResponse { refusal: Some(r), .. }) => {
                let retry_safe = r.retry_safe;
                let error = refused(r);
                group.fail_with(|| Failed { error: error.clone(), retry_safe })
            }
            Ok(_) => group.fail_with(|| {
                Failed::indeterminate(ProposeError::Unavailable("the leader sent an empty answer".into()))
            }),
            // Never sent: safe to try again.
            Err(CallError::Unreachable(m)) => {
                group.fail_with(|| Failed::definite(ProposeError::Unavailable(m.clone())))
            }
            Err(e) => group.fail_with(|| {
                Failed::indeterminate(ProposeError::Unavailable(format!("forwarding to the leader: {e}")))
            }),
        }
    }
}

/// The leader this node's metrics name, and its address if the membership knows it: no call
/// into the Raft core.
pub(crate) fn known_leader(raft: &Raft) -> (Option<NodeId>, Option<String>) {
    let m = raft.metrics();
    let m = m.borrow();
    let addr = m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
    (m.current_leader, addr)
}

/// A forwarded request's refusal as this node's error.
pub(crate) fn refused(r: RemoteRefusal) -> ProposeError {
    match (r.leader_id, r.leader_addr) {
        (Some(id), Some(addr)) => ProposeError::NotLeader { leader_id: Some(id), leader_addr: Some(addr) },
        _ => ProposeError::Unavailable(r.message),
    }
}
