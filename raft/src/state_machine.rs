//! openraft's `RaftStateMachine` over `tideline_storage::StateMachine`, with snapshots as files.
//!
//! Snapshots live in `<dir>/current.snap` (built via `tideline_storage::snapshot` from a
//! RocksDB snapshot, so the apply loop is never stalled); a received snapshot is copied into
//! the directory, verified, installed, then made current.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend};
use prost::Message;
use tideline_durable::AtomicFile;
use tideline_storage::{snapshot, AppliedMeta, Db, Response, StateMachine};

use crate::codec::*;
use crate::typ::*;

const CURRENT: &str = "current.snap";

pub struct StateMachineStore {
    sm: StateMachine,
    dir: PathBuf,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// `membership` encoded, stored with every applied position.
    membership_bytes: Vec<u8>,
    snapshot_seq: Arc<AtomicU64>,
}

fn sm_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    sto_err(ErrorSubject::StateMachine, verb, e)
}

fn snap_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    sto_err(ErrorSubject::Snapshot(None), verb, e)
}

impl StateMachineStore {
    /// Opens the state machine over `db`, keeping snapshot files in `dir`.
    pub fn open(db: Db, dir: &Path) -> Result<Self, tideline_storage::StorageError> {
        std::fs::create_dir_all(dir)?;
        remove_stale_temp_files(dir)?;
        snapshot::recover_interrupted_install(&db)?;
        let sm = StateMachine::new(db);
        let mut store = StateMachineStore {
            sm,
            dir: dir.to_path_buf(),
            last_applied: None,
            membership: StoredMembership::default(),
            membership_bytes: Vec::new(),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        };
        store.reload()?;
        Ok(store)
    }

    /// The read side, for the API.
    pub fn state_machine(&self) -> StateMachine {
        self.sm.clone()
    }

    fn reload(&mut self) -> Result<(), tideline_storage::StorageError> {
        let applied = self.sm.applied()?;
        self.last_applied =
            applied.as_ref().map(|a| LogId::new(openraft::CommittedLeaderId::new(a.term, a.leader_id), a.index));
        let record = match &applied {
            Some(a) if !a.membership.is_empty() => StoredMembershipRecord::decode(a.membership.as_slice())
                .map_err(|e| tideline_storage::StorageError::corrupt("sm_meta", b"applied", e))?,
            _ => StoredMembershipRecord::default(),
        };
        self.membership = stored_membership_from(&record);
        self.membership_bytes = stored_membership_to(&self.membership).encode_to_vec();
        Ok(())
    }

    fn position(&self, log_id: &LogId) -> AppliedMeta {
        AppliedMeta {
            index: log_id.index,
            term: log_id.leader_id.term,
            leader_id: log_id.leader_id.node_id,
            membership: self.membership_bytes.clone(),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Every entry of this call goes into one WriteBatch (one RocksDB write), committed with
        // the last entry's position; a snapshot command ends its batch early.
        let mut out = Vec::new();
        let mut batch = self.sm.begin();
        let mut pending: Option<LogId> = None;
        for entry in entries {
            if let Some(prev) = self.last_applied {
                assert!(entry.log_id.index > prev.index, "apply goes backwards: {} after {}", entry.log_id, prev);
            }
            let response = match &entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    self.membership_bytes = stored_membership_to(&self.membership).encode_to_vec();
                    Response::default()
                }
                EntryPayload::Normal(cmd) => {
                    if !cmd.batchable() && !batch.is_empty() {
                        if let Some(at) = pending.take() {
                            let pos = self.position(&at);
                            std::mem::replace(&mut batch, self.sm.begin())
                                .commit(&pos)
                                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
                        }
                    }
                    let r = batch.apply(cmd).map_err(|e| sm_err(ErrorVerb::Write, e))?;
                    let appended = if r.batch.is_empty() {
                        u64::from(r.seq > 0)
                    } else {
                        r.batch.iter().filter(|b| b.seq > 0).count() as u64
                    };
                    metrics::counter!("tideline_journal_appends_total").increment(appended);
                    metrics::counter!("tideline_commands_applied_total").increment(r.batch.len().max(1) as u64);
                    let conflicts: usize = std::iter::once(&r)
                        .chain(&r.batch)
                        .filter_map(|x| x.append.as_ref())
                        .map(|a| a.conflicts.len())
                        .sum();
                    if conflicts > 0 {
                        metrics::counter!("tideline_sync_conflicts_total").increment(conflicts as u64);
                    }
                    r
                }
            };
            self.last_applied = Some(entry.log_id);
            pending = Some(entry.log_id);
            if batch.must_commit() {
                let pos = self.position(&entry.log_id);
                std::mem::replace(&mut batch, self.sm.begin()).commit(&pos).map_err(|e| sm_err(ErrorVerb::Write, e))?;
                pending = None;
            }
            out.push(response);
        }
        if let Some(at) = pending {
            let pos = self.position(&at);
            batch.commit(&pos).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { db: self.sm.db().clone(), dir: self.dir.clone(), seq: self.snapshot_seq.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut received = (*snapshot).into_std().await;
        let db = self.sm.db().clone();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> Result<(), tideline_storage::StorageError> {
            // Keep our own copy: the received handle may be a file we do not own. It becomes
            // current only once installed; a crash before that leaves the old one.
            let mut copy = AtomicFile::create(&dir.join(CURRENT), 0o644)?;
            received.seek(SeekFrom::Start(0))?;
            std::io::copy(&mut received, &mut copy)?;
            snapshot::install(&db, copy.file_mut())?;
            copy.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, std::io::Error::other(e.to_string())))?
        .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        self.reload().map_err(|e| sm_err(ErrorVerb::Read, e))?;
        if self.last_applied != meta.last_log_id {
            return Err(snap_err(
                ErrorVerb::Read,
                std::io::Error::other(format!(
                    "installed snapshot is at {:?} but its meta says {:?}",
                    self.last_applied, meta.last_log_id
                )),
            ));
        }
        // The snapshot's membership is the meta's, whatever its bytes carried.
        self.membership = meta.last_membership.clone();
        self.membership_bytes = stored_membership_to(&self.membership).encode_to_vec();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        open_snapshot(&self.dir.join(CURRENT)).await
    }
}

