//! `tideline volume …` against a real server: the client-only binary (`common::client_bin`) is
//! run as a subprocess, the way a script would, and its `--json` output, raw bytes and exit codes
//! are checked.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{show, Client, Server};
use serde_json::Value;

/// Runs `tideline volume ARGS` against `url` with `token`.
fn tl(url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(common::client_bin())
        .arg("volume")
        .args(args)
        .env("TIDELINE_URL", url)
        .env("TIDELINE_TOKEN", token)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tideline")
}

/// Asserts success and returns stdout.
fn ok(out: Output) -> Vec<u8> {
    assert!(out.status.success(), "{}", show(&out));
    out.stdout
}

/// Asserts success and parses stdout as one JSON document.
fn ok_json(out: Output) -> Value {
    let stdout = ok(out);
    serde_json::from_slice(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&stdout)))
}

/// Asserts the exit code and the `error: ` prefix on stderr.
fn fails_with(out: Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: "), "{}", show(&out));
}

/// A started server and a team token for it.
async fn setup(dir: &Path, team: &str) -> (Server, String) {
    let server = Server::start(dir);
    let token = Client::for_team(&server.url, team).await.token;
    (server, token)
}

fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 131 + i / 7) % 256) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_create_list_get_fork_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = setup(dir.path(), "team-vol").await;
    let t = |args: &[&str]| tl(&server.url, &token, args);

    tracing::info!("--- create with an access mode, JSON out");
    let created = ok_json(t(&["create", "--access-mode", "RWX", "--json"]));
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["access_mode"], "RWX");
    assert_eq!(created["team_id"], "team-vol");

    tracing::info!("--- list and get see it");
    let list = ok_json(t(&["list", "--json"]));
    assert!(list.as_array().unwrap().iter().any(|v| v["id"] == id.as_str()), "{list}");
    let table = String::from_utf8(ok(t(&["list"]))).unwrap();
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id), "{table}");
    let got = ok_json(t(&["get", &id, "--json"]));
    assert_eq!(got["id"], id.as_str());

    tracing::info!("--- fork records its source and defaults to RWO");
    let fork = ok_json(t(&["fork", &id, "--json"]));
    assert_eq!(fork["source_volume_id"], id.as_str());
    assert_eq!(fork["access_mode"], "RWO");
    let fork_id = fork["id"].as_str().unwrap().to_string();

    tracing::info!("--- delete, then get is not found (exit 3)");
    let deleted = ok_json(t(&["delete", &id, "--json"]));
    assert_eq!(deleted["deleted"], true);
    fails_with(t(&["get", &id]), 3);
    ok(t(&["delete", &fork_id, "--force"]));
    let list = ok_json(t(&["list", "--json"]));
    assert_eq!(list, Value::Array(vec![]), "{list}");

    tracing::info!("--- a bad access mode is a usage error (exit 2)");
    assert_eq!(t(&["create", "--access-mode", "XYZ"]).status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_cat_download_ls_mkdir_mv_rm() {
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (server, token) = setup(dir.path(), "team-files").await;
    let t = |args: &[&str]| tl(&server.url, &token, args);
    let vol = ok_json(t(&["create", "--json"]))["id"].as_str().unwrap().to_string();
    let f = |args: &[&str]| {
        let mut all = vec!["files", vol.as_str()];
        all.extend_from_slice(args);
        t(&all)
    };

    tracing::info!("--- a 200 KiB binary file uploads and cats back byte for byte");
    let data = binary(200 * 1024 + 3);
    let src = local.path().join("blob.bin");
    std::fs::write(&src, &data).unwrap();
    ok(f(&["upload", src.to_str().unwrap(), "/data/blob.bin"]));
    assert!(ok(f(&["cat", "/data/blob.bin"])) == data, "cat differs");

    tracing::info!("--- download writes identical bytes to the given path, and into a directory");
    let dst = local.path().join("out.bin");
    ok(f(&["download", "/data/blob.bin", dst.to_str().unwrap()]));
    assert!(std::fs::read(&dst).unwrap() == data, "download differs");
    let into = local.path().join("into");
    std::fs::create_dir(&into).unwrap();
    let summary = ok_json(f(&["download", "/data/blob.bin", into.to_str().unwrap(), "--json"]));
    assert_eq!(summary["size"], data.len() as u64);
    assert!(std::fs::read(into.join("blob.bin")).unwrap() == data);
    let leftovers: Vec<_> = std::fs::read_dir(&into).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temp file left behind: {leftovers:?}");

    tracing::info!("--- ls shows a table with the name; --json gives the entries");
    let table = String::from_utf8(ok(f(&["ls", "/data"]))).unwrap();
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("TYPE") && header.ends_with("NAME"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("file") && l.ends_with("blob.bin")), "{table}");
    let entries = ok_json(f(&["ls", "/data", "--json"]));
    assert_eq!(entries["entries"][0]["size"], data.len() as u64);

    tracing::info!("--- mkdir -p makes parents and tolerates existing; without -p existing is a conflict");
    ok(f(&["mkdir", "-p", "/a/b/c"]));
    ok(f(&["mkdir", "-p", "/a/b/c"]));
    assert_eq!(ok_json(f(&["stat", "/a/b/c", "--json"]))["type"], "dir");
    fails_with(f(&["mkdir", "/a/b"]), 4);
    fails_with(f(&["mkdir", "/x/y"]), 3);

    tracing::info!("--- mv moves; rm removes and stat is then not found (exit 3)");
    ok(f(&["mv", "/data/blob.bin", "/a/b/c/moved.bin"]));
    fails_with(f(&["stat", "/data/blob.bin"]), 3);
    assert!(ok(f(&["cat", "/a/b/c/moved.bin"])) == data);
    ok(f(&["rm", "/a/b/c/moved.bin"]));
    fails_with(f(&["stat", "/a/b/c/moved.bin"]), 3);
    fails_with(f(&["cat", "/a/b/c/moved.bin"]), 3);

    tracing::info!("--- a file over 100 MiB is refused locally (exit 1), nothing written");
    let big = local.path().join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(100 * 1024 * 1024 + 1).unwrap();
    let out = f(&["upload", big.to_str().unwrap(), "/big.bin"]);
    fails_with(out, 1);
    fails_with(f(&["stat", "/big.bin"]), 3);
}

