//! A worker that fell below the volume's retention floor bootstraps again from an archive and
//! keeps the local edits it had not sent. The worker is cut off from the node by a closed
//! [`Gate`] (what `SIGSTOP` was to the black-box test) while the floor passes its cursor; its own
//! log (this test binary's tracing output) says it bootstrapped again.

mod common;

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::gate::Gate;
use common::{phase, write, Machine, Volume, SYNC_TIMEOUT};
use tideline_client::types::Reason;
use tideline_client::ChangesQuery;
use tideline_raft::CompactionConfig;
use tideline_test_support::node::Options;
use tideline_test_support::wait_until;

/// Everything this binary's code logs, for the assertions about the worker's log.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt().with_writer(|| Sink).with_ansi(false).try_init();
        Mutex::new(Vec::new())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_retention_floor_the_worker_bootstraps_again_and_keeps_unsent_edits() {
    logs();
    let compaction = CompactionConfig { retain_entries: 5, interval: Duration::from_millis(200) };
    let options = Options { compaction: Some(compaction), ..Options::default() };
    let remote = &Volume::start_with("team-sync-reseed", options).await;
    let gate = Gate::start(&remote.node.url).await;
    let a = &Machine::behind("A", remote, &gate.url);
    write(&a.p("keep.txt"), b"synced\n");
    write(&a.p("old/gone.txt"), b"old\n");
    a.attach_ok(&remote.vol, None).await;
    let s = a.wait_idle().await;
    let cursor = s["cursor"].as_u64().unwrap();

    phase("A's worker cut off; an unsent local edit; 40 writes and a removal push the floor past its cursor");
    gate.close();
    write(&a.p("keep.txt"), b"edited while the worker was stopped\n");
    for i in 0..40 {
        remote.write(&format!("/new/{i:02}.txt"), format!("new {i}\n").as_bytes()).await;
    }
    assert!(remote.c.delete_path(&remote.vol, "/old").await.unwrap().deleted);
    wait_until("the floor to pass A's cursor", SYNC_TIMEOUT, || async {
        match remote.c.changes(&remote.vol, &ChangesQuery { after: cursor, ..Default::default() }).await {
            Err(e) if e.reason() == Some(Reason::ReseedRequired) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    phase("A resumes: reseed, bootstrap again, the unsent edit uploads, the removal applies");
    gate.open();
    let t = remote.wait_converged("A and the volume converge", &[&a.dir]).await;
    assert!(!t.contains_key("/old/gone.txt") && !t.contains_key("/old"), "{t:?}");
    assert_eq!(t.keys().filter(|k| k.starts_with("/new/")).count(), 40, "the 40 new files: {t:?}");
    assert_eq!(remote.read("/keep.txt").await.as_deref(), Some(&b"edited while the worker was stopped\n"[..]));
    a.wait_idle().await;
    let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(logs.contains("bootstrapping again"), "{logs}");
    a.detach().await;
}
