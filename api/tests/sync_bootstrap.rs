//! The Volume Sync table of API.md, reseeding: appends and cursors below the retention floor
//! answered with the reseed 409, bootstrap snapshots and their archives (frozen namespace,
//! capability checks, expiry) and a lagging replica converging from one.

use axum::http::StatusCode;
use serde_json::json;
use tideline_raft::CompactionConfig;
use tideline_test_support::wait_for;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_below_the_floor_is_a_reseed() {
    let app =
        App::start(Some(CompactionConfig { retain_entries: 2, interval: std::time::Duration::from_millis(50) })).await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    for i in 0..6 {
        v.write(&format!("/f{i}"), "x").await;
    }
    let mut attempt = 0;
    let e = wait_for("compaction to 4 (within 10 s)", std::time::Duration::from_secs(10), || {
        // A fresh request id each time: a stored request would answer with its old result.
        attempt += 1;
        let (v, request_id) = (&v, format!("late-{attempt}"));
        async move {
            let r = v.append("r1", &request_id, 1, json!([])).await;
            (r.status == StatusCode::CONFLICT && r.json()["error"]["details"]["retained_after_seq"] == 4)
                .then(|| r.json())
        }
    })
    .await;
    assert_eq!(e["error"]["message"], "sync reseed required");
    assert_eq!(e["error"]["details"], json!({ "reason": "reseed_required", "retained_after_seq": 4, "head_seq": 6 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_archive_plus_later_changes_equals_the_live_namespace() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let big: String = "0123456789abcdef".repeat(5000); // 80 000 bytes: kept in the object store
    v.write("/src/main.rs", "fn main() {}").await;
    v.write("/src/lib/mod.rs", "").await;
    v.write("/a.txt", "a").await;
    v.write("/big.bin", &big).await;
    app.raw("POST", &v.url("/files?path=/empty&mkdir=true"), &v.t, "").await.data();

    let r = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), Some(json!({ "snapshot_name": "first" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let boot = r.data();
    assert_eq!(boot["replay_after_seq"], 5);
    assert_eq!(boot["snapshot"]["name"], "first");
    let created = boot["snapshot"]["created_at"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z') && !created.contains('.'), "YYYY-MM-DDTHH:MM:SSZ: {created}");
    assert_eq!(boot["snapshot"]["size_bytes"], 12 + 1 + big.len() as u64);
    let sid = boot["snapshot"]["id"].as_str().unwrap().to_string();
    let path = boot["archive_download_path"].as_str().unwrap().to_string();
    assert_eq!(path, v.url(&format!("/sync/bootstrap/archive?snapshot_id={sid}")));
    let snapshot_tree = live_tree(&v).await;

    tracing::info!("--- writes go on; the archive still shows the frozen namespace");
    v.write("/a.txt", "a2").await;
    v.write("/src/new.txt", "new").await;
    app.call("POST", &v.url("/files/move"), Some(&v.t), Some(json!({ "source": "/src/lib", "destination": "/lib" })))
        .await
        .data();
    app.call("DELETE", &v.url("/files?path=/big.bin"), Some(&v.t), None).await.data();
    let archive = app.raw("GET", &path, &v.t, "").await;
    assert_eq!(archive.status, StatusCode::OK);
    assert_eq!(archive.headers["content-type"], "application/gzip");
    let mut tree = unpack(&archive.body);
    assert_eq!(tree, snapshot_tree, "the archive is the namespace at replay_after_seq");
    let page = app.call("GET", &v.url("/sync/changes?after=5"), Some(&v.t), None).await.data();
    replay_into(&v, &mut tree, page["changes"].as_array().unwrap()).await;
    assert_eq!(tree, live_tree(&v).await, "archive + changes after replay_after_seq = live namespace");

    tracing::info!("--- archive errors");
    let m =
        app.raw("GET", &v.url("/sync/bootstrap/archive"), &v.t, "").await.error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(m, "missing snapshot_id");
    app.raw("GET", &v.url("/sync/bootstrap/archive?snapshot_id=snap-nope"), &v.t, "")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let other = app.token("team-b", &["*"]).await;
    app.raw("GET", &path, &other, "").await.error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_refuses_a_namespace_the_capabilities_cannot_hold() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/a:b", "1").await;
    v.write("/Readme", "2").await;
    v.write("/README", "3").await;
    let windows = json!({ "capabilities": { "case_sensitive": false, "windows_compatible_paths": true } });
    let r = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), Some(windows)).await;
    let m = r.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "bootstrap snapshot contains namespace entries incompatible with the requested replica capabilities");
    let d = &r.json()["error"]["details"];
    assert_eq!(d["reason"], "namespace_incompatible");
    assert_eq!(d["capabilities"]["unicode_normalization_insensitive"], true);
    let mut codes: Vec<&str> = d["issues"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["casefold_collision", "windows_forbidden_character"]);
    let collision = d["issues"].as_array().unwrap().iter().find(|i| i["code"] == "casefold_collision").unwrap();
    assert_eq!(collision["paths"], json!(["/README", "/Readme"]));
    // The rejected snapshot is gone.
    let sid = d["snapshot_id"].as_str().unwrap();
    app.raw("GET", &v.url(&format!("/sync/bootstrap/archive?snapshot_id={sid}")), &v.t, "")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    // A case-sensitive Linux replica can hold all of it.
    let r = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), Some(json!({ "case_sensitive": true }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    // Only the case rule: a mac.
    let r = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), Some(json!({ "case_sensitive": false }))).await;
    assert!(!r.error(StatusCode::CONFLICT, "conflict").is_empty());
    assert_eq!(r.json()["error"]["details"]["issues"][0]["code"], "casefold_collision");
}

/// A lagging replica below the retention floor gets the reseed 409, bootstraps, replays the
/// changes after the snapshot, and converges; no entry above the floor is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_reseeds_from_a_bootstrap_and_converges() {
    let app =
        App::start(Some(CompactionConfig { retain_entries: 5, interval: std::time::Duration::from_millis(50) })).await;
    let v = Vol::new(&app).await;
    v.replica("laggard", json!({ "platform": "linux" })).await;
    for i in 0..20 {
        v.write(&format!("/d{}/f{i}", i % 3), &format!("content {i}")).await;
    }
    let details = wait_for("compaction to 15 (within 10 s)", std::time::Duration::from_secs(10), || async {
        let r = app.call("GET", &v.url("/sync/changes?after=0"), Some(&v.t), None).await;
        (r.status == StatusCode::CONFLICT && r.json()["error"]["details"]["retained_after_seq"] == 15)
            .then(|| r.json()["error"]["details"].clone())
    })
    .await;
    assert_eq!(details, json!({ "reason": "reseed_required", "retained_after_seq": 15, "head_seq": 20 }));
    let m = app
        .call("PUT", &v.url("/sync/replicas/laggard/cursor"), Some(&v.t), Some(json!({ "last_applied_seq": 3 })))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync reseed required");

    let boot = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), None).await.data();
    let after = boot["replay_after_seq"].as_u64().unwrap();
    assert_eq!(after, 20);
    for i in 20..26 {
        v.write(&format!("/d{}/f{i}", i % 3), &format!("content {i}")).await;
    }
    let archive = app.raw("GET", boot["archive_download_path"].as_str().unwrap(), &v.t, "").await;
    let mut tree = unpack(&archive.body);
    // Page through the retained journal after the snapshot: every seq present, in order.
    let mut cursor = after;
    loop {
        let page =
            app.call("GET", &v.url(&format!("/sync/changes?after={cursor}&limit=2")), Some(&v.t), None).await.data();
        let changes = page["changes"].as_array().unwrap().clone();
        if changes.is_empty() {
            break;
        }
        for (i, e) in changes.iter().enumerate() {
            assert_eq!(e["seq"].as_u64().unwrap(), cursor + 1 + i as u64, "no entry above the floor is missing");
        }
        replay_into(&v, &mut tree, &changes).await;
        cursor = changes.last().unwrap()["seq"].as_u64().unwrap();
    }
    assert_eq!(cursor, 26);
    assert_eq!(tree, live_tree(&v).await, "the reseeded replica converged");
    let r = app
        .call("PUT", &v.url("/sync/replicas/laggard/cursor"), Some(&v.t), Some(json!({ "last_applied_seq": cursor })))
        .await
        .data();
    assert_eq!(r["replica"]["last_applied_seq"], 26);
}

