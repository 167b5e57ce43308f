//! Every Volumes and Files route of API.md through the router (`oneshot`), success and error
//! paths, with exact statuses and the envelope; plus the journal read routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use tideline_raft::CompactionConfig;
use tideline_test_support::wait_for;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_routes() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let other = app.token("team-b", &["*"]).await;

    tracing::info!("--- create with defaults and with options");
    let r = app.call("POST", "/api/v1/sandboxvolumes", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let v1 = r.data();
    assert_eq!(v1["team_id"], "team-a");
    assert_eq!(v1["user_id"], "user-team-a");
    assert_eq!(v1["cache_size"], "1G");
    assert_eq!(v1["buffer_size"], "32M");
    assert_eq!(v1["prefetch"], 0);
    assert_eq!(v1["writeback"], false);
    assert_eq!(v1["access_mode"], "RWO");
    assert_eq!(v1["default_posix_uid"], 0);
    assert!(v1["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(v1.get("source_volume_id").is_none());
    let body =
        json!({ "access_mode": " rwx ", "cache_size": "2G", "default_posix_uid": 1000, "default_posix_gid": 1000 });
    let v2 = app.call("POST", "/api/v1/sandboxvolumes", Some(&t), Some(body)).await.data();
    assert_eq!(v2["access_mode"], "RWX");
    assert_eq!(v2["cache_size"], "2G");
    assert_eq!(v2["default_posix_gid"], 1000);

    tracing::info!("--- invalid bodies");
    let r = app.call("POST", "/api/v1/sandboxvolumes", Some(&t), Some(json!({ "access_mode": "RW" }))).await;
    assert_eq!(r.error(StatusCode::BAD_REQUEST, "bad_request"), "invalid access_mode");
    let r = app.call("POST", "/api/v1/sandboxvolumes", Some(&t), Some(json!({ "default_posix_uid": 1 }))).await;
    assert!(r.error(StatusCode::BAD_REQUEST, "bad_request").contains("set together"));
    let r = app
        .call(
            "POST",
            "/api/v1/sandboxvolumes",
            Some(&t),
            Some(json!({ "default_posix_uid": -1, "default_posix_gid": 0 })),
        )
        .await;
    assert!(r.error(StatusCode::BAD_REQUEST, "bad_request").contains("non-negative"));
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/sandboxvolumes")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::from("{not json"))
        .unwrap();
    let r = app.send(req).await;
    assert!(r.error(StatusCode::BAD_REQUEST, "bad_request").starts_with("invalid JSON body"));

    tracing::info!("--- get, list newest first, other team sees nothing");
    let id1 = v1["id"].as_str().unwrap();
    let id2 = v2["id"].as_str().unwrap();
    assert_eq!(app.call("GET", &format!("/api/v1/sandboxvolumes/{id1}"), Some(&t), None).await.data(), v1);
    let list = app.call("GET", "/api/v1/sandboxvolumes", Some(&t), None).await.data();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id1) && ids.contains(&id2));
    assert_eq!(app.call("GET", "/api/v1/sandboxvolumes", Some(&other), None).await.data(), json!([]));
    app.call("GET", &format!("/api/v1/sandboxvolumes/{id1}"), Some(&other), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.call("GET", "/api/v1/sandboxvolumes/vol-missing", Some(&t), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    tracing::info!("--- fork inherits config, access_mode defaults to RWO");
    let r = app.call("POST", &format!("/api/v1/sandboxvolumes/{id2}/fork"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let fork = r.data();
    assert_eq!(fork["source_volume_id"], id2);
    assert_eq!(fork["cache_size"], "2G");
    assert_eq!(fork["default_posix_uid"], 1000);
    assert_eq!(fork["access_mode"], "RWO");
    let r = app
        .call("POST", &format!("/api/v1/sandboxvolumes/{id2}/fork"), Some(&t), Some(json!({ "access_mode": "ROX" })))
        .await;
    assert_eq!(r.data()["access_mode"], "ROX");
    app.call("POST", &format!("/api/v1/sandboxvolumes/{id2}/fork"), Some(&other), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    tracing::info!("--- delete: other team 404, idempotent for the owner");
    app.call("DELETE", &format!("/api/v1/sandboxvolumes/{id1}"), Some(&other), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    for _ in 0..2 {
        let r = app.call("DELETE", &format!("/api/v1/sandboxvolumes/{id1}?force=true"), Some(&t), None).await;
        assert_eq!(r.data(), json!({ "deleted": true }));
    }
    app.call("GET", &format!("/api/v1/sandboxvolumes/{id1}"), Some(&t), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_permissions() {
    let app = App::new().await;
    let reader = app.token("team-a", &["sandboxvolume:read", "sandboxvolumefile:read"]).await;
    let all = app.token("team-a", &["*:*"]).await;

    tracing::info!("--- 401 without a usable token, always in the envelope");
    let msg =
        app.call("GET", "/api/v1/sandboxvolumes", None, None).await.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(msg, "missing bearer token");
    app.call("GET", "/api/v1/sandboxvolumes", Some("nope"), None).await.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let req = Request::builder()
        .uri("/api/v1/sandboxvolumes")
        .header("authorization", format!("Basic {all}"))
        .body(Body::empty())
        .unwrap();
    app.send(req).await.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let req = Request::builder()
        .uri("/api/v1/sandboxvolumes")
        .header("authorization", format!("bEaReR {all}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::OK, "scheme is case-insensitive");

    tracing::info!("--- 403 for a missing permission, checked before the volume is looked up");
    let msg =
        app.call("POST", "/api/v1/sandboxvolumes", Some(&reader), None).await.error(StatusCode::FORBIDDEN, "forbidden");
    assert!(msg.contains("sandboxvolume:create"));
    let vol = app.volume(&all).await;
    app.raw("POST", &files(&vol, "?path=/a"), &reader, "x").await.error(StatusCode::FORBIDDEN, "forbidden");
    app.call("DELETE", &format!("/api/v1/sandboxvolumes/{vol}"), Some(&reader), None)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.call("GET", "/api/v1/sandboxvolumes", Some(ADMIN), None).await.error(StatusCode::FORBIDDEN, "forbidden");

    tracing::info!("--- tokens: admin only, validated");
    app.call("POST", "/api/v1/tokens", Some(&all), Some(json!({ "team_id": "x", "permissions": ["*"] })))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(json!({ "team_id": "x", "permissions": ["root"] })))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(json!({ "permissions": ["*"] })))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(json!({ "team_id": "x", "permissions": [] })))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");

    tracing::info!("--- unknown routes and methods use the envelope");
    app.call("GET", "/api/v1/nothing", Some(&all), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("PATCH", "/api/v1/sandboxvolumes", Some(&all), None)
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "bad_request");
    let health = app.call("GET", "/healthz", None, None).await;
    assert_eq!(health.data()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_routes() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let other = app.token("team-b", &["*"]).await;
    let vol = app.volume(&t).await;

    tracing::info!("--- write creates parents; read raw and as JSON; stat");
    let r = app.raw("POST", &files(&vol, "?path=docs/readme.md"), &t, "hello").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.data(), json!({ "written": true }));
    let r = app.raw("GET", &files(&vol, "?path=/docs/readme.md"), &t, Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(&r.body[..], b"hello");
    let req = Request::builder()
        .uri(files(&vol, "?path=/docs/readme.md"))
        .header("authorization", format!("Bearer {t}"))
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.data(), json!({ "content": "aGVsbG8=", "encoding": "base64" }));
    let st = app.call("GET", &files(&vol, "/stat?path=/docs/readme.md"), Some(&t), None).await.data();
    assert_eq!(st["name"], "readme.md");
    assert_eq!(st["path"], "/docs/readme.md");
    assert_eq!(st["type"], "file");
    assert_eq!(st["size"], 5);
    assert_eq!(st["mode"], "0644");
    assert_eq!(st["is_link"], false);
    let st = app.call("GET", &files(&vol, "/stat?path=/docs"), Some(&t), None).await.data();
    assert_eq!((st["type"].as_str(), st["mode"].as_str()), (Some("dir"), Some("0755")));
    let root = app.call("GET", &files(&vol, "/stat?path=/"), Some(&t), None).await.data();
    assert_eq!((root["name"].as_str(), root["type"].as_str()), (Some("/"), Some("dir")));

    tracing::info!("--- overwrite, list, empty dir lists []");
    app.raw("POST", &files(&vol, "?path=/docs/readme.md"), &t, "hello again").await.data();
    let r = app.call("POST", &files(&vol, "?path=/empty&mkdir=true"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.data(), json!({ "created": true }));
    let list = app.call("GET", &files(&vol, "/list?path=/"), Some(&t), None).await.data();
    let names: Vec<&str> = list["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["docs", "empty"]);
    assert_eq!(
        app.call("GET", &files(&vol, "/list?path=/empty"), Some(&t), None).await.data(),
        json!({ "entries": [] })
    );

    tracing::info!("--- path errors: empty, root where not allowed, escape attempts stay inside");
    let m = app.raw("POST", &files(&vol, "?path="), &t, "x").await.error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(m, "path is required");
    app.raw("GET", &files(&vol, ""), &t, Body::empty()).await.error(StatusCode::BAD_REQUEST, "bad_request");
    let m = app.raw("POST", &files(&vol, "?path=/"), &t, "x").await.error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(m, "invalid path");
    app.call("DELETE", &files(&vol, "?path=/"), Some(&t), None).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.raw("GET", &files(&vol, "?path=/.."), &t, Body::empty()).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.raw("POST", &files(&vol, "?path=../../etc/passwd"), &t, "inside").await.data();
    let st = app.call("GET", &files(&vol, "/stat?path=/etc/passwd"), Some(&t), None).await.data();
    assert_eq!(st["path"], "/etc/passwd");

    tracing::info!("--- type clashes are 409, missing things 404");
    assert_eq!(
        app.raw("POST", &files(&vol, "?path=/docs/readme.md/x"), &t, "x").await.error(StatusCode::CONFLICT, "conflict"),
        "path is not a directory"
    );
    app.raw("POST", &files(&vol, "?path=/docs"), &t, "x").await.error(StatusCode::CONFLICT, "conflict");
    app.raw("GET", &files(&vol, "?path=/docs"), &t, Body::empty()).await.error(StatusCode::CONFLICT, "conflict");
    app.call("GET", &files(&vol, "/list?path=/docs/readme.md"), Some(&t), None)
        .await
        .error(StatusCode::CONFLICT, "conflict");
    app.call("POST", &files(&vol, "?path=/docs&mkdir=true"), Some(&t), None)
        .await
        .error(StatusCode::CONFLICT, "conflict");
    app.call("POST", &files(&vol, "?path=/docs/readme.md&mkdir=true&recursive=true"), Some(&t), None)
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(
        app.call("POST", &files(&vol, "?path=/docs&mkdir=true&recursive=true"), Some(&t), None).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.call("POST", &files(&vol, "?path=/x/y&mkdir=true"), Some(&t), None)
            .await
            .error(StatusCode::NOT_FOUND, "not_found"),
        "directory not found"
    );
    assert_eq!(
        app.call("POST", &files(&vol, "?path=/x/y&mkdir=true&recursive=true"), Some(&t), None).await.status,
        StatusCode::CREATED
    );
    app.call("POST", &files(&vol, "?path=/x&mkdir=maybe"), Some(&t), None)
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(
        app.raw("GET", &files(&vol, "?path=/nope"), &t, Body::empty()).await.error(StatusCode::NOT_FOUND, "not_found"),
        "file not found"
    );
    app.call("GET", &files(&vol, "/stat?path=/nope"), Some(&t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.call("GET", &files(&vol, "/list?path=/nope"), Some(&t), None)
            .await
            .error(StatusCode::NOT_FOUND, "not_found"),
        "directory not found"
    );

    tracing::info!("--- move");
    let mv = |s: &str, d: &str| json!({ "source": s, "destination": d });
    let r = app.call("POST", &files(&vol, "/move"), Some(&t), Some(mv("/docs", "/archive/2026/docs"))).await;
    assert_eq!(r.data(), json!({ "moved": true }));
    let r = app.raw("GET", &files(&vol, "?path=/archive/2026/docs/readme.md"), &t, Body::empty()).await;
    assert_eq!(&r.body[..], b"hello again");
    app.call("GET", &files(&vol, "/stat?path=/docs"), Some(&t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("POST", &files(&vol, "/move"), Some(&t), Some(mv("/nope", "/b")))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let m = app
        .call("POST", &files(&vol, "/move"), Some(&t), Some(json!({ "source": "/a" })))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(m, "source and destination are required");
    app.call("POST", &files(&vol, "/move"), Some(&t), Some(mv("/archive", "/archive/inner")))
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("POST", &files(&vol, "/move"), Some(&t), Some(mv("/etc/passwd", "/archive")))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    let req = Request::builder()
        .method("POST")
        .uri(files(&vol, "/move"))
        .header("authorization", format!("Bearer {t}"))
        .body(Body::from("["))
        .unwrap();
    app.send(req).await.error(StatusCode::BAD_REQUEST, "bad_request");

    tracing::info!("--- delete is recursive and idempotent");
    for _ in 0..2 {
        assert_eq!(
            app.call("DELETE", &files(&vol, "?path=/archive"), Some(&t), None).await.data(),
            json!({ "deleted": true })
        );
    }
    app.call("GET", &files(&vol, "/stat?path=/archive/2026"), Some(&t), None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    tracing::info!("--- another team's volume is 404 on every file route");
    for (m, u) in [
        ("GET", files(&vol, "?path=/etc/passwd")),
        ("GET", files(&vol, "/stat?path=/")),
        ("GET", files(&vol, "/list?path=/")),
        ("DELETE", files(&vol, "?path=/etc")),
    ] {
        app.call(m, &u, Some(&other), None).await.error(StatusCode::NOT_FOUND, "not_found");
    }
    app.raw("POST", &files(&vol, "?path=/a"), &other, "x").await.error(StatusCode::NOT_FOUND, "not_found");
    app.call("POST", &files(&vol, "/move"), Some(&other), Some(mv("/etc", "/x")))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.raw("POST", &files("vol-missing", "?path=/a"), &t, "x").await.error(StatusCode::NOT_FOUND, "not_found");

    tracing::info!("--- read-only volumes refuse writes");
    let ro = app.call("POST", "/api/v1/sandboxvolumes", Some(&t), Some(json!({ "access_mode": "ROX" }))).await.data();
    let ro = ro["id"].as_str().unwrap();
    let m = app.raw("POST", &files(ro, "?path=/a"), &t, "x").await.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(m, "volume is read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_limit_is_413_and_nothing_is_written() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let vol = app.volume(&t).await;
    let limit = 100 * 1024 * 1024;

    tracing::info!("--- a streamed body one byte over the cap");
    let too_big = vec![b'x'; limit + 1];
    let stream = futures_body(too_big);
    let m = app
        .raw("POST", &files(&vol, "?path=/big"), &t, stream)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "bad_request");
    assert_eq!(m, "file too large");

    tracing::info!("--- a declared Content-Length over the cap is refused before reading");
    let req = Request::builder()
        .method("POST")
        .uri(files(&vol, "?path=/big"))
        .header("authorization", format!("Bearer {t}"))
        .header("content-length", (limit + 1).to_string())
        .body(Body::from("x"))
        .unwrap();
    app.send(req).await.error(StatusCode::PAYLOAD_TOO_LARGE, "bad_request");
    app.call("GET", &files(&vol, "/stat?path=/big"), Some(&t), None).await.error(StatusCode::NOT_FOUND, "not_found");
    let changes = app.call("GET", &format!("/api/v1/sandboxvolumes/{vol}/sync/changes"), Some(&t), None).await.data();
    assert_eq!(changes["head_seq"], 0);

    tracing::info!("--- exactly at the cap is accepted (object store path)");
    let exact = vec![b'y'; limit];
    app.raw("POST", &files(&vol, "?path=/exact"), &t, exact).await.data();
    let st = app.call("GET", &files(&vol, "/stat?path=/exact"), Some(&t), None).await.data();
    assert_eq!(st["size"], limit as u64);
}

/// A body without a known length, so the limit is enforced while streaming.
fn futures_body(data: Vec<u8>) -> Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Body::from_stream(futures::stream::iter(chunks))
}

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
