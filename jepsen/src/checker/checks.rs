//! The checks, as pure functions of the history and the fetched final state.
//!
//! Each returns one [`Check`]: valid or not, counts, and up to [`COUNTEREXAMPLES_MAX`] concrete
//! counterexamples. A check with nothing to check says so in `skipped` instead of passing.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::model::{diff, fold, Bootstrap, Journal, Namespace};
use crate::history::{Op, Outcome};

/// Counterexamples kept per check (the total is counted separately).
pub const COUNTEREXAMPLES_MAX: usize = 50;

pub const ACKNOWLEDGED_WRITES: &str = "acknowledged_writes";
pub const JOURNALS_IDENTICAL: &str = "journals_identical";
pub const REAL_TIME_ORDER: &str = "real_time_order";
pub const NAMESPACE_IS_FOLD: &str = "namespace_is_journal_fold";
pub const BOOTSTRAP_PLUS_CHANGES: &str = "bootstrap_plus_changes";
pub const CURSORS: &str = "cursors";
pub const FINAL_STATE: &str = "final_state_fetched";

/// One named check's outcome.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Check {
    pub name: String,
    pub valid: bool,
    /// Set when there was nothing to check (the check then proves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub counts: BTreeMap<String, u64>,
    /// The first [`COUNTEREXAMPLES_MAX`] counterexamples, each with a `kind`.
    pub counterexamples: Vec<Value>,
    /// How many counterexamples there were in all.
    pub counterexamples_total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Check {
    pub fn new(name: &str) -> Check {
        Check {
            name: name.into(),
            valid: true,
            skipped: None,
            counts: BTreeMap::new(),
            counterexamples: Vec::new(),
            counterexamples_total: 0,
            notes: Vec::new(),
        }
    }

    pub fn add(&mut self, key: &str, n: u64) {
        *self.counts.entry(key.to_string()).or_insert(0) += n;
    }

    /// Records a counterexample of `kind` (also counted under `kind`) and invalidates the check.
    pub fn fail(&mut self, kind: &str, mut detail: Value) {
        self.valid = false;
        self.add(kind, 1);
        self.counterexamples_total += 1;
        if self.counterexamples.len() < COUNTEREXAMPLES_MAX {
            if let Value::Object(m) = &mut detail {
                m.insert("kind".into(), json!(kind));
            } else {
                detail = json!({ "kind": kind, "detail": detail });
            }
            self.counterexamples.push(detail);
        }
    }

    pub fn skip(mut self, why: &str) -> Check {
        self.skipped = Some(why.into());
        self
    }
}

/// What an op claims about one piece of content it sent.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// Files-API write, or a replica change of unknown fate: at `path`.
    At,
    /// Replica change accepted at `seq`.
    Accepted(u64),
    /// Replica change refused as a conflict; its content kept at the artifact path (if any).
    Conflict(String),
}

#[derive(Clone, Debug)]
struct Claim<'a> {
    op: &'a Op,
    volume: String,
    path: String,
    sha: String,
    expect: Expect,
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Every piece of content the history's writes sent, with what the op claims became of it.
fn claims(ops: &[Op]) -> (Vec<Claim<'_>>, Vec<Value>) {
    let mut out = Vec::new();
    let mut anomalies = Vec::new();
    for op in ops.iter().filter(|o| !o.is_fault()) {
        match op.f.as_str() {
            "write" => out.push(Claim {
                op,
                volume: s(&op.value, "volume"),
                path: s(&op.value, "path"),
                sha: s(&op.value, "sha256").to_lowercase(),
                expect: Expect::At,
            }),
            "sync_append" => {
                let volume = s(&op.value, "volume");
                let changes = op.value.get("changes").and_then(Value::as_array).cloned().unwrap_or_default();
                for c in changes {
                    let (path, sha) = (s(&c, "path"), s(&c, "sha256").to_lowercase());
                    let mut expect = Expect::At;
                    if op.outcome == Outcome::Ok {
                        let accepted = op.result.get("accepted").and_then(Value::as_array);
                        let conflicts = op.result.get("conflicts").and_then(Value::as_array);
                        if let Some(a) = accepted.into_iter().flatten().find(|a| s(a, "path") == path) {
                            expect = Expect::Accepted(a.get("seq").and_then(Value::as_u64).unwrap_or(0));
                        } else if let Some(c) = conflicts.into_iter().flatten().find(|c| s(c, "path") == path) {
                            expect = Expect::Conflict(s(c, "artifact_path"));
                        } else {
                            anomalies.push(json!({ "op": op.id, "path": path, "sha256": sha,
                                "why": "acknowledged append neither accepted nor conflicted this change" }));
                            continue;
                        }
                    }
                    out.push(Claim { op, volume: volume.clone(), path, sha, expect });
                }
            }
            _ => {}
        }
    }
    (out, anomalies)
}

