//! Jepsen-style black-box fault harness for Tideline.
//!
//! The runner spawns the real `tideline` binary as separate processes, drives workloads against
//! them while nemeses inject faults, records every operation in `history.jsonl`, and the checker
//! turns that history plus the nodes' final state into a verdict (`results.json`) and plots.

pub mod checker;
pub mod history;
pub mod report;
pub mod target;

pub mod client;
pub mod cluster;
pub mod nemesis;
pub mod proxy;
pub mod run;
pub mod workload;
