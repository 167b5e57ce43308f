//! How an attachment starts: `--init-from volume` makes a directory (fresh or stale) identical to
//! the volume, `auto` merges when common paths agree and refuses naming them when they differ,
//! and a directory emptied or replaced since the last sync is refused rather than sent as
//! deleting everything.

mod common;

use common::{local_tree, phase, tree_diff, write, Entry, Machine, Tree, Volume};
use serde_json::json;
use tideline_sync::init::InitFrom;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_attach_from_volume_is_identical() {
    let remote = &Volume::start("team-sync-4").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    a.attach_ok(&remote.vol, None).await;
    b.attach_ok(&remote.vol, None).await;

    phase("some shared content");
    write(&a.p("keep.txt"), b"keep\n");
    write(&a.p("change.txt"), b"old\n");
    write(&a.p("gone.txt"), b"will be removed\n");
    write(&a.p("dir/inner.txt"), b"inner\n");
    remote.wait_converged("shared content", &[a.dir.as_path(), b.dir.as_path()]).await;

    phase("detach A: its worker stops and it is no longer listed");
    a.detach().await;
    assert!(!a.running(&a.dir));
    let list = a.list();
    assert_eq!(list, json!([]), "{list}");
    assert!(a.p("keep.txt").exists(), "detach keeps the local files");

    phase("the other side changes: B and the files API");
    write(&b.p("change.txt"), b"new from B\n");
    std::fs::remove_file(b.p("gone.txt")).unwrap();
    write(&b.p("b-only/new.txt"), b"new\n");
    remote.write("/api.txt", b"from the API\n").await;
    let t = remote.wait_converged("B and the volume agree", &[b.dir.as_path()]).await;
    assert!(t.contains_key("/api.txt") && !t.contains_key("/gone.txt"));
    assert_eq!(std::fs::read(a.p("change.txt")).unwrap(), b"old\n", "detached A was not touched");

    phase("attach --init-from volume into a fresh directory: identical right away");
    let fresh = a.fresh_dir("fresh");
    a.attach_ok_in(&remote.vol, &fresh, Some(InitFrom::Volume)).await;
    let vol_tree = remote.tree().await.unwrap();
    let fresh_tree = local_tree(&fresh).unwrap();
    assert_eq!(fresh_tree, vol_tree, "{}", tree_diff("fresh", &fresh_tree, "volume", &vol_tree));
    let b_tree = local_tree(&b.dir).unwrap();
    assert_eq!(fresh_tree, b_tree, "{}", tree_diff("fresh", &fresh_tree, "B", &b_tree));

    phase("attach --init-from volume into A's stale old directory: made identical too");
    a.attach_ok(&remote.vol, Some(InitFrom::Volume)).await;
    let t = remote.converged(&[a.dir.as_path(), fresh.as_path(), b.dir.as_path()]).await;
    t.unwrap_or_else(|e| panic!("right after attach --init-from volume: {e}"));
    a.wait_idle().await;
    assert!(a.status_of(&fresh).unwrap()["state"] == "idle" || a.status_of(&fresh).unwrap()["state"] == "syncing");
    assert_eq!(remote.read("/gone.txt").await, None, "A's stale gone.txt was re-uploaded");
    assert_eq!(remote.read("/change.txt").await.as_deref(), Some(&b"new from B\n"[..]), "A's stale change.txt won");

    a.detach_in(&fresh).await;
    a.detach().await;
    b.detach().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_dir_is_not_mass_deleted() {
    let remote = &Volume::start("team-sync-5").await;
    let a = &Machine::new("A", remote);
    a.attach_ok(&remote.vol, None).await;

    phase("20 files synced");
    for i in 0..20 {
        write(&a.p(&format!("f/{:02}.txt", i)), format!("file {i}\n").as_bytes());
    }
    let synced = remote.wait_converged("20 files in the volume", &[a.dir.as_path()]).await;
    assert_eq!(synced.values().filter(|n| matches!(n, Entry::File { .. })).count(), 20);
    a.wait_idle().await;

    // (how the directory is lost, how it is then initialized)
    for (how, round) in [("emptied", InitFrom::Volume), ("replaced", InitFrom::Volume), ("emptied", InitFrom::Local)] {
        phase(&format!("[{round:?}] the worker is killed and the directory {how}"));
        a.kill().await;
        a.wait_status("stopped", |s| if s["state"] == "stopped" { Ok(()) } else { Err("not stopped".into()) }).await;
        if how == "emptied" {
            for e in std::fs::read_dir(&a.dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    std::fs::remove_dir_all(p).unwrap();
                } else {
                    std::fs::remove_file(p).unwrap();
                }
            }
        } else {
            // A different directory at the same path, with an unrelated file in it.
            std::fs::rename(&a.dir, a.dir.with_extension("old")).unwrap();
            std::fs::create_dir(&a.dir).unwrap();
            write(&a.p("unrelated.txt"), b"not from the volume\n");
        }

        phase(&format!("[{how}] attach without --init-from refuses to propagate the deletion"));
        let out = a.attach(&remote.vol, None).await;
        assert!(out.is_err(), "attach of an emptied dir succeeded: {out:?}");
        let said = out.unwrap_err();
        assert!(said.contains("--init-from"), "the refusal does not mention --init-from: {said}");
        let s = a.status();
        assert_eq!(s["state"], "error", "{s}");
        let errors = s["errors"].as_array().unwrap_or_else(|| panic!("{s}"));
        assert!(errors.iter().any(|e| e.as_str().unwrap_or("").contains("--init-from")), "{s}");
        assert_eq!(remote.tree().await.unwrap(), synced, "the volume lost files");
        let j = remote.journal().await;
        assert!(!j.iter().any(|e| e["event_type"] == "remove"), "removes were journaled");

        phase(&format!("[{round:?}] attach --init-from {round:?}"));
        a.attach_ok(&remote.vol, Some(round)).await;
        if round == InitFrom::Volume {
            let restored = local_tree(&a.dir).unwrap();
            assert_eq!(restored, synced, "{}", tree_diff("dir", &restored, "before", &synced));
            a.wait_idle().await;
            assert_eq!(remote.tree().await.unwrap(), synced, "the volume changed");
        } else {
            assert_eq!(remote.tree().await.unwrap(), Tree::new(), "--init-from local empties the volume");
            a.wait_idle().await;
            assert_eq!(local_tree(&a.dir).unwrap(), Tree::new());
        }
    }
    a.detach().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_init_merges_or_names_differing_paths() {
    let remote = &Volume::start("team-sync-8").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    remote.write("/shared.txt", b"same\n").await;
    remote.write("/vol-only/v.txt", b"only in the volume\n").await;

    phase("both non-empty, the common path identical: auto merges both ways");
    write(&a.p("shared.txt"), b"same\n");
    write(&a.p("local-only/l.txt"), b"only in A\n");
    a.attach_ok(&remote.vol, None).await;
    let t = remote.wait_converged("the union on both sides", &[a.dir.as_path()]).await;
    for p in ["/shared.txt", "/vol-only/v.txt", "/local-only/l.txt"] {
        assert!(t.contains_key(p), "{p} missing after the merge: {t:?}");
    }
    a.wait_idle().await;

    phase("a common path differs: auto refuses naming it, nothing changes");
    write(&b.p("shared.txt"), b"different on B\n");
    write(&b.p("b-only.txt"), b"only in B\n");
    let before_vol = remote.tree().await.unwrap();
    let before_b = local_tree(&b.dir).unwrap();
    let out = b.attach(&remote.vol, None).await;
    let said = out.expect_err("auto init over a differing path succeeded");
    assert!(said.contains("shared.txt"), "the differing path is not named: {said}");
    assert_eq!(remote.tree().await.unwrap(), before_vol, "the volume changed");
    assert_eq!(local_tree(&b.dir).unwrap(), before_b, "B's directory changed");

    phase("--init-from volume then makes B identical to the volume");
    b.attach_ok(&remote.vol, Some(InitFrom::Volume)).await;
    let vol = remote.tree().await.unwrap();
    let bt = local_tree(&b.dir).unwrap();
    assert_eq!(bt, vol, "{}", tree_diff("B", &bt, "volume", &vol));
    assert_eq!(std::fs::read(b.p("shared.txt")).unwrap(), b"same\n");
    remote.wait_converged("all three agree", &[a.dir.as_path(), b.dir.as_path()]).await;
    a.detach().await;
    b.detach().await;
}
