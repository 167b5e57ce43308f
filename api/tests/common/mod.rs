//! The router under test in one process (`oneshot`), with helpers for tokens, volumes and
//! envelope assertions.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use tideline_api::{router, AppState};
use tideline_raft::{CompactionConfig, RaftNode, RaftNodeConfig};
use tideline_storage::{BlobStore, Db};

pub const ADMIN: &str = "admin-secret";

pub struct App {
    _dir: tempfile::TempDir,
    pub router: Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn data(&self) -> Value {
        let v = self.json();
        assert_eq!(v["success"], true, "{v}");
        v["data"].clone()
    }
    /// Asserts an error envelope with this status and code; returns the message.
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        let v = self.json();
        assert_eq!(self.status, status, "{v}");
        assert_eq!(v["success"], false, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        v["error"]["message"].as_str().unwrap().to_string()
    }
}

impl App {
    pub async fn new() -> App {
        Self::start(None).await
    }

    pub async fn start(compaction: Option<CompactionConfig>) -> App {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let cfg = RaftNodeConfig::single(1, "127.0.0.1:1".into(), dir.path().join("snapshots"));
        let node = RaftNode::start(cfg, db).await.unwrap();
        if let Some(c) = compaction {
            node.spawn_compactor(c);
        }
        let blobs = BlobStore::local(&dir.path().join("objects")).unwrap();
        App { router: router(AppState::new(node, blobs, ADMIN, "cluster-secret")), _dir: dir }
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }

    pub async fn call(&self, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(b.body(body).unwrap()).await
    }

    pub async fn raw(&self, method: &str, uri: &str, token: &str, body: impl Into<Body>) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(body.into())
            .unwrap();
        self.send(req).await
    }

    pub async fn token(&self, team: &str, perms: &[&str]) -> String {
        let r = self
            .call(
                "POST",
                "/api/v1/tokens",
                Some(ADMIN),
                Some(json!({ "team_id": team, "permissions": perms, "subject": format!("user-{team}") })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        r.data()["token"].as_str().unwrap().to_string()
    }

    pub async fn volume(&self, token: &str) -> String {
        let r = self.call("POST", "/api/v1/sandboxvolumes", Some(token), Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        r.data()["id"].as_str().unwrap().to_string()
    }
}

pub fn files(vol: &str, rest: &str) -> String {
    format!("/api/v1/sandboxvolumes/{vol}/files{rest}")
}
