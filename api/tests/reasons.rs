//! Every refusal a client may need to tell apart carries `error.details.reason` (a [`Reason`]),
//! next to today's status, code and message. One test per reason, through the router where a
//! request can provoke it; the few refusals no route provokes on its own (an id the server
//! generates already taken, a seal racing another) are proposed to the node directly and
//! rendered through the same `ApiError::from(ApplyError)` the routes use.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use tideline_api::ApiError;
use tideline_raft::CompactionConfig;
use tideline_storage::command::{CreateSnapshot, CreateVolume, MarkGarbage, RevokeToken, SealSnapshot, SweepGarbage};
use tideline_storage::{CommandKind, ContentRef};
use tideline_test_support::wait_for;
use tideline_types::Reason;

use common::*;

/// Asserts the envelope: status, code, message and `details.reason`; returns the details.
fn refused(r: &Reply, status: StatusCode, code: &str, reason: Reason, message: &str) -> Value {
    assert_eq!(r.error(status, code), message);
    let details = r.json()["error"]["details"].clone();
    assert_eq!(details["reason"], reason.as_str(), "{details}");
    details
}

/// Proposes `cmd` to the node; its refusal as the HTTP layer renders it.
async fn propose_refused(app: &App, cmd: CommandKind) -> Reply {
    let resp = app.node.propose(cmd.into()).await.unwrap();
    let Some(e) = resp.error.clone() else { panic!("not refused: {resp:?}") };
    let http = ApiError::from(e).into_response();
    let status = http.status();
    let headers = http.headers().clone();
    let body = http.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body }
}

/// The test of each reason: a new variant without a test here does not compile.
#[test]
fn every_reason_has_a_test_here() {
    for r in Reason::ALL {
        let test = match r {
            Reason::VolumeNotFound => "volume_not_found",
            Reason::FileNotFound => "file_not_found",
            Reason::DirectoryNotFound => "directory_not_found",
            Reason::SnapshotNotFound => "snapshot_not_found",
            Reason::ReplicaNotFound => "replica_not_found",
            Reason::ConflictNotFound => "conflict_not_found",
            Reason::TokenNotFound => "token_not_found",
            Reason::TokenExpired => "token_expired",
            Reason::LeaseExpired => "lease_expired",
            Reason::WriteLeaseHeld => "write_lease_held",
            Reason::VolumeReadOnly => "volume_read_only",
            Reason::VolumeAlreadyExists => "volume_already_exists",
            Reason::VolumeHasActiveReplicas => "volume_has_active_replicas",
            Reason::PathIsDirectory => "path_is_directory",
            Reason::PathNotDirectory => "path_not_directory",
            Reason::PathAlreadyExists => "path_already_exists",
            Reason::DestinationAlreadyExists => "destination_already_exists",
            Reason::CursorRegression => "cursor_regression",
            Reason::CursorAheadOfHead => "cursor_ahead_of_head",
            Reason::ReseedRequired => "reseed_required",
            Reason::RequestIdReused => "request_id_reused",
            Reason::SnapshotAlreadyExists => "snapshot_already_exists",
            Reason::SnapshotSealed => "snapshot_sealed",
            Reason::NamespaceIncompatible => "namespace_incompatible",
            Reason::ContentBeingCollected => "content_being_collected",
        };
        assert_eq!(test, r.as_str(), "each test is named after its reason");
    }
}

