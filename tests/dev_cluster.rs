//! `tideline dev-cluster`: one command starts a working three-node cluster; SIGINT stops it all.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_for, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_starts_three_voters_and_stops_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["dev-cluster", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut urls = Vec::new();
        let mut pids = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"node") && words.len() >= 5 {
                urls.push(words[2].to_string());
                pids.push(words[4].parse::<u32>().unwrap());
            }
            if let Some(t) = line.strip_prefix("admin token: ") {
                let _ = tx.send((urls.clone(), pids.clone(), t.to_string()));
            }
        }
    });
    let (urls, pids, admin) = rx.recv_timeout(Duration::from_secs(120)).expect("dev-cluster printed its endpoints");
    assert_eq!(urls.len(), 3);

    tracing::info!("--- three voters, writes through node 2 are readable on node 3");
    let status = Client::new(&urls[0], &admin).cluster().await.unwrap();
    let voters = status.nodes.iter().filter(|n| n.voter).count();
    assert_eq!(voters, 3, "{status:?}");
    let client = Client::for_team_as(&urls[1], "dev", &admin).await;
    let vol = client.create_volume().await;
    assert!(client.write(&vol, "/hello", b"hi".to_vec()).await.unwrap().written);
    assert_eq!(client.with_url(&urls[2]).read(&vol, "/hello").await.unwrap(), b"hi");

    tracing::info!("--- SIGINT stops dev-cluster and every node it started");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    wait_for("every node to exit", Duration::from_secs(20), || async {
        pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).then_some(())
    })
    .await;
}
