//! An in-process three-node cluster over real loopback HTTP, with the transport's fault filter:
//! a minority cut off cannot commit and answers 503 after a bounded wait; healing converges;
//! a node cut off while the leader snapshots and purges catches up through a snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use tideline_api::ops::SystemClock;
use tideline_api::{router, AppState, Ops};
use tideline_raft::peer_client::FaultFilter;
use tideline_raft::{RaftNode, RaftNodeConfig};
use tideline_storage::{BlobStore, Db};
use tideline_test_support::{wait_for, wait_until};

const ADMIN: &str = "admin";
const SECRET: &str = "secret";

struct TestNode {
    id: u64,
    node: RaftNode,
    router: Router,
    faults: FaultFilter,
    _dir: tempfile::TempDir,
}

struct TestCluster {
    nodes: Vec<TestNode>,
    _shared: tempfile::TempDir,
}

impl TestCluster {
    async fn start(n: usize, snapshot_logs: u64, kept: u64) -> TestCluster {
        let shared = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let members: BTreeMap<u64, String> =
            listeners.iter().enumerate().map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap().to_string())).collect();
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(&dir.path().join("db")).unwrap();
            let cfg = RaftNodeConfig {
                initial_members: members.clone(),
                cluster_secret: SECRET.into(),
                snapshot_logs_since_last: snapshot_logs,
                logs_kept_after_snapshot: kept,
                ..RaftNodeConfig::single(id, members[&id].clone(), dir.path().join("snapshots"))
            };
            let faults = FaultFilter::default();
            let node = RaftNode::start_with_faults(cfg, db, faults.clone()).await.unwrap();
            let blobs = BlobStore::local(shared.path()).unwrap();
            let ops = Ops::new(node.clone(), blobs, Arc::new(SystemClock));
            let app = router(AppState::new(ops, ADMIN, SECRET));
            let serve = axum::serve(listener, app.clone());
            tokio::spawn(async move { serve.await });
            nodes.push(TestNode { id, node, router: app, faults, _dir: dir });
        }
        TestCluster { nodes, _shared: shared }
    }

    fn node(&self, id: u64) -> &TestNode {
        &self.nodes[id as usize - 1]
    }

    /// Waits until every node in `among` agrees on one leader from `among`.
    async fn leader(&self, among: &[u64]) -> u64 {
        wait_for("an agreed leader", Duration::from_secs(20), || {
            let seen: Vec<Option<u64>> = among.iter().map(|id| self.node(*id).node.metrics().current_leader).collect();
            let first = seen[0];
            let agreed =
                (first.is_some_and(|l| among.contains(&l)) && seen.iter().all(|s| *s == first)).then(|| first.unwrap());
            async move { agreed }
        })
        .await
    }

    /// Cuts `id` off from every other node, both ways.
    fn isolate(&self, id: u64) {
        for n in &self.nodes {
            if n.id == id {
                n.faults.isolate_from(self.nodes.iter().map(|o| o.id).filter(|o| *o != id));
            } else {
                n.faults.isolate_from([id]);
            }
        }
    }

    fn heal(&self) {
        for n in &self.nodes {
            n.faults.heal();
        }
    }
}

