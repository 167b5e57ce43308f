//! `tideline mount` against a real server: a real FUSE mount (the `tideline mount --foreground`
//! process, stopped by `tideline unmount` or by pid) used through `std::fs` like any directory,
//! and what it did checked through the files API and the journal.
//!
//! ```text
//!  test ──std::fs──▶ kernel ──/dev/fuse──▶ tideline mount (child) ──HTTP──▶ tideline server (child)
//!    └───────────────────────── typed client: files API, journal ───────────────────────┘
//! ```
//!
//! A machine without FUSE (no `/dev/fuse`, or no right to mount) prints `skipped` with the
//! reason; under `CI=true` that is a failure, so CI cannot pass without mounting.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Client, Server};
use tideline_client::types::wire::VolumeRequest;
use tideline_client::types::{AccessMode, EventType, Source};
use tideline_test_support::wait_until;

/// How long a mount may take to come up.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this machine can mount FUSE; `None` if it can, else why not.
fn cannot_mount() -> Option<String> {
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/fuse cannot be opened: {e}")),
    }
}

/// Skips (or fails under CI) when FUSE is not available.
fn fuse_or_skip(test: &str) -> bool {
    match cannot_mount() {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{test}: CI must mount FUSE: {why}"),
        Some(why) => {
            eprintln!("skipped {test}: {why}");
            false
        }
    }
}

/// One `tideline mount --foreground` process and its mount point.
struct Mount {
    child: Child,
    dir: tempfile::TempDir,
    _cache: tempfile::TempDir,
}

