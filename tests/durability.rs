//! Durability of the real binary: acknowledged writes survive SIGKILL; corrupt bytes on disk
//! stop start-up with a typed error instead of serving an empty state; SIGTERM exits cleanly.

mod common;

use common::{content, Client, Server};
use futures::stream::{self, StreamExt};
use tideline_storage::{keys, Cf, Db};

const FILES: usize = 1000;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    tracing::info!("--- write {FILES} files, remember which were acknowledged");
    let server = Server::start(dir.path());
    let client = Client::for_team(&server.url, "team-a").await;
    let vol = client.create_volume().await;
    let acked: Vec<usize> = stream::iter(0..FILES)
        .map(|i| {
            let client = &client;
            let vol = &vol;
            async move { (i, client.write(vol, &format!("/d{}/f{i}.bin", i % 10), content(i)).await) }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|(i, r)| async move { r.is_ok().then_some(i) })
        .collect()
        .await;
    assert_eq!(acked.len(), FILES, "every write is acknowledged on a healthy node");
    let journal_before = client.journal(&vol).await;
    assert_eq!(journal_before.len(), FILES);

    tracing::info!("--- SIGKILL, restart on the same data dir");
    server.kill();
    let server = Server::start(dir.path());
    let client = client.with_url(&server.url);
    for &i in &acked {
        let bytes = client.read(&vol, &format!("/d{}/f{i}.bin", i % 10)).await;
        let bytes = bytes.unwrap_or_else(|e| panic!("file {i}: {e}"));
        assert!(bytes == content(i), "file {i} has the wrong bytes");
    }
    let journal_after = client.journal(&vol).await;
    assert_eq!(journal_after, journal_before, "the journal is unchanged by the crash");
    let seqs: Vec<u64> = journal_after.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=FILES as u64).collect::<Vec<_>>());

    tracing::info!("--- SIGTERM shuts down gracefully");
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
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
