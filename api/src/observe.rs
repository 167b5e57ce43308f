//! Health, readiness and Prometheus metrics.
//!
//! ```text
//!  GET /healthz  process up                         (always 200 while serving)
//!  GET /readyz   in a cluster with a leader, caught up  (200, or 503 with the reason)
//!  GET /metrics  Prometheus text: raft gauges (refreshed per scrape), journal appends,
//!                request latencies by route and status
//! ```

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::openapi::Success;
use crate::state::AppState;
use crate::wire::ErrorEnvelope;

/// A node more than this many entries behind its own log is not ready.
pub const READY_APPLY_LAG_ENTRIES_MAX: u64 = 1000;
/// A leader that has not heard from a quorum for this long is not ready (it may be cut off).
pub const READY_QUORUM_ACK_MS_MAX: u64 = 2000;

/// The process-wide Prometheus recorder (installed once, on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let builder = PrometheusBuilder::new().set_buckets(&buckets).expect("non-empty buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// Describes every metric and registers each counter at zero, so a scrape shows the whole set
/// from the first request on, not only what this node happened to do since it started (a node
/// that caught up by snapshot has appended nothing yet).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("tideline_journal_appends_total", "Journal entries applied on this node");
    describe_counter!("tideline_commands_applied_total", "State-machine commands applied on this node");
    describe_counter!("tideline_proposals_forwarded_total", "Commands this node forwarded to the leader");
    describe_counter!("tideline_raft_log_syncs_total", "Raft log WAL syncs (one per group of appends)");
    describe_counter!("tideline_raft_log_sync_errors_total", "Raft log WAL syncs that failed");
    describe_counter!("tideline_object_store_errors_total", "Object-store operations that failed, by operation");
    describe_counter!("tideline_sync_conflicts_total", "Sync conflicts recorded by replica appends on this node");
    describe_counter!("tideline_bootstraps_total", "Sync bootstrap snapshots taken through this node");
    describe_counter!("tideline_gc_swept_blobs_total", "Content blobs the garbage collector swept");
    describe_gauge!("tideline_build_info", "1, labelled with this binary's version and commit");
    for name in [
        "tideline_journal_appends_total",
        "tideline_commands_applied_total",
        "tideline_proposals_forwarded_total",
        "tideline_raft_log_syncs_total",
        "tideline_raft_log_sync_errors_total",
        "tideline_sync_conflicts_total",
        "tideline_bootstraps_total",
        "tideline_gc_swept_blobs_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for op in ["head", "put", "fsync", "get", "list", "delete"] {
        metrics::counter!("tideline_object_store_errors_total", "op" => op).increment(0);
    }
    crate::process::describe();
    describe_histogram!("tideline_proposer_batch_commands", "Commands coalesced into one Raft entry");
    describe_histogram!("tideline_read_index_round_reads", "Reads served by one read-index confirmation");
    describe_histogram!(
        "tideline_http_request_duration_seconds",
        Unit::Seconds,
        "Request latency by matched route, method and status"
    );
    describe_gauge!("tideline_raft_term", "Current Raft term");
    describe_gauge!("tideline_raft_leader_id", "Node id of the known leader (0: none)");
    describe_gauge!("tideline_raft_is_leader", "1 on the leader, 0 elsewhere");
    describe_gauge!("tideline_raft_last_log_index", "Index of the last entry in this node's log");
    describe_gauge!("tideline_raft_commit_index", "Highest index known committed");
    describe_gauge!("tideline_raft_applied_index", "Highest index applied to the state machine");
    describe_gauge!("tideline_raft_apply_lag", "Committed entries not yet applied");
    describe_gauge!("tideline_raft_snapshot_index", "Index covered by the last state-machine snapshot");
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "The process is up", security(()),
    responses((status = 200, description = "Up", body = Success<serde_json::Value>)))]
pub async fn healthz() -> impl IntoResponse {
    ok(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "The node knows a leader and has applied what it committed", security(()),
    responses((status = 200, description = "Ready", body = Success<serde_json::Value>),
        (status = 503, description = "Not ready, and why", body = ErrorEnvelope)))]
pub async fn readyz(State(st): State<AppState>) -> ApiResult<impl IntoResponse> {
    let m = st.ops.node().metrics();
    let member = m.membership_config.membership().get_node(&m.id).is_some();
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    let lag = st.ops.node().committed_index().saturating_sub(applied);
    let reason = if m.running_state.is_err() {
        Some("raft has stopped")
    } else if !member {
        Some("not a member of a cluster")
    } else if m.current_leader.is_none() {
        Some("no leader")
    } else if m.current_leader == Some(m.id) && m.millis_since_quorum_ack.is_none_or(|ms| ms > READY_QUORUM_ACK_MS_MAX)
    {
        Some("leader without a quorum")
    } else if lag > READY_APPLY_LAG_ENTRIES_MAX {
        Some("catching up")
    } else {
        None
    };
    let details = json!({ "node_id": m.id, "leader_id": m.current_leader, "applied_index": applied, "apply_lag": lag });
    match reason {
        Some(r) => Err(ApiError::unavailable(format!("not ready: {r}")).with_details(details)),
        None => Ok(ok(json!({ "ready": true, "node": details }))),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics", security(()),
    responses((status = 200, description = "Text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let m = st.ops.node().metrics();
    let node = [("node_id", m.id.to_string())];
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    let committed = st.ops.node().committed_index();
    metrics::gauge!("tideline_raft_term", &node).set(m.current_term as f64);
    metrics::gauge!("tideline_raft_leader_id", &node).set(m.current_leader.unwrap_or(0) as f64);
    metrics::gauge!("tideline_raft_is_leader", &node).set(if m.current_leader == Some(m.id) { 1.0 } else { 0.0 });
    metrics::gauge!("tideline_raft_last_log_index", &node).set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("tideline_raft_commit_index", &node).set(committed as f64);
    metrics::gauge!("tideline_raft_applied_index", &node).set(applied as f64);
    metrics::gauge!("tideline_raft_apply_lag", &node).set(committed.saturating_sub(applied) as f64);
    metrics::gauge!("tideline_raft_snapshot_index", &node).set(m.snapshot.map(|l| l.index).unwrap_or(0) as f64);
    crate::process::refresh();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render())
}
