//! Checks 4 and 5: each node's namespace is the fold of its journal, and its bootstrap archive
//! plus the later changes is that namespace too.

use serde_json::json;

use super::*;

/// Check 4: each node's namespace equals the fold of its journal — from seq 1, or from its
/// bootstrap when the journal is compacted.
pub fn namespace_is_fold(
    node: u64,
    vol: &str,
    journal: &Journal,
    namespace: &Namespace,
    bootstrap: Option<&Bootstrap>,
    c: &mut Check,
) {
    let expected = if journal.retained_after_seq == 0 {
        fold(Namespace::new(), &journal.entries)
    } else {
        match bootstrap.filter(|b| b.replay_after_seq >= journal.retained_after_seq) {
            Some(b) => fold(b.tree.clone(), journal.entries.iter().filter(|e| e.seq > b.replay_after_seq)),
            None => {
                c.add("unchecked_compacted_without_bootstrap", 1);
                return;
            }
        }
    };
    c.add("namespaces", 1);
    c.add("paths", namespace.len() as u64);
    let (diffs, total) = diff(&expected, namespace, 10);
    if total > 0 {
        c.fail(
            "namespace_differs",
            json!({ "node": node, "volume": vol, "differences": total, "first": diffs,
                "why": "expected = fold of the journal, actual = listed namespace" }),
        );
    }
}

/// Check 5: each node's bootstrap archive plus the journal after its `replay_after_seq` equals
/// the namespace; with an uncompacted journal, the archive also equals the fold up to it.
pub fn bootstrap_plus_changes(
    node: u64,
    vol: &str,
    journal: &Journal,
    namespace: &Namespace,
    bootstrap: &Bootstrap,
    c: &mut Check,
) {
    let s = bootstrap.replay_after_seq;
    if journal.retained_after_seq > s {
        c.add("unchecked_compacted_past_bootstrap", 1);
        return;
    }
    c.add("bootstraps", 1);
    c.add("archive_paths", bootstrap.tree.len() as u64);
    let later = fold(bootstrap.tree.clone(), journal.entries.iter().filter(|e| e.seq > s));
    let (diffs, total) = diff(&later, namespace, 10);
    if total > 0 {
        c.fail(
            "bootstrap_plus_changes_differs",
            json!({ "node": node, "volume": vol, "replay_after_seq": s, "differences": total, "first": diffs,
                "why": "expected = archive + changes after replay_after_seq, actual = listed namespace" }),
        );
    }
    if journal.retained_after_seq == 0 {
        let prefix = fold(Namespace::new(), journal.entries.iter().filter(|e| e.seq <= s));
        let (diffs, total) = diff(&prefix, &bootstrap.tree, 10);
        if total > 0 {
            c.fail(
                "archive_differs_from_journal_prefix",
                json!({ "node": node, "volume": vol, "replay_after_seq": s, "differences": total, "first": diffs,
                    "why": "expected = fold of the journal through replay_after_seq, actual = archive" }),
            );
        }
    }
}
