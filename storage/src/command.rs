//! Commands proposed through Raft and the responses `apply` returns.
//!
//! A command is complete: every id, time and hash in it was decided by the proposer, so
//! applying it on any node, at any time, gives the same result.

use serde::{Deserialize, Serialize};

use crate::records::{ReplicaRecord, SnapshotRecord, TokenRecord, VolumeRecord};
pub use crate::response::{ApplyError, ApplyErrorKind, Response};

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Command {
    #[prost(
        oneof = "CommandKind",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23"
    )]
    pub kind: Option<CommandKind>,
}

#[derive(Clone, PartialEq, prost::Oneof, Serialize, Deserialize)]
pub enum CommandKind {
    #[prost(message, tag = "1")]
    CreateVolume(CreateVolume),
    #[prost(message, tag = "2")]
    DeleteVolume(DeleteVolume),
    #[prost(message, tag = "3")]
    CreateToken(CreateToken),
    #[prost(message, tag = "4")]
    WriteFile(WriteFile),
    #[prost(message, tag = "5")]
    MakeDir(MakeDir),
    #[prost(message, tag = "6")]
    Remove(RemovePath),
    #[prost(message, tag = "7")]
    Move(MovePath),
    #[prost(message, tag = "8")]
    ForkVolume(ForkVolume),
    #[prost(message, tag = "9")]
    Compact(Compact),
    #[prost(message, tag = "10")]
    UpsertReplica(UpsertReplica),
    #[prost(message, tag = "11")]
    UpdateCursor(UpdateCursor),
    #[prost(message, tag = "12")]
    AppendChanges(AppendChanges),
    #[prost(message, tag = "13")]
    ResolveConflict(ResolveConflict),
    #[prost(message, tag = "14")]
    CreateSnapshot(CreateSnapshot),
    #[prost(message, tag = "15")]
    SealSnapshot(SealSnapshot),
    #[prost(message, tag = "16")]
    DeleteSnapshot(DeleteSnapshot),
    #[prost(message, tag = "17")]
    PruneRequests(PruneRequests),
    #[prost(message, tag = "18")]
    RestoreChunk(RestoreChunk),
    #[prost(message, tag = "19")]
    MarkGarbage(MarkGarbage),
    #[prost(message, tag = "20")]
    SweepGarbage(SweepGarbage),
    #[prost(message, tag = "21")]
    SweepDone(SweepDone),
    /// Several commands in one Raft entry (the proposer's group commit); each is applied as if
    /// alone, in order, and answered on its own.
    #[prost(message, tag = "22")]
    Batch(CommandBatch),
    #[prost(message, tag = "23")]
    RevokeToken(RevokeToken),
    #[prost(message, tag = "24")]
    ChangeMode(ChangeMode),
}

/// Commands a proposer coalesced into one Raft entry: one WAL sync and one apply `WriteBatch`
/// serve them all. A refusal of one leaves the others as they would be without it.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct CommandBatch {
    #[prost(message, repeated, tag = "1")]
    pub commands: Vec<Command>,
}

impl From<CommandKind> for Command {
    fn from(kind: CommandKind) -> Self {
        Command { kind: Some(kind) }
    }
}

impl Command {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            None => "empty",
            Some(CommandKind::CreateVolume(_)) => "create_volume",
            Some(CommandKind::DeleteVolume(_)) => "delete_volume",
            Some(CommandKind::CreateToken(_)) => "create_token",
            Some(CommandKind::WriteFile(_)) => "write_file",
            Some(CommandKind::MakeDir(_)) => "make_dir",
            Some(CommandKind::Remove(_)) => "remove",
            Some(CommandKind::Move(_)) => "move",
            Some(CommandKind::ChangeMode(_)) => "change_mode",
            Some(CommandKind::ForkVolume(_)) => "fork_volume",
            Some(CommandKind::Compact(_)) => "compact",
            Some(CommandKind::UpsertReplica(_)) => "upsert_replica",
            Some(CommandKind::UpdateCursor(_)) => "update_cursor",
            Some(CommandKind::AppendChanges(_)) => "append_changes",
            Some(CommandKind::ResolveConflict(_)) => "resolve_conflict",
            Some(CommandKind::CreateSnapshot(_)) => "create_snapshot",
            Some(CommandKind::SealSnapshot(_)) => "seal_snapshot",
            Some(CommandKind::DeleteSnapshot(_)) => "delete_snapshot",
            Some(CommandKind::PruneRequests(_)) => "prune_requests",
            Some(CommandKind::RestoreChunk(_)) => "restore_chunk",
            Some(CommandKind::MarkGarbage(_)) => "mark_garbage",
            Some(CommandKind::SweepGarbage(_)) => "sweep_garbage",
            Some(CommandKind::SweepDone(_)) => "sweep_done",
            Some(CommandKind::Batch(_)) => "batch",
            Some(CommandKind::RevokeToken(_)) => "revoke_token",
        }
    }

    /// Whether this command may share a Raft entry, or an apply `WriteBatch`, with the commands
    /// before it. A snapshot freezes the namespace right after its own commit, so it must end
    /// its `WriteBatch`. A fork and a request prune read committed rows straight from the
    /// store (a whole volume, the expiry index), which would miss the writes of earlier
    /// commands still in the same batch — and each node groups entries into batches its own
    /// way, so the nodes would diverge; they start a batch of their own. A batch is never nested.
    pub fn batchable(&self) -> bool {
        !matches!(
            self.kind,
            Some(CommandKind::CreateSnapshot(_))
                | Some(CommandKind::ForkVolume(_))
                | Some(CommandKind::PruneRequests(_))
                | Some(CommandKind::Batch(_))
        )
    }
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct CreateVolume {
    /// The complete record; `head_seq` and `floor_seq` are 0.
    #[prost(message, optional, tag = "1")]
    pub volume: Option<VolumeRecord>,
}

