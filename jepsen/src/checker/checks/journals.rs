//! Check 2: every node holds the same gapless journal of every volume.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

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
