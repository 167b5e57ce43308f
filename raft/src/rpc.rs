//! The Raft RPCs between nodes as prost messages, and their conversions to openraft's types.
//!
//! ```text
//!  POST /raft/append    AppendRequest    → AppendResponse
//!  POST /raft/vote      VoteRequestPb    → VoteResponsePb
//!  POST /raft/snapshot  SnapshotChunk    → SnapshotChunkResponse   (one chunk per request)
//!  POST /raft/propose   Command          → ProposeResponse         (a follower forwarding)
//!  POST /raft/read-index (empty)         → ReadIndexResponse       (a follower's linearizable read)
//! ```

use openraft::error::SnapshotMismatch;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest, VoteResponse};
use openraft::SnapshotSegmentId;
use tideline_storage::{Command, Response};

use crate::codec::*;
use crate::typ::*;

/// Header carrying the shared cluster secret on every node-to-node request.
pub const SECRET_HEADER: &str = "x-tideline-cluster-secret";
pub const CONTENT_TYPE: &str = "application/x-protobuf";

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendRequest {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<VoteRecord>,
    #[prost(message, optional, tag = "2")]
    pub prev_log_id: Option<LogIdRecord>,
    #[prost(message, repeated, tag = "3")]
    pub entries: Vec<EntryRecord>,
    #[prost(message, optional, tag = "4")]
    pub leader_commit: Option<LogIdRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendResponse {
    /// 0 success, 1 partial success (`matching`), 2 conflict, 3 higher vote (`vote`).
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(message, optional, tag = "2")]
    pub matching: Option<LogIdRecord>,
    #[prost(message, optional, tag = "3")]
    pub vote: Option<VoteRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteRequestPb {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<VoteRecord>,
    #[prost(message, optional, tag = "2")]
    pub last_log_id: Option<LogIdRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VoteResponsePb {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<VoteRecord>,
    #[prost(bool, tag = "2")]
    pub vote_granted: bool,
    #[prost(message, optional, tag = "3")]
    pub last_log_id: Option<LogIdRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotChunk {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<VoteRecord>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<SnapshotHeaderRecord>,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "5")]
    pub done: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SegmentPb {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(uint64, tag = "2")]
    pub offset: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotChunkResponse {
    #[prost(message, optional, tag = "1")]
    pub vote: Option<VoteRecord>,
    /// Set when the receiver expected another segment: the sender restarts from offset 0.
    #[prost(message, optional, tag = "2")]
    pub mismatch_expect: Option<SegmentPb>,
    #[prost(message, optional, tag = "3")]
    pub mismatch_got: Option<SegmentPb>,
}

/// Why a forwarded request failed on the receiving node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoteRefusal {
    /// The receiver is not the leader either; it names the one it knows.
    #[prost(uint64, optional, tag = "1")]
    pub leader_id: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub leader_addr: Option<String>,
    #[prost(string, tag = "3")]
    pub message: String,
    /// The request was certainly not proposed: the sender may try it again.
    #[prost(bool, tag = "4")]
    pub retry_safe: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposeResponse {
    #[prost(message, optional, tag = "1")]
    pub response: Option<Response>,
    #[prost(message, optional, tag = "2")]
    pub refusal: Option<RemoteRefusal>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadIndexResponse {
    /// The log index a linearizable read must wait for (0: nothing committed yet).
    #[prost(uint64, tag = "1")]
    pub read_index: u64,
    #[prost(message, optional, tag = "2")]
    pub refusal: Option<RemoteRefusal>,
}

/// A forwarded proposal.
pub type ProposeRequest = Command;

fn req_vote(v: &Option<VoteRecord>) -> Result<Vote, String> {
    v.as_ref().map(vote_from).ok_or_else(|| "missing vote".to_string())
}

pub fn append_to(r: &AppendEntriesRequest<TypeConfig>) -> AppendRequest {
    AppendRequest {
        vote: Some(vote_to(&r.vote)),
        prev_log_id: r.prev_log_id.as_ref().map(log_id_to),
        entries: r.entries.iter().map(entry_to).collect(),
        leader_commit: r.leader_commit.as_ref().map(log_id_to),
    }
}

pub fn append_from(r: AppendRequest) -> Result<AppendEntriesRequest<TypeConfig>, String> {
    Ok(AppendEntriesRequest {
        vote: req_vote(&r.vote)?,
        prev_log_id: r.prev_log_id.as_ref().map(log_id_from),
        entries: r.entries.into_iter().map(entry_from).collect::<Result<_, _>>()?,
        leader_commit: r.leader_commit.as_ref().map(log_id_from),
    })
}

pub fn append_resp_to(r: &AppendEntriesResponse<NodeId>) -> AppendResponse {
    match r {
        AppendEntriesResponse::Success => AppendResponse { kind: 0, ..Default::default() },
        AppendEntriesResponse::PartialSuccess(m) => {
            AppendResponse { kind: 1, matching: m.as_ref().map(log_id_to), vote: None }
        }
        AppendEntriesResponse::Conflict => AppendResponse { kind: 2, ..Default::default() },
        AppendEntriesResponse::HigherVote(v) => AppendResponse { kind: 3, matching: None, vote: Some(vote_to(v)) },
    }
}

pub fn append_resp_from(r: AppendResponse) -> Result<AppendEntriesResponse<NodeId>, String> {
    Ok(match r.kind {
        0 => AppendEntriesResponse::Success,
        1 => AppendEntriesResponse::PartialSuccess(r.matching.as_ref().map(log_id_from)),
        2 => AppendEntriesResponse::Conflict,
        3 => AppendEntriesResponse::HigherVote(req_vote(&r.vote)?),
        k => return Err(format!("unknown append response kind {k}")),
    })
}

pub fn vote_req_to(r: &VoteRequest<NodeId>) -> VoteRequestPb {
    VoteRequestPb { vote: Some(vote_to(&r.vote)), last_log_id: r.last_log_id.as_ref().map(log_id_to) }
}

pub fn vote_req_from(r: VoteRequestPb) -> Result<VoteRequest<NodeId>, String> {
    Ok(VoteRequest { vote: req_vote(&r.vote)?, last_log_id: r.last_log_id.as_ref().map(log_id_from) })
}

pub fn vote_resp_to(r: &VoteResponse<NodeId>) -> VoteResponsePb {
    VoteResponsePb {
        vote: Some(vote_to(&r.vote)),
        vote_granted: r.vote_granted,
        last_log_id: r.last_log_id.as_ref().map(log_id_to),
    }
}

pub fn vote_resp_from(r: VoteResponsePb) -> Result<VoteResponse<NodeId>, String> {
    Ok(VoteResponse {
        vote: req_vote(&r.vote)?,
        vote_granted: r.vote_granted,
        last_log_id: r.last_log_id.as_ref().map(log_id_from),
    })
}

pub fn meta_to(m: &SnapshotMeta) -> SnapshotHeaderRecord {
    SnapshotHeaderRecord {
        last_log_id: m.last_log_id.as_ref().map(log_id_to),
        last_membership: Some(stored_membership_to(&m.last_membership)),
        snapshot_id: m.snapshot_id.clone(),
    }
}

pub fn meta_from(r: &SnapshotHeaderRecord) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: r.last_log_id.as_ref().map(log_id_from),
        last_membership: r.last_membership.as_ref().map(stored_membership_from).unwrap_or_default(),
        snapshot_id: r.snapshot_id.clone(),
    }
}

pub fn chunk_to(r: &InstallSnapshotRequest<TypeConfig>) -> SnapshotChunk {
    SnapshotChunk {
        vote: Some(vote_to(&r.vote)),
        meta: Some(meta_to(&r.meta)),
        offset: r.offset,
        data: r.data.clone(),
        done: r.done,
    }
}

pub fn chunk_from(r: SnapshotChunk) -> Result<InstallSnapshotRequest<TypeConfig>, String> {
    Ok(InstallSnapshotRequest {
        vote: req_vote(&r.vote)?,
        meta: meta_from(r.meta.as_ref().ok_or("snapshot chunk without meta")?),
        offset: r.offset,
        data: r.data,
        done: r.done,
    })
}

pub fn mismatch_to(m: &SnapshotMismatch) -> (SegmentPb, SegmentPb) {
    (
        SegmentPb { id: m.expect.id.clone(), offset: m.expect.offset },
        SegmentPb { id: m.got.id.clone(), offset: m.got.offset },
    )
}

pub fn mismatch_from(expect: &SegmentPb, got: &SegmentPb) -> SnapshotMismatch {
    SnapshotMismatch {
        expect: SnapshotSegmentId { id: expect.id.clone(), offset: expect.offset },
        got: SnapshotSegmentId { id: got.id.clone(), offset: got.offset },
    }
}
