//! The Files routes of API.md through the router (`oneshot`): write, read, stat, list, mkdir,
//! move and delete with their path and type errors, and the file size limit (413, nothing
//! written).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use serde_json::json;

mod common;
use common::*;

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
