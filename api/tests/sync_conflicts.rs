//! The Volume Sync table of API.md, conflicts: concurrent updates and namespace refusals
//! becoming conflicts that keep both versions, listing and resolving them, and the portability
//! conflicts (Windows rules, case and Unicode twins) a volume's policy asks for.

use axum::http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::*;

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
    assert_eq!(c["metadata"].get("latest_platform"), None, "a sandbox write has no replica platform");
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
    let meta = &r["conflicts"][0]["metadata"];
    assert_eq!(meta["latest_replica_id"], "laptop");
    assert_eq!(meta["latest_platform"], "linux", "the platform of the replica that wrote the latest entry");
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
