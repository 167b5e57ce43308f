//! Two workers keep two directories and a volume in step: every kind of edit travels both ways
//! (creates, nested trees, a large file, overwrites, renames as renames, chmod, removes), a
//! files-API write reaches both without being echoed back, entries that cannot be synced are
//! named, and `.gitignore`d paths and `.git/` stay local.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{by_replica, chmod, local_tree, phase, tree_diff, without, write, Entry, Machine, Volume, SYNC_TIMEOUT};
use serde_json::Value;
use tideline_test_support::wait_until;

/// The edits of test 1, made in `from`'s directory under `top`, each checked on every side.
async fn edits_propagate(remote: &Volume, from: &Machine, rid: &str, dirs: &[&Path], top: &str) {
    let journal_has = |event: &'static str, old: String, new: String| {
        let rid = rid.to_string();
        async move {
            let j = remote.journal().await;
            let found = by_replica(&j, &rid)
                .iter()
                .any(|e| e["event_type"] == event && e["old_path"] == old.as_str() && e["path"] == new.as_str());
            assert!(found, "no `{event}` {old} → {new} from replica {rid} in the journal: {:#?}", by_replica(&j, &rid));
        }
    };

    phase(&format!("{}: create a file", from.name));
    write(&from.p(&format!("{top}/hello.txt")), b"hello\n");
    let t = remote.wait_converged("a created file everywhere", dirs).await;
    assert!(t.contains_key(&format!("/{top}/hello.txt")), "{t:?}");

    phase(&format!("{}: nested directories and files", from.name));
    write(&from.p(&format!("{top}/src/lib/x.rs")), b"fn x() {}\n");
    write(&from.p(&format!("{top}/src/lib/y.rs")), b"fn y() {}\n");
    write(&from.p(&format!("{top}/docs/guide/intro.md")), b"# intro\n");
    write(&from.p(&format!("{top}/docs/readme.md")), &vec![b'r'; 100 * 1024]);
    // Larger than any inline limit, incompressible-ish.
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    write(&from.p(&format!("{top}/docs/big.bin")), &big);
    remote.wait_converged("nested dirs and files everywhere", dirs).await;

    phase(&format!("{}: overwrite a file", from.name));
    write(&from.p(&format!("{top}/hello.txt")), b"hello again, longer this time\n");
    remote.wait_converged("an overwrite everywhere", dirs).await;

    phase(&format!("{}: rename a file (travels as a rename)", from.name));
    std::fs::rename(from.p(&format!("{top}/src/lib/x.rs")), from.p(&format!("{top}/src/lib/z.rs"))).unwrap();
    let t = remote.wait_converged("a renamed file everywhere", dirs).await;
    assert!(!t.contains_key(&format!("/{top}/src/lib/x.rs")) && t.contains_key(&format!("/{top}/src/lib/z.rs")));
    journal_has("rename", format!("/{top}/src/lib/x.rs"), format!("/{top}/src/lib/z.rs")).await;

    phase(&format!("{}: rename a directory", from.name));
    std::fs::rename(from.p(&format!("{top}/docs")), from.p(&format!("{top}/documentation"))).unwrap();
    let t = remote.wait_converged("a renamed directory everywhere", dirs).await;
    assert!(t.contains_key(&format!("/{top}/documentation/guide/intro.md")), "{t:?}");
    assert!(!t.keys().any(|p| p.starts_with(&format!("/{top}/docs"))), "{t:?}");
    journal_has("rename", format!("/{top}/docs"), format!("/{top}/documentation")).await;

    phase(&format!("{}: chmod 0755 (travels as a chmod)", from.name));
    chmod(&from.p(&format!("{top}/src/lib/y.rs")), 0o755);
    let t = remote.wait_converged("a mode change everywhere", dirs).await;
    assert!(matches!(t[&format!("/{top}/src/lib/y.rs")], Entry::File { mode: 0o755, .. }), "{t:?}");
    for d in dirs {
        let mode = std::fs::metadata(d.join(format!("{top}/src/lib/y.rs"))).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{}", d.display());
    }
    let j = remote.journal().await;
    assert!(
        by_replica(&j, rid).iter().any(|e| e["event_type"] == "chmod" && e["path"] == format!("/{top}/src/lib/y.rs")),
        "no chmod entry from {rid}"
    );

    phase(&format!("{}: delete a file", from.name));
    std::fs::remove_file(from.p(&format!("{top}/hello.txt"))).unwrap();
    let t = remote.wait_converged("a deleted file gone everywhere", dirs).await;
    assert!(!t.contains_key(&format!("/{top}/hello.txt")));

    phase(&format!("{}: delete a directory", from.name));
    std::fs::remove_dir_all(from.p(&format!("{top}/src"))).unwrap();
    let t = remote.wait_converged("a deleted directory gone everywhere", dirs).await;
    assert!(!t.keys().any(|p| p.starts_with(&format!("/{top}/src"))), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_propagate_both_ways() {
    let remote = &Volume::start("team-sync-1").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);

    phase("attach two empty directories to an empty volume");
    let rid_a = a.attach_ok(&remote.vol, None).await;
    let rid_b = b.attach_ok(&remote.vol, None).await;
    assert_ne!(rid_a, rid_b, "two attachments are two replicas");
    a.wait_idle().await;
    b.wait_idle().await;
    let s = a.status();
    for field in ["volume_id", "dir", "replica_id", "state", "cursor", "head_seq", "pending_local", "open_conflicts"] {
        assert!(s.get(field).is_some(), "status has no {field}: {s}");
    }
    assert_eq!(s["volume_id"], remote.vol.as_str());
    assert!(s["errors"].is_array(), "{s}");
    let list = a.list();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["replica_id"], rid_a.as_str());

    let dirs = [a.dir.as_path(), b.dir.as_path()];
    edits_propagate(remote, a, &rid_a, &dirs, "from-a").await;
    edits_propagate(remote, b, &rid_b, &dirs, "from-b").await;

    phase("a files-API write appears in both directories");
    remote.write("/api/nested/from-api.txt", b"written through the files API\n").await;
    let t = remote.wait_converged("a files-API write in both dirs", &dirs).await;
    assert!(t.contains_key("/api/nested/from-api.txt"));
    assert_eq!(std::fs::read(a.p("api/nested/from-api.txt")).unwrap(), b"written through the files API\n");

    phase("the status of a directory inside the attachment is the attachment's");
    let s = a.status_of(&a.p("api/nested")).unwrap();
    assert_eq!(s["replica_id"], rid_a.as_str());

    phase("nothing echoed back, no conflicts");
    let j = remote.journal().await;
    let api_path = "/api/nested/from-api.txt";
    assert!(
        !j.iter().any(|e| e["path"] == api_path && e["source"] == "replica"),
        "a worker echoed the files-API write back: {:#?}",
        j.iter().filter(|e| e["path"] == api_path).collect::<Vec<_>>()
    );
    assert!(remote.conflicts("").await.is_empty(), "{:#?}", remote.conflicts("").await);

    a.detach().await;
    b.detach().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_entry_types_are_named() {
    let remote = &Volume::start("team-sync-6").await;
    let a = &Machine::new("A", remote);
    a.attach_ok(&remote.vol, None).await;
    a.wait_idle().await;

    phase("a symlink, a fifo and a regular file");
    write(&a.p("target.txt"), b"target\n");
    std::os::unix::fs::symlink("target.txt", a.p("weird-symlink")).unwrap();
    let fifo = std::ffi::CString::new(a.p("sub/weird-fifo").to_str().unwrap()).unwrap();
    std::fs::create_dir_all(a.p("sub")).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "{}", std::io::Error::last_os_error());
    write(&a.p("sub/regular.txt"), b"regular\n");

    phase("status names both paths; the regular files still sync");
    a.wait_status("both unsupported entries named", |s| {
        let errors: Vec<&str> =
            s["errors"].as_array().map(|e| e.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let named = |n: &str| errors.iter().any(|e| e.contains(n));
        if named("weird-symlink") && named("weird-fifo") {
            Ok(())
        } else {
            Err(format!("errors: {errors:?}"))
        }
    })
    .await;
    wait_until("regular files in the volume", SYNC_TIMEOUT, || async move {
        let t = remote.tree().await?;
        if t.contains_key("/sub/regular.txt") && t.contains_key("/target.txt") {
            Ok(t)
        } else {
            Err(format!("{t:?}"))
        }
    })
    .await;
    let t = remote.tree().await.unwrap();
    assert!(!t.contains_key("/weird-symlink") && !t.contains_key("/sub/weird-fifo"), "{t:?}");
    a.detach().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitignore_and_git_dir_are_skipped() {
    let remote = &Volume::start("team-sync-7").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    let ignored = |p: &str| p.ends_with(".log") || p == "/build" || p.starts_with("/build/");

    phase("a repository in A before attaching: .git, ignored and kept files");
    write(&a.p(".gitignore"), b"*.log\nbuild/\n");
    write(&a.p(".git/HEAD"), b"ref: refs/heads/main\n");
    write(&a.p(".git/objects/ab/cdef"), b"object");
    write(&a.p("pre.log"), b"log\n");
    write(&a.p("build/pre.o"), b"obj");
    write(&a.p("keep/pre.txt"), b"pre\n");
    a.attach_ok(&remote.vol, None).await;
    b.attach_ok(&remote.vol, None).await;
    let a_tree = without(&local_tree(&a.dir).unwrap(), ignored);
    remote.wait_converged("B has A's tree without .git and ignored files", &[b.dir.as_path()]).await;
    let t = remote.tree().await.unwrap();
    assert_eq!(t, a_tree, "{}", tree_diff("volume", &t, "A (filtered)", &a_tree));
    assert!(t.contains_key("/.gitignore") && t.contains_key("/keep/pre.txt"));

    phase("live edits: ignored and .git changes stay local, the rest syncs");
    write(&b.p(".git/HEAD"), b"B's own repository\n");
    write(&a.p("live.log"), b"log\n");
    write(&a.p("build/live.o"), b"obj");
    write(&a.p(".git/index"), b"index");
    write(&a.p("deep/nested/x.log"), b"nested log\n");
    write(&a.p("keep/live.txt"), b"live\n");
    wait_until("A's live edits in B", SYNC_TIMEOUT, || async move {
        let t = remote.tree().await?;
        let bt = without(&local_tree(&b.dir)?, |_| false);
        let at = without(&local_tree(&a.dir)?, ignored);
        if t == at && bt == t {
            Ok(())
        } else {
            Err(format!("{}\n{}", tree_diff("A (filtered)", &at, "volume", &t), tree_diff("B", &bt, "volume", &t)))
        }
    })
    .await;
    let t = remote.tree().await.unwrap();
    for p in ["/.git", "/live.log", "/pre.log", "/build", "/deep/nested/x.log"] {
        assert!(!t.contains_key(p), "{p} reached the volume");
    }
    assert_eq!(std::fs::read(b.p(".git/HEAD")).unwrap(), b"B's own repository\n");
    assert_eq!(std::fs::read(a.p(".git/HEAD")).unwrap(), b"ref: refs/heads/main\n");
    a.wait_idle().await;
    b.wait_idle().await;
    a.detach().await;
    b.detach().await;
}
