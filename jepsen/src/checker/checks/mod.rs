//! The checks, as pure functions of the history and the fetched final state.
//!
//! Each returns one [`Check`]: valid or not, counts, and up to [`COUNTEREXAMPLES_MAX`] concrete
//! counterexamples. A check with nothing to check says so in `skipped` instead of passing.
//!
//! ```text
//!  facts.rs     what each op says became of the content it sent, and where content sits
//!  writes.rs    1. acknowledged_writes, 3. real_time_order
//!  journals.rs  2. journals_identical
//!  state.rs     4. namespace_is_fold, 5. bootstrap_plus_changes
//!  cursors.rs   6. cursors
//! ```

use std::collections::BTreeMap;

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

mod cursors;
mod facts;
mod journals;
mod state;
#[cfg(test)]
mod tests;
mod writes;

pub use cursors::cursors;
pub use journals::journals_identical;
pub use state::{bootstrap_plus_changes, namespace_is_fold};
pub use writes::{acknowledged_writes, real_time_order};

/// The string at `k` of a JSON object ("" when absent).
fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}
