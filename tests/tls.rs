//! TLS through real processes: a three-node cluster over mutual TLS (HTTPS for clients, the
//! cluster CA between nodes), a peer whose certificate another CA signed is refused, a client
//! without the CA gets a clear error, and plain HTTP off loopback needs `--insecure-http`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{free_ports, wait_for, Server, ADMIN};
use tideline_client::types::wire::{TokenRequest, VolumeRequest};
use tideline_client::{Client, RetryPolicy, Upload};

const SECRET: &str = "tls-test-secret";

fn tideline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tideline")).args(args).output().expect("run tideline")
}

/// A CA and `nodes` node certificates in `dir` (`tideline dev-certs`).
fn certs(dir: &Path, nodes: u64) {
    let out = tideline(&["dev-certs", "--out", &dir.display().to_string(), "--nodes", &nodes.to_string()]);
    assert!(out.status.success(), "{}", common::show(&out));
}

fn tls_args(certs: &Path, id: u64) -> Vec<String> {
    let p = |name: String| certs.join(name).display().to_string();
    vec![
        "--tls-cert".into(),
        p(format!("node{id}.pem")),
        "--tls-key".into(),
        p(format!("node{id}-key.pem")),
        "--peer-ca".into(),
        p("ca.pem".into()),
    ]
}

fn client(url: &str, token: &str, ca: &Path) -> Client {
    Client::builder(url, token).ca_cert_file(ca).retry(RetryPolicy::none()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_mutual_tls_replicates_and_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = dir.path().join("certs");
    certs(&certs_dir, 3);
    let ca = certs_dir.join("ca.pem");
    let ports = free_ports(3);
    let peers: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1)).collect();
    let servers: Vec<Server> = (0..3)
        .map(|i| {
            let mut args = vec![
                "--node-id".to_string(),
                (i + 1).to_string(),
                "--listen".into(),
                format!("127.0.0.1:{}", ports[i]),
                "--peers".into(),
                peers.join(","),
                "--cluster-secret".into(),
                SECRET.into(),
                "--object-store".into(),
                format!("file://{}", dir.path().join("objects").display()),
            ];
            args.extend(tls_args(&certs_dir, i as u64 + 1));
            Server::start_with(&dir.path().join(format!("n{i}")), &args)
        })
        .collect();
    for s in &servers {
        assert!(s.url.starts_with("https://"), "{}", s.url);
    }
    let admin = client(&servers[0].url, ADMIN, &ca);
    let leader = wait_for("a leader elected over mutual TLS", Duration::from_secs(60), || async {
        admin.cluster_status().await.ok()?.leader_id
    })
    .await;
    assert!((1..=3).contains(&leader));

    // A write through one node is read back through another: replication went over TLS.
    let req = TokenRequest { team_id: "t".into(), permissions: vec!["*".into()], ..Default::default() };
    let token = admin.create_token(&req).await.unwrap().token;
    let writer = client(&servers[1].url, &token, &ca);
    let vol = writer.create_volume(&VolumeRequest::default()).await.unwrap().id;
    writer.write_file(&vol, "/hello.txt", Upload::bytes(b"over tls".to_vec())).await.unwrap();
    let reader = client(&servers[2].url, &token, &ca);
    let read = wait_for("the write on the third node", Duration::from_secs(30), || async {
        reader.read_file(&vol, "/hello.txt").await.ok()
    })
    .await;
    assert_eq!(&read[..], b"over tls");

    // The CLI over https with --ca-cert: every member answers cluster status.
    let out = tideline(&[
        "cluster",
        "status",
        "--json",
        "--server",
        &servers[2].url,
        "--admin-token",
        ADMIN,
        "--ca-cert",
        &ca.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", common::show(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["error"].is_null()), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_needs_a_certificate_the_cluster_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    certs(&ours, 1);
    certs(&theirs, 1);
    let mut args = vec!["--listen".to_string(), "127.0.0.1:0".into(), "--cluster-secret".into(), SECRET.into()];
    args.extend(tls_args(&ours, 1));
    let server = Server::start_with(&dir.path().join("n1"), &args);
    let vote = format!("{}/raft/vote", server.url);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ours.join("ca.pem")).unwrap()).unwrap();
    let identity = |dir: &Path| {
        let mut pem = std::fs::read(dir.join("node1.pem")).unwrap();
        pem.extend(std::fs::read(dir.join("node1-key.pem")).unwrap());
        reqwest::Identity::from_pem(&pem).unwrap()
    };
    let peer = |identity: Option<reqwest::Identity>| {
        let mut b = reqwest::Client::builder().add_root_certificate(ca.clone()).use_rustls_tls();
        if let Some(id) = identity {
            b = b.identity(id);
        }
        b.build().unwrap()
    };

    // Another CA's certificate: the handshake itself fails, no request is read.
    let r = peer(Some(identity(&theirs))).post(&vote).header("x-tideline-cluster-secret", SECRET).send().await;
    assert!(r.is_err(), "a certificate from another CA got an answer: {r:?}");
    // No certificate, right secret: the API is open to it, /raft is not.
    let r = peer(None).post(&vote).header("x-tideline-cluster-secret", SECRET).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("peer certificate required"), "{body}");
    assert_eq!(peer(None).get(format!("{}/healthz", server.url)).send().await.unwrap().status(), 200);
    // The cluster's own certificate gets through to the Raft core (an empty vote is malformed).
    let r = peer(Some(identity(&ours))).post(&vote).header("x-tideline-cluster-secret", SECRET).send().await.unwrap();
    assert_eq!(r.status(), 400, "past the certificate and secret checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_ca_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = dir.path().join("certs");
    certs(&certs_dir, 1);
    let mut args = vec!["--listen".to_string(), "127.0.0.1:0".into()];
    args.extend(tls_args(&certs_dir, 1).into_iter().take(4)); // no --peer-ca: one node
    let server = Server::start_with(&dir.path().join("n1"), &args);

    let out = tideline(&["volume", "list", "--server", &server.url, "--token", ADMIN]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "the error names the certificate problem: {stderr}");
    // With the CA the same command reaches the server (and is refused as the admin has no team).
    let ca = certs_dir.join("ca.pem").display().to_string();
    let out = tideline(&["volume", "list", "--server", &server.url, "--token", ADMIN, "--ca-cert", &ca]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("403") || stderr.contains("admin token has no team"), "{stderr}");
    assert!(!stderr.contains("certificate"), "{stderr}");
}

#[test]
fn plain_http_off_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["server", "--listen", "0.0.0.0:0", "--admin-token", ADMIN, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("--insecure-http"), "{stderr}");
    let args = ["--listen".to_string(), "0.0.0.0:0".into(), "--insecure-http".into()];
    let server = Server::start_with(&dir.path().join("n1"), &args);
    assert!(server.url.starts_with("http://0.0.0.0:"), "{}", server.url);
}
