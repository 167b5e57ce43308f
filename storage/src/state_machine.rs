//! The journal state machine: `apply(command) -> response`, deterministic, one `WriteBatch`
//! per command (or per batch of them), plus the read side the API serves from.
//!
//! ```text
//!  apply(pos, cmd) ─▶ validate against current rows ─▶ Txn: journal entry (seq = head + 1),
//!                     namespace + fold rows, volume head, inline blob, applied = pos ─▶ write
//! ```
//!
//! A refused command (missing volume, type clash, …) still moves the applied position and
//! returns a [`Response`] carrying an [`ApplyError`](crate::response::ApplyError); only I/O
//! failures are `Err`.
//!
//! This file owns the [`StateMachine`] handle and its write entry points; the handlers are in
//! `apply/`, the reads in `query.rs`, `maintenance.rs` and `verify.rs`.

use crate::command::Command;
use crate::db::{Cf, Db};
use crate::error::StorageError;
use crate::freezer::Freezer;
use crate::keys;
use crate::records::AppliedMeta;
use crate::response::Response;
use crate::txn::Txn;

pub use crate::apply::ApplyBatch;
pub use crate::records::SOURCE_SANDBOX;
pub use crate::txn::{DIR_MODE as DEFAULT_DIR_MODE, FILE_MODE as DEFAULT_FILE_MODE};

#[derive(Clone)]
pub struct StateMachine {
    db: Db,
    freezer: Freezer,
}

impl StateMachine {
    pub fn new(db: Db) -> Self {
        StateMachine { db, freezer: Default::default() }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Where snapshot requests wait for their frozen namespace.
    pub fn freezer(&self) -> &Freezer {
        &self.freezer
    }

    /// The last applied log position, if any.
    pub fn applied(&self) -> Result<Option<AppliedMeta>, StorageError> {
        self.db.get(Cf::SmMeta, keys::APPLIED)
    }

    /// Records a log position that carries no command (blank or membership entries).
    pub fn apply_marker(&self, pos: &AppliedMeta) -> Result<(), StorageError> {
        Txn::new(&self.db).commit(pos)
    }

    /// Applies one command at log position `pos`, in its own `WriteBatch`.
    pub fn apply(&self, pos: &AppliedMeta, cmd: &Command) -> Result<Response, StorageError> {
        let mut batch = self.begin();
        let response = batch.apply(cmd)?;
        batch.commit(pos)?;
        Ok(response)
    }

    /// Starts one `WriteBatch` that the commands of one or more Raft entries apply into.
    pub fn begin(&self) -> ApplyBatch<'_> {
        ApplyBatch::new(&self.db, &self.freezer)
    }
}
