//! Schemathesis against a live node, driven by the node's own `GET /openapi.json`: generated
//! requests (valid and invalid) to every operation with a valid team token, checking that no
//! answer is a 5xx, every status, content type and body conforms to the document, and none
//! takes longer than [`RESPONSE_TIME_MAX_S`]; then the admin-only token routes with the admin
//! token. Bounded by [`TIME_BUDGET_S`] and a fixed seed, so
//! a failure reproduces with the command this test prints.
//!
//! Schemathesis comes from PyPI (`scripts/install-test-tools` puts it in
//! `~/.cache/tideline/schemathesis`); without it the test says `skipped` and why, except under
//! `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Client, Server, ADMIN};
use serde_json::{json, Value};

const TIME_BUDGET_S: u32 = 120;
const TIME_BUDGET_ADMIN_S: u32 = 30;
const EXAMPLES_PER_OPERATION: u32 = 40;
const RESPONSE_TIME_MAX_S: u32 = 10;
const SEED: u64 = 20261203;

fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return Some(p.into());
    }
    let home = std::env::var_os("HOME")?;
    let venv = PathBuf::from(home).join(".cache/tideline/schemathesis/bin/schemathesis");
    if venv.exists() {
        return Some(venv);
    }
    Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "schemathesis".into())
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let r = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_spec() {
    let Some(st) = schemathesis() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "schemathesis is missing: run scripts/install-test-tools"
        );
        eprintln!("skipped: schemathesis is not installed (scripts/install-test-tools installs it from PyPI)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node"));
    let team = Client::for_team(&server.url, "fuzz").await;
    let http = reqwest::Client::new();

    // Real ids for the path parameters, so requests reach the handlers, not only the 404s.
    let vol = team.create_volume().await;
    let doomed = team.create_volume().await; // the one DELETE /sandboxvolumes/{id} may remove
    team.write(&vol, "/a.txt", b"hello".to_vec()).await.unwrap();
    let v = |rest: &str| format!("{}/api/v1/sandboxvolumes/{vol}{rest}", server.url);
    let snapshot = post(&http, v("/snapshots"), &team.token, json!({ "name": "s1" })).await;
    let r = http.put(v("/sync/replicas/fuzz-replica")).bearer_auth(&team.token).json(&json!({})).send().await.unwrap();
    assert!(r.status().is_success());

    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"headers = {{ Authorization = "Bearer {token}" }}
[parameters]
"path.id" = "{vol}"
"path.snapshot_id" = "{snapshot}"
"path.replica_id" = "fuzz-replica"
"query.snapshot_id" = "{snapshot}"
# A long poll answers after up to 30 s by design (sync tests cover it); here it must not wait.
"query.wait_ms" = 20

[[operations]]
include-method = "DELETE"
include-path = "/api/v1/sandboxvolumes/{{id}}"
parameters = {{ "path.id" = "{doomed}" }}
"#,
            token = team.token,
            snapshot = snapshot["id"].as_str().unwrap(),
        ),
    )
    .unwrap();
    // Every operation with the team token (the admin-only ones answer 403 to it) but the
    // WebSocket route, which answers an upgrade schemathesis does not speak...
    run(&st, &config, &server, TIME_BUDGET_S, &["--exclude-path", "/api/v1/sandboxvolumes/{id}/files/watch"]);
    // ...and the token routes with the admin token, so their success paths are fuzzed too. The
    // membership routes are left out: a generated `POST /cluster/nodes` would make an unreachable
    // address a voter of the node under test, which is a test of membership, not of the API.
    let admin = dir.path().join("schemathesis-admin.toml");
    std::fs::write(&admin, format!("headers = {{ Authorization = \"Bearer {ADMIN}\" }}\n")).unwrap();
    run(&st, &admin, &server, TIME_BUDGET_ADMIN_S, &["--include-tag", "tokens"]);
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    // Still serving after the runs.
    let health = http.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// One schemathesis run against `server` with `config`, every check of the response against the
/// document; panics with schemathesis's report and the server's log on any failure.
fn run(st: &Path, config: &Path, server: &Server, seconds: u32, filter: &[&str]) {
    let report = config.with_extension("report");
    let mut args: Vec<String> = vec![
        "--config-file".into(),
        config.display().to_string(),
        "run".into(),
        format!("{}/openapi.json", server.url),
        "--checks".into(),
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance".into(),
        "--max-response-time".into(),
        RESPONSE_TIME_MAX_S.to_string(),
        "--max-time".into(),
        seconds.to_string(),
        "--max-examples".into(),
        EXAMPLES_PER_OPERATION.to_string(),
        "--seed".into(),
        SEED.to_string(),
        "--workers".into(),
        "2".into(),
        "--request-timeout".into(),
        (RESPONSE_TIME_MAX_S * 2).to_string(),
        "--report-dir".into(),
        report.display().to_string(),
    ];
    args.extend(filter.iter().map(|a| a.to_string()));
    eprintln!("running: {} {}", st.display(), args.join(" "));
    let dir = config.parent().expect("the config is in the test's temp dir");
    let out = Command::new(st).args(&args).current_dir(dir).env("NO_COLOR", "1").output().expect("run schemathesis");
    eprintln!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found failures (above); the server's log:\n{}", server.stderr());
}
