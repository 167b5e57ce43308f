//! `tideline-sync`: the two-way sync engine behind `tideline sync …`; one attachment keeps a
//! local directory and a volume in step. A library: failures are [`SyncError`]s (the CLI maps
//! them onto exit codes) and long work is reported through [`Progress`] (the CLI draws bars).
//!
//! ```text
//!  local dir ──notify + rescan──▶ plan (scan vs index) ──append changes (base_seq = cursor)──▶ volume
//!  local dir ◀──temp + rename── apply ◀──long-poll sync/changes (after = cursor)───────────── volume
//!                    └─ barrier (syncfs) ─▶ index + cursor (crash-safe log) ◀──┘
//! ```
//!
//! The index records what the worker last agreed with the volume for every path; a local
//! difference from it is an edit to upload, a remote entry is applied only over a clean path.

pub mod apply;
pub mod core;
pub mod error;
pub mod home;
pub mod index;
pub mod init;
pub mod local;
pub mod plan;
pub mod progress;
pub mod remote;
pub mod status;
pub mod unsynced;
pub mod worker;

pub use error::{SyncError, SyncResult};
pub use progress::{Meter, Progress, Silent, Task};
