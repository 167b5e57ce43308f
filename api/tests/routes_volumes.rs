//! The Volumes routes of API.md through the router (`oneshot`), success and error paths with
//! exact statuses and the envelope, and the auth in front of every route (401, 403, tokens,
//! unknown routes).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

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
