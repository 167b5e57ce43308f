//! A lone write is proposed at once: the batcher adds no wait when nothing else is queued.
//! Its own test binary, so no other test competes for the CPU while it measures.

mod support;

use std::time::{Duration, Instant};

use support::{node_with_volume, write};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_write_is_not_delayed_by_the_batcher() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_volume(dir.path()).await;

    tracing::info!("--- alternate: through the proposer, then straight to openraft, one at a time");
    let (mut batched, mut direct) = (Vec::new(), Vec::new());
    for i in 0..61 {
        let t = Instant::now();
        let r = node.propose(write("v", &format!("/f{}", 2 * i), vec![b'x'; 256])).await.unwrap();
        batched.push(t.elapsed());
        assert!(r.error.is_none());
        let t = Instant::now();
        let r = node.raft().client_write(write("v", &format!("/f{}", 2 * i + 1), vec![b'x'; 256])).await.unwrap();
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
