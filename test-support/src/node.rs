//! (feature `node`) One real Tideline node in the test's own process: the api crate's router
//! over a RocksDB-backed single-member Raft node, served on a loopback listener bound to port 0,
//! with an admin client. What the client's and the sync engine's tests run against; the api's
//! own tests drive the router without a socket (`api/tests/common`).
//!
//! ```text
//!  test ─▶ tideline_client::Client ─▶ 127.0.0.1:0 ─▶ router(AppState(Ops(RaftNode, BlobStore, clock)))
//! ```

use std::sync::Arc;

use serde_json::Value;
use tideline_api::{router, AppState, Ops};
use tideline_client::types::wire::{TokenRequest, VolumeRequest};
use tideline_client::types::AccessMode;
use tideline_client::Client;
use tideline_raft::{Clock, CompactionConfig, RaftNode, RaftNodeConfig, SystemClock};
use tideline_storage::{BlobStore, Db};

pub const ADMIN: &str = "admin-secret";

/// How a node starts beyond the defaults (the system clock, no compaction).
pub struct Options {
    /// What every operation reads the time from (a `ManualClock` lets a test lapse leases).
    pub clock: Arc<dyn Clock>,
    /// Run the journal compactor (a retention floor for reseed tests).
    pub compaction: Option<CompactionConfig>,
}

impl Default for Options {
    fn default() -> Options {
        Options { clock: Arc::new(SystemClock), compaction: None }
    }
}

/// One in-process node and an admin client of it; stops with the test's runtime.
pub struct Node {
    pub url: String,
    pub admin: Client,
    pub node: RaftNode,
    pub ops: Ops,
    _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start() -> Node {
        Node::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let cfg = RaftNodeConfig::single(1, addr.clone(), dir.path().join("snapshots"));
        let node = RaftNode::start(cfg, db).await.unwrap();
        // Serve only once this node leads with its membership applied: an admin read of
        // `/cluster` right after start must see the cluster, not an election in progress.
        node.raft()
            .wait(Some(std::time::Duration::from_secs(10)))
            .metrics(
                |m| m.current_leader == Some(m.id) && m.membership_config.nodes().count() == 1,
                "the single node leads its one-node cluster",
            )
            .await
            .unwrap();
        let blobs = BlobStore::local(&dir.path().join("objects")).unwrap();
        let ops = Ops::new(node.clone(), blobs, options.clock);
        if let Some(c) = options.compaction {
            ops.spawn_compactor(c);
        }
        let app = router(AppState::new(ops.clone(), ADMIN, "cluster-secret"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}");
        let admin = Client::new(&url, ADMIN).unwrap();
        Node { url, admin, node, ops, _dir: dir }
    }

    /// A client with a fresh all-permission token of `team`.
    pub async fn team(&self, team: &str) -> Client {
        let req = TokenRequest { team_id: team.into(), permissions: vec!["*".into()], ..Default::default() };
        let created = self.admin.create_token(&req).await.unwrap();
        self.admin.with_token(&created.token)
    }

    /// A team client and a new volume of it (RWX: several replicas may write).
    pub async fn team_volume(&self, team: &str) -> (Client, String) {
        let c = self.team(team).await;
        let v = c.create_volume(&VolumeRequest::with_access_mode(AccessMode::Rwx)).await;
        (c, v.unwrap().id)
    }

    /// The raw `data` of a GET, for comparing the typed answer with the bytes sent.
    pub async fn raw_data(&self, token: &str, path_and_query: &str) -> Value {
        let v: Value = reqwest::Client::new()
            .get(format!("{}{path_and_query}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["success"], true, "{v}");
        v["data"].clone()
    }
}
