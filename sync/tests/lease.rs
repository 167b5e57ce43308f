//! A replica not seen for longer than its lease is refused by the volume; the worker registers
//! it again and sends what it was sending (the core's decision, `core::Reply::LeaseExpired`).
//! The node reads a [`ManualClock`], so the lease lapses without waiting five minutes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{by_replica, phase, write, Machine, Volume, SYNC_TIMEOUT};
use serde_json::json;
use tideline_client::types::wire::{AppendRequest, ReplicaChange};
use tideline_client::types::Reason;
use tideline_raft::ManualClock;
use tideline_test_support::node::Options;
use tideline_test_support::wait_until;
use tideline_types::limits::REPLICA_LEASE_MS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_is_renewed_and_the_edit_still_uploads() {
    let clock = ManualClock::new();
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    let remote = &Volume::start_with("team-sync-lease", options).await;
    let a = &Machine::new("A", remote);
    let rid = a.attach_ok(&remote.vol, None).await;
    a.wait_idle().await;

    phase("the replica is not seen for longer than its lease: the volume refuses its appends");
    clock.advance(Duration::from_millis(REPLICA_LEASE_MS as u64) + Duration::from_millis(1));
    let probe = AppendRequest {
        request_id: "probe".into(),
        base_seq: remote.head().await,
        changes: vec![ReplicaChange::remove("/nothing-here")],
    };
    let refused = remote.c.append(&remote.vol, &rid, &probe).await.unwrap_err();
    assert_eq!(refused.reason(), Some(Reason::LeaseExpired), "{refused}");

    phase("a local edit: refused, the replica registered again, the edit sent");
    write(&a.p("after-lapse.txt"), b"sent after the lease lapsed\n");
    wait_until("the edit in the volume", SYNC_TIMEOUT, || async {
        match remote.read("/after-lapse.txt").await {
            Some(d) if d == b"sent after the lease lapsed\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let j = remote.journal().await;
    assert!(
        by_replica(&j, &rid).iter().any(|e| e["path"] == "/after-lapse.txt"),
        "not sent as replica {rid}: {:#?}",
        by_replica(&j, &rid)
    );
    let s = a.wait_idle().await;
    assert_eq!(s["errors"], json!([]), "{s}");
    a.detach().await;
}