/// Bootstrap snapshots expire after a day; the leader's collector deletes them and their
/// manifests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_snapshots_expire_after_a_day() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/a", "a").await;
    let boot = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), None).await.data();
    let snap = &boot["snapshot"];
    let created = time::OffsetDateTime::parse(
        snap["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        snap["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - created, time::Duration::hours(24));
    let path = boot["archive_download_path"].as_str().unwrap().to_string();
    assert_eq!(app.raw("GET", &path, &v.t, "").await.status, StatusCode::OK);
    let user = app.call("POST", &v.url("/snapshots"), Some(&v.t), Some(json!({ "name": "mine" }))).await.data();
    assert!(user.get("expires_at").is_none(), "user snapshots do not expire");

    let grace = std::time::Duration::from_secs(3600);
    let hours = |n: u64| std::time::Duration::from_secs(n * 3600);
    app.clock.advance(hours(23));
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!(r.expired_snapshots, 0, "{r:?}");
    app.clock.advance(hours(2));
    let r = app.ops.collect_garbage(grace).await.unwrap();
    assert_eq!(r.expired_snapshots, 1, "{r:?}");
    app.raw("GET", &path, &v.t, "").await.error(StatusCode::NOT_FOUND, "not_found");
    let left = app.call("GET", &v.url("/snapshots"), Some(&v.t), None).await.data();
    assert_eq!(left.as_array().unwrap().len(), 1, "the user snapshot stays");
}