/// A copy-on-write fork: the new volume starts with the source's namespace and retained
/// journal (content is shared by address, so no bytes are copied).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ForkVolume {
    #[prost(string, tag = "1")]
    pub source_volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    /// The new volume's record; its seqs are taken from the source when applied.
    #[prost(message, optional, tag = "3")]
    pub volume: Option<VolumeRecord>,
}

/// Registers or refreshes a sync replica; an existing one keeps its cursor. Renews its lease
/// and merges its capabilities into the volume's policy.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct UpsertReplica {
    /// Complete but for `last_applied_seq` and `created_at_ms`, which an existing replica keeps.
    #[prost(message, optional, tag = "1")]
    pub replica: Option<ReplicaRecord>,
}

/// Moves a replica's cursor (and renews its lease).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct UpdateCursor {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    #[prost(string, tag = "3")]
    pub replica_id: String,
    #[prost(uint64, tag = "4")]
    pub last_applied_seq: u64,
    #[prost(int64, tag = "5")]
    pub at_ms: i64,
}

/// A replica's batch of changes. Each change ends up applied and journaled, a no-op (nothing to
/// change), or a conflict record; a malformed change was refused before proposing.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct AppendChanges {
    /// `source` is `replica` and `replica_id` is set.
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(string, tag = "2")]
    pub request_id: String,
    /// sha256 of the request's canonical payload, to tell a retry from a reuse of the id.
    #[prost(bytes = "vec", tag = "3")]
    pub fingerprint: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub base_seq: u64,
    #[prost(message, repeated, tag = "5")]
    pub changes: Vec<ReplicaChange>,
}

/// One validated change: paths are clean, content is hashed (inline or already in the store).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ReplicaChange {
    /// create | write | remove | rename | chmod | invalidate
    #[prost(string, tag = "1")]
    pub event_type: String,
    #[prost(string, tag = "2")]
    pub path: String,
    #[prost(string, optional, tag = "3")]
    pub old_path: Option<String>,
    /// `file` or `directory` (create); `file` for write.
    #[prost(string, optional, tag = "4")]
    pub entry_kind: Option<String>,
    #[prost(uint32, optional, tag = "5")]
    pub mode: Option<u32>,
    /// Set for file content (create of a file, write).
    #[prost(string, optional, tag = "6")]
    pub content_ref: Option<String>,
    #[prost(uint64, tag = "7")]
    pub size: u64,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub inline: Option<Vec<u8>>,
    /// Opaque client metadata, JSON text.
    #[prost(string, optional, tag = "9")]
    pub metadata_json: Option<String>,
}

/// Marks a sync conflict resolved or ignored.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ResolveConflict {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    #[prost(string, tag = "3")]
    pub conflict_id: String,
    /// `resolved` or `ignored`.
    #[prost(string, tag = "4")]
    pub status: String,
    #[prost(string, optional, tag = "5")]
    pub resolution: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub note: Option<String>,
    #[prost(int64, tag = "7")]
    pub at_ms: i64,
}

/// Forgets replica request ids stored before `before_ms` (the leader proposes it on a timer).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct PruneRequests {
    #[prost(int64, tag = "1")]
    pub before_ms: i64,
    /// At most this many are forgotten by one command.
    #[prost(uint32, tag = "2")]
    pub limit: u32,
}