impl Mount {
    fn start(url: &str, token: &str, volume: &str, extra: &[&str]) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        Mount::start_at(url, token, volume, dir, cache, extra)
    }

    fn start_at(
        url: &str,
        token: &str,
        volume: &str,
        dir: tempfile::TempDir,
        cache: tempfile::TempDir,
        extra: &[&str],
    ) -> Mount {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tideline"))
            .arg("mount")
            .arg(volume)
            .arg(dir.path())
            .args(["--foreground", "--server", url, "--cache-dir"])
            .arg(cache.path())
            .args(extra)
            .env("TIDELINE_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tideline mount");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(MOUNT_TIMEOUT) {
            Ok(line) if line.starts_with("mounted") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the mount did not come up: {other:?}");
            }
        }
        assert!(tideline_mount::is_mounted(dir.path()), "mountinfo lists {}", dir.path().display());
        Mount { child, dir, _cache: cache }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p.trim_start_matches('/'))
    }

    /// `tideline unmount`, then the serving process exits by itself.
    fn unmount(mut self) -> (tempfile::TempDir, tempfile::TempDir) {
        let out = Command::new(env!("CARGO_BIN_EXE_tideline")).arg("unmount").arg(self.dir.path()).output().unwrap();
        assert!(out.status.success(), "unmount: {}", String::from_utf8_lossy(&out.stderr));
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the mount process exits cleanly after unmount: {status}");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let cache = std::mem::replace(&mut self._cache, tempfile::tempdir().unwrap());
        (dir, cache)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if tideline_mount::is_mounted(self.dir.path()) {
            let _ = tideline_mount::unmount(self.dir.path());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn setup(access: AccessMode) -> (tempfile::TempDir, Server, Client, String, String) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = Client::new(&server.url, common::ADMIN);
    let req = tideline_client::types::wire::TokenRequest {
        team_id: "team-m".into(),
        permissions: vec!["*".into()],
        ..Default::default()
    };
    let token = admin.api.create_token(&req).await.unwrap().token;
    let team = Client::new(&server.url, &token);
    let vol = team.api.create_volume(&VolumeRequest::with_access_mode(access)).await.unwrap().id;
    (data, server, team, vol, token)
}

/// Runs blocking file-system calls off the runtime (the mount is served by another process,
/// but the test's own client calls share this runtime).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_calls_on_a_mount_become_journal_entries() {
    if !fuse_or_skip("posix_calls_on_a_mount_become_journal_entries") {
        return;
    }
    let (_data, server, team, vol, token) = setup(AccessMode::Rwo).await;
    let m = Mount::start(&server.url, &token, &vol, &[]);
    let root = m.dir.path().to_path_buf();

    // mkdir -p, a write, a read back: each close is one committed write.
    let r = root.clone();
    blocking(move || {
        fs::create_dir_all(r.join("src/deep")).unwrap();
        fs::write(r.join("src/deep/a.txt"), b"hello mount").unwrap();
        assert_eq!(fs::read(r.join("src/deep/a.txt")).unwrap(), b"hello mount");
        assert_eq!(fs::metadata(r.join("src/deep/a.txt")).unwrap().len(), 11);
    })
    .await;
    assert_eq!(team.read(&vol, "/src/deep/a.txt").await.unwrap(), b"hello mount");
    let journal = team.journal(&vol).await;
    let last = journal.last().unwrap();
    assert_eq!(
        (last.event_type, last.path.as_str(), last.source),
        (EventType::Write, "/src/deep/a.txt", Source::Sandbox)
    );
    assert_eq!(last.size_bytes, Some(11));

    // Random writes, an append and a truncate stay local until the close.
    let r = root.clone();
    blocking(move || {
        let mut f = OpenOptions::new().read(true).write(true).open(r.join("src/deep/a.txt")).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"J", 6).unwrap();
        f.flush().unwrap();
        let mut seen = String::new();
        File::open(r.join("src/deep/a.txt")).unwrap().read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "hello Jount", "read-your-writes before the close");
        f.set_len(8).unwrap();
        drop(f);
        let mut f = OpenOptions::new().append(true).open(r.join("src/deep/a.txt")).unwrap();
        f.write_all(b"!").unwrap();
        f.sync_all().unwrap();
    })
    .await;
    assert_eq!(team.read(&vol, "/src/deep/a.txt").await.unwrap(), b"hello Jo!", "fsync returned: committed");

    // O_CREAT|O_EXCL is the server's decision.
    let r = root.clone();
    blocking(move || {
        let lock = r.join("index.lock");
        OpenOptions::new().write(true).create_new(true).open(&lock).unwrap();
        let again = OpenOptions::new().write(true).create_new(true).open(&lock).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    })
    .await;
    let second = team.api.write_file_with(&vol, "/index.lock", tideline_client::Upload::bytes(vec![]), true, 0).await;
    assert_eq!(second.unwrap_err().reason, Some(tideline_client::types::Reason::PathAlreadyExists));

    // Rename over an existing file replaces it in one journal entry.
    let r = root.clone();
    blocking(move || {
        fs::write(r.join("index.lock"), b"new index").unwrap();
        fs::write(r.join("index"), b"old index").unwrap();
        fs::rename(r.join("index.lock"), r.join("index")).unwrap();
        assert_eq!(fs::read(r.join("index")).unwrap(), b"new index");
        assert_eq!(fs::metadata(r.join("index.lock")).unwrap_err().kind(), ErrorKind::NotFound);
    })
    .await;
    assert_eq!(team.read(&vol, "/index").await.unwrap(), b"new index");
    let last = team.journal(&vol).await.pop().unwrap();
    assert_eq!((last.event_type, last.old_path.as_deref()), (EventType::Rename, Some("/index.lock")));

    // chmod and a new file's mode reach the server.
    let r = root.clone();
    blocking(move || {
        fs::set_permissions(r.join("index"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(fs::metadata(r.join("index")).unwrap().permissions().mode() & 0o7777, 0o755);
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o700).open(r.join("run.sh")).unwrap();
        drop(f);
    })
    .await;
    assert_eq!(team.api.stat(&vol, "/index").await.unwrap().mode, "0755");
    let run_mode = team.api.stat(&vol, "/run.sh").await.unwrap().mode;
    assert_eq!(u32::from_str_radix(&run_mode, 8).unwrap() & 0o700, 0o700, "{run_mode}");

    // The errno of each refusal.
    let r = root.clone();
    blocking(move || {
        assert_eq!(errno(&fs::remove_dir(r.join("src")).unwrap_err()), libc::ENOTEMPTY);
        assert_eq!(errno(&fs::remove_dir(r.join("index")).unwrap_err()), libc::ENOTDIR);
        assert_eq!(errno(&fs::remove_file(r.join("src")).unwrap_err()), libc::EISDIR);
        assert_eq!(errno(&fs::create_dir(r.join("src")).unwrap_err()), libc::EEXIST);
        assert_eq!(errno(&fs::read(r.join("missing")).unwrap_err()), libc::ENOENT);
        assert_eq!(errno(&std::os::unix::fs::symlink("index", r.join("link")).unwrap_err()), libc::EPERM);
        let mut names: Vec<String> =
            fs::read_dir(&r).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["index", "run.sh", "src"]);
    })
    .await;

    // A file unlinked while open stays readable through its descriptor, and is not written back.
    let r = root.clone();
    blocking(move || {
        let mut f = File::open(r.join("index")).unwrap();
        fs::remove_file(r.join("index")).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "new index");
        fs::remove_dir_all(r.join("src")).unwrap();
    })
    .await;
    assert!(team.api.stat(&vol, "/index").await.unwrap_err().is_not_found());
    assert!(team.api.stat(&vol, "/src").await.unwrap_err().is_not_found());
    m.unmount();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mounts_and_the_files_api_see_each_other_close_to_open() {
    if !fuse_or_skip("two_mounts_and_the_files_api_see_each_other_close_to_open") {
        return;
    }
    let (_data, server, team, vol, token) = setup(AccessMode::Rwx).await;
    let a = Mount::start(&server.url, &token, &vol, &[]);
    let b = Mount::start(&server.url, &token, &vol, &[]);
    let (pa, pb) = (a.path("shared.txt"), b.path("shared.txt"));

    // close on A, open on B: B sees it, with no wait.
    let (x, y) = (pa.clone(), pb.clone());
    blocking(move || {
        fs::write(&x, b"from A").unwrap();
        assert_eq!(fs::read(&y).unwrap(), b"from A");
        fs::write(&y, b"from B, longer").unwrap();
        assert_eq!(fs::read(&x).unwrap(), b"from B, longer");
    })
    .await;

    // A write through the files API: the next open on a mount reads it.
    team.write(&vol, "/shared.txt", b"from the API".to_vec()).await.unwrap();
    let x = pa.clone();
    assert_eq!(blocking(move || fs::read(&x).unwrap()).await, b"from the API");

    // A new file made elsewhere shows in a listing within the attribute TTL.
    team.write(&vol, "/elsewhere.txt", b"x".to_vec()).await.unwrap();
    let dir = a.dir.path().to_path_buf();
    wait_until("elsewhere.txt listed on mount A", Duration::from_secs(5), || {
        let dir = dir.clone();
        async move {
            let names = blocking(move || {
                fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .await;
            if names.iter().any(|n| n == "elsewhere.txt") {
                Ok(())
            } else {
                Err(format!("listed: {names:?}"))
            }
        }
    })
    .await;
    b.unmount();
    a.unmount();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_mount_refuses_writes_and_inodes_survive_a_remount() {
    if !fuse_or_skip("a_read_only_mount_refuses_writes_and_inodes_survive_a_remount") {
        return;
    }
    let (_data, server, team, vol, token) = setup(AccessMode::Rwx).await;
    team.write(&vol, "/dir/file.txt", b"content".to_vec()).await.unwrap();

    let rw = Mount::start(&server.url, &token, &vol, &[]);
    let p = rw.path("dir/file.txt");
    let (ino, dir_ino) = blocking(move || {
        let dir = p.parent().unwrap().to_path_buf();
        (fs::metadata(&p).unwrap().ino(), fs::metadata(dir).unwrap().ino())
    })
    .await;
    let (dir, cache) = rw.unmount();

    let ro = Mount::start_at(&server.url, &token, &vol, dir, cache, &["--read-only"]);
    let root = ro.dir.path().to_path_buf();
    blocking(move || {
        let p = root.join("dir/file.txt");
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino, "the same inode number after a remount");
        assert_eq!(fs::metadata(root.join("dir")).unwrap().ino(), dir_ino);
        assert_eq!(fs::read(&p).unwrap(), b"content");
        assert_eq!(errno(&fs::write(&p, b"x").unwrap_err()), libc::EROFS);
        assert_eq!(errno(&fs::create_dir(root.join("new")).unwrap_err()), libc::EROFS);
        assert_eq!(errno(&fs::remove_file(&p).unwrap_err()), libc::EROFS);
    })
    .await;
    assert_eq!(team.read(&vol, "/dir/file.txt").await.unwrap(), b"content");
    ro.unmount();
}

#[tokio::test]
async fn mounting_a_missing_volume_fails_with_the_reason() {
    if !fuse_or_skip("mounting_a_missing_volume_fails_with_the_reason") {
        return;
    }
    let (_data, server, _team, _vol, token) = setup(AccessMode::Rwo).await;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["mount", "no-such-volume"])
        .arg(dir.path())
        .args(["--foreground", "--server", &server.url])
        .env("TIDELINE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-volume"), "{err}");
    assert!(!tideline_mount::is_mounted(dir.path()));
}
