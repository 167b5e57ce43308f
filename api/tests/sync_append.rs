//! The Volume Sync table of API.md, replica changes: every event type applied, request ids
//! making appends idempotent, each refusal with its exact status and message, and the access
//! modes (RWO/ROX/RWX) deciding who may append.

use axum::http::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_applies_all_six_event_types() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({ "platform": "linux" })).await;
    let hello_sha = hex::encode(Sha256::digest(b"hello"));
    let r = v
        .append(
            "r1",
            "req-1",
            0,
            json!([
                { "event_type": "create", "path": "/src", "entry_kind": "directory", "mode": 448 },
                { "event_type": "create", "path": "/src/a.txt", "entry_kind": "file", "content_base64": b64("hello"),
                  "content_sha256": hello_sha, "size_bytes": 5, "metadata": { "editor": "vim" } },
                { "event_type": "write", "path": "/src/b.txt", "content_base64": b64("bee") },
                { "event_type": "chmod", "path": "/src/b.txt", "mode": 493 },
                { "event_type": "rename", "old_path": "/src/b.txt", "path": "/src/c.txt" },
                { "event_type": "write", "path": "/gone.txt", "content_base64": b64("x") },
                { "event_type": "remove", "path": "/gone.txt" },
                { "event_type": "invalidate" },
                { "event_type": " WRITE ", "path": "src/../src/d.txt", "content_base64": "" },
            ]),
        )
        .await
        .data();
    assert_eq!(r["head_seq"], 9);
    assert_eq!(r["conflicts"], json!([]));
    let accepted = r["accepted"].as_array().unwrap();
    let events: Vec<&str> = accepted.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(events, ["create", "create", "write", "chmod", "rename", "write", "remove", "invalidate", "write"]);
    for (i, e) in accepted.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["source"], "replica");
        assert_eq!(e["replica_id"], "r1");
    }
    assert_eq!(accepted[1]["content_ref"], format!("sha256:{hello_sha}"), "a created file has its content_ref");
    assert_eq!(accepted[1]["metadata"], json!({ "editor": "vim" }));
    assert!(accepted[2]["content_ref"].as_str().unwrap().starts_with("sha256:"), "every write has a content_ref");
    assert_eq!(accepted[4]["old_path"], "/src/b.txt");
    assert_eq!(accepted[6]["tombstone"], true);
    assert_eq!(accepted[7]["path"], "/");
    assert_eq!(accepted[8]["path"], "/src/d.txt");

    assert_eq!(v.read("/src/a.txt").await.as_deref(), Some("hello"));
    assert_eq!(v.read("/src/c.txt").await.as_deref(), Some("bee"));
    assert_eq!(v.read("/src/d.txt").await.as_deref(), Some(""));
    assert_eq!(v.read("/src/b.txt").await, None);
    assert_eq!(v.read("/gone.txt").await, None);
    assert_eq!(v.stat("/src/c.txt").await.data()["mode"], "0755");
    assert_eq!(v.stat("/src").await.data()["mode"], "0700");
    // The journal the changes feed serves is the same.
    let page = app.call("GET", &v.url("/sync/changes?after=0"), Some(&v.t), None).await.data();
    assert_eq!(page["changes"].as_array().unwrap(), accepted);

    tracing::info!("--- a remove, rename or chmod may describe the file; it carries no content");
    let described = json!([
        { "event_type": "chmod", "path": "/src/a.txt", "entry_kind": "file", "mode": 384, "size_bytes": 5, "content_sha256": hello_sha },
        { "event_type": "rename", "old_path": "/src/a.txt", "path": "/src/a2.txt", "entry_kind": "file", "size_bytes": 5 },
        { "event_type": "remove", "path": "/src/a2.txt", "entry_kind": "file", "size_bytes": 5 },
    ]);
    let r = v.append("r1", "req-described", 9, described).await.data();
    assert_eq!(r["accepted"].as_array().unwrap().len(), 3, "{r}");
    assert!(r["accepted"].as_array().unwrap().iter().all(|e| e.get("content_ref").is_none()), "{r}");
    assert_eq!(r["head_seq"], 12);

    tracing::info!("--- no-ops are neither journaled nor conflicts");
    let r = v
        .append(
            "r1",
            "req-2",
            12,
            json!([{ "event_type": "create", "path": "/src", "entry_kind": "directory" },
                   { "event_type": "remove", "path": "/never" }]),
        )
        .await
        .data();
    assert_eq!((r["head_seq"].as_u64(), r["accepted"].as_array().unwrap().len()), (Some(12), 0));
    assert_eq!(r["conflicts"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_make_appends_idempotent() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    let changes = json!([{ "event_type": "write", "path": "/a", "content_base64": b64("1") }]);
    let first = v.append("r1", "same", 0, changes.clone()).await.data();
    let again = v.append("r1", "same", 0, changes.clone()).await.data();
    assert_eq!(first, again, "a retry gets the stored response");
    assert_eq!(v.head().await, 1, "and nothing is applied twice");
    let other = json!([{ "event_type": "write", "path": "/a", "content_base64": b64("2") }]);
    let m = v.append("r1", "same", 0, other).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync request id reused with different payload");
    let m = v.append("r1", "same", 1, changes.clone()).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync request id reused with different payload", "base_seq is part of the payload");
    // Request ids are per replica.
    v.replica("r2", json!({})).await;
    assert_eq!(v.append("r2", "same", 1, changes).await.data()["head_seq"], 2);
    assert_eq!(v.read("/a").await.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_refusals_have_exact_codes_and_apply_nothing() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    v.write("/f", "x").await;
    let ok_change = json!({ "event_type": "write", "path": "/ok", "content_base64": b64("ok") });

    tracing::info!("--- request id, replica, base_seq");
    for rid in ["", "   "] {
        let m = v.append("r1", rid, 0, json!([])).await.error(StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(m, "invalid sync request id");
    }
    let m = v.append("ghost", "q", 0, json!([])).await.error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(m, "sync replica not found");
    let m = v.append("r1", "q", 2, json!([ok_change])).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync cursor ahead of head");
    v.append("r1", "q", -1, json!([])).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("PUT", &v.url("/sync/replicas/r1/cursor"), Some(&v.t), Some(json!({ "last_applied_seq": 1 })))
        .await
        .data();
    let m = v.append("r1", "q", 0, json!([ok_change])).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "sync cursor regression");
    let other_team = app.token("team-b", &["*"]).await;
    app.call(
        "POST",
        &v.url("/sync/replicas/r1/changes"),
        Some(&other_team),
        Some(json!({ "request_id": "q", "base_seq": 1, "changes": [] })),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
    let reader = app.token("team-a", &["sandboxvolume:read", "sandboxvolumefile:read"]).await;
    app.call(
        "POST",
        &v.url("/sync/replicas/r1/changes"),
        Some(&reader),
        Some(json!({ "request_id": "q", "base_seq": 1, "changes": [] })),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");

    tracing::info!("--- one malformed change refuses the whole batch");
    let malformed = [
        json!({ "event_type": "explode", "path": "/x" }),
        json!({ "event_type": "write", "content_base64": b64("x") }),
        json!({ "event_type": "write", "path": "/x" }),
        json!({ "event_type": "write", "path": "/x", "content_base64": "!!not base64!!" }),
        json!({ "event_type": "write", "path": "/x", "content_base64": b64("x"), "content_sha256": "00" }),
        json!({ "event_type": "write", "path": "/x", "content_base64": b64("x"), "size_bytes": 7 }),
        json!({ "event_type": "write", "path": "/", "content_base64": b64("x") }),
        json!({ "event_type": "rename", "path": "/x" }),
        json!({ "event_type": "rename", "path": "/x", "old_path": "/x" }),
        json!({ "event_type": "rename", "path": "/d/sub", "old_path": "/d" }),
        json!({ "event_type": "chmod", "path": "/f" }),
        json!({ "event_type": "chmod", "path": "/f", "mode": 65535 }),
        json!({ "event_type": "create", "path": "/x" }),
        json!({ "event_type": "create", "path": "/x", "entry_kind": "socket" }),
        json!({ "event_type": "create", "path": "/x", "entry_kind": "directory", "content_base64": b64("x") }),
        json!({ "event_type": "remove", "path": "/x", "content_base64": b64("x") }),
    ];
    for (i, bad) in malformed.iter().enumerate() {
        let r = v.append("r1", &format!("bad-{i}"), 1, json!([ok_change, bad])).await;
        let m = r.error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(m.starts_with("invalid sync change: changes[1]: "), "{bad}: {m}");
    }
    let r = app.raw("POST", &v.url("/sync/replicas/r1/changes"), &v.t, "{ not json").await;
    r.error(StatusCode::BAD_REQUEST, "bad_request");
    let many: Vec<Value> = (0..1001).map(|_| ok_change.clone()).collect();
    v.append("r1", "many", 1, json!(many)).await.error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(v.head().await, 1, "nothing was applied");
    assert_eq!(v.read("/ok").await, None);

    tracing::info!("--- read-only volume");
    let rox = app.call("POST", "/api/v1/sandboxvolumes", Some(&v.t), Some(json!({ "access_mode": "ROX" }))).await;
    let rox = Vol { app: &app, t: v.t.clone(), id: rox.data()["id"].as_str().unwrap().to_string() };
    rox.replica("r1", json!({})).await;
    let m = rox.append("r1", "q", 0, json!([ok_change])).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "volume is read-only");
}

/// RWO admits one writing replica at a time; ROX none; RWX any. A volume with live replicas is
/// deleted only with `force=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_modes_and_deleting_a_volume_with_live_replicas() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let write = |p: &str| json!([{ "event_type": "write", "path": p, "content_base64": b64("x") }]);

    let rwo = Vol { app: &app, t: t.clone(), id: app.volume(&t).await }; // RWO is the default
    rwo.replica("first", json!({})).await;
    rwo.replica("second", json!({})).await;
    rwo.append("first", "f-1", 0, write("/a")).await.data();
    let m = rwo.append("second", "s-1", 1, write("/b")).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "volume is RWO and replica first holds the write lease");
    rwo.append("first", "f-2", 1, write("/c")).await.data();
    rwo.write("/from-files-api", "sandbox").await; // the files API is the sandbox's own mount

    let rwx = Vol { app: &app, t: t.clone(), id: Vol::create(&app, &t, "RWX").await };
    rwx.replica("first", json!({})).await;
    rwx.replica("second", json!({})).await;
    rwx.append("first", "f-1", 0, write("/a")).await.data();
    rwx.append("second", "s-1", 1, write("/b")).await.data();

    let rox = Vol { app: &app, t: t.clone(), id: Vol::create(&app, &t, "ROX").await };
    rox.replica("first", json!({})).await;
    let m = rox.append("first", "f-1", 0, write("/a")).await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "volume is read-only");
    for (method, uri, body) in [
        ("POST", rox.url("/files?path=/x"), Some(json!("x"))),
        ("POST", rox.url("/files?path=/d&mkdir=true"), None),
        ("DELETE", rox.url("/files?path=/x"), None),
    ] {
        let m = app.call(method, &uri, Some(&t), body).await.error(StatusCode::CONFLICT, "conflict");
        assert_eq!(m, "volume is read-only", "{method} {uri}");
    }
    let m = app
        .call("POST", &rox.url("/files/move"), Some(&t), Some(json!({ "source": "/x", "destination": "/y" })))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "volume is read-only");

    tracing::info!("--- delete: 409 while replicas hold live leases, unless forced");
    let m = app.call("DELETE", &rwx.url(""), Some(&t), None).await.error(StatusCode::CONFLICT, "conflict");
    assert!(m.contains("2 active sync replica"), "{m}");
    assert_eq!(app.call("GET", &rwx.url(""), Some(&t), None).await.status, StatusCode::OK, "still there");
    app.call("DELETE", &rwx.url("?force=true"), Some(&t), None).await.data();
    app.call("GET", &rwx.url(""), Some(&t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("DELETE", &rwx.url(""), Some(&t), None).await.data(); // idempotent
    let plain = Vol::create(&app, &t, "RWO").await;
    app.call("DELETE", &format!("/api/v1/sandboxvolumes/{plain}"), Some(&t), None).await.data();
}