async fn call(r: &Router, method: &str, uri: &str, token: &str, body: Body) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn setup(c: &TestCluster, via: u64) -> (String, String) {
    let r = &c.node(via).router;
    let (s, v) =
        call(r, "POST", "/api/v1/tokens", ADMIN, Body::from(json!({"team_id":"t","permissions":["*"]}).to_string()))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["data"]["token"].as_str().unwrap().to_string();
    let (s, v) = call(r, "POST", "/api/v1/sandboxvolumes", &token, Body::empty()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (token, v["data"]["id"].as_str().unwrap().to_string())
}

async fn write(c: &TestCluster, via: u64, token: &str, vol: &str, path: &str) -> (StatusCode, Value) {
    let uri = format!("/api/v1/sandboxvolumes/{vol}/files?path={path}");
    call(&c.node(via).router, "POST", &uri, token, Body::from(format!("content of {path}"))).await
}

async fn local_journal(c: &TestCluster, id: u64, token: &str, vol: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let uri = format!("/api/v1/sandboxvolumes/{vol}/sync/changes?after={}&limit=2048&consistency=local", out.len());
        let (s, v) = call(&c.node(id).router, "GET", &uri, token, Body::empty()).await;
        if s != StatusCode::OK {
            return out;
        }
        let page = v["data"]["changes"].as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

async fn converged(c: &TestCluster, token: &str, vol: &str, want_len: usize) -> Vec<Value> {
    wait_until("the journals to converge", Duration::from_secs(30), || async {
        let mut js = Vec::new();
        for n in &c.nodes {
            js.push(local_journal(c, n.id, token, vol).await);
        }
        if js[0].len() >= want_len && js.iter().all(|j| *j == js[0]) {
            Ok(js.swap_remove(0))
        } else {
            Err(format!("journals did not converge: lengths {:?}", js.iter().map(Vec::len).collect::<Vec<_>>()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_cannot_commit_and_healing_converges() {
    let c = TestCluster::start(3, 10_000, 1000).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    let (token, vol) = setup(&c, leader).await;
    for i in 0..5 {
        assert_eq!(write(&c, (i % 3) + 1, &token, &vol, &format!("/before/{i}")).await.0, StatusCode::OK);
    }

    tracing::info!("--- cut the leader off: it alone is a minority");
    c.isolate(leader);
    let majority: Vec<u64> = all.iter().copied().filter(|id| *id != leader).collect();
    let new_leader = c.leader(&majority).await;
    assert_ne!(new_leader, leader);

    tracing::info!("--- the cut-off leader stops reporting ready; the new leader is ready");
    wait_for("the old leader to report not ready", Duration::from_secs(10), || async {
        (call(&c.node(leader).router, "GET", "/readyz", "", Body::empty()).await.0 == StatusCode::SERVICE_UNAVAILABLE)
            .then_some(())
    })
    .await;
    let (s, v) = call(&c.node(new_leader).router, "GET", "/readyz", "", Body::empty()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    tracing::info!("--- the minority answers 503 after a bounded wait, never a false success");
    let started = std::time::Instant::now();
    let (s, v) = write(&c, leader, &token, &vol, "/minority").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    assert!(started.elapsed() < Duration::from_secs(15), "bounded wait, took {:?}", started.elapsed());

    tracing::info!("--- the majority keeps committing");
    for i in 0..5 {
        let via = majority[i % 2];
        assert_eq!(write(&c, via, &token, &vol, &format!("/during/{i}")).await.0, StatusCode::OK);
    }

    tracing::info!("--- heal: every node converges; the minority's write never happened");
    c.heal();
    let journal = converged(&c, &token, &vol, 10).await;
    assert_eq!(journal.len(), 10);
    assert!(journal.iter().all(|e| e["path"] != "/minority"));
    let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_through_a_purge_catches_up_by_snapshot() {
    // Snapshot every 20 entries, keep 5 before it: 2x the purge threshold is 40 entries.
    let c = TestCluster::start(3, 20, 5).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    let (token, vol) = setup(&c, leader).await;
    let lagging = all.iter().copied().find(|id| *id != leader).unwrap();

    tracing::info!("--- cut a follower off, write 3x the purge threshold");
    c.isolate(lagging);
    let before = c.node(lagging).node.metrics().last_applied.map(|l| l.index).unwrap_or(0);
    for i in 0..60 {
        assert_eq!(write(&c, leader, &token, &vol, &format!("/f/{i}")).await.0, StatusCode::OK);
    }
    let purged = wait_for("the leader to purge past the lagging node", Duration::from_secs(10), || {
        let purged = c.node(leader).node.metrics().purged.map(|p| p.index).filter(|p| *p > before);
        async move { purged }
    })
    .await;
    assert!(purged > before, "purged {purged} must pass the follower's {before}");

    tracing::info!("--- heal: the follower installs a snapshot and converges");
    c.heal();
    let journal = converged(&c, &token, &vol, 60).await;
    assert_eq!(journal.len(), 60);
    let m = c.node(lagging).node.metrics();
    assert!(m.snapshot.is_some_and(|s| s.index > before), "the follower caught up through a snapshot: {m:?}");
    for i in [0, 59] {
        let uri = format!("/api/v1/sandboxvolumes/{vol}/files?path=/f/{i}&consistency=local");
        let req =
            Request::builder().uri(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
        let resp = c.node(lagging).router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], format!("content of /f/{i}").as_bytes());
    }
}

/// The sync plane through followers: a replica registered on one follower appends through the
/// other; a bootstrap served by a follower freezes the namespace at its seq; conflicts and
/// journals are identical on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_plane_works_through_followers() {
    let c = TestCluster::start(3, 1000, 100).await;
    let leader = c.leader(&[1, 2, 3]).await;
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let (token, vol) = setup(&c, followers[0]).await;
    let json_body = |v: Value| Body::from(v.to_string());
    let url = |rest: &str| format!("/api/v1/sandboxvolumes/{vol}{rest}");
    let r0 = &c.node(followers[0]).router;
    let r1 = &c.node(followers[1]).router;

    let (s, v) =
        call(r0, "PUT", &url("/sync/replicas/laptop"), &token, json_body(json!({ "platform": "linux" }))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for i in 0..5 {
        assert_eq!(write(&c, leader, &token, &vol, &format!("/f{i}")).await.0, StatusCode::OK);
    }
    let changes = json!({ "request_id": "r-1", "base_seq": 2, "changes": [
        { "event_type": "write", "path": "/f4", "content_base64": "bGFwdG9w" },
        { "event_type": "write", "path": "/mine", "content_base64": "bWluZQ==" },
    ]});
    let (s, v) = call(r1, "POST", &url("/sync/replicas/laptop/changes"), &token, json_body(changes.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["conflicts"][0]["reason"], "concurrent_update");
    assert_eq!(v["data"]["accepted"].as_array().unwrap().len(), 1);
    // A retry through another node gets the same stored answer.
    let (s, again) = call(r0, "POST", &url("/sync/replicas/laptop/changes"), &token, json_body(changes)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["data"], v["data"]);

    let (s, boot) = call(r1, "POST", &url("/sync/bootstrap"), &token, Body::empty()).await;
    assert_eq!(s, StatusCode::CREATED, "{boot}");
    let after = boot["data"]["replay_after_seq"].as_u64().unwrap();
    assert_eq!(after, 7, "5 writes, the artifact and /mine");
    let archive_path = boot["data"]["archive_download_path"].as_str().unwrap().to_string();
    for id in [1, 2, 3] {
        let req = Request::builder()
            .uri(&archive_path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = c.node(id).router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "archive from node {id}");
        let gz = resp.into_body().collect().await.unwrap().to_bytes();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
        let names: Vec<String> =
            ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 7, "node {id}: {names:?}");
    }
    let journal = converged(&c, &token, &vol, 7).await;
    assert_eq!(journal.len(), 7);
    for id in [1, 2, 3] {
        let (s, v) =
            call(&c.node(id).router, "GET", &url("/sync/conflicts?consistency=local"), &token, Body::empty()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["data"]["conflicts"].as_array().unwrap().len(), 1, "node {id}");
    }
}

/// A `changes` page this node has already applied in full is served without a read barrier (a
/// committed entry never changes): a follower cut off from the leader still serves it at once.
/// A page reaching past what it applied still needs the barrier, and gets 503 there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_pages_need_no_read_barrier() {
    let c = TestCluster::start(3, 10_000, 1000).await;
    let all = [1, 2, 3];
    let leader = c.leader(&all).await;
    let (token, vol) = setup(&c, leader).await;
    for i in 0..10 {
        assert_eq!(write(&c, leader, &token, &vol, &format!("/f/{i}")).await.0, StatusCode::OK);
    }
    let follower = all.iter().copied().find(|id| *id != leader).unwrap();
    wait_for("the follower to apply all 10 entries", Duration::from_secs(10), || async {
        (local_journal(&c, follower, &token, &vol).await.len() == 10).then_some(())
    })
    .await;

    tracing::info!("--- cut the follower off: applied pages still answer, with no barrier");
    c.isolate(follower);
    let r = &c.node(follower).router;
    let changes = |q: &str| format!("/api/v1/sandboxvolumes/{vol}/sync/changes{q}");
    let started = std::time::Instant::now();
    for (q, want) in [("?after=0&limit=10", 1..=10u64), ("?after=4&limit=6", 5..=10), ("?after=9&limit=1", 10..=10)] {
        let (s, v) = call(r, "GET", &changes(q), &token, Body::empty()).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        let seqs: Vec<u64> =
            v["data"]["changes"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, want.collect::<Vec<_>>(), "{q}");
        assert_eq!(v["data"]["head_seq"], 10);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "no barrier waited: {:?}", started.elapsed());

    tracing::info!("--- a page past the applied head keeps the barrier: 503 while cut off");
    let (s, v) = call(r, "GET", &changes("?after=0&limit=11"), &token, Body::empty()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    let (s, v) = call(r, "GET", &changes("?after=5&consistency=local"), &token, Body::empty()).await;
    assert_eq!(s, StatusCode::OK, "local skips the barrier as before: {v}");

    tracing::info!("--- healed, the same page past the head answers through the barrier");
    c.heal();
    let (s, v) = call(r, "GET", &changes("?after=0&limit=11"), &token, Body::empty()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["changes"].as_array().unwrap().len(), 10);
}
