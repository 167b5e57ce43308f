//! Three real `tideline server` processes: writes through followers, SIGKILL of the leader
//! during a stream of writes, failover, restart and catch-up, identical journals everywhere.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{content, free_ports, wait_for, Client, Consistency, Server, ADMIN};
use tideline_client::types::wire::SyncJournalEntry;

const SECRET: &str = "test-cluster-secret";

/// These tests pick free ports before their servers bind them; running them one at a time
/// keeps two tests from picking the same port in that window.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    shared: tempfile::TempDir,
    ports: Vec<u16>,
    servers: Vec<Option<Server>>,
}

impl Cluster {
    fn args(&self, i: usize) -> Vec<String> {
        let peers: Vec<String> =
            self.ports.iter().enumerate().map(|(j, p)| format!("{}=127.0.0.1:{p}", j + 1)).collect();
        vec![
            "--node-id".into(),
            (i + 1).to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.ports[i]),
            "--peers".into(),
            peers.join(","),
            "--cluster-secret".into(),
            SECRET.into(),
            "--object-store".into(),
            format!("file://{}", self.shared.path().display()),
            // Snapshot and purge often, so a node that was down catches up through a snapshot.
            "--snapshot-logs".into(),
            "40".into(),
            "--snapshot-keep-logs".into(),
            "10".into(),
        ]
    }

    fn start(n: usize) -> Cluster {
        Self::start_on(free_ports(n))
    }

    fn start_on(ports: Vec<u16>) -> Cluster {
        let n = ports.len();
        let mut c = Cluster {
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            shared: tempfile::tempdir().unwrap(),
            ports,
            servers: Vec::new(),
        };
        c.servers = (0..n).map(|i| Some(Server::start_with(c.dirs[i].path(), &c.args(i)))).collect();
        c
    }

    fn restart(&mut self, i: usize) {
        self.servers[i] = Some(Server::start_with(self.dirs[i].path(), &self.args(i)));
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn admin(&self, i: usize) -> Client {
        Client::new(&self.url(i), ADMIN)
    }

    /// The leader as node `i` reports it, if it knows one.
    async fn leader_seen_by(&self, i: usize) -> Option<u64> {
        self.admin(i).cluster().await.ok()?.leader_id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_during_writes_loses_nothing() {
    let _serial = SERIAL.lock().await;
    tracing::info!("--- three nodes start together and elect one leader");
    let mut cluster = Cluster::start(3);
    let leader = wait_for("a leader", Duration::from_secs(20), || async {
        let seen: Vec<Option<u64>> = futures::future::join_all((0..3).map(|i| cluster.leader_seen_by(i))).await;
        (seen.iter().all(|l| l.is_some() && *l == seen[0])).then(|| seen[0].unwrap())
    })
    .await;
    let follower = (0..3).find(|i| *i as u64 + 1 != leader).unwrap();

    tracing::info!("--- a token and a volume created through a follower");
    let client = Client::for_team(&cluster.url(follower), "team-a").await;
    let vol = client.create_volume().await;

    tracing::info!("--- a stream of writes round-robin over all nodes; SIGKILL the leader midway");
    let clients: Vec<Client> = (0..3).map(|i| client.with_url(&cluster.url(i))).collect();
    let acked_count = Arc::new(AtomicUsize::new(0));
    let writer = {
        let clients: Vec<Client> = clients.iter().map(|c| c.with_url(&c.url)).collect();
        let vol = vol.clone();
        let acked_count = acked_count.clone();
        tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), 0usize);
            let mut i = 0usize;
            while acked.len() < 300 {
                assert!(i < 5000, "too many failed writes: {failed}");
                match clients[i % 3].write(&vol, &format!("/w/{i}"), content(i)).await {
                    Ok(_) => {
                        acked.push(i);
                        acked_count.store(acked.len(), Ordering::SeqCst);
                    }
                    Err(_) => failed += 1,
                }
                i += 1;
            }
            (acked, failed)
        })
    };
    wait_for("150 acknowledged writes", Duration::from_secs(60), || async {
        (acked_count.load(Ordering::SeqCst) >= 150).then_some(())
    })
    .await;
    cluster.servers[leader as usize - 1].take().unwrap().kill();
    let killed_at = Instant::now();

    tracing::info!("--- a new leader within 2 s of the kill");
    let survivors: Vec<usize> = (0..3).filter(|j| *j as u64 + 1 != leader).collect();
    let new_leader = wait_for("a new leader", Duration::from_secs(10), || async {
        let l = cluster.leader_seen_by(survivors[0]).await?;
        (l != leader).then_some(l)
    })
    .await;
    let failover = killed_at.elapsed();
    assert!(failover < Duration::from_secs(2), "new leader {new_leader} after {failover:?}");
    let (acked, failed) = writer.await.unwrap();
    eprintln!("failover: new leader {new_leader} {failover:?} after SIGKILL; {failed} writes failed during it");

    tracing::info!("--- the survivors purged past what the killed node has");
    // The snapshot policy looks once a second: wait for its snapshot and the purge after it.
    wait_for(
        "a purge past the kill point (300 writes, snapshots every 40 entries)",
        Duration::from_secs(10),
        || async {
            let cluster_info = cluster.admin(survivors[0]).cluster().await.ok()?;
            (cluster_info.purged_index.unwrap_or(0) > 150).then_some(())
        },
    )
    .await;

    tracing::info!("--- restart the old leader; it catches up (through a snapshot)");
    cluster.restart(leader as usize - 1);
    let journals: Vec<Vec<SyncJournalEntry>> =
        wait_for("identical journals on all nodes", Duration::from_secs(30), || async {
            let mut js = Vec::new();
            for client in &clients {
                js.push(client.journal_with(&vol, Consistency::Local).await);
            }
            (js[0].len() >= acked.len() && js.iter().all(|j| *j == js[0])).then_some(js)
        })
        .await;

    let restarted = cluster.admin(leader as usize - 1).cluster().await.unwrap();
    assert!(restarted.snapshot_index.unwrap_or(0) > 150, "caught up through a snapshot: {restarted:?}");

    tracing::info!("--- every acknowledged write present exactly once, journals gapless");
    let journal = &journals[0];
    let seqs: Vec<u64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=journal.len() as u64).collect::<Vec<_>>());
    let mut count: HashMap<&str, usize> = HashMap::new();
    for e in journal {
        *count.entry(e.path.as_str()).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 1), "a write was applied twice");
    for i in &acked {
        assert_eq!(count.get(format!("/w/{i}").as_str()), Some(&1), "acknowledged write {i} is missing");
    }
    tracing::info!("--- health, readiness and metrics on every node");
    for j in 0..3 {
        let node = cluster.admin(j).api;
        node.healthz().await.unwrap();
        let ready = wait_for("readiness", Duration::from_secs(10), || async { node.readyz().await.ok().map(|_| ()) });
        ready.await;
        let text = node.metrics().await.unwrap();
        for name in [
            "tideline_raft_term",
            "tideline_raft_commit_index",
            "tideline_raft_apply_lag",
            "tideline_journal_appends_total",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "node {} metrics lack {name}", j + 1);
        }
        let is_leader = if j as u64 + 1 == new_leader { 1 } else { 0 };
        assert!(text.contains(&format!("tideline_raft_is_leader{{node_id=\"{}\"}} {is_leader}", j + 1)), "{text}");
        assert!(text.contains(
            "tideline_http_request_duration_seconds_bucket{route=\"/api/v1/sandboxvolumes/{id}/sync/changes\""
        ));
    }
    for (j, c) in clients.iter().enumerate() {
        let bytes = c.read(&vol, &format!("/w/{}", acked[acked.len() - 1])).await.ok();
        assert!(bytes == Some(content(acked[acked.len() - 1])), "node {} serves the last write", j + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_three_to_four_to_three_while_writing() {
    let _serial = SERIAL.lock().await;
    let mut ports = free_ports(4);
    let extra_port = ports.pop().unwrap();
    let mut cluster = Cluster::start_on(ports);
    let leader = wait_for("a leader", Duration::from_secs(20), || async { cluster.leader_seen_by(0).await }).await;
    let client = Client::for_team(&cluster.url(0), "team-a").await;
    let vol = client.create_volume().await;

    tracing::info!("--- a stream of writes through node 1 while membership changes");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, vol, stop) = (client.with_url(&cluster.url(0)), vol.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) || acked.len() < 50 {
                assert!(i < 20_000);
                if client.write(&vol, &format!("/m/{i}"), content(i)).await.is_ok() {
                    acked.push(i);
                }
                i += 1;
            }
            acked
        })
    };

    tracing::info!("--- node 4 starts with --join and is added: learner, then voter");
    let dir4 = tempfile::tempdir().unwrap();
    let mut args4 = cluster.args(0);
    args4[1] = "4".into();
    args4[3] = format!("127.0.0.1:{extra_port}");
    args4.drain(4..6); // no --peers: it joins
    args4.push("--join".into());
    let node4 = Server::start_with(dir4.path(), &args4);
    let admin = cluster.admin(0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["cluster", "add-node", "--node-id", "4", "--addr", &format!("127.0.0.1:{extra_port}")])
        .args(["--server", &cluster.url(0), "--admin-token", ADMIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = admin.cluster().await.unwrap();
    let voters: Vec<u64> = status.nodes.iter().filter(|n| n.voter).map(|n| n.node_id).collect();
    assert_eq!(voters, vec![1, 2, 3, 4], "{status:?}");

    tracing::info!("--- remove a voter that is not the leader: back to three");
    let gone = (1..=3u64).find(|id| *id != leader && *id != 1).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["cluster", "remove-node", &gone.to_string(), "--server", &cluster.url(0), "--admin-token", ADMIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = admin.cluster().await.unwrap();
    let ids: Vec<u64> = status.nodes.iter().map(|n| n.node_id).collect();
    assert!(!ids.contains(&gone) && ids.len() == 3, "{status:?}");
    cluster.servers[gone as usize - 1].take().unwrap().terminate();

    stop.store(true, Ordering::SeqCst);
    let acked = writer.await.unwrap();

    tracing::info!("--- no acknowledged write lost, on any remaining node");
    let remaining: Vec<String> =
        (1..=3u64).filter(|id| *id != gone).map(|id| cluster.url(id as usize - 1)).chain([node4.url.clone()]).collect();
    let journals = wait_for("identical journals on the remaining nodes", Duration::from_secs(30), || async {
        let mut js = Vec::new();
        for url in &remaining {
            js.push(client.with_url(url).journal_with(&vol, Consistency::Local).await);
        }
        (js[0].len() >= acked.len() && js.iter().all(|j| *j == js[0])).then_some(js)
    })
    .await;
    let paths: std::collections::HashSet<&str> = journals[0].iter().map(|e| e.path.as_str()).collect();
    for i in &acked {
        assert!(paths.contains(format!("/m/{i}").as_str()), "acknowledged write {i} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_cluster_secret_is_refused() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(1);
    let http = reqwest::Client::new();
    for secret in [None, Some("wrong")] {
        let mut req = http.post(format!("{}/raft/vote", cluster.url(0))).body(Vec::<u8>::new());
        if let Some(s) = secret {
            req = req.header("x-tideline-cluster-secret", s);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
    }
}

/// `tideline cluster status` for a terminal and for a script.
fn cluster_status(url: &str, json: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"));
    cmd.args(["cluster", "status", "--server", url, "--admin-token", ADMIN]);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run tideline cluster status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_asks_every_member_and_shows_one_that_does_not_answer() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3);
    let leader = wait_for("a leader", Duration::from_secs(30), || cluster.leader_seen_by(0)).await;
    let follower = (0..3).find(|&i| i as u64 + 1 != leader).unwrap();
    // Every member knows the leader, so each answers with its own view.
    for i in 0..3 {
        let cluster = &cluster;
        wait_for("every member to know the leader", Duration::from_secs(30), || async move {
            (cluster.leader_seen_by(i).await == Some(leader)).then_some(())
        })
        .await;
    }

    let out = cluster_status(&cluster.url(follower), false);
    assert!(out.status.success(), "{}", common::show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three members:\n{text}");
    for col in ["NODE", "ADDRESS", "ROLE", "VOTER", "TERM", "LAST LOG", "APPLIED", "LAG"] {
        assert!(lines[0].contains(col), "header lacks {col}: {}", lines[0]);
    }
    assert_eq!(lines.iter().filter(|l| l.contains(" leader ")).count(), 1, "{text}");
    assert_eq!(lines.iter().filter(|l| l.contains(" follower ")).count(), 2, "{text}");

    let out = cluster_status(&cluster.url(follower), true);
    assert!(out.status.success(), "{}", common::show(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["node_id"], i as u64 + 1, "{row}");
        assert_eq!(row["leader_id"], leader, "each member's own view names the leader: {row}");
        assert!(row["error"].is_null(), "{row}");
        assert!(row["lag"].is_u64(), "the leader's view gives each member's lag: {row}");
    }

    // A member that is down shows its error; the others still answer.
    let down = (0..3).find(|&i| i != follower && i as u64 + 1 != leader).unwrap();
    cluster.servers[down].take().unwrap().kill();
    let out = cluster_status(&cluster.url(follower), true);
    assert!(out.status.success(), "{}", common::show(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for (i, row) in rows.iter().enumerate() {
        if i == down {
            assert!(row["error"].is_string(), "the stopped member: {row}");
            assert!(row["term"].is_null(), "no numbers for a member that did not answer: {row}");
        } else {
            assert!(row["error"].is_null(), "{row}");
            assert!(row["term"].is_u64(), "{row}");
        }
    }
    cluster.restart(down);
}

/// `tideline token …` against one member, as an operator runs it.
fn token_cli(url: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"));
    cmd.arg("token").args(args).args(["--server", url, "--admin-token", ADMIN]);
    cmd.output().expect("run tideline token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_member_is_refused_by_every_member() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3);
    wait_for("a leader", Duration::from_secs(30), || cluster.leader_seen_by(0)).await;
    let out = token_cli(&cluster.url(0), &["create", "--team", "t", "--permission", "*", "--name", "laptop"]);
    assert!(out.status.success(), "{}", common::show(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, token) = (made["id"].as_str().unwrap(), made["token"].as_str().unwrap());
    for i in 0..3 {
        let team = Client::new(&cluster.url(i), token);
        wait_for("the token to work on every member", Duration::from_secs(30), || async {
            team.api.list_volumes().await.ok()
        })
        .await;
    }

    let out = token_cli(&cluster.url(2), &["list"]);
    assert!(out.status.success(), "{}", common::show(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(table.lines().any(|l| l.starts_with(id) && l.contains("laptop") && l.contains("never")), "{table}");

    let out = token_cli(&cluster.url(1), &["revoke", id]);
    assert!(out.status.success(), "{}", common::show(&out));
    for i in 0..3 {
        let team = Client::new(&cluster.url(i), token);
        let refused = wait_for("every member to refuse the revoked token", Duration::from_secs(30), || async {
            team.api.list_volumes().await.err().filter(|e| e.status.map(|s| s.as_u16()) == Some(401))
        })
        .await;
        assert_eq!(refused.message, "invalid token");
    }
    let out = token_cli(&cluster.url(0), &["revoke", id]);
    assert!(!out.status.success(), "revoking twice is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("token not found"), "{}", common::show(&out));
}
