//! What the sync engine's in-process tests share: a real node in this process
//! ([`tideline_test_support::node::Node`]) holding one RWX volume, walked as a whole [`Tree`]
//! through the files API; local trees to compare it with; and [`Machine`]s (one sync home and
//! one directory each, see `machine.rs`) whose workers are the library's [`Worker`] running
//! in a task of the test's runtime. Every wait is a bounded poll of an observable condition,
//! never a sleep before an assertion.
//!
//! ```text
//!   Machine A: home A, dir A, Worker task ─┐                   ┌─ files API / replica appends
//!                                           ├─▶ Node (volume) ◀┤
//!   Machine B: home B, dir B, Worker task ─┘                   └─ tree walk (files/list + read)
//! ```
#![allow(dead_code)] // each test binary uses its own part

pub mod gate;
pub mod machine;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tideline_client::types::wire::{AppendRequest, ReplicaChange, ReplicaRequest};
use tideline_client::types::ConflictStatus;
use tideline_client::{ChangesQuery, Client, Upload};
use tideline_test_support::node::{Node, Options};
use tideline_test_support::wait_until;

pub use machine::Machine;

/// Edits reach the other side "within ~1 s"; this is the bound a shared test machine gets.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

pub fn phase(what: &str) {
    eprintln!("--- {what}");
}

// ---------------------------------------------------------------------------------------------
// Trees: relative path → kind, content hash, mode bits

#[allow(unused_imports)] // each test binary uses its own part
pub use tideline_test_support::tree::{converged, local_tree, remote_tree, sha256, tree_diff, without, Entry, Tree};

pub fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Journal entries a replica made.
pub fn by_replica<'a>(journal: &'a [Value], rid: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["source"] == "replica" && e["replica_id"] == rid).collect()
}

// ---------------------------------------------------------------------------------------------
// The server side: one node, one team, one RWX volume

pub struct Volume {
    pub node: Node,
    /// The team's client (what the machines' attachments use too).
    pub c: Client,
    pub vol: String,
}

impl Volume {
    pub async fn start(team: &str) -> Volume {
        Volume::start_with(team, Options::default()).await
    }

    /// Two laptops write to it: RWX (an RWO volume gives the write lease to one replica).
    pub async fn start_with(team: &str, options: Options) -> Volume {
        let node = Node::start_with(options).await;
        let (c, vol) = node.team_volume(team).await;
        Volume { node, c, vol }
    }

    pub fn token(&self) -> &str {
        self.c.token()
    }

    /// The whole namespace, walked through the files API.
    pub async fn tree(&self) -> Result<Tree, String> {
        remote_tree(&self.c, &self.vol).await
    }

    pub async fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.c.read_file(&self.vol, path).await.ok().map(|b| b.to_vec())
    }

    pub async fn write(&self, path: &str, data: &[u8]) {
        let written = self.c.write_file(&self.vol, path, Upload::bytes(data.to_vec())).await;
        assert!(written.is_ok(), "files API write {path}: {written:?}");
    }

    /// Conflicts through the API (`status` may be empty for all), as JSON values.
    pub async fn conflicts(&self, status: &str) -> Vec<Value> {
        let status = (!status.is_empty()).then(|| status.parse::<ConflictStatus>().unwrap());
        let list = self.c.conflicts(&self.vol, status, None).await.unwrap();
        list.conflicts.iter().map(|c| serde_json::to_value(c).unwrap()).collect()
    }

    /// The whole journal, paged, as JSON values.
    pub async fn journal(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let q = ChangesQuery::page(out.len() as u64, 2048);
            let page = self.c.changes(&self.vol, &q).await.unwrap_or_else(|e| panic!("journal: {e}"));
            if page.changes.is_empty() {
                return out;
            }
            out.extend(page.changes.iter().map(|e| serde_json::to_value(e).unwrap()));
        }
    }

    pub async fn head(&self) -> u64 {
        self.c.changes(&self.vol, &ChangesQuery::page(0, 1)).await.unwrap().head_seq
    }

    /// Registers a replica of our own (not a worker) and returns the head.
    pub async fn register(&self, rid: &str) -> u64 {
        let r = self.c.put_replica(&self.vol, rid, &ReplicaRequest::default()).await;
        r.unwrap_or_else(|e| panic!("register {rid}: {e}")).head_seq
    }

    /// One replica append that must not conflict; the new head.
    pub async fn append(&self, rid: &str, request_id: &str, base_seq: u64, changes: Vec<ReplicaChange>) -> u64 {
        let req = AppendRequest { request_id: request_id.into(), base_seq, changes };
        let answer = self.c.append(&self.vol, rid, &req).await;
        let answer = answer.unwrap_or_else(|e| panic!("append {request_id}: {e}"));
        assert!(answer.conflicts.is_empty(), "append {request_id}: {:?}", answer.conflicts);
        answer.head_seq
    }

    /// Every local directory in `dirs` holds exactly the volume's tree; that tree.
    pub async fn converged(&self, dirs: &[&Path]) -> Result<Tree, String> {
        converged(&self.c, &self.vol, dirs).await
    }

    pub async fn wait_converged(&self, what: &str, dirs: &[&Path]) -> Tree {
        wait_until(what, SYNC_TIMEOUT, || self.converged(dirs)).await
    }
}
