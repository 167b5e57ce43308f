//! openraft's network over HTTP: one [`HttpConnection`] per target, prost bodies via
//! [`PeerClient`]. Snapshots go in chunks through openraft's `Chunked` sender, each chunk read
//! from the snapshot file, so a snapshot is never whole in memory.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::codec::vote_from;
use crate::peer_client::{CallError, PeerClient};
use crate::rpc::*;
use crate::typ::*;

#[derive(Clone)]
pub struct HttpNetwork {
    pub peers: PeerClient,
    pub self_id: NodeId,
}

pub struct HttpConnection {
    peers: PeerClient,
    self_id: NodeId,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        HttpConnection { peers: self.peers.clone(), self_id: self.self_id, target, addr: node.addr.clone() }
    }
}

impl HttpConnection {
    fn rpc_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        e: CallError,
    ) -> RPCError<NodeId, Node, E> {
        match e {
            CallError::Unreachable(m) => RPCError::Unreachable(Unreachable::new(&std::io::Error::other(m))),
            CallError::Timeout(_) => {
                RPCError::Timeout(Timeout { action, id: self.self_id, target: self.target, timeout: ttl })
            }
            CallError::Remote(m) => RPCError::Network(NetworkError::new(&std::io::Error::other(m))),
        }
    }

    fn decode_error<E: std::error::Error>(&self, m: String) -> RPCError<NodeId, Node, E> {
        RPCError::Network(NetworkError::new(&std::io::Error::other(m)))
    }
}

impl RaftNetwork<TypeConfig> for HttpConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        let resp: AppendResponse = self
            .peers
            .call(self.target, &self.addr, "/raft/append", &append_to(&rpc), ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::AppendEntries, ttl, e))?;
        append_resp_from(resp).map_err(|m| self.decode_error(m))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        let ttl = option.hard_ttl();
        let resp: SnapshotChunkResponse = self
            .peers
            .call(self.target, &self.addr, "/raft/snapshot", &chunk_to(&rpc), ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::InstallSnapshot, ttl, e))?;
        if let (Some(expect), Some(got)) = (&resp.mismatch_expect, &resp.mismatch_got) {
            let err = RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch_from(expect, got)));
            return Err(RPCError::RemoteError(RemoteError::new(self.target, err)));
        }
        let vote = resp
            .vote
            .as_ref()
            .map(vote_from)
            .ok_or_else(|| self.decode_error("snapshot response without vote".into()))?;
        Ok(InstallSnapshotResponse { vote })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        let resp: VoteResponsePb = self
            .peers
            .call(self.target, &self.addr, "/raft/vote", &vote_req_to(&rpc), ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, ttl, e))?;
        vote_resp_from(resp).map_err(|m| self.decode_error(m))
    }

    fn backoff(&self) -> Backoff {
        // Retry an unreachable peer quickly at first, then settle at one attempt per second.
        Backoff::new((1..).map(|n: u64| Duration::from_millis((100 * n).min(1000))))
    }
}