/// Where a piece of content sits in a journal.
#[derive(Clone, Debug)]
struct Place {
    seq: u64,
    path: String,
    artifact: bool,
}

/// (volume, sha256) → every place it occurs in that volume's journal.
fn index(journals: &BTreeMap<String, Journal>) -> HashMap<(String, String), Vec<Place>> {
    let mut idx: HashMap<(String, String), Vec<Place>> = HashMap::new();
    for (vol, j) in journals {
        for e in j.entries.iter().filter(|e| e.is_file_write()) {
            if let Some(sha) = e.sha256() {
                idx.entry((vol.clone(), sha.to_lowercase())).or_default().push(Place {
                    seq: e.seq,
                    path: e.path.clone(),
                    artifact: e.is_conflict_artifact(),
                });
            }
        }
    }
    idx
}

fn places_json(p: &[Place]) -> Value {
    json!(p
        .iter()
        .map(|p| json!({ "seq": p.seq, "path": p.path, "conflict_artifact": p.artifact }))
        .collect::<Vec<_>>())
}

/// Check 1: every acknowledged write is in its volume's journal exactly once (a conflicted
/// replica change only as its artifact, never at its own path), an indeterminate one at most
/// once, a refused one never; and nothing is in the journal that no op wrote.
///
/// Under journal compaction (`retained_after_seq` > 0) a missing write is only counted lost if
/// it must have landed above the floor: it was invoked after an op whose content is in the
/// retained journal had completed (so its seq is larger than a retained seq).
pub fn acknowledged_writes(ops: &[Op], journals: &BTreeMap<String, Journal>) -> Check {
    let mut c = Check::new(ACKNOWLEDGED_WRITES);
    let (claims, anomalies) = claims(ops);
    for a in anomalies {
        c.fail("unaccounted_change", a);
    }
    if claims.is_empty() {
        return c.skip("no write or sync_append ops");
    }
    let idx = index(journals);
    // Per volume: the earliest completion of an acknowledged op found in the retained journal.
    let mut anchor: HashMap<&str, u64> = HashMap::new();
    for cl in claims.iter().filter(|cl| cl.op.outcome == Outcome::Ok) {
        if idx.contains_key(&(cl.volume.clone(), cl.sha.clone())) {
            let t = anchor.entry(cl.volume.as_str()).or_insert(u64::MAX);
            *t = (*t).min(cl.op.complete_ns);
        }
    }
    let mut groups: BTreeMap<(String, String), Vec<&Claim>> = BTreeMap::new();
    for cl in &claims {
        groups.entry((cl.volume.clone(), cl.sha.clone())).or_default().push(cl);
    }
    for ((vol, sha), group) in &groups {
        let Some(journal) = journals.get(vol) else {
            c.add("unchecked_no_journal", group.len() as u64);
            continue;
        };
        let places: &[Place] = idx.get(&(vol.clone(), sha.clone())).map(Vec::as_slice).unwrap_or(&[]);
        let ops_json = json!(group
            .iter()
            .map(|cl| json!({
                "op": cl.op.id, "f": cl.op.f, "process": cl.op.process, "node": cl.op.node,
                "outcome": cl.op.outcome, "invoke_ns": cl.op.invoke_ns, "complete_ns": cl.op.complete_ns,
            }))
            .collect::<Vec<_>>());
        let detail = |why: &str| {
            json!({ "volume": vol, "path": group[0].path, "sha256": sha, "ops": ops_json,
                "found": places_json(places), "why": why })
        };
        if let Some(ok) = group.iter().find(|cl| cl.op.outcome == Outcome::Ok) {
            c.add("acknowledged", 1);
            let compacted = journal.retained_after_seq > 0;
            match &ok.expect {
                Expect::At | Expect::Accepted(_) => {
                    let at_path = places.iter().filter(|p| p.path == ok.path && !p.artifact).count();
                    if places.is_empty() {
                        let must_be_retained = match ok.expect {
                            Expect::Accepted(seq) => seq > journal.retained_after_seq,
                            _ => !compacted || anchor.get(vol.as_str()).is_some_and(|t| ok.op.invoke_ns > *t),
                        };
                        if must_be_retained {
                            c.fail("lost", detail("acknowledged, not in the journal"));
                        } else {
                            c.add("unverifiable_compacted", 1);
                        }
                    } else if places.len() > 1 {
                        c.fail("duplicated", detail("acknowledged, in the journal more than once"));
                    } else if at_path != 1 {
                        c.fail("misplaced", detail("acknowledged, in the journal at another path"));
                    } else if let Expect::Accepted(seq) = ok.expect {
                        if places[0].seq != seq {
                            c.fail("seq_mismatch", detail(&format!("acknowledged at seq {seq}, journaled at another")));
                        } else {
                            c.add("found_once", 1);
                        }
                    } else {
                        c.add("found_once", 1);
                    }
                }
                Expect::Conflict(artifact) => {
                    c.add("conflicted", 1);
                    if places.iter().any(|p| p.path == ok.path && !p.artifact) {
                        c.fail("conflict_applied", detail("refused as a conflict, yet written at its own path"));
                    } else if artifact.is_empty() {
                        if !places.is_empty() {
                            c.fail("conflict_applied", detail("refused as a conflict without artifact, yet journaled"));
                        }
                    } else if places.len() > 1 {
                        c.fail("duplicated", detail("conflict artifact journaled more than once"));
                    } else if places.is_empty() {
                        if !compacted || anchor.get(vol.as_str()).is_some_and(|t| ok.op.invoke_ns > *t) {
                            c.fail("lost", detail(&format!("conflict artifact {artifact} not in the journal")));
                        } else {
                            c.add("unverifiable_compacted", 1);
                        }
                    } else if places[0].path != *artifact {
                        c.fail("misplaced", detail(&format!("conflict artifact expected at {artifact}")));
                    } else {
                        c.add("found_once", 1);
                    }
                }
            }
        } else if group.iter().any(|cl| cl.op.outcome == Outcome::Info) {
            c.add("indeterminate", 1);
            if places.len() > 1 {
                c.fail("duplicated", detail("indeterminate, in the journal more than once"));
            } else if places.iter().any(|p| p.path != group[0].path && !p.artifact) {
                c.fail("misplaced", detail("indeterminate, in the journal at another path"));
            } else {
                c.add(if places.is_empty() { "indeterminate_absent" } else { "indeterminate_present" }, 1);
            }
        } else {
            c.add("refused", 1);
            if !places.is_empty() {
                c.fail("refused_but_present", detail("refused (fail), yet in the journal"));
            }
        }
    }
    // Content in the journal that no op of the history sent.
    for (vol, j) in journals {
        for e in j.entries.iter().filter(|e| e.is_file_write()) {
            let sha = e.sha256().unwrap_or_default().to_lowercase();
            if !groups.contains_key(&(vol.clone(), sha.clone())) {
                c.fail(
                    "unknown_content",
                    json!({ "volume": vol, "seq": e.seq, "path": e.path, "sha256": sha,
                    "why": "journaled content that no op of the history wrote" }),
                );
            }
        }
    }
    c
}

