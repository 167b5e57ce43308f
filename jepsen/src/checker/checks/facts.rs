//! What each op of the history claims became of the content it sent, and where each piece of
//! content sits in a journal: the facts checks 1 and 3 compare.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::*;

/// What an op claims about one piece of content it sent.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expect {
    /// Files-API write, or a replica change of unknown fate: at `path`.
    At,
    /// Replica change accepted at `seq`.
    Accepted(u64),
    /// Replica change refused as a conflict; its content kept at the artifact path (if any).
    Conflict(String),
}

#[derive(Clone, Debug)]
pub(super) struct Claim<'a> {
    pub(super) op: &'a Op,
    pub(super) volume: String,
    pub(super) path: String,
    pub(super) sha: String,
    pub(super) expect: Expect,
}

/// Every piece of content the history's writes sent, with what the op claims became of it.
pub(super) fn claims(ops: &[Op]) -> (Vec<Claim<'_>>, Vec<Value>) {
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
pub(super) struct Place {
    pub(super) seq: u64,
    pub(super) path: String,
    pub(super) artifact: bool,
}

/// (volume, sha256) → every place it occurs in that volume's journal.
pub(super) fn index(journals: &BTreeMap<String, Journal>) -> HashMap<(String, String), Vec<Place>> {
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

pub(super) fn places_json(p: &[Place]) -> Value {
    json!(p
        .iter()
        .map(|p| json!({ "seq": p.seq, "path": p.path, "conflict_artifact": p.artifact }))
        .collect::<Vec<_>>())
}
