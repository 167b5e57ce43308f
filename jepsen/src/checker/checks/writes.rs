//! Checks 1 and 3: acknowledged writes are in the journal exactly once, in real-time order.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::facts::{claims, index, places_json, Claim, Expect, Place};
use super::*;

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