/// Check 2: for every volume, every node's retained journal is gapless and all nodes agree on
/// the head and on every entry they both retain.
pub fn journals_identical(nodes: &BTreeMap<u64, BTreeMap<String, Journal>>, volumes: &[String]) -> Check {
    let mut c = Check::new(JOURNALS_IDENTICAL);
    if nodes.is_empty() || volumes.is_empty() {
        return c.skip("no node's journal was fetched");
    }
    if nodes.len() == 1 {
        c.notes.push("one node: only gaplessness is checked".into());
    }
    for vol in volumes {
        let have: Vec<(u64, &Journal)> = nodes.iter().filter_map(|(n, js)| js.get(vol).map(|j| (*n, j))).collect();
        for (n, j) in &have {
            c.add("journals", 1);
            c.add("entries", j.entries.len() as u64);
            let mut expect = j.retained_after_seq + 1;
            let mut gapless = true;
            for e in &j.entries {
                if e.seq != expect {
                    c.fail("gap", json!({ "node": n, "volume": vol, "expected_seq": expect, "got_seq": e.seq }));
                    gapless = false;
                    break;
                }
                expect += 1;
            }
            if gapless && expect - 1 != j.head_seq {
                c.fail(
                    "short",
                    json!({ "node": n, "volume": vol, "head_seq": j.head_seq, "last_seq": expect - 1,
                    "why": "the entries end before the head the node reported" }),
                );
            }
        }
        // The reference: the longest journal (ties: lowest node id).
        let Some(&(rn, rj)) = have.iter().max_by_key(|(n, j)| (j.head_seq, std::cmp::Reverse(*n))) else {
            continue;
        };
        for (n, j) in &have {
            if *n == rn {
                continue;
            }
            if j.head_seq != rj.head_seq {
                c.fail(
                    "head_differs",
                    json!({ "volume": vol, "node": n, "head_seq": j.head_seq, "reference_node": rn,
                        "reference_head_seq": rj.head_seq }),
                );
            }
            let from = j.retained_after_seq.max(rj.retained_after_seq) + 1;
            let to = j.head_seq.min(rj.head_seq);
            for seq in from..=to {
                let (a, b) = (j.entry(seq), rj.entry(seq));
                if a != b {
                    c.fail(
                        "entry_differs",
                        json!({ "volume": vol, "seq": seq, "node": n, "entry": a, "reference_node": rn,
                            "reference_entry": b }),
                    );
                    break; // the first difference per node and volume is enough
                }
                c.add("entries_compared", 1);
            }
        }
    }
    c
}

