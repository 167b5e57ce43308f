//! The checks against hand-made histories and journals: each anomaly is caught and named.

use super::super::model::tests::write as entry;
use super::super::model::{Entry, Kind, Node};
use super::*;

fn op(id: u64, process: i64, f: &str, t: (u64, u64), outcome: Outcome, value: Value, result: Value) -> Op {
    Op {
        id,
        process,
        f: f.into(),
        node: Some(1),
        invoke_ns: t.0,
        complete_ns: t.1,
        outcome,
        value,
        result,
        error: None,
    }
}

fn w(id: u64, t: (u64, u64), outcome: Outcome, path: &str, sha: &str) -> Op {
    op(id, 0, "write", t, outcome, json!({ "volume": "v", "path": path, "sha256": sha, "bytes": 1 }), json!({}))
}

fn journal(entries: Vec<Entry>) -> BTreeMap<String, Journal> {
    let head = entries.last().map_or(0, |e| e.seq);
    let floor = entries.first().map_or(0, |e| e.seq - 1);
    BTreeMap::from([("v".to_string(), Journal { retained_after_seq: floor, head_seq: head, entries })])
}

fn kinds(c: &Check) -> Vec<String> {
    c.counterexamples.iter().map(|x| x["kind"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_complete_history_is_valid() {
    let ops = vec![w(0, (0, 10), Outcome::Ok, "/a", "aa"), w(1, (20, 30), Outcome::Ok, "/b", "bb")];
    let j = journal(vec![entry(1, "/a", "aa"), entry(2, "/b", "bb")]);
    let c = acknowledged_writes(&ops, &j);
    assert!(c.valid, "{c:?}");
    assert_eq!(c.counts["found_once"], 2);
    assert!(real_time_order(&ops, &j).valid);
}

#[test]
fn a_lost_write_is_caught_and_named() {
    let ops = vec![w(0, (0, 10), Outcome::Ok, "/a", "aa"), w(7, (20, 30), Outcome::Ok, "/b", "bb")];
    let c = acknowledged_writes(&ops, &journal(vec![entry(1, "/a", "aa")]));
    assert!(!c.valid);
    assert_eq!(kinds(&c), ["lost"]);
    assert_eq!(c.counterexamples[0]["ops"][0]["op"], 7);
    assert_eq!(c.counterexamples[0]["path"], "/b");
    assert_eq!(c.counterexamples[0]["sha256"], "bb");
}

#[test]
fn a_duplicate_is_caught() {
    let ops = vec![w(0, (0, 10), Outcome::Ok, "/a", "aa")];
    let c = acknowledged_writes(&ops, &journal(vec![entry(1, "/a", "aa"), entry(2, "/a", "aa")]));
    assert_eq!(kinds(&c), ["duplicated"]);
}

#[test]
fn indeterminate_at_most_once_refused_never_and_no_unknown_content() {
    let ops = vec![
        w(0, (0, 10), Outcome::Info, "/a", "aa"),
        w(1, (0, 10), Outcome::Info, "/b", "bb"),
        w(2, (0, 10), Outcome::Fail, "/c", "cc"),
    ];
    let ok = acknowledged_writes(&ops, &journal(vec![entry(1, "/a", "aa")]));
    assert!(ok.valid, "{ok:?}");
    assert_eq!((ok.counts["indeterminate_present"], ok.counts["indeterminate_absent"]), (1, 1));
    let bad = acknowledged_writes(
        &ops,
        &journal(vec![entry(1, "/a", "aa"), entry(2, "/a", "aa"), entry(3, "/c", "cc"), entry(4, "/x", "zz")]),
    );
    assert_eq!(kinds(&bad), ["duplicated", "refused_but_present", "unknown_content"]);
}

#[test]
fn sync_appends_accepted_and_conflicted() {
    let value = json!({ "volume": "v", "replica_id": "r", "request_id": "q", "base_seq": 0,
        "changes": [{ "path": "/s/a", "sha256": "aa" }, { "path": "/s/b", "sha256": "bb" }] });
    let result = json!({ "accepted": [{ "seq": 2, "path": "/s/a", "sha256": "aa" }],
        "conflicts": [{ "path": "/s/b", "reason": "concurrent_update", "artifact_path": "/s/b.conflict-r-seq-1" }] });
    let ops = vec![op(0, 0, "sync_append", (0, 10), Outcome::Ok, value, result)];
    let mut artifact = entry(3, "/s/b.conflict-r-seq-1", "bb");
    artifact.metadata = Some(json!({ "conflict_artifact": true }));
    let good = journal(vec![entry(1, "/s/b", "00"), entry(2, "/s/a", "aa"), artifact.clone()]);
    let mut ops_plus = ops.clone();
    ops_plus.push(w(1, (0, 1), Outcome::Ok, "/s/b", "00"));
    assert!(acknowledged_writes(&ops_plus, &good).valid, "{:?}", acknowledged_writes(&ops_plus, &good));
    // The conflicting content applied at its own path instead of as an artifact.
    let bad = journal(vec![entry(1, "/s/b", "00"), entry(2, "/s/a", "aa"), entry(3, "/s/b", "bb")]);
    assert_eq!(kinds(&acknowledged_writes(&ops_plus, &bad)), ["conflict_applied"]);
    // Accepted at a seq other than the one acknowledged.
    let moved = journal(vec![entry(1, "/s/b", "00"), artifact.clone(), entry(3, "/s/a", "aa")]);
    let mut k = kinds(&acknowledged_writes(&ops_plus, &moved));
    k.sort();
    assert_eq!(k, ["seq_mismatch"]);
}

#[test]
fn compaction_makes_early_writes_unverifiable_not_lost() {
    // Floor at 5: write 0 (done before anything retained was written) may have been compacted;
    // write 2 was invoked after write 1 (retained, seq 6) completed, so it must be retained.
    let ops = vec![
        w(0, (0, 10), Outcome::Ok, "/a", "aa"),
        w(1, (20, 30), Outcome::Ok, "/b", "bb"),
        w(2, (40, 50), Outcome::Ok, "/c", "cc"),
    ];
    let c = acknowledged_writes(&ops, &journal(vec![entry(6, "/b", "bb")]));
    assert_eq!(kinds(&c), ["lost"]);
    assert_eq!(c.counterexamples[0]["path"], "/c");
    assert_eq!(c.counts["unverifiable_compacted"], 1);
}

#[test]
fn an_order_violation_is_caught() {
    // /a acknowledged at t=10, /b invoked at t=20, yet /b got the smaller seq.
    let ops = vec![w(0, (0, 10), Outcome::Ok, "/a", "aa"), w(1, (20, 30), Outcome::Ok, "/b", "bb")];
    let j = journal(vec![entry(1, "/b", "bb"), entry(2, "/a", "aa")]);
    let c = real_time_order(&ops, &j);
    assert_eq!(kinds(&c), ["order_violation"]);
    assert_eq!(c.counterexamples[0]["earlier"]["op"], 0);
    assert_eq!(c.counterexamples[0]["later"]["op"], 1);
    // Concurrent ops may land in either order.
    let ops = vec![w(0, (0, 25), Outcome::Ok, "/a", "aa"), w(1, (20, 30), Outcome::Ok, "/b", "bb")];
    assert!(real_time_order(&ops, &j).valid);
    // A retry of the same content (same request id) acknowledged after /a completed, whose
    // first attempt (invoked before) committed it: not a violation.
    let ops = vec![
        w(0, (0, 100), Outcome::Info, "/b", "bb"),
        w(1, (10, 20), Outcome::Ok, "/a", "aa"),
        w(2, (30, 40), Outcome::Ok, "/b", "bb"),
    ];
    let c = real_time_order(&ops, &j);
    assert!(c.valid, "{c:?}");
}

#[test]
fn a_gap_and_a_divergence_between_nodes_are_caught() {
    let a = journal(vec![entry(1, "/a", "aa"), entry(2, "/b", "bb"), entry(3, "/c", "cc")]);
    let mut gap = a.clone();
    gap.get_mut("v").unwrap().entries.remove(1);
    let mut other = a.clone();
    other.get_mut("v").unwrap().entries[2].path = "/d".into();
    let vols = vec!["v".to_string()];
    assert!(journals_identical(&BTreeMap::from([(1, a.clone()), (2, a.clone())]), &vols).valid);
    let c = journals_identical(&BTreeMap::from([(1, a.clone()), (2, gap)]), &vols);
    assert!(kinds(&c).contains(&"gap".to_string()), "{c:?}");
    let c = journals_identical(&BTreeMap::from([(1, a.clone()), (2, other)]), &vols);
    assert_eq!(kinds(&c), ["entry_differs"]);
    assert_eq!(c.counterexamples[0]["seq"], 3);
    let mut short = a.clone();
    let j = short.get_mut("v").unwrap();
    j.entries.pop();
    j.head_seq = 2;
    assert_eq!(kinds(&journals_identical(&BTreeMap::from([(1, a), (2, short)]), &vols)), ["head_differs"]);
}

#[test]
fn namespace_and_bootstrap_checks() {
    let j = journal(vec![entry(1, "/d/a", "aa"), entry(2, "/b", "bb"), entry(3, "/d/a", "cc")]);
    let j = &j["v"];
    let file = |sha: &str| Node { kind: Kind::File, sha256: Some(sha.into()), mode: 0o644 };
    let dir = Node { kind: Kind::Dir, sha256: None, mode: 0o755 };
    let ns: Namespace =
        [("/b".to_string(), file("bb")), ("/d".into(), dir.clone()), ("/d/a".into(), file("cc"))].into();
    let mut c = Check::new(NAMESPACE_IS_FOLD);
    namespace_is_fold(1, "v", j, &ns, None, &mut c);
    assert!(c.valid, "{c:?}");
    let mut stale = ns.clone();
    stale.insert("/d/a".into(), file("aa"));
    namespace_is_fold(2, "v", j, &stale, None, &mut c);
    assert_eq!(kinds(&c), ["namespace_differs"]);

    let boot = Bootstrap {
        replay_after_seq: 1,
        tree: [("/d".to_string(), dir.clone()), ("/d/a".to_string(), file("aa"))].into(),
    };
    let mut c = Check::new(BOOTSTRAP_PLUS_CHANGES);
    bootstrap_plus_changes(1, "v", j, &ns, &boot, &mut c);
    assert!(c.valid, "{c:?}");
    let mut wrong = boot.clone();
    wrong.replay_after_seq = 2; // claims a later freeze than its content
    bootstrap_plus_changes(1, "v", j, &ns, &wrong, &mut c);
    assert_eq!(kinds(&c), ["bootstrap_plus_changes_differs", "archive_differs_from_journal_prefix"]);
}

#[test]
fn cursors_backwards_skips_and_bogus_reseeds_are_caught() {
    let read = |id, t, after: u64, outcome, result: Value| {
        op(id, 1, "read_changes", t, outcome, json!({ "volume": "v", "after": after }), result)
    };
    let page = |first: u64, last: u64, head: u64| json!({ "count": last - first + 1, "first_seq": first, "last_seq": last, "next_after": last, "head_seq": head });
    assert!(cursors(&[]).skipped.is_some());
    let good = vec![
        read(0, (0, 1), 0, Outcome::Ok, page(1, 5, 9)),
        read(1, (2, 3), 5, Outcome::Ok, page(6, 9, 9)),
        read(2, (4, 5), 0, Outcome::Fail, json!({ "reseed": { "retained_after_seq": 3, "head_seq": 9 } })),
    ];
    assert!(cursors(&good).valid, "{:?}", cursors(&good));
    let bad = vec![
        read(
            0,
            (0, 1),
            5,
            Outcome::Ok,
            json!({ "count": 0, "first_seq": null, "last_seq": null, "next_after": 4, "head_seq": 9 }),
        ),
        read(1, (2, 3), 5, Outcome::Ok, page(7, 9, 9)),
        read(2, (4, 5), 6, Outcome::Fail, json!({ "reseed": { "retained_after_seq": 3, "head_seq": 9 } })),
        read(
            3,
            (6, 7),
            9,
            Outcome::Ok,
            json!({ "count": 0, "first_seq": null, "last_seq": null, "next_after": 9, "head_seq": 8 }),
        ),
    ];
    assert_eq!(
        kinds(&cursors(&bad)),
        ["cursor_backwards", "page_skipped", "reseed_at_or_above_floor", "head_regressed"]
    );
}
