//! The checker: the recorded history plus every node's final state → a [`Verdict`].
//!
//! ```text
//!  history.jsonl ─────────────────────────────┐
//!  every node (direct, consistency=local):    ├─▶ checks (pure functions) ─▶ Verdict
//!    bootstrap + archive, journal, namespace ─┘      └─ final-state.json (what was compared)
//! ```
//!
//! Checks (each a named entry of the verdict; see `jepsen/README.md`):
//! 1. `acknowledged_writes` — every acknowledged write (files API, accepted replica change) is in
//!    the journal exactly once; indeterminate at most once; refused never; a conflicted change
//!    only as its artifact; no journaled content that nobody wrote.
//! 2. `journals_identical` — every node's journal of every volume is gapless and the same.
//! 3. `real_time_order` — a write acknowledged before another was invoked has the smaller seq.
//! 4. `namespace_is_journal_fold` — each node's namespace is the fold of its journal.
//! 5. `bootstrap_plus_changes` — each node's bootstrap archive plus later changes is its namespace.
//! 6. `cursors` — journal readers never go backwards or skip; reseeds only below the floor.
//!
//! Plus `final_state_fetched`: every node answered for every volume. Checks 1 and 3 read the
//! reference journal of a volume: the longest one (ties: the lowest node id); check 2 makes sure
//! the others equal it.

pub mod checks;
pub mod fetch;
pub mod model;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use checks::Check;
pub use fetch::FinalState;
use model::Journal;

use crate::history::{self, Op};
use crate::target::Target;

/// The outcome of a run: valid iff every check is.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Verdict {
    pub valid: bool,
    pub checks: Vec<Check>,
    /// The nodes whose final state was compared.
    pub nodes: Vec<u64>,
    pub volumes: Vec<String>,
    /// Ops in the history (client ops and faults).
    pub ops: u64,
}

impl Verdict {
    /// The check called `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check: `name: valid|INVALID|skipped (…)` with its counterexample total.
    pub fn summary(&self) -> String {
        let mut out = format!("verdict: {}\n", if self.valid { "valid" } else { "INVALID" });
        for c in &self.checks {
            let state = match (&c.skipped, c.valid) {
                (Some(why), _) => format!("skipped ({why})"),
                (None, true) => "valid".into(),
                (None, false) => format!("INVALID ({} counterexamples)", c.counterexamples_total),
            };
            out.push_str(&format!("  {}: {state} {:?}\n", c.name, c.counts));
        }
        out
    }
}

/// Reads `dir/history.jsonl`, fetches every node's final state, writes it to
/// `dir/final-state.json`, and checks.
pub async fn check(dir: &Path, target: &Target) -> anyhow::Result<Verdict> {
    let ops = history::load(&dir.join("history.jsonl")).context("load history.jsonl")?;
    let state = fetch::fetch_all(target).await;
    let file = std::fs::File::create(dir.join("final-state.json")).context("create final-state.json")?;
    serde_json::to_writer(std::io::BufWriter::new(file), &state).context("write final-state.json")?;
    Ok(verdict(&ops, &state, &target.volumes))
}

/// The per-volume reference journal: the longest (ties: lowest node id).
fn reference(state: &FinalState, volumes: &[String]) -> BTreeMap<String, Journal> {
    let mut out: BTreeMap<String, Journal> = BTreeMap::new();
    for vol in volumes {
        let best = state
            .nodes
            .iter()
            .filter_map(|(n, s)| s.journals.get(vol).map(|j| (*n, j)))
            .max_by_key(|(n, j)| (j.head_seq, std::cmp::Reverse(*n)));
        if let Some((_, j)) = best {
            out.insert(vol.clone(), j.clone());
        }
    }
    out
}

