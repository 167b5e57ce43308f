//! What the client's tests run against: a real single-node Tideline (the api crate's router
//! over a RocksDB-backed Raft node) served on a loopback listener bound to port 0, and tiny
//! axum stubs that answer what a test needs (503s, leader hints) and count what they got.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use serde_json::Value;
use tideline_api::{router, AppState, Ops};
use tideline_client::types::wire::{TokenRequest, VolumeRequest};
use tideline_client::Client;
use tideline_raft::{RaftNode, RaftNodeConfig, SystemClock};
use tideline_storage::{BlobStore, Db};

pub const ADMIN: &str = "admin-secret";

/// One in-process node and an admin client of it.
pub struct Node {
    pub url: String,
    pub admin: Client,
    pub node: RaftNode,
    _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let cfg = RaftNodeConfig::single(1, addr.clone(), dir.path().join("snapshots"));
        let node = RaftNode::start(cfg, db).await.unwrap();
        let blobs = BlobStore::local(&dir.path().join("objects")).unwrap();
        let ops = Ops::new(node.clone(), blobs, Arc::new(SystemClock));
        let app = router(AppState::new(ops, ADMIN, "cluster-secret"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}");
        let admin = Client::new(&url, ADMIN).unwrap();
        Node { url, admin, node, _dir: dir }
    }

    /// A client with a fresh all-permission token of `team`.
    pub async fn team(&self, team: &str) -> Client {
        let req = TokenRequest { team_id: team.into(), permissions: vec!["*".into()], subject: None };
        let created = self.admin.create_token(&req).await.unwrap();
        self.admin.with_token(&created.token)
    }

    /// A team client and a new volume of it (RWX: several replicas may write).
    pub async fn team_volume(&self, team: &str) -> (Client, String) {
        let c = self.team(team).await;
        let v = c.create_volume(&VolumeRequest::with_access_mode(tideline_client::types::AccessMode::Rwx)).await;
        (c, v.unwrap().id)
    }

    /// The raw `data` of a GET, for comparing the typed answer with the bytes sent.
    pub async fn raw_data(&self, token: &str, path_and_query: &str) -> Value {
        let v: Value = reqwest::Client::new()
            .get(format!("{}{path_and_query}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["success"], true, "{v}");
        v["data"].clone()
    }
}

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
