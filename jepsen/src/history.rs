//! The recorded history of a run: `history.jsonl`, one completed operation per line.
//!
//! Every client operation and every fault is one [`Op`] with its invoke and completion times
//! (nanoseconds since the run started). Workers append ops as they complete; ops still in flight
//! when the run ends are written with `outcome = "info"` (indeterminate). The checker and the
//! report read the file back; nothing else is shared between the runner and the checker.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The server acknowledged it: it must be in the history of the volume exactly once.
    Ok,
    /// The server refused it definitely (a 4xx, or a 5xx documented as "nothing applied").
    Fail,
    /// Unknown (timeout, connection reset): it may be present at most once.
    Info,
    /// Faults only: the fault was put in place (and later healed).
    Installed,
    /// Faults only: the fault was not attempted (e.g. no leader to isolate).
    Skipped,
    /// Faults only: the fault may or may not have taken effect.
    Indeterminate,
}

/// One operation: a client call (`process` ≥ 0) or a fault window (`process` = -1, "nemesis").
///
/// Client `f` values and their `value` / `result` shapes:
/// - `"write"` (files API) — value `{"volume","path","sha256","bytes"}`; result `{}` or `{"seq"}`.
/// - `"sync_append"` (replica changes) — value `{"volume","replica_id","request_id","base_seq",
///   "changes":[{"path","sha256"}]}`; result `{"accepted":[{"seq","path","sha256"}],
///   "conflicts":[{"path","reason","artifact_path"}]}`.
/// - `"read_changes"` (journal paging) — value `{"volume","after"}`; result
///   `{"count","first_seq","last_seq","next_after","head_seq"}` or, on the reseed 409,
///   `{"reseed":{"retained_after_seq","head_seq"}}` with outcome `fail`.
///
/// Fault `f` values: `"kill"`, `"pause"`, `"partition"`, `"membership"`, `"object_store"`; `value`
/// says what was done (`{"kind","targets":[node ids],…}`); `invoke_ns`..`complete_ns` is the
/// window during which the fault was in effect (installed → healed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub process: i64,
    pub f: String,
    /// The node the call was sent to (client ops), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
    #[serde(default)]
    pub value: Value,
    #[serde(default)]
    pub result: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    pub fn is_fault(&self) -> bool {
        self.process < 0
    }
}

/// Appends ops to `history.jsonl` as they complete; shared by every worker of a run.
pub struct Recorder {
    start: Instant,
    out: Mutex<(u64, BufWriter<std::fs::File>)>,
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let file = std::fs::File::create(path)?;
        Ok(Recorder { start: Instant::now(), out: Mutex::new((0, BufWriter::new(file))) })
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Writes `op` with the next id (the id field of `op` is ignored) and returns that id.
    pub fn record(&self, mut op: Op) -> std::io::Result<u64> {
        let mut out = self.out.lock().expect("history lock");
        op.id = out.0;
        out.0 += 1;
        serde_json::to_writer(&mut out.1, &op)?;
        out.1.write_all(b"\n")?;
        Ok(op.id)
    }

    pub fn flush(&self) -> std::io::Result<()> {
        self.out.lock().expect("history lock").1.flush()
    }
}

/// Reads a whole `history.jsonl` back.
pub fn load(path: &Path) -> anyhow::Result<Vec<Op>> {
    let file = std::fs::File::open(path)?;
    let mut ops = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        ops.push(serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("history line {}: {e}", n + 1))?);
    }
    Ok(ops)
}
