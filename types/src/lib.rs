//! Tideline's shared vocabulary, at the bottom of the workspace: what the server and its
//! clients (the CLI, the sync worker, jepsen, loadgen) must agree on byte for byte.
//!
//! ```text
//!  domain  closed sets of strings as enums: EventType, EntryKind, FileType, AccessMode,
//!          ConflictStatus, Source, ErrorCode, Reason (an error's details.reason),
//!          WatchAction, WatchMessageType — parsed at the edge, written as today's strings
//!  wire    the JSON shapes of the HTTP API (docs/API.md): SandboxVolume, FileInfo,
//!          SyncJournalEntry, SyncReplica, SyncConflict, Snapshot, the envelopes; with the
//!          request bodies (`requests`) and the hand-built answers (`answers`) re-exported
//!  limits  the bounds both sides rely on (body sizes, page sizes, leases), tied together by
//!          compile-time assertions
//!  path, portability, conflict_path
//!          volume paths (cleaning, folding), which names a file system cannot hold, and where
//!          a conflict's content goes: one copy for the server's checks and the sync worker's
//! ```
//!
//! No RocksDB, no tokio, no HTTP: storage records are converted into these shapes by the
//! `api` crate, at the boundary.

pub mod answers;
pub mod conflict_path;
pub mod domain;
pub mod limits;
pub mod path;
pub mod portability;
pub mod requests;
pub mod wire;

pub use domain::{
    AccessMode, ConflictStatus, EntryKind, ErrorCode, EventType, FileType, ParseError, Reason, Source, WatchAction,
    WatchMessageType,
};
