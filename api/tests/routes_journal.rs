//! The journal read routes through the router (`oneshot`): `sync/changes` paging and long
//! polling, replay payloads, compaction's floor, and sync replicas with their cursors.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use tideline_raft::CompactionConfig;
use tideline_test_support::wait_for;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_changes_and_replay_payloads() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let other = app.token("team-b", &["*"]).await;
    let vol = app.volume(&t).await;
    let changes = |q: &str| format!("/api/v1/sandboxvolumes/{vol}/sync/changes{q}");
    let payload = |r: &str| format!("/api/v1/sandboxvolumes/{vol}/sync/replay-payload?content_ref={r}");

    tracing::info!("--- each mutation appends exactly one entry with the next seq");
    let small = b"small".to_vec();
    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    app.raw("POST", &files(&vol, "?path=/s.txt"), &t, small.clone()).await.data();
    app.raw("POST", &files(&vol, "?path=/dir/l.bin"), &t, large.clone()).await.data();
    app.call("POST", &files(&vol, "?path=/d&mkdir=true"), Some(&t), None).await.data();
    app.call("POST", &files(&vol, "/move"), Some(&t), Some(json!({ "source": "/s.txt", "destination": "/d/s.txt" })))
        .await
        .data();
    app.call("DELETE", &files(&vol, "?path=/dir"), Some(&t), None).await.data();
    app.call("DELETE", &files(&vol, "?path=/dir"), Some(&t), None).await.data(); // no-op: no entry
    let all = app.call("GET", &changes(""), Some(&t), None).await.data();
    assert_eq!(all["head_seq"], 5);
    assert_eq!(all["retained_after_seq"], 0);
    let entries = all["changes"].as_array().unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let kinds: Vec<&str> = entries.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["write", "write", "create", "rename", "remove"]);
    assert_eq!(entries[0]["source"], "sandbox");
    assert_eq!(entries[0]["volume_id"], vol.as_str());
    assert_eq!(entries[0]["team_id"], "team-a");
    assert_eq!(entries[3]["old_path"], "/s.txt");
    assert_eq!(entries[4]["tombstone"], true);
    for e in entries.iter().filter(|e| e["event_type"] == "write") {
        let r = e["content_ref"].as_str().unwrap();
        assert!(r.starts_with("sha256:") && r.len() == 71, "{r}");
        assert_eq!(e["content_sha256"].as_str().unwrap(), &r[7..]);
    }

    tracing::info!("--- paging with after/limit");
    let page = app.call("GET", &changes("?after=0&limit=2"), Some(&t), None).await.data();
    assert_eq!(
        page["changes"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let page = app.call("GET", &changes("?after=2&limit=2"), Some(&t), None).await.data();
    assert_eq!(
        page["changes"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![3, 4]
    );
    let page = app.call("GET", &changes("?after=4&limit=100000"), Some(&t), None).await.data();
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
    assert_eq!(app.call("GET", &changes("?after=5"), Some(&t), None).await.data()["changes"], json!([]));
    app.call("GET", &changes("?after=-1"), Some(&t), None).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("GET", &changes("?limit=abc"), Some(&t), None).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("GET", &changes("?consistency=eventual"), Some(&t), None)
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(app.call("GET", &changes("?consistency=local"), Some(&t), None).await.data()["head_seq"], 5);

    tracing::info!("--- replay-payload returns the exact bytes, inline and object-store alike");
    for (i, want) in [(0, &small), (1, &large)] {
        let r = entries[i]["content_ref"].as_str().unwrap();
        let got = app.raw("GET", &payload(r), &t, Body::empty()).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.headers["cache-control"], "no-store");
        assert_eq!(&got.body[..], &want[..]);
    }
    app.raw("GET", &payload("sha256:xyz"), &t, Body::empty()).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.raw("GET", &format!("/api/v1/sandboxvolumes/{vol}/sync/replay-payload"), &t, Body::empty())
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    let unknown = format!("sha256:{}", "0".repeat(64));
    app.raw("GET", &payload(&unknown), &t, Body::empty()).await.error(StatusCode::NOT_FOUND, "not_found");

    tracing::info!("--- another team: 404 on the journal and on payloads, even with a valid ref");
    app.call("GET", &changes(""), Some(&other), None).await.error(StatusCode::NOT_FOUND, "not_found");
    let r = entries[0]["content_ref"].as_str().unwrap();
    app.raw("GET", &payload(r), &other, Body::empty()).await.error(StatusCode::NOT_FOUND, "not_found");
    let theirs = app.volume(&other).await;
    let cross = format!("/api/v1/sandboxvolumes/{theirs}/sync/replay-payload?content_ref={r}");
    app.raw("GET", &cross, &other, Body::empty()).await.error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_long_poll_wakes_on_a_write() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let vol = app.volume(&t).await;
    let changes = format!("/api/v1/sandboxvolumes/{vol}/sync/changes");

    tracing::info!("--- with nothing new, wait_ms waits and returns an empty page");
    let started = std::time::Instant::now();
    let r = app.call("GET", &format!("{changes}?after=0&wait_ms=300"), Some(&t), None).await.data();
    assert_eq!(r["changes"], json!([]));
    assert!(started.elapsed() >= std::time::Duration::from_millis(290), "{:?}", started.elapsed());
    app.call("GET", &format!("{changes}?wait_ms=soon"), Some(&t), None)
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");

    tracing::info!("--- a write on another connection wakes the poll with the new entry");
    let router = app.router.clone();
    let (uri, token) = (format!("{changes}?after=0&wait_ms=20000"), t.clone());
    let poll = tokio::spawn(async move {
        let req =
            Request::builder().uri(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let at = std::time::Instant::now();
        let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        (v, at)
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await; // let the poll park
    app.raw("POST", &files(&vol, "?path=/new"), &t, "x").await.data();
    let acked = std::time::Instant::now();
    let (v, returned) = poll.await.unwrap();
    assert_eq!(v["data"]["changes"][0]["path"], "/new");
    assert_eq!(v["data"]["head_seq"], 1);
    let lag = returned.saturating_duration_since(acked);
    assert!(lag < std::time::Duration::from_secs(1), "long poll returned {lag:?} after the write was acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_moves_the_floor_and_below_it_is_a_reseed() {
    let app =
        App::start(Some(CompactionConfig { retain_entries: 5, interval: std::time::Duration::from_millis(50) })).await;
    let t = app.token("team-a", &["*"]).await;
    let vol = app.volume(&t).await;
    for i in 0..12 {
        app.raw("POST", &files(&vol, &format!("?path=/f{i}")), &t, format!("{i}")).await.data();
    }
    let changes = |q: &str| format!("/api/v1/sandboxvolumes/{vol}/sync/changes{q}");

    tracing::info!("--- the leader compacts to the last 5 entries; after=0 is now a reseed");
    let err = wait_for("compaction to 7 (within 10 s)", std::time::Duration::from_secs(10), || async {
        let r = app.call("GET", &changes("?after=0"), Some(&t), None).await;
        // The compactor may tick while the writes are still landing: wait for the final floor.
        (r.status == StatusCode::CONFLICT && r.json()["error"]["details"]["retained_after_seq"] == 7).then(|| r.json())
    })
    .await;
    assert_eq!(err["error"]["message"], "sync reseed required");
    assert_eq!(
        err["error"]["details"],
        json!({ "reason": "reseed_required", "retained_after_seq": 7, "head_seq": 12 })
    );

    tracing::info!("--- from the floor on, nothing is missing");
    let page = app.call("GET", &changes("?after=7"), Some(&t), None).await.data();
    assert_eq!(page["retained_after_seq"], 7);
    let seqs: Vec<u64> = page["changes"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![8, 9, 10, 11, 12]);
    app.call("GET", &changes("?after=6"), Some(&t), None).await.error(StatusCode::CONFLICT, "conflict");
    // The namespace is untouched by compaction.
    let list = app.call("GET", &files(&vol, "/list?path=/"), Some(&t), None).await.data();
    assert_eq!(list["entries"].as_array().unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_and_cursors() {
    let app =
        App::start(Some(CompactionConfig { retain_entries: 2, interval: std::time::Duration::from_millis(50) })).await;
    let t = app.token("team-a", &["*"]).await;
    let other = app.token("team-b", &["*"]).await;
    let vol = app.volume(&t).await;
    let replica = |rid: &str| format!("/api/v1/sandboxvolumes/{vol}/sync/replicas/{rid}");
    let cursor = |rid: &str| format!("/api/v1/sandboxvolumes/{vol}/sync/replicas/{rid}/cursor");

    tracing::info!("--- capabilities from the platform, or as given (case-insensitive forces unicode)");
    let mac = app
        .call("PUT", &replica("mac"), Some(&t), Some(json!({ "platform": "darwin", "display_name": "laptop" })))
        .await
        .data();
    assert_eq!(mac["head_seq"], 0);
    assert_eq!(
        mac["replica"]["capabilities"],
        json!({ "case_sensitive": false, "unicode_normalization_insensitive": true, "windows_compatible_paths": false })
    );
    assert_eq!(mac["replica"]["case_sensitive"], false);
    assert_eq!(mac["replica"]["display_name"], "laptop");
    assert_eq!(mac["replica"]["last_applied_seq"], 0);
    let win = app.call("PUT", &replica("win"), Some(&t), Some(json!({ "platform": "win32" }))).await.data();
    assert_eq!(win["replica"]["capabilities"]["windows_compatible_paths"], true);
    let linux = app.call("PUT", &replica("linux"), Some(&t), Some(json!({ "platform": "linux" }))).await.data();
    assert_eq!(
        linux["replica"]["capabilities"],
        json!({ "case_sensitive": true, "unicode_normalization_insensitive": false, "windows_compatible_paths": false })
    );
    let given = json!({ "capabilities": { "case_sensitive": false, "unicode_normalization_insensitive": false, "windows_compatible_paths": false } });
    let ci = app.call("PUT", &replica("ci"), Some(&t), Some(given)).await.data();
    assert_eq!(ci["replica"]["capabilities"]["unicode_normalization_insensitive"], true);

    tracing::info!("--- get; missing and another team's are 404");
    assert_eq!(app.call("GET", &replica("mac"), Some(&t), None).await.data()["replica"]["id"], "mac");
    app.call("GET", &replica("nope"), Some(&t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("GET", &replica("mac"), Some(&other), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("PUT", &replica("mac"), Some(&other), None).await.error(StatusCode::NOT_FOUND, "not_found");

    tracing::info!("--- cursor: moves forward; ahead, regression and missing are refused");
    for i in 0..3 {
        app.raw("POST", &files(&vol, &format!("?path=/f{i}")), &t, "x").await.data();
    }
    let r = app.call("PUT", &cursor("mac"), Some(&t), Some(json!({ "last_applied_seq": 2 }))).await.data();
    assert_eq!((r["replica"]["last_applied_seq"].as_u64(), r["head_seq"].as_u64()), (Some(2), Some(3)));
    let m = app
        .call("PUT", &cursor("mac"), Some(&t), Some(json!({ "last_applied_seq": 4 })))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync cursor ahead of head");
    app.call("PUT", &cursor("nope"), Some(&t), Some(json!({ "last_applied_seq": 1 })))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.call("PUT", &cursor("mac"), Some(&t), Some(json!({}))).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("PUT", &cursor("mac"), Some(&t), Some(json!({ "last_applied_seq": -1 })))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    let again = app.call("PUT", &replica("mac"), Some(&t), Some(json!({ "platform": "darwin" }))).await.data();
    assert_eq!(again["replica"]["last_applied_seq"], 2, "an upsert keeps the cursor");

    tracing::info!("--- below the floor is a reseed (checked before regression)");
    wait_for("compaction (within 10 s)", std::time::Duration::from_secs(10), || async {
        let r = app.call("GET", &format!("/api/v1/sandboxvolumes/{vol}/sync/changes?after=0"), Some(&t), None).await;
        (r.status == StatusCode::CONFLICT).then_some(())
    })
    .await;
    let r = app.call("PUT", &cursor("mac"), Some(&t), Some(json!({ "last_applied_seq": 0 }))).await;
    r.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        r.json()["error"]["details"],
        json!({ "reason": "reseed_required", "retained_after_seq": 1, "head_seq": 3 })
    );
    let m = app
        .call("PUT", &cursor("mac"), Some(&t), Some(json!({ "last_applied_seq": 1 })))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync cursor regression");
}