/// A download that fails (the file does not exist, or the body breaks off mid-way) leaves the
/// old target as it was and no temporary file beside it; a complete one replaces it, a bare file
/// name landing in the current directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_download_leaves_the_old_target_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (server, token) = setup(dir.path(), "team-dl").await;
    let vol = ok_json(tl(&server.url, &token, &["create", "--json"]))["id"].as_str().unwrap().to_string();
    let target = local.path().join("report.bin");
    std::fs::write(&target, "old").unwrap();
    let download =
        |url: &str, remote: &str| tl(url, &token, &["files", &vol, "download", remote, target.to_str().unwrap()]);
    let names = || -> Vec<_> { std::fs::read_dir(local.path()).unwrap().map(|e| e.unwrap().file_name()).collect() };
    let untouched = || {
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old", "the old target is replaced");
        assert_eq!(names(), ["report.bin"], "temp file left behind");
    };

    tracing::info!("--- a file that does not exist is not found (exit 3)");
    fails_with(download(&server.url, "/nope.bin"), 3);
    untouched();

    tracing::info!("--- a body cut off after 256 KiB of 1 MiB is an error (exit 1)");
    fails_with(download(&truncating_server(1 << 20, 256 << 10), "/report.bin"), 1);
    untouched();

    tracing::info!("--- a complete download replaces the target; a bare name is in the current directory");
    let data = binary(300 * 1024);
    let src = dir.path().join("new.bin");
    std::fs::write(&src, &data).unwrap();
    ok(tl(&server.url, &token, &["files", &vol, "upload", src.to_str().unwrap(), "/report.bin"]));
    let out = Command::new(common::client_bin())
        .args(["volume", "files", &vol, "download", "/report.bin", "report.bin"])
        .current_dir(local.path())
        .env("TIDELINE_URL", &server.url)
        .env("TIDELINE_TOKEN", &token)
        .output()
        .unwrap();
    ok(out);
    assert!(std::fs::read(&target).unwrap() == data, "download differs");
    assert_eq!(names(), ["report.bin"], "temp file left behind");
}

