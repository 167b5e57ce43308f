//! A lone write is proposed at once: the batcher adds no wait when nothing else is queued.
//! Its own test binary, so no other test competes for the CPU while it measures.

use std::time::{Duration, Instant};

use tideline_raft::{RaftNode, RaftNodeConfig};
use tideline_storage::command::{CreateVolume, Origin, WriteFile};
use tideline_storage::{Command, CommandKind, ContentRef, Db, VolumeRecord};

fn write(i: usize) -> Command {
    let data = vec![b'x'; 256];
    CommandKind::WriteFile(WriteFile {
        origin: Some(Origin {
            volume_id: "v".into(),
            team_id: "t".into(),
            source: "sandbox".into(),
            replica_id: None,
            at_ms: 1,
        }),
        path: format!("/f{i}"),
        content_ref: ContentRef::of(&data).to_string(),
        size: data.len() as u64,
        inline: Some(data),
        mode: 0,
    })
    .into()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_write_is_not_delayed_by_the_batcher() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let node = RaftNode::start(RaftNodeConfig::single(1, "127.0.0.1:1".into(), dir.path().join("snap")), db)
        .await
        .unwrap();
    let vol = VolumeRecord { id: "v".into(), team_id: "t".into(), ..Default::default() };
    node.propose(CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }).into()).await.unwrap();

    tracing::info!("--- alternate: through the proposer, then straight to openraft, one at a time");
    let (mut batched, mut direct) = (Vec::new(), Vec::new());
    for i in 0..61 {
        let t = Instant::now();
        let r = node.propose(write(2 * i)).await.unwrap();
        batched.push(t.elapsed());
        assert!(r.error.is_none());
        let t = Instant::now();
        let r = node.raft().client_write(write(2 * i + 1)).await.unwrap();
        direct.push(t.elapsed());
        assert!(r.data.error.is_none());
    }
    let (b, d) = (median(batched), median(direct));
    tracing::info!(?b, ?d, "median lone-write latency");
    // The proposer adds a queue hop and a task, microseconds; a timer or a wait for company
    // would show up as milliseconds.
    assert!(b <= d * 3 / 2 + Duration::from_millis(1), "through the proposer {b:?}, direct {d:?}");
    node.shutdown().await;
}
