//! Durability of the real binary: acknowledged writes survive SIGKILL (also once the Raft log
//! was purged behind a snapshot, so a restart cannot rebuild the state from the log alone);
//! corrupt bytes on disk stop start-up with a typed error instead of serving an empty state;
//! SIGTERM exits cleanly.

mod common;

use std::time::Duration;

use common::{content, Client, Server};
use futures::stream::{self, StreamExt};
use tideline_client::types::wire::SyncJournalEntry;
use tideline_storage::{keys, Cf, Db};
use tideline_test_support::wait_until;

const FILES: usize = 1000;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    tracing::info!("--- write {FILES} files, each acknowledged");
    let server = Server::start(dir.path());
    let client = Client::for_team(&server.url, "team-a").await;
    let vol = client.create_volume().await;
    write_all(&client, &vol, 0..FILES).await;
    let journal_before = client.journal(&vol).await;
    assert_eq!(journal_before.len(), FILES);

    tracing::info!("--- SIGKILL, restart on the same data dir");
    server.kill();
    let server = Server::start(dir.path());
    let client = client.with_url(&server.url);
    assert_all_there(&client, &vol, FILES, &journal_before).await;

    tracing::info!("--- SIGTERM shuts down gracefully");
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// Writes files `range` (16 at a time), each acknowledged.
async fn write_all(client: &Client, vol: &str, range: std::ops::Range<usize>) {
    let failed: Vec<usize> = stream::iter(range)
        .map(|i| async move { (i, client.write(vol, &format!("/d{}/f{i}.bin", i % 10), content(i)).await) })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|(i, r)| async move { r.is_err().then_some(i) })
        .collect()
        .await;
    assert!(failed.is_empty(), "every write is acknowledged on a healthy node, not {failed:?}");
}

/// After a restart: files `0..files` all read back whole, and the journal is the one seen before
/// the crash, gapless from 1.
async fn assert_all_there(client: &Client, vol: &str, files: usize, journal_before: &[SyncJournalEntry]) {
    for i in 0..files {
        let bytes = client.read(vol, &format!("/d{}/f{i}.bin", i % 10)).await;
        assert!(bytes.unwrap_or_else(|e| panic!("file {i}: {e}")) == content(i), "file {i} has the wrong bytes");
    }
    let journal_after = client.journal(vol).await;
    assert_eq!(journal_after, journal_before, "the journal is unchanged by the crash");
    let seqs: Vec<u64> = journal_after.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=files as u64).collect::<Vec<_>>());
}

/// A snapshot lets Raft purge the log behind it; from then on the state those entries led to
/// exists only in the state machine's files, and a crash must not lose any of it (nor may the
/// restart re-apply an entry over a state that already holds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_after_the_log_was_purged() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = ["--snapshot-logs", "5", "--snapshot-keep-logs", "0"].map(String::from).into();
    let server = Server::start_with(dir.path(), &args);
    let client = Client::for_team(&server.url, "team-a").await;
    let admin = Client::new(&server.url, common::ADMIN);
    let vol = client.create_volume().await;

    tracing::info!("--- write, until a snapshot let Raft purge the log behind it");
    write_all(&client, &vol, 0..200).await;
    let purged = wait_until("a log purge behind a snapshot", Duration::from_secs(60), || async {
        let status = admin.cluster().await.map_err(|e| e.to_string())?;
        status.purged_index.filter(|p| *p > 0).ok_or_else(|| format!("{status:?}"))
    })
    .await;
    tracing::info!(purged, "--- the log is purged up to here; more writes, then SIGKILL");
    write_all(&client, &vol, 200..400).await;
    let journal_before = client.journal(&vol).await;
    server.kill();

    tracing::info!("--- restart: everything acknowledged is there, the journal unchanged");
    let server = Server::start_with(dir.path(), &args);
    let client = client.with_url(&server.url);
    assert_all_there(&client, &vol, 400, &journal_before).await;
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_journal_value_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let client = Client::for_team(&server.url, "team-a").await;
    let vol = client.create_volume().await;
    for i in 0..10 {
        assert!(client.write(&vol, &format!("/f{i}"), content(i)).await.unwrap().written);
    }
    server.terminate();

    tracing::info!("--- overwrite journal entry 4 with bytes that do not decode");
    {
        let db = Db::open(&dir.path().join("db")).unwrap();
        db.raw().put_cf(db.cf(Cf::Journal), keys::journal(&vol, 4), [1u8, 0xff, 0xff, 0xff, 0xff]).unwrap();
        db.raw().flush_wal(true).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["server", "--listen", "127.0.0.1:0", "--admin-token", common::ADMIN, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start-up must fail on a corrupt store");
    assert!(stderr.contains("corrupt record in journal"), "stderr: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "it must not serve");
}