/// Check 3: on each volume, an acknowledged write that completed before another write was
/// invoked has the smaller seq (content located in the reference journal).
pub fn real_time_order(ops: &[Op], journals: &BTreeMap<String, Journal>) -> Check {
    let mut c = Check::new(REAL_TIME_ORDER);
    let (claims, _) = claims(ops);
    let idx = index(journals);
    // The same content sent again (a retry with the same request id) may have been committed by
    // an earlier attempt: an op is taken as invoked when the first op carrying its content was.
    let mut first_invoke: HashMap<(String, String), u64> = HashMap::new();
    for cl in &claims {
        let t = first_invoke.entry((cl.volume.clone(), cl.sha.clone())).or_insert(u64::MAX);
        *t = (*t).min(cl.op.invoke_ns);
    }
    // op id → (volume, min seq, max seq, effective invoke) over its located content.
    let mut located: BTreeMap<u64, (&Op, String, u64, u64, u64)> = BTreeMap::new();
    for cl in &claims {
        let key = (cl.volume.clone(), cl.sha.clone());
        let invoke = first_invoke[&key];
        for p in idx.get(&key).into_iter().flatten() {
            let e = located.entry(cl.op.id).or_insert((cl.op, cl.volume.clone(), p.seq, p.seq, invoke));
            e.2 = e.2.min(p.seq);
            e.3 = e.3.max(p.seq);
            e.4 = e.4.min(invoke);
        }
    }
    let mut per_volume: BTreeMap<&str, Vec<(&Op, u64, u64, u64)>> = BTreeMap::new();
    for (op, vol, lo, hi, invoke) in located.values() {
        per_volume.entry(vol.as_str()).or_default().push((op, *lo, *hi, *invoke));
    }
    if per_volume.is_empty() {
        return c.skip("no write located in any journal");
    }
    for (vol, list) in per_volume {
        // Acknowledged ops by completion time, with the running maximum of their seqs.
        let mut acked: Vec<&(&Op, u64, u64, u64)> =
            list.iter().filter(|(op, _, _, _)| op.outcome == Outcome::Ok).collect();
        acked.sort_by_key(|(op, _, _, _)| op.complete_ns);
        let mut prefix_max: Vec<(u64, &Op)> = Vec::with_capacity(acked.len());
        for (op, _, hi, _) in &acked {
            match prefix_max.last() {
                Some(&(m, mop)) if m >= *hi => prefix_max.push((m, mop)),
                _ => prefix_max.push((*hi, op)),
            }
        }
        for (b, lo, _, invoke) in &list {
            c.add("ops_located", 1);
            let n = acked.partition_point(|(op, _, _, _)| op.complete_ns < *invoke);
            if n == 0 {
                continue;
            }
            let (max_seq, a) = prefix_max[n - 1];
            if max_seq >= *lo {
                c.fail(
                    "order_violation",
                    json!({ "volume": vol,
                        "earlier": { "op": a.id, "f": a.f, "complete_ns": a.complete_ns, "seq": max_seq,
                            "path": a.value.get("path"), "node": a.node },
                        "later": { "op": b.id, "f": b.f, "invoke_ns": invoke, "seq": lo,
                            "path": b.value.get("path"), "node": b.node, "outcome": b.outcome },
                        "why": "acknowledged before the later op was invoked, yet journaled at a larger seq" }),
                );
            }
        }
    }
    c
}

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

