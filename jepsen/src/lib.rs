//! Jepsen-style black-box fault harness for Tideline.
//!
//! The runner spawns the real `tideline` binary as separate processes, drives workloads against
//! them while nemeses inject faults, records every operation in `history.jsonl`, and the checker
//! turns that history plus the nodes' final state into a verdict (`results.json`) and plots.

pub mod history;
pub mod target;