/// A stand-in server whose every answer is a 200 that breaks off: it declares `declared` body
/// bytes, sends `sent`, and closes the connection. Returns its URL; the thread ends with the
/// test process.
fn truncating_server(declared: usize, sent: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let (mut head, mut buf) = (Vec::new(), [0u8; 4096]);
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {declared}\r\n\r\n"
            );
            let _ = conn.write_all(reply.as_bytes());
            let _ = conn.write_all(&vec![b'x'; sent]);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restore_brings_back_a_removed_file() {
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (server, token) = setup(dir.path(), "team-snap").await;
    let t = |args: &[&str]| tl(&server.url, &token, args);
    let vol = ok_json(t(&["create", "--json"]))["id"].as_str().unwrap().to_string();
    let src = local.path().join("keep.txt");
    std::fs::write(&src, b"keep me\n").unwrap();
    ok(t(&["files", &vol, "upload", src.to_str().unwrap(), "/keep.txt"]));

    tracing::info!("--- create a snapshot and see it listed");
    let snap = ok_json(t(&["snapshot", &vol, "create", "before", "--description", "first", "--json"]));
    let sid = snap["id"].as_str().unwrap().to_string();
    assert_eq!(snap["name"], "before");
    assert_eq!(snap["description"], "first");
    let list = ok_json(t(&["snapshot", &vol, "list", "--json"]));
    assert!(list.as_array().unwrap().iter().any(|s| s["id"] == sid.as_str()), "{list}");
    let table = String::from_utf8(ok(t(&["snapshot", &vol, "list"]))).unwrap();
    assert!(table.contains(&sid) && table.contains("before"), "{table}");

    tracing::info!("--- remove the file, restore, and it is back");
    ok(t(&["files", &vol, "rm", "/keep.txt"]));
    fails_with(t(&["files", &vol, "stat", "/keep.txt"]), 3);
    assert_eq!(ok_json(t(&["snapshot", &vol, "restore", &sid, "--json"]))["status"], "restored");
    assert_eq!(ok(t(&["files", &vol, "cat", "/keep.txt"])), b"keep me\n");

    tracing::info!("--- delete the snapshot; restoring it is then not found");
    ok(t(&["snapshot", &vol, "delete", &sid]));
    let list = ok_json(t(&["snapshot", &vol, "list", "--json"]));
    assert!(!list.as_array().unwrap().iter().any(|s| s["id"] == sid.as_str()), "{list}");
    fails_with(t(&["snapshot", &vol, "restore", &sid]), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_classify_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = setup(dir.path(), "team-codes").await;

    tracing::info!("--- a missing volume is 3");
    fails_with(tl(&server.url, &token, &["get", "no-such-volume"]), 3);
    fails_with(tl(&server.url, &token, &["files", "no-such-volume", "ls"]), 3);

    tracing::info!("--- a bad token is 5, with the server's message");
    let out = tl(&server.url, "not-a-token", &["list"]);
    fails_with(out, 5);

    tracing::info!("--- nobody listening is 6");
    let port = common::free_ports(1)[0];
    fails_with(tl(&format!("http://127.0.0.1:{port}"), &token, &["list"]), 6);

    tracing::info!("--- no token at all is a usage error (2)");
    let out = Command::new(common::client_bin())
        .args(["volume", "list", "--server", &server.url])
        .env_remove("TIDELINE_TOKEN")
        .output()
        .unwrap();
    fails_with(out, 2);
}

/// `files watch --count N --json` prints N events in seq order, then exits 0; a bad token is
/// refused before the upgrade (exit 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_watch_prints_events_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = setup(dir.path(), "team-w").await;
    let vol = ok_json(tl(&server.url, &token, &["--json", "create"]))["id"].as_str().unwrap().to_string();
    let mut watcher = Command::new(common::client_bin())
        .args(["volume", "--json", "files", &vol, "watch", "/w", "--count", "3"])
        .env("TIDELINE_URL", &server.url)
        .env("TIDELINE_TOKEN", &token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Keep writing until the watcher has seen three events (it may subscribe after the first).
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut n = 0;
    while watcher.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the watcher did not see 3 events");
        ok(tl(&server.url, &token, &["files", &vol, "upload", file.to_str().unwrap(), &format!("/w/f{n}")]));
        n += 1;
    }
    let out = watcher.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let events: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 3);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(events.iter().all(|e| e["event"] == "write" && e["path"].as_str().unwrap().starts_with("/w/f")));

    let out = Command::new(common::client_bin())
        .args(["volume", "files", &vol, "watch"])
        .env("TIDELINE_URL", &server.url)
        .env("TIDELINE_TOKEN", "not-a-token")
        .output()
        .unwrap();
    fails_with(out, 5);
}
