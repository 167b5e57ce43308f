//! Applying commands: [`ApplyBatch`] and the dispatcher, the one place that names every
//! command's handler.
//!
//! ```text
//!  ApplyBatch::apply(cmd) ─▶ savepoint ─▶ dispatch ─▶ apply/<domain>.rs handler ─▶ Txn
//!                                                     refused? roll back to the savepoint
//! ```
//!
//! A new command gets its types in `command.rs`, its handler in the module of its domain (or a
//! new one beside them), and one line in [`dispatch`]. Handlers build on `rules.rs` and `Txn`
//! only; `scripts/check-layers` holds the order of the layers.

mod append;
mod file;
mod gc;
mod replica;
mod restore;
mod snapshot;
mod token;
mod volume;

use crate::command::{Command, CommandKind};
use crate::db::Db;
use crate::error::StorageError;
use crate::freezer::Freezer;
use crate::records::AppliedMeta;
use crate::response::{ApplyError, Response};
use crate::rules::{refuse, Applied, Halt};
use crate::txn::Txn;

/// Commands applied into one `WriteBatch`, written with the position of the last of them:
/// all of them reach RocksDB, or none.
///
/// ```text
///  begin ─▶ apply(cmd) ─▶ savepoint ─▶ handler ─▶ refused? roll back to the savepoint
///        ─▶ apply(cmd) … ─▶ commit(pos): one write ─▶ freeze a snapshot taken in it
/// ```
///
/// A snapshot freezes the namespace right after its own commit, so it ends its batch
/// ([`ApplyBatch::must_commit`]); a caller holding several entries commits there and begins anew.
pub struct ApplyBatch<'a> {
    freezer: &'a Freezer,
    txn: Txn<'a>,
    /// Commands applied so far (refused ones included).
    commands: usize,
    /// The snapshot whose namespace is frozen once this batch is written.
    freeze: Option<(String, String, u64)>,
}

impl<'a> ApplyBatch<'a> {
    /// An empty batch over `db`; snapshots it creates are frozen through `freezer`.
    pub(crate) fn new(db: &'a Db, freezer: &'a Freezer) -> Self {
        ApplyBatch { freezer, txn: Txn::new(db), commands: 0, freeze: None }
    }

    /// Commands applied into this batch so far.
    pub fn len(&self) -> usize {
        self.commands
    }

    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    /// Whether the batch must be committed before another command is applied.
    pub fn must_commit(&self) -> bool {
        self.freeze.is_some()
    }

    /// Applies one command (a [`CommandBatch`](crate::command::CommandBatch) command by
    /// command). A refusal is the command's response and leaves the batch as it was before it;
    /// only I/O failures are `Err`.
    pub fn apply(&mut self, cmd: &Command) -> Result<Response, StorageError> {
        assert!(!self.must_commit(), "a snapshot ends its batch: commit before applying more");
        assert!(
            cmd.batchable() || self.is_empty(),
            "a {} command starts its own batch: commit before applying it",
            cmd.name()
        );
        match &cmd.kind {
            Some(CommandKind::Batch(b)) => {
                let mut batch = Vec::with_capacity(b.commands.len());
                for c in &b.commands {
                    let r = if c.batchable() {
                        self.apply_one(c)?
                    } else {
                        self.commands += 1;
                        Response::err(ApplyError::bad_request(format!("a {} command cannot be batched", c.name())))
                    };
                    batch.push(r);
                }
                Ok(Response { batch, ..Default::default() })
            }
            _ => self.apply_one(cmd),
        }
    }

    fn apply_one(&mut self, cmd: &Command) -> Result<Response, StorageError> {
        self.commands += 1;
        let before = self.txn.savepoint();
        match dispatch(&mut self.txn, cmd) {
            Ok(response) => {
                if let (Some(CommandKind::CreateSnapshot(_)), Some(s)) = (&cmd.kind, &response.snapshot) {
                    self.freeze = Some((s.volume_id.clone(), s.id.clone(), s.seq));
                }
                Ok(response)
            }
            // A refused command changes nothing.
            Err(Halt::Refuse(refusal)) => {
                self.txn.rollback(before);
                Ok(Response::err(refusal))
            }
            Err(Halt::Fail(e)) => Err(e),
        }
    }

    /// Writes every command applied so far and the applied position `pos`, in one batch.
    pub fn commit(self, pos: &AppliedMeta) -> Result<(), StorageError> {
        let db = self.txn.db();
        self.txn.commit(pos)?;
        if let Some((volume, id, seq)) = &self.freeze {
            self.freezer.on_applied(db, volume, id, *seq);
        }
        Ok(())
    }
}

/// The one place that names every command's handler.
fn dispatch(txn: &mut Txn, cmd: &Command) -> Applied {
    match &cmd.kind {
        None => refuse(ApplyError::bad_request("empty command")),
        Some(CommandKind::CreateVolume(c)) => volume::create_volume(txn, c),
        Some(CommandKind::DeleteVolume(c)) => volume::delete_volume(txn, c),
        Some(CommandKind::CreateToken(c)) => token::create_token(txn, c),
        Some(CommandKind::RevokeToken(c)) => token::revoke_token(txn, c),
        Some(CommandKind::WriteFile(c)) => file::write_file(txn, c),
        Some(CommandKind::MakeDir(c)) => file::make_dir(txn, c),
        Some(CommandKind::Remove(c)) => file::remove(txn, c),
        Some(CommandKind::Move(c)) => file::move_path(txn, c),
        Some(CommandKind::ChangeMode(c)) => file::change_mode(txn, c),
        Some(CommandKind::ForkVolume(c)) => volume::fork_volume(txn, c),
        Some(CommandKind::Compact(c)) => volume::compact(txn, c),
        Some(CommandKind::UpsertReplica(c)) => replica::upsert_replica(txn, c),
        Some(CommandKind::UpdateCursor(c)) => replica::update_cursor(txn, c),
        Some(CommandKind::AppendChanges(c)) => append::append_changes(txn, c),
        Some(CommandKind::ResolveConflict(c)) => replica::resolve_conflict(txn, c),
        Some(CommandKind::CreateSnapshot(c)) => snapshot::create_snapshot(txn, c),
        Some(CommandKind::SealSnapshot(c)) => snapshot::seal_snapshot(txn, c),
        Some(CommandKind::DeleteSnapshot(c)) => snapshot::delete_snapshot(txn, c),
        Some(CommandKind::PruneRequests(c)) => replica::prune_requests(txn, c),
        Some(CommandKind::RestoreChunk(c)) => restore::restore_chunk(txn, c),
        Some(CommandKind::MarkGarbage(c)) => gc::mark(txn, c),
        Some(CommandKind::SweepGarbage(c)) => gc::sweep(txn, c),
        Some(CommandKind::SweepDone(c)) => gc::sweep_done(txn, c),
        Some(CommandKind::Batch(_)) => refuse(ApplyError::bad_request("a batch cannot be nested")),
    }
}
