//! Check 6: journal readers never go backwards or skip, and reseeds only answer cursors below
//! the retention floor.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

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
