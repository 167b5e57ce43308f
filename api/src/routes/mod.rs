//! The router and what its handlers share. A handler parses and validates the request,
//! authorizes the caller, calls one operation of [`crate::ops`] and wraps its typed result in
//! the envelope; it never builds or proposes a command itself (`scripts/check-routes`).

mod append;
mod bootstrap;
mod cluster;
mod conflicts;
mod files;
mod raft;
mod replicas;
mod snapshots;
mod sync;
mod tokens;
mod volumes;
mod watch;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::error::{ApiError, ApiResult};
use crate::observe;
use crate::ops::Consistency;
use crate::state::AppState;

/// Client requests served at once, at most (one budget for every `/api/v1` route); more wait.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;
/// Node-to-node requests served at once, at most: a separate budget, so client load cannot
/// starve heartbeats and votes.
pub const PEER_REQUESTS_IN_FLIGHT_MAX: usize = 256;

pub fn router(state: AppState) -> Router {
    observe::prometheus();
    let api = Router::new()
        .route("/sandboxvolumes", post(volumes::create).get(volumes::list))
        .route("/sandboxvolumes/{id}", get(volumes::get).delete(volumes::delete))
        .route("/sandboxvolumes/{id}/fork", post(volumes::fork))
        .route("/sandboxvolumes/{id}/snapshots", post(snapshots::create).get(snapshots::list))
        .route("/sandboxvolumes/{id}/snapshots/{sid}", get(snapshots::get).delete(snapshots::delete))
        .route("/sandboxvolumes/{id}/snapshots/{sid}/restore", post(snapshots::restore))
        .route("/sandboxvolumes/{id}/files", get(files::read).post(files::write).delete(files::remove))
        .route("/sandboxvolumes/{id}/files/stat", get(files::stat))
        .route("/sandboxvolumes/{id}/files/list", get(files::list))
        .route("/sandboxvolumes/{id}/files/move", post(files::move_path))
        .route("/sandboxvolumes/{id}/files/watch", get(watch::watch))
        .route("/sandboxvolumes/{id}/sync/changes", get(sync::changes))
        .route("/sandboxvolumes/{id}/sync/replay-payload", get(sync::replay_payload))
        .route("/sandboxvolumes/{id}/sync/replicas/{rid}", axum::routing::put(replicas::upsert).get(replicas::get))
        .route("/sandboxvolumes/{id}/sync/replicas/{rid}/cursor", axum::routing::put(replicas::cursor))
        .route("/sandboxvolumes/{id}/sync/replicas/{rid}/changes", post(append::append))
        .route("/sandboxvolumes/{id}/sync/bootstrap", post(bootstrap::create))
        .route("/sandboxvolumes/{id}/sync/bootstrap/archive", get(bootstrap::archive))
        .route("/sandboxvolumes/{id}/sync/conflicts", get(conflicts::list))
        .route("/sandboxvolumes/{id}/sync/conflicts/{cid}", axum::routing::put(conflicts::resolve))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{token_id}", axum::routing::delete(tokens::revoke))
        .route("/cluster", get(cluster::get))
        .route("/cluster/nodes", post(cluster::add_node))
        .route("/cluster/nodes/{node_id}", axum::routing::delete(cluster::remove_node))
        // Router::layer wraps each route on its own; the global layer shares one budget.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(REQUESTS_IN_FLIGHT_MAX));
    let peers = Router::new()
        .route("/append", post(raft::append))
        .route("/vote", post(raft::vote))
        .route("/snapshot", post(raft::snapshot))
        .route("/propose", post(raft::propose))
        .route("/read-index", post(raft::read_index))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(PEER_REQUESTS_IN_FLIGHT_MAX));
    Router::new()
        .nest("/api/v1", api)
        .nest("/raft", peers)
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        .fallback(|| async { ApiError::not_found("route not found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                tideline_types::ErrorCode::BadRequest,
                "method not allowed",
            )
        })
        .layer(axum::middleware::from_fn(crate::request_log::track))
        // Bodies are bounded per route by the extractors, which answer with the envelope.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Parses `consistency=linearizable|local` (default linearizable).
pub(crate) fn consistency(consistency: Option<&str>) -> ApiResult<Consistency> {
    match consistency.unwrap_or("linearizable") {
        "linearizable" | "" => Ok(Consistency::Linearizable),
        "local" => Ok(Consistency::Local),
        other => Err(ApiError::bad_request(format!("invalid consistency {other:?}: use linearizable or local"))),
    }
}

/// Parses a boolean query flag (`true`/`false`/`1`/`0`, absent = false).
pub(crate) fn flag(name: &str, v: Option<&str>) -> ApiResult<bool> {
    match v {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("invalid {name} {other:?}: use true or false"))),
    }
}

/// Parses a page's `limit`: absent, empty or 0 is `default`, above `max` is `max`.
pub(crate) fn page_limit(limit: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    match limit.map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(0) => Ok(default),
            Ok(n) => Ok(n.min(max)),
            Err(_) => Err(ApiError::bad_request(format!("invalid limit {s:?}"))),
        },
    }
}
