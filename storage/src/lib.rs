//! Tideline's storage layer: the deterministic journal state machine and the blob store.
//!
//! This crate knows nothing of Raft or HTTP. Everything a volume mutation needs is decided
//! by the caller *before* it becomes a [`Command`] (ids, timestamps, content hashes); the
//! [`StateMachine`] turns one command into one RocksDB `WriteBatch`:
//!
//! ```text
//!   Command ──▶ StateMachine::apply ──▶ Txn (checks, journal entry with next seq,
//!                                            namespace + fold rows, applied position)
//!                                    ──▶ one WriteBatch ──▶ RocksDB
//! ```
//!
//! Column families are listed in [`db::Cf`]; every value carries a format version
//! ([`codec`]) and bytes that do not decode are a [`StorageError::Corrupt`], never "absent".

mod append;
pub mod archive;
pub mod blob;
pub mod codec;
pub mod command;
mod conflict_path;
pub mod content_ref;
pub mod db;
pub mod error;
pub mod freezer;
pub mod gc;
pub mod journal_page;
pub mod keys;
pub mod manifest;
pub mod path;
pub mod portability;
pub mod records;
pub mod replay;
pub mod restore;
pub mod snapshot;
pub mod state_machine;
pub mod sync_records;
mod txn;
pub mod volume_snapshot;

pub use blob::BlobStore;
pub use command::{ApplyError, ApplyErrorKind, Command, CommandBatch, CommandKind, Response};
pub use content_ref::ContentRef;
pub use db::{Cf, Db};
pub use error::StorageError;
pub use journal_page::{JournalEntryRef, PageStats};
pub use records::*;
pub use state_machine::{ApplyBatch, StateMachine, VerifyReport};
pub use sync_records::*;
pub use volume_snapshot::*;

/// Content up to this size rides inside the Raft entry; larger content goes to the blob store
/// before the command is proposed.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
