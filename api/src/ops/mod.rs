//! The service layer between HTTP and Raft: every protocol a request runs — decide ids and
//! times, stage content, propose one or several commands, undo what a failed step left — lives
//! here, one module per domain, over one [`Ops`] context. Routes only parse, authorize, call an
//! op and wrap its typed result in the envelope.
//!
//! ```text
//!  route: parse ─▶ authorize (Principal, Ops::team_volume) ─▶ op(&Ops, typed input) ─▶ envelope
//!                                                               │
//!   Ops ── clock (at_ms, created_at, expiries, object ages)     │ stage: inline, or the blob
//!       ── blobs (content by address, manifests)  ◀─────────────┤        store first
//!       ── proposer: dyn Propose ─▶ RaftNode::propose ◀─────────┘ propose: Command ─▶ Response
//!            (a planted bug or a test's fault wraps it)
//!       ── node (reads, read barriers, applied-index watch)
//! ```
//!
//! Domains: [`files`] (stage then propose), [`append`] (a replica's batch), [`snapshots`]
//! (take: create → freeze → manifest → seal, or discard), [`restore`], [`bootstrap`] and its
//! [`archive`], [`volumes`], [`replicas`], [`conflicts`], [`tokens`], [`cluster`] (membership),
//! [`gc`] (collection and compaction on the injected clock).
//!
//! Nothing here reads the system clock: every time comes from [`Ops::now_ms`], so a test that
//! injects a [`ManualClock`](tideline_raft::ManualClock) moves grace periods and TTLs by hand.

mod access;
pub mod append;
pub mod archive;
pub mod bootstrap;
pub mod cluster;
pub mod conflicts;
mod content;
mod context;
pub mod files;
pub mod gc;
#[cfg(feature = "planted-bugs")]
mod planted;
mod proposer;
pub mod replicas;
pub mod restore;
pub mod snapshots;
pub mod tokens;
pub mod volumes;

#[cfg(test)]
mod testing;

pub use access::Consistency;
pub use context::{AppliedWatch, Ops};
#[cfg(feature = "planted-bugs")]
pub use planted::{AckBeforeCommit, PlantedBugs};
pub use proposer::{Propose, RaftProposer};
pub use tideline_raft::{Clock, ManualClock, SystemClock};
