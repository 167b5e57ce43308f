//! What the client's tests run against: a real single-node Tideline (the shared
//! `tideline_test_support::node::Node`: the api crate's router over a RocksDB-backed Raft node,
//! on a loopback listener bound to port 0), and tiny axum stubs that answer what a test needs
//! (503s, leader hints) and count what they got.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use serde_json::Value;
#[allow(unused_imports)] // each test binary uses its own part
pub use tideline_test_support::node::{Node, ADMIN};

/// A stub server: answers every request with what `answer` says, counting requests.
pub struct Stub {
    pub url: String,
    pub addr: String,
    pub hits: Arc<AtomicUsize>,
}

impl Stub {
    /// `answer(n)` is the status and JSON body of the `n`th request (from 0).
    pub async fn start<F>(answer: F) -> Stub
    where
        F: Fn(usize) -> (StatusCode, Value) + Clone + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new().fallback(move || {
            let (answer, counter) = (answer.clone(), counter.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answer(n);
                (status, axum::Json(body)).into_response()
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Stub { url: format!("http://{addr}"), addr, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
