//! The `tideline token create` command against a real server.

mod common;

use common::{Client, Server, ADMIN};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_prints_a_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "token",
            "create",
            "--team",
            "team-cli",
            "--permission",
            "sandboxvolume:create",
            "--permission",
            "sandboxvolume:read",
        ])
        .args(["--server", &server.url, "--admin-token", ADMIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["team_id"], "team-cli");
    let token = created["token"].as_str().unwrap();

    let vol = Client::new(&server.url, token).api.create_volume(&Default::default()).await.unwrap();
    assert_eq!(vol.team_id, "team-cli");

    tracing::info!("--- a wrong admin token is refused with the server's message");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "token",
            "create",
            "--team",
            "t",
            "--permission",
            "*",
            "--server",
            &server.url,
            "--admin-token",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
}
