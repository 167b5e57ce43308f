//! The Volume Sync table of API.md for replica changes and conflicts: every success and error
//! case with exact statuses, messages and details.

use axum::http::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tideline_raft::CompactionConfig;
use tideline_test_support::wait_for;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_become_conflicts_and_keep_both_versions() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("laptop", json!({ "platform": "linux" })).await;
    v.replica("agent", json!({ "platform": "linux" })).await;
    v.write("/notes/plan.md", "v1").await; // seq 1
    v.write("/other.txt", "o").await; // seq 2

    tracing::info!("--- the sandbox edits plan.md after the laptop's base");
    v.write("/notes/plan.md", "sandbox edit").await; // seq 3
    let r = v
        .append(
            "laptop",
            "l-1",
            2,
            json!([
                { "event_type": "write", "path": "/notes/plan.md", "content_base64": b64("laptop edit") },
                { "event_type": "write", "path": "/fresh.txt", "content_base64": b64("fresh") },
            ]),
        )
        .await
        .data();
    let conflicts = r["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c["reason"], "concurrent_update");
    assert_eq!(c["path"], "/notes/plan.md");
    assert_eq!(c["normalized_path"], "/notes/plan.md");
    assert_eq!(c["incoming_path"], "/notes/plan.md");
    assert_eq!(c["existing_seq"], 3);
    assert_eq!(c["status"], "open");
    assert_eq!(c["replica_id"], "laptop");
    assert_eq!(c["metadata"]["latest_seq"], 3);
    assert_eq!(c["metadata"]["latest_source"], "sandbox");
    assert_eq!(c["metadata"]["base_seq"], 2);
    assert_eq!(c["artifact_path"], "/notes/plan.conflict-laptop-seq-3.md");
    assert_eq!(v.read("/notes/plan.md").await.as_deref(), Some("sandbox edit"), "the newer version stays");
    assert_eq!(
        v.read("/notes/plan.conflict-laptop-seq-3.md").await.as_deref(),
        Some("laptop edit"),
        "and the rejected one is kept"
    );
    assert_eq!(v.read("/fresh.txt").await.as_deref(), Some("fresh"), "the rest of the batch applies");
    let accepted = r["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["path"], "/fresh.txt");
    // The artifact is journaled as the server's own write, so every replica receives it.
    let page = app.call("GET", &v.url("/sync/changes?after=3"), Some(&v.t), None).await.data();
    let artifact =
        page["changes"].as_array().unwrap().iter().find(|e| e["path"] == c["artifact_path"]).unwrap().clone();
    assert_eq!(artifact["source"], "sandbox");
    assert_eq!(artifact["metadata"]["conflict_id"], c["id"]);
    assert_eq!(r["head_seq"], v.head().await);

    tracing::info!("--- a replica's own later changes are not conflicts; another replica's are");
    let head = v.head().await;
    v.append(
        "laptop",
        "l-2",
        head as i64,
        json!([{ "event_type": "write", "path": "/fresh.txt", "content_base64": b64("2") }]),
    )
    .await
    .data();
    let r = v
        .append(
            "laptop",
            "l-3",
            head as i64,
            json!([{ "event_type": "write", "path": "/fresh.txt", "content_base64": b64("3") }]),
        )
        .await
        .data();
    assert_eq!(r["conflicts"], json!([]), "own entry above base");
    let r =
        v.append("agent", "a-1", head as i64, json!([{ "event_type": "remove", "path": "/fresh.txt" }])).await.data();
    assert_eq!(r["conflicts"][0]["reason"], "concurrent_update");
    assert_eq!(r["conflicts"][0]["artifact_path"], "", "a remove has no content to keep");
    assert_eq!(v.read("/fresh.txt").await.as_deref(), Some("3"));
    // A rename's source counts too.
    let r = v
        .append(
            "agent",
            "a-2",
            head as i64,
            json!([{ "event_type": "rename", "old_path": "/fresh.txt", "path": "/moved.txt" }]),
        )
        .await
        .data();
    assert_eq!(r["conflicts"][0]["reason"], "concurrent_update");
    assert_eq!(r["conflicts"][0]["incoming_old_path"], "/fresh.txt");

    tracing::info!("--- a change the namespace refuses is a conflict, not a failed batch");
    let head = v.head().await as i64;
    let r = v
        .append(
            "agent",
            "a-3",
            head,
            json!([
                { "event_type": "write", "path": "/notes", "content_base64": b64("not a dir") },
                { "event_type": "chmod", "path": "/missing", "mode": 384 },
                { "event_type": "write", "path": "/after.txt", "content_base64": b64("after") },
            ]),
        )
        .await
        .data();
    let reasons: Vec<&str> = r["conflicts"].as_array().unwrap().iter().map(|c| c["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["path_type_conflict", "source_missing"]);
    assert_eq!(r["conflicts"][0]["artifact_path"], format!("/notes.conflict-agent-seq-{head}"));
    assert_eq!(v.read(&format!("/notes.conflict-agent-seq-{head}")).await.as_deref(), Some("not a dir"));
    assert_eq!(v.read("/after.txt").await.as_deref(), Some("after"));

    tracing::info!("--- list newest first, filter, limit; resolve and ignore");
    let all = v.conflicts("").await;
    assert_eq!(all.len(), 5);
    assert_eq!(all[0]["reason"], "source_missing");
    assert_eq!(all[4]["reason"], "concurrent_update");
    assert_eq!(v.conflicts("?limit=2").await.len(), 2);
    let id = all[4]["id"].as_str().unwrap();
    let put = |cid: &str, body: Value| {
        let url = v.url(&format!("/sync/conflicts/{cid}"));
        let t = v.t.clone();
        let app = &app;
        async move { app.call("PUT", &url, Some(&t), Some(body)).await }
    };
    let done =
        put(id, json!({ "status": "resolved", "resolution": "kept sandbox", "note": "merged by hand" })).await.data();
    assert_eq!(done["status"], "resolved");
    assert_eq!(done["id"], id);
    assert_eq!(done["metadata"]["resolution"], "kept sandbox");
    assert_eq!(done["metadata"]["note"], "merged by hand");
    assert_eq!(done["metadata"]["latest_seq"], 3, "earlier metadata is kept");
    put(all[0]["id"].as_str().unwrap(), json!({ "status": "ignored" })).await.data();
    assert_eq!(v.conflicts("?status=open").await.len(), 3);
    assert_eq!(v.conflicts("?status=resolved").await[0]["id"], id);
    assert_eq!(v.conflicts("?status=ignored").await.len(), 1);
    let m = put(id, json!({ "status": "open" })).await.error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(m, "invalid sync conflict status");
    let m = put("no-such-id", json!({ "status": "resolved" })).await.error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(m, "sync conflict not found");
    app.call("GET", &v.url("/sync/conflicts?status=weird"), Some(&v.t), None)
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
}

/// Windows rules, casefold and NFC/NFD twins: each produces its issue code as a conflict on a
/// volume whose policy needs it, and is accepted on a volume that only has a Linux replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portability_conflicts_follow_the_volume_policy() {
    let app = App::new().await;
    let win = Vol::new(&app).await;
    win.replica("pc", json!({ "platform": "windows" })).await;
    let linux = Vol { app: &app, t: win.t.clone(), id: Vol::create(&app, &win.t, "RWX").await };
    linux.replica("tux", json!({ "platform": "linux" })).await;

    let cases = [
        ("/dir/CON", "windows_reserved_name"),
        ("/lpt1.txt", "windows_reserved_name"),
        ("/name.", "windows_trailing_dot_space"),
        ("/dir /x", "windows_trailing_dot_space"),
        ("/a:b", "windows_forbidden_character"),
        ("/what?", "windows_forbidden_character"),
        ("/tab\there", "windows_control_character"),
    ];
    for (i, (p, code)) in cases.iter().enumerate() {
        let change = json!([{ "event_type": "write", "path": p, "content_base64": b64("w") }]);
        let head = win.head().await as i64;
        let r = win.append("pc", &format!("w-{i}"), head, change.clone()).await.data();
        let c = &r["conflicts"][0];
        assert_eq!(c["reason"], *code, "{p}");
        assert_eq!(c["metadata"]["issues"][0]["code"], *code, "{p}");
        assert_eq!(c["metadata"]["capabilities"]["windows_compatible_paths"], true);
        assert_eq!(r["accepted"], json!([]), "{p}");
        let artifact = c["artifact_path"].as_str().unwrap();
        assert_eq!(win.read(artifact).await.as_deref(), Some("w"), "{p}: content kept at a portable {artifact}");
        assert_eq!(win.stat(p).await.status, StatusCode::NOT_FOUND, "{p} was not applied");

        let r = linux.append("tux", &format!("l-{i}"), linux.head().await as i64, change).await.data();
        assert_eq!(r["conflicts"], json!([]), "{p} is fine for a case-sensitive Linux replica");
        assert_eq!(linux.read(p).await.as_deref(), Some("w"));
    }

    tracing::info!("--- case and Unicode twins");
    let mac = Vol { app: &app, t: win.t.clone(), id: Vol::create(&app, &win.t, "RWX").await };
    mac.replica("mac", json!({ "platform": "darwin" })).await;
    mac.write("/Docs/README.md", "server").await;
    mac.write("/caf%C3%A9", "nfc").await; // "café" precomposed
    let head = mac.head().await as i64;
    let r = mac
        .append(
            "mac",
            "m-1",
            head,
            json!([
                { "event_type": "write", "path": "/Docs/readme.md", "content_base64": b64("mine") },
                { "event_type": "write", "path": "/docs/new.txt", "content_base64": b64("dir twin") },
                { "event_type": "write", "path": "/cafe\u{301}", "content_base64": b64("nfd") },
            ]),
        )
        .await
        .data();
    let c = r["conflicts"].as_array().unwrap();
    assert_eq!(c.len(), 3, "{r}");
    for x in c {
        assert_eq!(x["reason"], "casefold_collision", "{x}");
    }
    assert_eq!(c[0]["existing_seq"], 1);
    assert_eq!(c[0]["metadata"]["existing_path"], "/Docs/README.md");
    assert_eq!(c[0]["artifact_path"], "/Docs/README.conflict-mac-seq-1.md", "beside the file it collided with");
    assert_eq!(mac.read("/Docs/README.conflict-mac-seq-1.md").await.as_deref(), Some("mine"));
    assert_eq!(c[1]["metadata"]["existing_path"], "/Docs", "an ancestor's twin counts");
    assert_eq!(c[1]["artifact_path"], "/Docs/new.conflict-mac-seq-1.txt");
    assert_eq!(c[2]["normalized_path"], "/cafe\u{301}");
    assert_eq!(mac.read("/Docs/README.md").await.as_deref(), Some("server"));

    tracing::info!("--- case-only rename: fine alone, a conflict when a third spelling exists");
    let head = mac.head().await as i64;
    let r = mac
        .append(
            "mac",
            "m-2",
            head,
            json!([{ "event_type": "rename", "old_path": "/Docs/README.md", "path": "/Docs/Readme.md" }]),
        )
        .await
        .data();
    assert_eq!(r["conflicts"], json!([]));
    assert_eq!(mac.read("/Docs/Readme.md").await.as_deref(), Some("server"));
    mac.replica("tux", json!({ "platform": "linux" })).await; // the policy stays case-insensitive
    mac.write("/x.txt", "lower").await;
    mac.write("/X.TXT", "upper").await;
    let head = mac.head().await as i64;
    let r = mac
        .append("mac", "m-3", head, json!([{ "event_type": "rename", "old_path": "/x.txt", "path": "/X.txt" }]))
        .await
        .data();
    assert_eq!(r["conflicts"][0]["reason"], "case_only_rename_conflict");
    assert_eq!(r["conflicts"][0]["incoming_old_path"], "/x.txt");
}

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