/// Every check over a history and fetched state (pure: no I/O).
pub fn verdict(ops: &[Op], state: &FinalState, volumes: &[String]) -> Verdict {
    let mut fetched = Check::new(checks::FINAL_STATE);
    fetched.add("nodes", state.nodes.len() as u64);
    fetched.add("volumes", volumes.len() as u64);
    fetched.notes.extend(state.notes.iter().cloned());
    for e in &state.errors {
        fetched.fail("fetch_failed", e.clone());
    }
    if state.nodes.is_empty() {
        fetched = fetched.skip("no nodes in the target");
    }

    let reference = reference(state, volumes);
    let writes = checks::acknowledged_writes(ops, &reference);
    let journals: BTreeMap<u64, BTreeMap<String, Journal>> =
        state.nodes.iter().map(|(n, s)| (*n, s.journals.clone())).collect();
    let identical = checks::journals_identical(&journals, volumes);
    let order = checks::real_time_order(ops, &reference);

    let mut fold = Check::new(checks::NAMESPACE_IS_FOLD);
    let mut boot = Check::new(checks::BOOTSTRAP_PLUS_CHANGES);
    for (n, s) in &state.nodes {
        for vol in volumes {
            let (Some(j), Some(ns)) = (s.journals.get(vol), s.namespaces.get(vol)) else {
                fold.add("unchecked_not_fetched", 1);
                boot.add("unchecked_not_fetched", 1);
                continue;
            };
            checks::namespace_is_fold(*n, vol, j, ns, s.bootstraps.get(vol), &mut fold);
            match s.bootstraps.get(vol) {
                Some(b) => checks::bootstrap_plus_changes(*n, vol, j, ns, b, &mut boot),
                None => boot.add("unchecked_not_fetched", 1),
            }
        }
    }
    if fold.counts.get("namespaces").copied().unwrap_or(0) == 0 {
        fold = fold.skip("no namespace could be compared with its journal");
    }
    if boot.counts.get("bootstraps").copied().unwrap_or(0) == 0 {
        boot = boot.skip("no bootstrap could be compared with its namespace");
    }
    let cursors = checks::cursors(ops);

    let checks = vec![fetched, writes, identical, order, fold, boot, cursors];
    Verdict {
        valid: checks.iter().all(|c| c.valid),
        checks,
        nodes: state.nodes.keys().copied().collect(),
        volumes: volumes.to_vec(),
        ops: ops.len() as u64,
    }
}

/// A verdict of a run whose final state could not be examined at all.
pub fn unchecked(why: &str) -> Verdict {
    let mut c = Check::new(checks::FINAL_STATE);
    c.fail("fetch_failed", json!({ "error": why }));
    Verdict { valid: false, checks: vec![c], nodes: Vec::new(), volumes: Vec::new(), ops: 0 }
}

#[cfg(test)]
mod tests {
    use super::fetch::NodeState;
    use super::model::tests::write as entry;
    use super::model::{Kind, Node};
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn verdict_over_three_nodes_flags_a_diverged_node_and_a_lost_write() {
        let j = Journal { retained_after_seq: 0, head_seq: 1, entries: vec![entry(1, "/a", "aa")] };
        let ns: model::Namespace =
            [("/a".to_string(), Node { kind: Kind::File, sha256: Some("aa".into()), mode: 0o644 })].into();
        let node = NodeState {
            journals: [("v".to_string(), j.clone())].into(),
            namespaces: [("v".to_string(), ns.clone())].into(),
            bootstraps: [("v".to_string(), model::Bootstrap { replay_after_seq: 1, tree: ns.clone() })].into(),
        };
        let state = FinalState {
            nodes: [(1, node.clone()), (2, node.clone()), (3, node.clone())].into(),
            errors: vec![],
            notes: vec![],
        };
        let w = |id, path: &str, sha: &str| Op {
            id,
            process: 0,
            f: "write".into(),
            node: Some(1),
            invoke_ns: id * 10,
            complete_ns: id * 10 + 5,
            outcome: Outcome::Ok,
            value: json!({ "volume": "v", "path": path, "sha256": sha, "bytes": 1 }),
            result: json!({}),
            error: None,
        };
        let vols = vec!["v".to_string()];
        let v = verdict(&[w(0, "/a", "aa")], &state, &vols);
        assert!(v.valid, "{}", v.summary());
        assert!(v.check(checks::CURSORS).unwrap().skipped.is_some());

        let v = verdict(&[w(0, "/a", "aa"), w(1, "/b", "bb")], &state, &vols);
        assert!(!v.valid);
        assert_eq!(v.check(checks::ACKNOWLEDGED_WRITES).unwrap().counts["lost"], 1);

        let mut bad = state.clone();
        let n3 = bad.nodes.get_mut(&3).unwrap();
        n3.journals.get_mut("v").unwrap().entries[0].path = "/z".into();
        let v = verdict(&[w(0, "/a", "aa")], &bad, &vols);
        assert!(!v.check(checks::JOURNALS_IDENTICAL).unwrap().valid);
        assert!(!v.check(checks::NAMESPACE_IS_FOLD).unwrap().valid, "node 3's namespace is not its fold");
        let json = serde_json::to_string(&v).unwrap();
        let back: Verdict = serde_json::from_str(&json).unwrap();
        assert_eq!(back.checks.len(), v.checks.len());
    }
}
