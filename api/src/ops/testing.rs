//! A one-node fixture for the operations' unit tests: a Raft node over a temporary RocksDB, a
//! local blob store, a [`ManualClock`], and proposer wrappers that count proposals or refuse
//! chosen commands — so a test can stop a protocol at any step and look at what is left.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use tideline_raft::{ManualClock, RaftNode, RaftNodeConfig};
use tideline_storage::{BlobStore, Command, CommandKind, Db, Response, VolumeConfig, VolumeRecord};

use super::context::Ops;
use super::proposer::Propose;
use crate::auth::TeamCaller;
use crate::error::{ApiError, ApiResult};

pub(crate) struct Fixture {
    dir: tempfile::TempDir,
    pub ops: Ops,
    pub clock: ManualClock,
    pub caller: TeamCaller,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let cfg = RaftNodeConfig::single(1, "127.0.0.1:1".into(), dir.path().join("snapshots"));
        let node = RaftNode::start(cfg, db).await.unwrap();
        let blobs = BlobStore::local(&dir.path().join("objects")).unwrap();
        let clock = ManualClock::new();
        let ops = Ops::new(node, blobs, Arc::new(clock.clone()));
        let caller = TeamCaller { team_id: "team-a".into(), subject: "user-a".into(), permissions: vec!["*".into()] };
        Fixture { dir, ops, clock, caller }
    }

    /// The local object store's directory.
    pub fn objects(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// A new RWX volume of the fixture's team.
    pub async fn volume(&self) -> VolumeRecord {
        let config = VolumeConfig { access_mode: "RWX".into(), ..Default::default() };
        super::volumes::create(&self.ops, &self.caller, config).await.unwrap()
    }

    /// Registers replica `id` (no name, platform or capabilities) on `vol`.
    pub async fn replica(&self, vol: &VolumeRecord, id: &str) {
        let r = super::replicas::Replica {
            id: id.into(),
            display_name: None,
            platform: None,
            root_path: None,
            capabilities: Default::default(),
        };
        super::replicas::upsert(&self.ops, vol, r).await.unwrap();
    }

    /// The volume's head seq as this node has applied it.
    pub fn head(&self, vol: &VolumeRecord) -> u64 {
        self.ops.node().state_machine().volume(&vol.id).unwrap().map_or(0, |v| v.head_seq)
    }

    /// The fixture's operations with a proposer that refuses (503, nothing proposed) every
    /// command `refuse` picks.
    pub fn refusing(&self, refuse: impl Fn(&CommandKind) -> bool + Send + Sync + 'static) -> Ops {
        self.ops.clone().wrap_proposer(|inner| Arc::new(Refusing { inner, refuse: Box::new(refuse) }))
    }

    /// The fixture's operations counting what they propose, and a reading of the count.
    pub fn counting(&self) -> (Ops, impl Fn() -> usize) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let ops = self.ops.clone().wrap_proposer(|inner| Arc::new(Counting { inner, count }));
        (ops, move || seen.load(Ordering::SeqCst))
    }
}

struct Refusing {
    inner: Arc<dyn Propose>,
    refuse: Box<dyn Fn(&CommandKind) -> bool + Send + Sync>,
}

impl Propose for Refusing {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, ApiResult<Response>> {
        if cmd.kind.as_ref().is_some_and(|k| (self.refuse)(k)) {
            return Box::pin(async { Err(ApiError::unavailable("refused by the test")) });
        }
        self.inner.propose(cmd)
    }
}

struct Counting {
    inner: Arc<dyn Propose>,
    count: Arc<AtomicUsize>,
}

impl Propose for Counting {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, ApiResult<Response>> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.propose(cmd)
    }
}
