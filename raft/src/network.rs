//! The Raft network as a one-node cluster sees it: there are no peers to reach, so every RPC
//! fails as `Unreachable`, which openraft treats as a transient peer failure. A node that is
//! the only voter never sends one; the HTTP transport between nodes replaces this factory.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::typ::*;

#[derive(Clone, Default)]
pub struct NoPeers;

pub struct NoPeerConnection {
    target: NodeId,
}

impl NoPeerConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, Node, E> {
        let err = std::io::Error::other(format!(
            "node {} has no transport configured to reach node {}",
            "this", self.target
        ));
        RPCError::Unreachable(Unreachable::new(&err))
    }
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeerConnection;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> Self::Network {
        NoPeerConnection { target }
    }
}

impl RaftNetwork<TypeConfig> for NoPeerConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
