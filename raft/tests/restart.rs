//! A one-node Raft over RocksDB: proposals are applied, survive a restart, and snapshots with
//! log purging keep working across it.

use std::time::Duration;

use tideline_raft::{RaftNode, RaftNodeConfig};
use tideline_storage::command::{CreateToken, CreateVolume};
use tideline_storage::{CommandKind, Db, TokenRecord, VolumeRecord};

fn config(dir: &std::path::Path) -> RaftNodeConfig {
    RaftNodeConfig {
        snapshot_logs_since_last: 50,
        logs_kept_after_snapshot: 10,
        ..RaftNodeConfig::single(1, "127.0.0.1:1".into(), dir.join("snapshots"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_applies_snapshots_purges_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    tracing::info!("--- start a fresh node: it initializes itself and applies proposals");
    {
        let db = Db::open(&dir.path().join("db")).unwrap();
        let node = RaftNode::start(config(dir.path()), db).await.unwrap();
        for i in 0..120u32 {
            let vol = VolumeRecord { id: format!("v{i}"), team_id: "t".into(), ..Default::default() };
            let r = node.propose(CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }).into()).await.unwrap();
            assert!(r.error.is_none());
        }
        let mut metrics = node.raft().metrics();
        let m = tokio::time::timeout(
            Duration::from_secs(10),
            metrics.wait_for(|m| m.snapshot.is_some_and(|s| s.index >= 50) && m.purged.is_some()),
        )
        .await
        .unwrap_or_else(|_| panic!("a snapshot and a purge within 10s; metrics: {:?}", node.metrics()))
        .unwrap()
        .clone();
        assert!(m.purged.unwrap().index <= m.snapshot.unwrap().index);
        node.shutdown().await;
    }
    tracing::info!("--- restart: state is there and new proposals continue");
    {
        // Raft's tasks let go of the database shortly after shutdown returns; wait for its lock.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let db = loop {
            match Db::open(&dir.path().join("db")) {
                Ok(db) => break db,
                Err(e) if e.to_string().contains("lock") && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("reopen the database: {e}"),
            }
        };
        let node = RaftNode::start(config(dir.path()), db).await.unwrap();
        node.read_barrier().await.unwrap();
        assert!(node.state_machine().volume("v0").unwrap().is_some());
        assert!(node.state_machine().volume("v119").unwrap().is_some());
        let cmd = CreateToken {
            token_sha256: vec![7; 32],
            token: Some(TokenRecord { id: "t".into(), ..Default::default() }),
        };
        let r = node.propose(CommandKind::CreateToken(cmd).into()).await.unwrap();
        assert!(r.error.is_none());
        assert!(node.state_machine().token(&[7; 32]).unwrap().is_some());
        node.shutdown().await;
    }
}
