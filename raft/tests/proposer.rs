//! The proposer's group commit on one node: concurrent proposals share Raft entries, each
//! caller gets its own response, and a refusal stays with its own command.

mod support;

use std::collections::BTreeSet;

use support::{node_with_volume, write};
use tideline_storage::ApplyErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_entries_and_keep_their_own_responses() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_volume(dir.path()).await;
    let before = node.metrics().last_log_index.unwrap_or(0);

    tracing::info!("--- 300 writes at once; every third names a volume that does not exist");
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let node = node.clone();
            let volume = if i % 3 == 2 { "missing" } else { "v" };
            tokio::spawn(
                async move { (i, node.propose(write(volume, &format!("/f{i}"), vec![b'x'; 16])).await.unwrap()) },
            )
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert!(r.batch.is_empty(), "a caller gets its own response, not the batch's");
        if i % 3 == 2 {
            assert_eq!(r.error.map(|e| e.kind), Some(ApplyErrorKind::NotFound as i32), "write {i}");
            assert_eq!(r.seq, 0);
        } else {
            assert!(r.error.is_none(), "write {i}: {:?}", r.error);
            assert!(seqs.insert(r.seq), "seq {} answered twice", r.seq);
        }
    }
    assert_eq!(seqs, (1..=200).collect::<BTreeSet<u64>>(), "accepted writes have gapless seqs");
    let journal = node.state_machine().changes("v", 0, 1000).unwrap();
    assert_eq!(journal.len(), 200);
    let entries = node.metrics().last_log_index.unwrap() - before;
    tracing::info!(entries, "raft entries for 300 proposals");
    assert!(entries < 300, "300 concurrent proposals took {entries} Raft entries: nothing was batched");
    node.shutdown().await;
}