/// Opens a snapshot file and reads its meta; `None` if there is none.
async fn open_snapshot(path: &Path) -> Result<Option<Snapshot>, StorageError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(snap_err(ErrorVerb::Read, e)),
    };
    let header = snapshot::read_header(&mut file).map_err(|e| snap_err(ErrorVerb::Read, e))?;
    let rec = SnapshotHeaderRecord::decode(header.as_slice())
        .map_err(|e| snap_err(ErrorVerb::Read, tideline_storage::StorageError::corrupt("snapshot", b"header", e)))?;
    let meta = SnapshotMeta {
        last_log_id: rec.last_log_id.as_ref().map(log_id_from),
        last_membership: rec.last_membership.as_ref().map(stored_membership_from).unwrap_or_default(),
        snapshot_id: rec.snapshot_id,
    };
    file.seek(SeekFrom::Start(0)).map_err(|e| snap_err(ErrorVerb::Read, e))?;
    Ok(Some(Snapshot { meta, snapshot: Box::new(tokio::fs::File::from_std(file)) }))
}

/// Removes what a build or an install cut short by a crash left in `dir`: an `AtomicFile`'s temp
/// file, or the `*.tmp` files of older versions. Nothing else writes there, and nothing is
/// building or installing while the store opens.
fn remove_stale_temp_files(dir: &Path) -> std::io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if tideline_durable::is_temp_name(&name) || name.ends_with(".tmp") {
            tracing::info!(file = %name, "removing a snapshot temp file left by a crash");
            std::fs::remove_file(item.path())?;
        }
    }
    Ok(())
}

/// Builds snapshots off the apply task, from a RocksDB snapshot.
pub struct SnapshotBuilder {
    db: Db,
    dir: PathBuf,
    seq: Arc<AtomicU64>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let db = self.db.clone();
        let dir = self.dir.clone();
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || -> Result<(), tideline_storage::StorageError> {
            let mut out = AtomicFile::create(&dir.join(CURRENT), 0o644)?;
            snapshot::build(&db, &mut out, |applied| {
                let (last_log_id, membership) = match applied {
                    None => (None, StoredMembershipRecord::default()),
                    Some(a) => (
                        Some(LogIdRecord { term: a.term, node_id: a.leader_id, index: a.index }),
                        StoredMembershipRecord::decode(a.membership.as_slice())
                            .map_err(|e| tideline_storage::StorageError::corrupt("sm_meta", b"applied", e))?,
                    ),
                };
                let id = match &last_log_id {
                    Some(l) => format!("{}-{}-{n}", l.term, l.index),
                    None => format!("0-0-{n}"),
                };
                Ok(SnapshotHeaderRecord { last_log_id, last_membership: Some(membership), snapshot_id: id }
                    .encode_to_vec())
            })?;
            out.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, std::io::Error::other(e.to_string())))?
        .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        open_snapshot(&self.dir.join(CURRENT))
            .await?
            .ok_or_else(|| snap_err(ErrorVerb::Read, std::io::Error::other("snapshot vanished after build")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn temp_files_a_crash_left_are_swept_and_a_build_leaves_only_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snapshots");
        std::fs::create_dir_all(&snaps).unwrap();
        for stale in [".current.snap.4242.0.tmp", "build-3.tmp", "install.tmp"] {
            std::fs::write(snaps.join(stale), "half a snapshot").unwrap();
        }
        std::fs::write(snaps.join("notes"), "not ours to remove").unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let mut store = StateMachineStore::open(db, &snaps).unwrap();
        assert_eq!(names(&snaps), ["notes"]);

        let built = store.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(names(&snaps), ["current.snap", "notes"]);
        let current = store.get_current_snapshot().await.unwrap().expect("a current snapshot");
        assert_eq!(current.meta.snapshot_id, built.meta.snapshot_id);
    }
}
