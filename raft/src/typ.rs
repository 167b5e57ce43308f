//! The openraft type configuration and short aliases, so nobody spells
//! `<TypeConfig as RaftTypeConfig>::…`.

use tideline_storage::{Command, Response};

openraft::declare_raft_types!(
    /// Tideline's Raft types: commands in, responses out, snapshots as files.
    pub TypeConfig:
        D            = Command,
        R            = Response,
        NodeId       = u64,
        Node         = openraft::BasicNode,
        Entry        = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        Responder    = openraft::impls::OneshotResponder<TypeConfig>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type EntryPayload = openraft::EntryPayload<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type LogState = openraft::storage::LogState<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, Node>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type LogFlushed = openraft::storage::LogFlushed<TypeConfig>;