/// Retention: drop a volume's journal entries up to `through_seq` and move its floor there.
/// Proposed by the leader on a timer, so every node moves the floor identically.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Compact {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(uint64, tag = "2")]
    pub through_seq: u64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct DeleteVolume {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    /// Delete even while sync replicas hold live leases.
    #[prost(bool, tag = "3")]
    pub force: bool,
    #[prost(int64, tag = "4")]
    pub at_ms: i64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct CreateToken {
    #[prost(bytes = "vec", tag = "1")]
    pub token_sha256: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub token: Option<TokenRecord>,
}

/// Revokes the token stored under `token_sha256` if it is the one with id `id` (the caller
/// looked the hash up by id; the id check makes a stale lookup refuse instead of revoking
/// another token).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RevokeToken {
    #[prost(bytes = "vec", tag = "1")]
    pub token_sha256: Vec<u8>,
    #[prost(string, tag = "2")]
    pub id: String,
}

/// Where a mutation came from, as the journal records it.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Origin {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    /// `sandbox` (files API) or `replica` (sync).
    #[prost(string, tag = "3")]
    pub source: String,
    #[prost(string, optional, tag = "4")]
    pub replica_id: Option<String>,
    #[prost(int64, tag = "5")]
    pub at_ms: i64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct WriteFile {
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(string, tag = "2")]
    pub path: String,
    #[prost(string, tag = "3")]
    pub content_ref: String,
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// Present iff `size <= INLINE_BYTES_MAX`; otherwise the blob store already holds it.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub inline: Option<Vec<u8>>,
    #[prost(uint32, tag = "6")]
    pub mode: u32,
    /// Refused with `path_already_exists` if anything is at `path` (a mount's `O_CREAT|O_EXCL`).
    #[prost(bool, tag = "7")]
    pub exclusive: bool,
}

/// Sets the permission bits of a file or directory (a mount's `chmod`).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ChangeMode {
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(string, tag = "2")]
    pub path: String,
    #[prost(uint32, tag = "3")]
    pub mode: u32,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct MakeDir {
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(string, tag = "2")]
    pub path: String,
    #[prost(bool, tag = "3")]
    pub recursive: bool,
    #[prost(uint32, tag = "4")]
    pub mode: u32,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RemovePath {
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(string, tag = "2")]
    pub path: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct MovePath {
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(string, tag = "2")]
    pub source: String,
    #[prost(string, tag = "3")]
    pub destination: String,
}

/// Creates a volume snapshot record, `pending` at the volume's head; [`SealSnapshot`] makes it
/// `ready` once the manifest is written.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct CreateSnapshot {
    /// Complete but for `seq`, `state` and the totals, which apply and seal fill in.
    #[prost(message, optional, tag = "1")]
    pub snapshot: Option<SnapshotRecord>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SealSnapshot {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub snapshot_id: String,
    #[prost(uint64, tag = "3")]
    pub size_bytes: u64,
    #[prost(uint64, tag = "4")]
    pub files: u64,
    #[prost(uint64, tag = "5")]
    pub directories: u64,
    #[prost(string, tag = "6")]
    pub manifest_sha256: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct DeleteSnapshot {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    #[prost(string, tag = "3")]
    pub snapshot_id: String,
}

/// One bounded chunk of a snapshot restore: part of the difference between the live namespace
/// and the manifest, each operation an ordinary journal entry.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RestoreChunk {
    #[prost(message, optional, tag = "1")]
    pub origin: Option<Origin>,
    #[prost(message, repeated, tag = "2")]
    pub ops: Vec<RestoreOp>,
    /// Set on the last chunk: append an `invalidate` of `/` naming the snapshot.
    #[prost(string, optional, tag = "3")]
    pub finished_snapshot_id: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct RestoreOp {
    /// Remove `path` (and everything below); the other fields are unused.
    #[prost(bool, tag = "1")]
    pub remove: bool,
    #[prost(string, tag = "2")]
    pub path: String,
    /// [`KIND_FILE`](crate::records::KIND_FILE) or [`KIND_DIR`](crate::records::KIND_DIR).
    #[prost(string, tag = "3")]
    pub kind: String,
    #[prost(uint32, tag = "4")]
    pub mode: u32,
    #[prost(uint64, tag = "5")]
    pub size: u64,
    #[prost(string, optional, tag = "6")]
    pub content_ref: Option<String>,
}

/// Blob garbage collection's first step: marks digests found unreferenced, clears marks that are
/// candidates no more (the protocol is in `apply/gc.rs`).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct MarkGarbage {
    /// sha256 digests (32 bytes each) found unreferenced.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub refs: Vec<Vec<u8>>,
    #[prost(int64, tag = "2")]
    pub at_ms: i64,
    /// Marks to drop: digests that are no longer candidates (referenced again, or re-uploaded).
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub clear: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SweepGarbage {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub refs: Vec<Vec<u8>>,
    /// Only marks made at or before this are swept.
    #[prost(int64, tag = "2")]
    pub marked_before_ms: i64,
}

/// The leader has deleted these swept objects: writes may reference the digests again.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SweepDone {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub refs: Vec<Vec<u8>>,
}
