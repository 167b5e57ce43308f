//! The two-way sync worker behind `tideline sync …`: one attachment keeps a local directory and
//! a volume in step.
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
pub mod home;
pub mod index;
pub mod init;
pub mod local;
pub mod plan;
pub mod remote;
pub mod status;
pub mod unsynced;
pub mod worker;
