//! What an operator sees of a running node: JSON log lines with one access line per request
//! (never a token), request ids echoed or made up, the build's version and commit, and the
//! standard process metrics.

mod common;

use std::time::Duration;

use common::{Client, Server, ADMIN};
use serde_json::Value;

/// The access-log lines (`target` `tideline::access`) among a JSON log.
fn access_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "tideline::access")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_access_line_per_request_and_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = ["--listen", "127.0.0.1:0", "--log-format", "json"].map(String::from).into();
    let server = Server::start_with_env(dir.path(), &args, &[("RUST_LOG", "info,openraft=warn")]);
    let team = Client::for_team(&server.url, "team-a").await;
    let vol = team.create_volume().await;
    let http = reqwest::Client::new();

    // A caller's request id comes back, and names the request in the log.
    let resp = http
        .post(format!("{}/api/v1/sandboxvolumes/{vol}/files?path=/secret-name.txt", server.url))
        .bearer_auth(&team.token)
        .header("x-request-id", "probe-123")
        .body("hello")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert!(resp.status().is_success(), "write: {status}");
    assert_eq!(resp.headers()["x-request-id"], "probe-123");

    // Without one (or with one unfit to echo), the node makes one up.
    for sent in [None, Some("has a space")] {
        let mut req = http.get(format!("{}/api/v1/sandboxvolumes/{vol}", server.url)).bearer_auth(&team.token);
        if let Some(id) = sent {
            req = req.header("x-request-id", id);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success());
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 32, "a generated id: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    // A refused request is logged too, with its status.
    let resp = http
        .get(format!("{}/api/v1/sandboxvolumes/{vol}", server.url))
        .bearer_auth("not-a-token")
        .header("x-request-id", "probe-401")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let lines = tideline_test_support::wait_for("the access lines of both probes", Duration::from_secs(10), || {
        let lines = access_lines(&server.stderr());
        let seen = |id: &str| lines.iter().any(|l| l["request_id"] == id);
        std::future::ready((seen("probe-123") && seen("probe-401")).then_some(lines))
    })
    .await;
    let write = lines.iter().find(|l| l["request_id"] == "probe-123").unwrap();
    assert_eq!(write["method"], "POST", "{write}");
    assert_eq!(write["route"], "/api/v1/sandboxvolumes/{id}/files", "{write}");
    assert_eq!(write["status"], status, "{write}");
    assert_eq!(write["volume"], vol.as_str(), "{write}");
    assert!(write["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{write}");
    assert_eq!(write["level"], "INFO", "{write}");
    let refused = lines.iter().find(|l| l["request_id"] == "probe-401").unwrap();
    assert_eq!(refused["status"], 401, "{refused}");

    // One line per request: the write above appears once.
    assert_eq!(lines.iter().filter(|l| l["request_id"] == "probe-123").count(), 1);
    let stderr = server.stderr();
    for line in stderr.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    assert!(!stderr.contains(&team.token), "a team token reached the log");
    assert!(!stderr.contains(ADMIN), "the admin token reached the log");
    assert!(!stderr.contains("not-a-token"), "a presented token reached the log");
    assert!(!stderr.contains("secret-name"), "a query string reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_the_build_and_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let version = std::process::Command::new(env!("CARGO_BIN_EXE_tideline")).arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    // `tideline 0.1.0 (commit 0123456789ab)`, or `(commit unknown)` outside a checkout.
    let commit = version.trim().rsplit_once("(commit ").and_then(|(_, c)| c.strip_suffix(')')).unwrap_or_else(|| {
        panic!("--version names no commit: {version:?}");
    });
    assert!(!commit.is_empty());

    let text = reqwest::get(format!("{}/metrics", server.url)).await.unwrap().text().await.unwrap();
    let build = text.lines().find(|l| l.starts_with("tideline_build_info{")).unwrap_or_else(|| panic!("{text}"));
    assert!(build.contains(&format!("commit=\"{commit}\"")), "{build}");
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{build}");
    assert!(build.ends_with(" 1"), "{build}");
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
        "tideline_proposals_forwarded_total",
        "tideline_raft_log_syncs_total",
        "tideline_object_store_errors_total",
        "tideline_sync_conflicts_total",
        "tideline_bootstraps_total",
        "tideline_gc_swept_blobs_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "no # HELP for {name}:\n{text}");
        assert!(text.lines().any(|l| l.starts_with(name) && !l.starts_with('#')), "no sample of {name}:\n{text}");
    }
    let rss: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rss > 1e6, "a running node holds more than 1 MB: {rss}");
    // Writes sync the Raft log: the counter moves.
    let syncs = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix("tideline_raft_log_syncs_total "))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let before = syncs(&text);
    let team = Client::for_team(&server.url, "team-a").await;
    let vol = team.create_volume().await;
    team.write(&vol, "/a", b"a".to_vec()).await.unwrap();
    let after = reqwest::get(format!("{}/metrics", server.url)).await.unwrap().text().await.unwrap();
    assert!(syncs(&after) > before, "log syncs {before} -> {}", syncs(&after));
}
