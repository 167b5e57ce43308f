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
use axum::routing::post;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::observe;
use crate::ops::Consistency;
use crate::state::AppState;

/// Client requests served at once, at most (one budget for every `/api/v1` route); more wait.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;
/// Node-to-node requests served at once, at most: a separate budget, so client load cannot
/// starve heartbeats and votes.
pub const PEER_REQUESTS_IN_FLIGHT_MAX: usize = 256;

/// Every client route with its description: `utoipa_axum::routes!` registers a handler and its
/// `#[utoipa::path]` together (the handlers of one path in one call), so the served routes and
/// `GET /openapi.json` cannot disagree. No `.route(` here: that would serve an undescribed route.
fn described() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(volumes::create, volumes::list))
        .routes(routes!(volumes::get, volumes::delete))
        .routes(routes!(volumes::fork))
        .routes(routes!(snapshots::create, snapshots::list))
        .routes(routes!(snapshots::get, snapshots::delete))
        .routes(routes!(snapshots::restore))
        .routes(routes!(files::read, files::write, files::remove))
        .routes(routes!(files::stat))
        .routes(routes!(files::list))
        .routes(routes!(files::move_path))
        .routes(routes!(files::chmod))
        .routes(routes!(watch::watch))
        .routes(routes!(sync::changes))
        .routes(routes!(sync::replay_payload))
        .routes(routes!(replicas::upsert, replicas::get))
        .routes(routes!(replicas::cursor))
        .routes(routes!(append::append))
        .routes(routes!(bootstrap::create))
        .routes(routes!(bootstrap::archive))
        .routes(routes!(conflicts::list))
        .routes(routes!(conflicts::resolve))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(cluster::get))
        .routes(routes!(cluster::add_node))
        .routes(routes!(cluster::remove_node))
        // Router::layer wraps each route on its own; the global layer shares one budget.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(REQUESTS_IN_FLIGHT_MAX));
    OpenApiRouter::new()
        .nest("/api/v1", api)
        .routes(routes!(observe::healthz))
        .routes(routes!(observe::readyz))
        .routes(routes!(observe::metrics))
        .routes(routes!(crate::openapi::serve))
}

/// The OpenAPI document of [`described`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, paths) = described().split_for_parts();
    crate::openapi::document(paths)
}

pub fn router(state: AppState) -> Router {
    observe::prometheus();
    let (described, _) = described().split_for_parts();
    let peers = Router::new()
        .route("/append", post(raft::append))
        .route("/vote", post(raft::vote))
        .route("/snapshot", post(raft::snapshot))
        .route("/propose", post(raft::propose))
        .route("/read-index", post(raft::read_index))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(PEER_REQUESTS_IN_FLIGHT_MAX));
    described
        .nest("/raft", peers)
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
