//! Snapshots (create, list, get, delete), restore as journal entries, and copy-on-write forks,
//! through the router.

use axum::http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::*;

/// Every path's mode (`"0644"`).
async fn modes(v: &Vol<'_>) -> std::collections::BTreeMap<String, String> {
    walk(v)
        .await
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["mode"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_routes() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/a.txt", "hello").await;
    v.write("/dir/b.txt", "world!").await;
    let url = |rest: &str| v.url(&format!("/snapshots{rest}"));

    let m = app
        .call("POST", &url(""), Some(&v.t), Some(json!({ "name": "  " })))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(m, "name is required");
    app.call("POST", &url(""), Some(&v.t), None).await.error(StatusCode::BAD_REQUEST, "bad_request");
    let r = app.call("POST", &url(""), Some(&v.t), Some(json!({ "name": "one", "description": "first" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let one = r.data();
    assert_eq!(one["name"], "one");
    assert_eq!(one["description"], "first");
    assert_eq!(one["volume_id"], v.id.as_str());
    assert_eq!(one["size_bytes"], 11, "the real total of the files");
    let created = one["created_at"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z') && !created.contains('.'), "{created}");
    // Newest first is by creation time: the second is taken later by the app's clock.
    app.clock.advance(std::time::Duration::from_millis(5));
    let two = app.call("POST", &url(""), Some(&v.t), Some(json!({ "name": "two" }))).await.data();
    assert!(two.get("description").is_none());

    let list = app.call("GET", &url(""), Some(&v.t), None).await.data();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["two", "one"], "newest first");
    let sid = one["id"].as_str().unwrap();
    assert_eq!(app.call("GET", &url(&format!("/{sid}")), Some(&v.t), None).await.data(), one);
    app.call("GET", &url("/snap-nope"), Some(&v.t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    let other = app.token("team-b", &["*"]).await;
    app.call("GET", &url(&format!("/{sid}")), Some(&other), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("GET", &url(""), Some(&other), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("POST", &url(&format!("/{sid}/restore")), Some(&other), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    let d = app.call("DELETE", &url(&format!("/{sid}")), Some(&v.t), None).await.data();
    assert_eq!(d, json!({ "deleted": true }));
    assert_eq!(app.call("DELETE", &url(&format!("/{sid}")), Some(&v.t), None).await.data(), json!({ "deleted": true }));
    app.call("GET", &url(&format!("/{sid}")), Some(&v.t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("POST", &url(&format!("/{sid}/restore")), Some(&v.t), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.call("GET", &url(""), Some(&v.t), None).await.data().as_array().unwrap().len(), 1);
}

/// Snapshot → 50 changes → restore: the namespace equals the snapshot's, and a replica that
/// replays the restore's journal entries reaches the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_undoes_fifty_changes_through_the_journal() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    for i in 0..10 {
        v.write(&format!("/src/m{i}.rs"), &format!("mod {i}")).await;
    }
    v.write("/docs/readme.md", "read me").await;
    v.write("/big.bin", &"x".repeat(70_000)).await;
    app.raw("POST", &v.url("/files?path=/empty/inner&mkdir=true&recursive=true"), &v.t, "").await.data();
    let at_snapshot = live_tree(&v).await;
    let modes_at_snapshot = modes(&v).await;
    let snap = app.call("POST", &v.url("/snapshots"), Some(&v.t), Some(json!({ "name": "before" }))).await.data();
    let sid = snap["id"].as_str().unwrap().to_string();

    tracing::info!("--- 50 changes of every kind");
    let mut n = 0;
    for i in 0..20 {
        v.write(&format!("/src/m{}.rs", i % 10), &format!("changed {i}")).await;
        n += 1;
    }
    for i in 0..10 {
        v.write(&format!("/new/{i}.txt"), "new").await;
        n += 1;
    }
    for p in ["/docs", "/empty", "/big.bin"] {
        app.call("DELETE", &v.url(&format!("/files?path={p}")), Some(&v.t), None).await.data();
        n += 1;
    }
    app.call("POST", &v.url("/files/move"), Some(&v.t), Some(json!({ "source": "/src", "destination": "/lib" })))
        .await
        .data();
    n += 1;
    v.write("/docs", "a file where a directory was").await; // kind change
    n += 1;
    v.replica("r", json!({})).await;
    let head = v.head().await;
    let mut changes = Vec::new();
    while n < 50 {
        changes.push(json!({ "event_type": "write", "path": format!("/r{n}"), "content_base64": "eA==" }));
        n += 1;
    }
    changes.push(json!({ "event_type": "chmod", "path": "/docs", "mode": 448 }));
    v.append("r", "c", head as i64, json!(changes)).await.data();
    let before_restore = live_tree(&v).await;
    assert_ne!(before_restore, at_snapshot);
    let head_before = v.head().await;

    let r = app.call("POST", &v.url(&format!("/snapshots/{sid}/restore")), Some(&v.t), None).await.data();
    assert_eq!(r, json!({ "status": "restored" }));
    assert_eq!(live_tree(&v).await, at_snapshot, "byte-identical to the snapshot");
    assert_eq!(modes(&v).await, modes_at_snapshot, "modes too");

    tracing::info!("--- a replica replaying the restore entries gets there too");
    let page = app
        .call("GET", &v.url(&format!("/sync/changes?after={head_before}&limit=2048")), Some(&v.t), None)
        .await
        .data();
    let entries = page["changes"].as_array().unwrap().clone();
    let last = entries.last().unwrap();
    assert_eq!(last["event_type"], "invalidate");
    assert_eq!(last["metadata"]["restored_snapshot_id"], sid.as_str());
    for e in &entries {
        assert_eq!(e["source"], "sandbox");
        if e["event_type"] == "write" {
            assert!(e["content_ref"].as_str().unwrap().starts_with("sha256:"));
        }
    }
    let mut replica = before_restore;
    replay_into(&v, &mut replica, &entries).await;
    assert_eq!(replica, at_snapshot);

    tracing::info!("--- restoring again changes nothing but the invalidate");
    app.call("POST", &v.url(&format!("/snapshots/{sid}/restore")), Some(&v.t), None).await.data();
    assert_eq!(v.head().await, head_before + entries.len() as u64 + 1);
}

fn blob_count(app: &App) -> usize {
    let dir = app._dir.path().join("objects/blobs/sha256");
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// A fork is the source at the fork point: same content (shared by address, nothing copied),
/// config inherited, RWO by default, and writes on either side never show in the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_are_isolated_and_share_content() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let body =
        json!({ "access_mode": "RWX", "cache_size": "2G", "default_posix_uid": 1000, "default_posix_gid": 1000 });
    let src = app.call("POST", "/api/v1/sandboxvolumes", Some(&t), Some(body)).await.data();
    let src = Vol { app: &app, t: t.clone(), id: src["id"].as_str().unwrap().to_string() };
    src.write("/big.bin", &"b".repeat(100_000)).await;
    src.write("/small.txt", "small").await;
    assert_eq!(blob_count(&app), 1, "the large file is in the object store once");

    let r = app.call("POST", &src.url("/fork"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let fork: Value = r.data();
    assert_eq!(fork["source_volume_id"], src.id.as_str());
    assert_eq!(fork["access_mode"], "RWO", "a fork is RWO unless asked otherwise");
    assert_eq!(fork["cache_size"], "2G", "config inherited");
    assert_eq!(fork["default_posix_uid"], 1000);
    let fork = Vol { app: &app, t: t.clone(), id: fork["id"].as_str().unwrap().to_string() };
    assert_eq!(live_tree(&fork).await, live_tree(&src).await);
    assert_eq!(blob_count(&app), 1, "no content copied");

    src.write("/only-in-source", "s").await;
    fork.write("/only-in-fork", "f").await;
    fork.write("/small.txt", "changed in the fork").await;
    app.call("DELETE", &src.url("/files?path=/big.bin"), Some(&t), None).await.data();
    assert_eq!(src.read("/only-in-fork").await, None);
    assert_eq!(fork.read("/only-in-source").await, None);
    assert_eq!(src.read("/small.txt").await.as_deref(), Some("small"));
    assert_eq!(fork.read("/big.bin").await.map(|s| s.len()), Some(100_000), "the fork keeps its content");
    let asked = app.call("POST", &src.url("/fork"), Some(&t), Some(json!({ "access_mode": "rwx" }))).await.data();
    assert_eq!(asked["access_mode"], "RWX");
}

/// A blob is deleted only when nothing references it — no namespace row, retained journal entry
/// or snapshot of any volume — and only after the grace period; a blob shared by a fork and a
/// snapshot survives deleting the volume it was written to. The grace period passes on the
/// app's clock, moved by hand (objects are stamped with real time, a little after the clock's
/// start, so it moves in steps far longer than the test runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_frees_only_unreferenced_blobs_after_the_grace_period() {
    let app = App::new().await;
    let grace = std::time::Duration::from_secs(3600);
    let t = app.token("team-a", &["*"]).await;
    let big = |c: &str| c.repeat(70_000);
    let origin = Vol { app: &app, t: t.clone(), id: app.volume(&t).await };
    origin.write("/shared-by-fork.bin", &big("f")).await;
    origin.write("/only-in-snapshot.bin", &big("s")).await;
    origin.write("/small.txt", "inline content").await;
    let fork = app.call("POST", &origin.url("/fork"), Some(&t), None).await.data();
    let fork = Vol { app: &app, t: t.clone(), id: fork["id"].as_str().unwrap().to_string() };
    let snap = app.call("POST", &fork.url("/snapshots"), Some(&t), Some(json!({ "name": "keep" }))).await.data();
    // The fork drops a file: its snapshot and its retained journal entry still reference it.
    app.call("DELETE", &fork.url("/files?path=/only-in-snapshot.bin"), Some(&t), None).await.data();

    let doomed = Vol { app: &app, t: t.clone(), id: app.volume(&t).await };
    doomed.write("/garbage.bin", &big("g")).await;
    doomed.write("/garbage-inline.txt", "soon unreferenced").await;
    assert_eq!(blob_count(&app), 3);

    app.call("DELETE", &origin.url("?force=true"), Some(&t), None).await.data();
    app.call("DELETE", &doomed.url("?force=true"), Some(&t), None).await.data();

    tracing::info!("--- within the grace period nothing is deleted: candidates are only marked");
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!((r.marked, r.swept, r.deleted_objects), (1, 0, 0), "the inline copy is marked: {r:?}");
    assert_eq!(blob_count(&app), 3, "the object is younger than the grace period");
    app.clock.advance(grace * 2);
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!((r.marked, r.swept, r.deleted_objects), (1, 1, 0), "object marked, inline copy swept: {r:?}");
    assert_eq!(app.node.state_machine().inline_content().unwrap().len(), 1, "only the referenced inline copy is left");
    app.clock.advance(grace * 2);
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!((r.swept, r.deleted_objects), (1, 1), "{r:?}");
    assert_eq!(blob_count(&app), 2, "only the unreferenced object is gone");
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!((r.marked, r.swept), (0, 0), "nothing left to collect: {r:?}");

    tracing::info!("--- what is referenced is intact");
    assert_eq!(fork.read("/shared-by-fork.bin").await.map(|s| s.len()), Some(70_000));
    assert_eq!(fork.read("/small.txt").await.as_deref(), Some("inline content"));
    let sid = snap["id"].as_str().unwrap();
    app.call("POST", &fork.url(&format!("/snapshots/{sid}/restore")), Some(&t), None).await.data();
    assert_eq!(fork.read("/only-in-snapshot.bin").await, Some(big("s")), "kept for the snapshot");

    tracing::info!("--- a write that references marked content un-marks it");
    let again = Vol { app: &app, t: t.clone(), id: app.volume(&t).await };
    again.write("/tmp.bin", &big("t")).await;
    app.call("DELETE", &again.url("?force=true"), Some(&t), None).await.data();
    app.clock.advance(grace * 2);
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!(r.marked, 1, "{r:?}");
    let back = Vol { app: &app, t: t.clone(), id: app.volume(&t).await };
    back.write("/tmp.bin", &big("t")).await; // same content again, before the sweep
    app.clock.advance(grace * 2);
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!(r.swept, 0, "{r:?}");
    assert_eq!(back.read("/tmp.bin").await, Some(big("t")));
}

/// A snapshot that cannot be written to the object store fails with 503 and leaves nothing
/// behind (no snapshot stuck in `pending`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_cannot_be_stored_leaves_nothing_behind() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/a", "a").await;
    // A file where the snapshots directory must go: every manifest write fails.
    std::fs::write(app._dir.path().join("objects/snapshots"), "in the way").unwrap();
    let r = app.call("POST", &v.url("/snapshots"), Some(&v.t), Some(json!({ "name": "doomed" }))).await;
    r.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(app.call("GET", &v.url("/snapshots"), Some(&v.t), None).await.data(), json!([]));
    std::fs::remove_file(app._dir.path().join("objects/snapshots")).unwrap();
    let r = app.call("POST", &v.url("/snapshots"), Some(&v.t), Some(json!({ "name": "fine" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
}

/// A snapshot left pending by a builder that stopped holds collection back for at most an hour,
/// then is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_pending_snapshot_is_deleted_after_an_hour() {
    use tideline_raft::Clock;
    use tideline_storage::command::CreateSnapshot;
    use tideline_storage::{CommandKind, SnapshotRecord};
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let now = app.clock.now_ms();
    let record = SnapshotRecord {
        id: "snap-abandoned".into(),
        volume_id: v.id.clone(),
        team_id: "team-a".into(),
        name: "abandoned".into(),
        created_at_ms: now,
        kind: "user".into(),
        ..Default::default()
    };
    // Proposed with nobody waiting to freeze it: it stays pending, as if its builder died.
    let r =
        app.node.propose(CommandKind::CreateSnapshot(CreateSnapshot { snapshot: Some(record) }).into()).await.unwrap();
    assert!(r.error.is_none(), "{r:?}");
    let grace = std::time::Duration::from_secs(3600);
    let minutes = |n: u64| std::time::Duration::from_secs(n * 60);
    app.clock.advance(minutes(10));
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!(r.skipped.as_deref(), Some("a snapshot is being frozen"), "{r:?}");
    app.clock.advance(minutes(51));
    assert_eq!(app.clock.now_ms(), now + 61 * 60 * 1000);
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!((r.expired_snapshots, r.skipped.as_deref()), (1, None), "{r:?}");
    app.call("GET", &v.url("/snapshots/snap-abandoned"), Some(&v.t), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}