/// Check 6: journal readers' cursors never go backwards and pages never skip (per op: a page
/// after `after` starts at `after + 1`, `next_after` ≥ `after`); a reseed 409 only ever answers
/// an `after` below the floor; and linearizable reads never see a volume's head go back in
/// real time.
pub fn cursors(ops: &[Op]) -> Check {
    let mut c = Check::new(CURSORS);
    let reads: Vec<&Op> = ops.iter().filter(|o| !o.is_fault() && o.f == "read_changes").collect();
    if reads.is_empty() {
        return c.skip("no read_changes ops");
    }
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    let mut heads: BTreeMap<String, Vec<(u64, u64, u64, u64)>> = BTreeMap::new(); // (invoke, complete, head, id)
    for op in &reads {
        let after = u(&op.value, "after").unwrap_or(0);
        let vol = s(&op.value, "volume");
        let base = json!({ "op": op.id, "process": op.process, "node": op.node, "volume": vol, "after": after,
            "result": op.result });
        match op.outcome {
            Outcome::Ok => {
                c.add("pages", 1);
                let count = u(&op.result, "count").unwrap_or(0);
                let next = u(&op.result, "next_after").unwrap_or(after);
                let head = u(&op.result, "head_seq").unwrap_or(0);
                if next < after {
                    c.fail("cursor_backwards", base.clone());
                }
                if count > 0 {
                    let (first, last) = (u(&op.result, "first_seq"), u(&op.result, "last_seq"));
                    if first != Some(after + 1) {
                        c.fail("page_skipped", base.clone());
                    }
                    if last.is_some_and(|l| l > head) || last.zip(first).is_some_and(|(l, f)| l - f + 1 != count) {
                        c.fail("page_inconsistent", base.clone());
                    }
                }
                heads.entry(vol).or_default().push((op.invoke_ns, op.complete_ns, head, op.id));
            }
            Outcome::Fail => {
                if let Some(r) = op.result.get("reseed") {
                    c.add("reseeds", 1);
                    let floor = u(r, "retained_after_seq").unwrap_or(0);
                    if after >= floor {
                        c.fail("reseed_at_or_above_floor", base.clone());
                    }
                } else {
                    c.add("failed", 1);
                }
            }
            _ => c.add("indeterminate", 1),
        }
    }
    for (vol, mut list) in heads {
        list.sort_by_key(|x| x.1);
        let mut best: Option<(u64, u64)> = None; // (head, op) of the highest head among completed reads
        let mut by_invoke = list.clone();
        by_invoke.sort_by_key(|x| x.0);
        let mut i = 0;
        for (invoke, _, head, id) in by_invoke {
            while i < list.len() && list[i].1 < invoke {
                if best.is_none_or(|(h, _)| list[i].2 > h) {
                    best = Some((list[i].2, list[i].3));
                }
                i += 1;
            }
            if let Some((h, earlier)) = best {
                if head < h {
                    c.fail(
                        "head_regressed",
                        json!({ "volume": vol, "op": id, "head_seq": head, "earlier_op": earlier, "earlier_head_seq": h,
                            "why": "a read invoked after another completed saw an older head" }),
                    );
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
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
}
