//! Leader hints and retries against stub servers that count what they receive: a hint is
//! followed (bounded hops), a 503 is retried with backoff only for an idempotent request and a
//! bounded number of times, a non-idempotent POST is sent exactly once.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::Stub;
use serde_json::{json, Value};
use tideline_client::types::wire::VolumeRequest;
use tideline_client::{Client, RetryPolicy};

fn unavailable(details: Value) -> (StatusCode, Value) {
    let body =
        json!({ "success": false, "error": { "code": "unavailable", "message": "not now", "details": details } });
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

fn cluster() -> Value {
    json!({ "success": true, "data": { "node_id": 2, "state": "Leader", "leader_id": 2, "term": 3,
        "last_log_index": 9, "committed_index": 9, "applied_index": 9, "apply_lag": 0,
        "snapshot_index": null, "purged_index": null, "nodes": [] } })
}

/// Quick retries, so the tests take milliseconds.
const FAST: RetryPolicy = RetryPolicy {
    attempts_max: 4,
    delay_min: Duration::from_millis(5),
    delay_max: Duration::from_millis(20),
    total_delay_max: Duration::from_secs(1),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_hint_is_followed() {
    let leader = Stub::start(|_| (StatusCode::OK, cluster())).await;
    let addr = leader.addr.clone();
    let follower = Stub::start(move |_| unavailable(json!({ "leader_id": 2, "leader_addr": addr }))).await;
    let c = Client::builder(&follower.url, "admin").retry(RetryPolicy::none()).build().unwrap();
    let status = c.remove_node(3).await.unwrap();
    assert_eq!((status.node_id, status.leader_id), (2, Some(2)));
    assert_eq!((follower.hits(), leader.hits()), (1, 1), "one hop, one request each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_hops_are_bounded() {
    tracing::info!("--- two nodes that name each other: the refusal comes back after the hop limit");
    let b_addr = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let hint_b = b_addr.clone();
    let a =
        Stub::start(move |_| unavailable(json!({ "leader_addr": hint_b.get().cloned().unwrap_or_default() }))).await;
    let a_addr = a.addr.clone();
    let b = Stub::start(move |_| unavailable(json!({ "leader_addr": a_addr }))).await;
    b_addr.set(b.addr.clone()).unwrap();
    let c = Client::builder(&a.url, "admin").retry(RetryPolicy::none()).leader_hops_max(3).build().unwrap();
    let e = c.remove_node(3).await.unwrap_err();
    assert_eq!(e.status, Some(tideline_client::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(a.hits() + b.hits(), 4, "the first try and 3 hops");

    tracing::info!("--- no leader known (null): no hop");
    let lost = Stub::start(|_| unavailable(json!({ "leader_id": null, "leader_addr": null }))).await;
    let c = Client::builder(&lost.url, "admin").retry(RetryPolicy::none()).build().unwrap();
    assert!(c.remove_node(3).await.unwrap_err().is_unavailable());
    assert_eq!(lost.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_for_a_get_until_it_succeeds() {
    let flaky = Stub::start(|n| if n < 2 { unavailable(Value::Null) } else { (StatusCode::OK, cluster()) }).await;
    let c = Client::builder(&flaky.url, "admin").retry(FAST).build().unwrap();
    assert_eq!(c.cluster_status().await.unwrap().node_id, 2);
    assert_eq!(flaky.hits(), 3, "two 503s, then the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_in_attempts_and_time() {
    let down = Stub::start(|_| unavailable(Value::Null)).await;
    let c = Client::builder(&down.url, "admin").retry(FAST).build().unwrap();
    let started = Instant::now();
    let e = c.cluster_status().await.unwrap_err();
    assert!(e.is_unavailable() && e.status.is_some(), "{e}");
    assert_eq!(down.hits(), FAST.attempts_max, "every try, and no more");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    tracing::info!("--- the total sleep bounds the tries too");
    let patient = RetryPolicy { attempts_max: 1000, total_delay_max: Duration::from_millis(100), ..FAST };
    let down2 = Stub::start(|_| unavailable(Value::Null)).await;
    let c = Client::builder(&down2.url, "admin").retry(patient).build().unwrap();
    c.cluster_status().await.unwrap_err();
    assert!(down2.hits() < 100, "{} tries", down2.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_idempotent_post_is_sent_once() {
    let down = Stub::start(|_| unavailable(Value::Null)).await;
    let c = Client::builder(&down.url, "t").retry(FAST).build().unwrap();
    let e = c.create_volume(&VolumeRequest::default()).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert_eq!(down.hits(), 1, "a POST without a request id is never sent twice");
    let e = c.delete_volume("v", false).await.unwrap_err();
    assert!(e.is_unavailable());
    assert_eq!(down.hits(), 2, "nor is a DELETE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_refused_is_retried_only_when_idempotent() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let c = Client::builder(&url, "t").retry(FAST).build().unwrap();
    let started = Instant::now();
    assert!(c.list_volumes().await.unwrap_err().is_unavailable());
    assert!(started.elapsed() >= FAST.delay_min, "a GET backed off before failing");
    assert!(c.create_volume(&VolumeRequest::default()).await.unwrap_err().is_unavailable());
}
