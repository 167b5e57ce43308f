//! `/raft/*`: the node-to-node endpoints (Raft RPCs, forwarded proposals, read index).
//! Every request must carry the cluster secret, and over mutual TLS come on a connection whose
//! client certificate the cluster CA signed; a peer without them is refused with 401.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use openraft::error::{InstallSnapshotError, RaftError};
use prost::Message;
use tideline_raft::peer_client::{FROM_HEADER, PEER_BODY_BYTES_MAX};
use tideline_raft::rpc::*;
use tideline_raft::ProposeError;
use tideline_storage::{Command, CommandKind};

use crate::error::{ApiError, ApiResult};
use crate::extract::read_body;
use crate::state::AppState;
use crate::tls::Remote;

/// Checks the secret (constant time) and the fault filter, then reads the prost body.
async fn admit<M: Message + Default>(st: &AppState, req: Request) -> ApiResult<M> {
    if st.peer_cert_required {
        let remote = req.extensions().get::<ConnectInfo<Remote>>();
        if !remote.is_some_and(|r| r.0.peer_verified) {
            return Err(ApiError::unauthorized("peer certificate required (mutual TLS with the cluster CA)"));
        }
    }
    let headers: &HeaderMap = req.headers();
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if st.cluster_secret.is_empty() || !constant_time_eq(given, st.cluster_secret.as_bytes()) {
        return Err(ApiError::unauthorized("missing or wrong cluster secret"));
    }
    let from = headers.get(FROM_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if from.is_some_and(|f| st.ops.node().peers().faults.blocks(f)) {
        return Err(ApiError::unavailable("cut off by the fault filter"));
    }
    let body = read_body(req, PEER_BODY_BYTES_MAX, "raft message").await?;
    M::decode(body).map_err(|e| ApiError::bad_request(format!("undecodable raft message: {e}")))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn proto(m: impl Message) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], Bytes::from(m.encode_to_vec())).into_response()
}

fn fatal(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("raft: {e}"))
}

pub async fn append(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let rpc = append_from(admit(&st, req).await?).map_err(ApiError::bad_request)?;
    let resp = st.ops.node().raft().append_entries(rpc).await.map_err(fatal)?;
    Ok(proto(append_resp_to(&resp)))
}

pub async fn vote(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let rpc = vote_req_from(admit(&st, req).await?).map_err(ApiError::bad_request)?;
    let resp = st.ops.node().raft().vote(rpc).await.map_err(fatal)?;
    Ok(proto(vote_resp_to(&resp)))
}

pub async fn snapshot(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let rpc = chunk_from(admit(&st, req).await?).map_err(ApiError::bad_request)?;
    // Receiving a chunk is not cancel-safe in openraft 0.9: the file position moves before
    // the stream's offset does, so a chunk cut off by a sender's timeout (dropping this
    // handler) would make the retried chunk land at the wrong place and corrupt the snapshot.
    // Run it to completion in its own task; a retry waits for it and finds a consistent offset.
    let raft = st.ops.node().raft().clone();
    let received = tokio::spawn(async move { raft.install_snapshot(rpc).await })
        .await
        .map_err(|e| ApiError::internal(format!("snapshot chunk task: {e}")))?;
    match received {
        Ok(resp) => Ok(proto(SnapshotChunkResponse {
            vote: Some(tideline_raft::codec::vote_to(&resp.vote)),
            ..Default::default()
        })),
        Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => {
            let (expect, got) = mismatch_to(&m);
            Ok(proto(SnapshotChunkResponse { vote: None, mismatch_expect: Some(expect), mismatch_got: Some(got) }))
        }
        Err(RaftError::Fatal(e)) => Err(fatal(e)),
    }
}

fn refusal(e: ProposeError, retry_safe: bool) -> RemoteRefusal {
    match e {
        ProposeError::NotLeader { leader_id, leader_addr } => {
            RemoteRefusal { leader_id, leader_addr, message: "not the leader".into(), retry_safe }
        }
        ProposeError::Unavailable(m) => RemoteRefusal { leader_id: None, leader_addr: None, message: m, retry_safe },
    }
}

/// A proposal forwarded by a follower's proposer (one command or a whole batch): it joins this
/// node's group commit if this node leads, and is never forwarded again.
pub async fn propose(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let cmd: Command = admit(&st, req).await?;
    let (commands, batched) = match cmd.kind {
        Some(CommandKind::Batch(b)) => (b.commands, true),
        _ => (vec![cmd], false),
    };
    Ok(proto(match st.ops.node().propose_forwarded(commands).await {
        Ok(mut responses) if !batched && responses.len() == 1 => {
            ProposeResponse { response: responses.pop(), refusal: None }
        }
        Ok(batch) => ProposeResponse {
            response: Some(tideline_storage::Response { batch, ..Default::default() }),
            refusal: None,
        },
        Err(f) => ProposeResponse { response: None, refusal: Some(refusal(f.error, f.retry_safe)) },
    }))
}

/// The index a follower must have applied to serve a linearizable read.
pub async fn read_index(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let _: ReadIndexResponse = admit(&st, req).await?;
    Ok(proto(match st.ops.node().read_index_local().await {
        Ok(index) => ReadIndexResponse { read_index: index, refusal: None },
        Err(e) => ReadIndexResponse { read_index: 0, refusal: Some(refusal(e, true)) },
    }))
}
