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
//!
//! Modules are layered, each importing only from the layers below it (`scripts/check-layers`
//! holds the table and fails on an upward import or a cycle):
//!
//! ```text
//!   lib (re-exports)
//!   query, maintenance, verify      reads over the applied state (impl StateMachine)
//!   state_machine                   the handle: begin / apply / commit
//!   apply                           ApplyBatch and the dispatcher, naming every handler
//!   apply::{append, restore}        handlers that replay namespace changes
//!   apply::{volume, file, replica, snapshot, gc, token}   one handler module per domain
//!   rules                           what every handler checks and writes alike
//!   txn                             one command's writes, read back through an overlay
//!   db, snapshot, manifest, …       the database and what reads it outside apply
//!   command, response, records, keys, codec, path, …   types, key layouts, pure helpers
//! ```

mod apply;
pub mod archive;
pub mod blob;
pub mod codec;
pub mod command;
pub mod content_ref;
pub mod db;
pub mod error;
pub mod freezer;
pub mod journal_page;
pub mod keys;
mod maintenance;
pub mod manifest;
mod query;
pub mod records;
pub mod replay;
mod response;
mod rules;
pub mod snapshot;
pub mod state_machine;
pub mod sync_records;
mod txn;
mod verify;

pub use apply::ApplyBatch;
pub use blob::BlobStore;
pub use command::{Command, CommandBatch, CommandKind, CreateSnapshot, DeleteSnapshot, SealSnapshot};
pub use content_ref::ContentRef;
pub use db::{Cf, Db};
pub use error::StorageError;
pub use journal_page::{JournalEntryRef, PageStats};
pub use records::*;
pub use response::{ApplyError, ApplyErrorKind, Response};
pub use state_machine::StateMachine;
pub use sync_records::*;
pub use verify::VerifyReport;

/// Content up to this size rides inside the Raft entry; larger content goes to the blob store
/// before the command is proposed.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