fn write(p: &str) -> Value {
    json!([{ "event_type": "write", "path": p, "content_base64": b64("x") }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_not_found() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let other = app.token("team-b", &["*"]).await;
    let (nf, code) = (StatusCode::NOT_FOUND, "not_found");
    for (method, uri) in [("GET", "/api/v1/sandboxvolumes/vol-missing".to_string()), ("GET", v.url(""))] {
        let r = app.call(method, &uri, Some(&other), None).await;
        assert_eq!(refused(&r, nf, code, Reason::VolumeNotFound, "not found"), json!({ "reason": "volume_not_found" }));
    }
    let r = app.call("DELETE", &v.url(""), Some(&other), None).await;
    refused(&r, nf, code, Reason::VolumeNotFound, "not found");
    let r = app.raw("POST", &files("vol-missing", "?path=/a"), &v.t, "x").await;
    refused(&r, nf, code, Reason::VolumeNotFound, "not found");
    let r = app.call("POST", &v.url("/fork"), Some(&other), None).await;
    refused(&r, nf, code, Reason::VolumeNotFound, "not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_not_found() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let (nf, code) = (StatusCode::NOT_FOUND, "not_found");
    let r = app.raw("GET", &v.url("/files?path=/nope"), &v.t, Body::empty()).await;
    refused(&r, nf, code, Reason::FileNotFound, "file not found");
    let r = v.stat("/nope").await;
    refused(&r, nf, code, Reason::FileNotFound, "file not found");
    let mv = json!({ "source": "/nope", "destination": "/b" });
    let r = app.call("POST", &v.url("/files/move"), Some(&v.t), Some(mv)).await;
    refused(&r, nf, code, Reason::FileNotFound, "file not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_not_found() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let (nf, code) = (StatusCode::NOT_FOUND, "not_found");
    let r = app.call("GET", &v.url("/files/list?path=/nope"), Some(&v.t), None).await;
    refused(&r, nf, code, Reason::DirectoryNotFound, "directory not found");
    let r = app.call("POST", &v.url("/files?path=/x/y&mkdir=true"), Some(&v.t), None).await;
    refused(&r, nf, code, Reason::DirectoryNotFound, "directory not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_not_found() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let (nf, code) = (StatusCode::NOT_FOUND, "not_found");
    let r = app.call("GET", &v.url("/snapshots/snap-nope"), Some(&v.t), None).await;
    refused(&r, nf, code, Reason::SnapshotNotFound, "snapshot not found");
    let r = app.raw("GET", &v.url("/sync/bootstrap/archive?snapshot_id=snap-nope"), &v.t, "").await;
    refused(&r, nf, code, Reason::SnapshotNotFound, "snapshot not found");
    let seal = SealSnapshot { volume_id: v.id.clone(), snapshot_id: "snap-nope".into(), ..Default::default() };
    let r = propose_refused(&app, CommandKind::SealSnapshot(seal)).await;
    refused(&r, nf, code, Reason::SnapshotNotFound, "snapshot not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_not_found() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let (nf, code) = (StatusCode::NOT_FOUND, "not_found");
    let r = v.append("ghost", "q", 0, json!([])).await;
    refused(&r, nf, code, Reason::ReplicaNotFound, "sync replica not found");
    let uri = v.url("/sync/replicas/ghost/cursor");
    let r = app.call("PUT", &uri, Some(&v.t), Some(json!({ "last_applied_seq": 0 }))).await;
    refused(&r, nf, code, Reason::ReplicaNotFound, "sync replica not found");
    let r = app.call("GET", &v.url("/sync/replicas/ghost"), Some(&v.t), None).await;
    refused(&r, nf, code, Reason::ReplicaNotFound, "not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_not_found() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let body = json!({ "status": "resolved" });
    let r = app.call("PUT", &v.url("/sync/conflicts/no-such-id"), Some(&v.t), Some(body)).await;
    refused(&r, StatusCode::NOT_FOUND, "not_found", Reason::ConflictNotFound, "sync conflict not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_not_found() {
    let app = App::new().await;
    let r = app.call("DELETE", "/api/v1/tokens/tok-nope", Some(ADMIN), None).await;
    refused(&r, StatusCode::NOT_FOUND, "not_found", Reason::TokenNotFound, "token not found");
    // A revocation whose lookup went stale (the hash now holds another id) is refused by apply.
    let revoke = RevokeToken { token_sha256: vec![7; 32], id: "tok-nope".into() };
    let r = propose_refused(&app, CommandKind::RevokeToken(revoke)).await;
    refused(&r, StatusCode::NOT_FOUND, "not_found", Reason::TokenNotFound, "token not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expired() {
    let app = App::new().await;
    let body = json!({ "team_id": "team-a", "permissions": ["*"], "ttl_seconds": 1 });
    let r = app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(body)).await;
    let token = r.data()["token"].as_str().unwrap().to_string();
    app.clock.advance(std::time::Duration::from_secs(1));
    let r = app.call("GET", "/api/v1/sandboxvolumes", Some(&token), None).await;
    refused(&r, StatusCode::UNAUTHORIZED, "unauthorized", Reason::TokenExpired, "token expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expired() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    // The replica is not seen again for longer than its lease: it has lapsed.
    let lease = std::time::Duration::from_millis(tideline_types::limits::REPLICA_LEASE_MS as u64);
    app.clock.advance(lease + std::time::Duration::from_millis(1));
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let r = v.append("r1", "q", 0, write("/a")).await;
    refused(&r, c, code, Reason::LeaseExpired, "sync replica lease expired");
    let uri = v.url("/sync/replicas/r1/cursor");
    let r = app.call("PUT", &uri, Some(&v.t), Some(json!({ "last_applied_seq": 0 }))).await;
    refused(&r, c, code, Reason::LeaseExpired, "sync replica lease expired");
    assert_eq!(v.head().await, 0, "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_lease_held() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let rwo = Vol { app: &app, t: t.clone(), id: Vol::create(&app, &t, "RWO").await };
    rwo.replica("first", json!({})).await;
    rwo.replica("second", json!({})).await;
    rwo.append("first", "f-1", 0, write("/a")).await.data();
    let r = rwo.append("second", "s-1", 1, write("/b")).await;
    let m = "volume is RWO and replica first holds the write lease";
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::WriteLeaseHeld, m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_read_only() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    let rox = Vol { app: &app, t: t.clone(), id: Vol::create(&app, &t, "ROX").await };
    rox.replica("first", json!({})).await;
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let r = rox.append("first", "f-1", 0, write("/a")).await;
    refused(&r, c, code, Reason::VolumeReadOnly, "volume is read-only");
    let r = app.raw("POST", &rox.url("/files?path=/x"), &t, "x").await;
    refused(&r, c, code, Reason::VolumeReadOnly, "volume is read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_already_exists() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let record = app.node.state_machine().volume(&v.id).unwrap().unwrap();
    let r = propose_refused(&app, CommandKind::CreateVolume(CreateVolume { volume: Some(record) })).await;
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::VolumeAlreadyExists, "volume already exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_has_active_replicas() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("first", json!({})).await;
    v.replica("second", json!({})).await;
    let r = app.call("DELETE", &v.url(""), Some(&v.t), None).await;
    let m = "volume has 2 active sync replica(s); detach them or delete with force=true";
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::VolumeHasActiveReplicas, m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_is_directory() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/docs/readme.md", "x").await;
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let r = app.raw("POST", &v.url("/files?path=/docs"), &v.t, "x").await;
    refused(&r, c, code, Reason::PathIsDirectory, "path is a directory");
    let r = app.raw("GET", &v.url("/files?path=/docs"), &v.t, Body::empty()).await;
    refused(&r, c, code, Reason::PathIsDirectory, "path is a directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_not_directory() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/f", "x").await;
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let r = app.raw("POST", &v.url("/files?path=/f/x"), &v.t, "x").await;
    refused(&r, c, code, Reason::PathNotDirectory, "path is not a directory");
    let r = app.call("POST", &v.url("/files?path=/f&mkdir=true&recursive=true"), Some(&v.t), None).await;
    refused(&r, c, code, Reason::PathNotDirectory, "path is not a directory");
    let r = app.call("GET", &v.url("/files/list?path=/f"), Some(&v.t), None).await;
    refused(&r, c, code, Reason::PathNotDirectory, "path is not a directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_already_exists() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    app.call("POST", &v.url("/files?path=/d&mkdir=true"), Some(&v.t), None).await.data();
    let r = app.call("POST", &v.url("/files?path=/d&mkdir=true"), Some(&v.t), None).await;
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::PathAlreadyExists, "path already exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_already_exists() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/a", "1").await;
    v.write("/b/inside", "2").await; // a file replaces a file, never a directory
    let mv = json!({ "source": "/a", "destination": "/b" });
    let r = app.call("POST", &v.url("/files/move"), Some(&v.t), Some(mv)).await;
    let m = "destination already exists";
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::DestinationAlreadyExists, m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_regression() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    v.write("/f", "x").await;
    let cursor = |seq: u64| json!({ "last_applied_seq": seq });
    app.call("PUT", &v.url("/sync/replicas/r1/cursor"), Some(&v.t), Some(cursor(1))).await.data();
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let r = v.append("r1", "q", 0, write("/ok")).await;
    refused(&r, c, code, Reason::CursorRegression, "sync cursor regression");
    let r = app.call("PUT", &v.url("/sync/replicas/r1/cursor"), Some(&v.t), Some(cursor(0))).await;
    refused(&r, c, code, Reason::CursorRegression, "sync cursor regression");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_ahead_of_head() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let r = v.append("r1", "q", 2, write("/ok")).await;
    refused(&r, c, code, Reason::CursorAheadOfHead, "sync cursor ahead of head");
    let uri = v.url("/sync/replicas/r1/cursor");
    let r = app.call("PUT", &uri, Some(&v.t), Some(json!({ "last_applied_seq": 5 }))).await;
    refused(&r, c, code, Reason::CursorAheadOfHead, "sync cursor ahead of head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reseed_required() {
    let app =
        App::start(Some(CompactionConfig { retain_entries: 5, interval: std::time::Duration::from_millis(50) })).await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    for i in 0..12 {
        v.write(&format!("/f{i}"), "x").await;
    }
    let changes = wait_for("compaction to 7", std::time::Duration::from_secs(10), || async {
        let r = app.call("GET", &v.url("/sync/changes?after=0"), Some(&v.t), None).await;
        (r.status == StatusCode::CONFLICT && r.json()["error"]["details"]["retained_after_seq"] == 7).then_some(r)
    })
    .await;
    let (c, code) = (StatusCode::CONFLICT, "conflict");
    let expected = json!({ "reason": "reseed_required", "retained_after_seq": 7, "head_seq": 12 });
    assert_eq!(refused(&changes, c, code, Reason::ReseedRequired, "sync reseed required"), expected);
    // The state machine's reseed, merged with its floor and head: the same bytes.
    let r = v.append("r1", "q", 0, write("/late")).await;
    assert_eq!(refused(&r, c, code, Reason::ReseedRequired, "sync reseed required"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_reused() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    v.append("r1", "same", 0, write("/a")).await.data();
    let r = v.append("r1", "same", 0, write("/other")).await;
    let m = "sync request id reused with different payload";
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::RequestIdReused, m);
}

/// A sealed snapshot of a volume with one file; its id.
async fn sealed_snapshot(app: &App, v: &Vol<'_>) -> String {
    v.write("/a", "1").await;
    let snap = app.call("POST", &v.url("/snapshots"), Some(&v.t), Some(json!({ "name": "s" }))).await.data();
    snap["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_already_exists() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let sid = sealed_snapshot(&app, &v).await;
    let record = app.node.state_machine().snapshot(&v.id, &sid).unwrap().unwrap();
    let r = propose_refused(&app, CommandKind::CreateSnapshot(CreateSnapshot { snapshot: Some(record) })).await;
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::SnapshotAlreadyExists, "snapshot already exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_sealed() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    let sid = sealed_snapshot(&app, &v).await;
    let seal = SealSnapshot {
        volume_id: v.id.clone(),
        snapshot_id: sid,
        manifest_sha256: "0".repeat(64),
        ..Default::default()
    };
    let r = propose_refused(&app, CommandKind::SealSnapshot(seal)).await;
    let m = "snapshot already sealed with another manifest";
    refused(&r, StatusCode::CONFLICT, "conflict", Reason::SnapshotSealed, m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_incompatible() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.write("/a:b", "1").await;
    let windows = json!({ "capabilities": { "case_sensitive": false, "windows_compatible_paths": true } });
    let r = app.call("POST", &v.url("/sync/bootstrap"), Some(&v.t), Some(windows)).await;
    let m = "bootstrap snapshot contains namespace entries incompatible with the requested replica capabilities";
    let details = refused(&r, StatusCode::CONFLICT, "conflict", Reason::NamespaceIncompatible, m);
    assert!(details["issues"].as_array().is_some_and(|i| !i.is_empty()), "{details}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_being_collected() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    // Too large to travel inline, so the write references the stored object.
    let body = "g".repeat(tideline_storage::INLINE_BYTES_MAX + 1);
    app.raw("POST", &v.url("/files?path=/big"), &v.t, body.clone()).await.data();
    // Collection marked and swept the digest; the object's delete is not reported done yet.
    let sha = ContentRef::of(body.as_bytes()).0.to_vec();
    let mark = MarkGarbage { refs: vec![sha.clone()], at_ms: 1, clear: vec![] };
    assert!(app.node.propose(CommandKind::MarkGarbage(mark).into()).await.unwrap().error.is_none());
    let sweep = SweepGarbage { refs: vec![sha], marked_before_ms: 1 };
    let swept = app.node.propose(CommandKind::SweepGarbage(sweep).into()).await.unwrap();
    assert_eq!(swept.swept.len(), 1, "{swept:?}");
    let r = app.raw("POST", &v.url("/files?path=/again"), &v.t, body).await;
    let m = "this content is being garbage-collected; retry the write";
    refused(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable", Reason::ContentBeingCollected, m);
}
