//! prost records for openraft's types as they are persisted (log entries, vote, log ids,
//! membership, snapshot meta). Decoding never panics: bad bytes are a `StorageError`.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{CommittedLeaderId, ErrorSubject, ErrorVerb, StorageIOError};
use tideline_storage::Command;

use crate::typ::*;

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogIdRecord {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    #[prost(uint64, tag = "3")]
    pub index: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteRecord {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    #[prost(bool, tag = "3")]
    pub committed: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeSetRecord {
    #[prost(uint64, repeated, tag = "1")]
    pub ids: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeAddrRecord {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub addr: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MembershipRecord {
    #[prost(message, repeated, tag = "1")]
    pub configs: Vec<NodeSetRecord>,
    #[prost(message, repeated, tag = "2")]
    pub nodes: Vec<NodeAddrRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredMembershipRecord {
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogIdRecord>,
    #[prost(message, optional, tag = "2")]
    pub membership: Option<MembershipRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryRecord {
    #[prost(message, optional, tag = "1")]
    pub log_id: Option<LogIdRecord>,
    #[prost(oneof = "PayloadRecord", tags = "2, 3")]
    pub payload: Option<PayloadRecord>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
#[allow(clippy::large_enum_variant)] // prost's oneof: boxing would change every call site, not the bytes
pub enum PayloadRecord {
    #[prost(message, tag = "2")]
    Normal(Command),
    #[prost(message, tag = "3")]
    Membership(MembershipRecord),
}

/// Snapshot file header: the meta openraft needs back when it reads a snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotHeaderRecord {
    #[prost(message, optional, tag = "1")]
    pub last_log_id: Option<LogIdRecord>,
    #[prost(message, optional, tag = "2")]
    pub last_membership: Option<StoredMembershipRecord>,
    #[prost(string, tag = "3")]
    pub snapshot_id: String,
}

pub fn log_id_to(l: &LogId) -> LogIdRecord {
    LogIdRecord { term: l.leader_id.term, node_id: l.leader_id.node_id, index: l.index }
}

pub fn log_id_from(r: &LogIdRecord) -> LogId {
    LogId::new(CommittedLeaderId::new(r.term, r.node_id), r.index)
}

pub fn vote_to(v: &Vote) -> VoteRecord {
    VoteRecord { term: v.leader_id.term, node_id: v.leader_id.node_id, committed: v.committed }
}

pub fn vote_from(r: &VoteRecord) -> Vote {
    if r.committed {
        Vote::new_committed(r.term, r.node_id)
    } else {
        Vote::new(r.term, r.node_id)
    }
}

pub fn membership_to(m: &Membership) -> MembershipRecord {
    MembershipRecord {
        configs: m.get_joint_config().iter().map(|s| NodeSetRecord { ids: s.iter().copied().collect() }).collect(),
        nodes: m.nodes().map(|(id, n)| NodeAddrRecord { id: *id, addr: n.addr.clone() }).collect(),
    }
}

pub fn membership_from(r: &MembershipRecord) -> Membership {
    let configs: Vec<BTreeSet<u64>> = r.configs.iter().map(|s| s.ids.iter().copied().collect()).collect();
    let nodes: BTreeMap<u64, Node> = r.nodes.iter().map(|n| (n.id, Node { addr: n.addr.clone() })).collect();
    Membership::new(configs, nodes)
}

pub fn stored_membership_to(m: &StoredMembership) -> StoredMembershipRecord {
    StoredMembershipRecord {
        log_id: m.log_id().as_ref().map(log_id_to),
        membership: Some(membership_to(m.membership())),
    }
}

pub fn stored_membership_from(r: &StoredMembershipRecord) -> StoredMembership {
    let membership = r.membership.as_ref().map(membership_from).unwrap_or_default();
    StoredMembership::new(r.log_id.as_ref().map(log_id_from), membership)
}

pub fn entry_to(e: &Entry) -> EntryRecord {
    let payload = match &e.payload {
        EntryPayload::Blank => None,
        EntryPayload::Normal(cmd) => Some(PayloadRecord::Normal(cmd.clone())),
        EntryPayload::Membership(m) => Some(PayloadRecord::Membership(membership_to(m))),
    };
    EntryRecord { log_id: Some(log_id_to(&e.log_id)), payload }
}

pub fn entry_from(r: EntryRecord) -> Result<Entry, String> {
    let log_id = r.log_id.as_ref().map(log_id_from).ok_or("log entry without a log id")?;
    let payload = match r.payload {
        None => EntryPayload::Blank,
        Some(PayloadRecord::Normal(cmd)) => EntryPayload::Normal(cmd),
        Some(PayloadRecord::Membership(m)) => EntryPayload::Membership(membership_from(&m)),
    };
    Ok(Entry { log_id, payload })
}

/// Maps a storage failure into openraft's error for the given subject and verb.
pub fn sto_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}
