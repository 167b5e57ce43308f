//! The router under test in one process (`oneshot`), with helpers for tokens, volumes and
//! envelope assertions.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use tideline_api::{router, AppState, Ops};
use tideline_raft::{CompactionConfig, ManualClock, RaftNode, RaftNodeConfig};
use tideline_storage::{BlobStore, Db};

pub const ADMIN: &str = "admin-secret";

pub struct App {
    pub _dir: tempfile::TempDir,
    pub router: Router,
    pub node: RaftNode,
    pub blobs: BlobStore,
    /// What every operation of this app reads the time from: tests move it by hand.
    pub clock: ManualClock,
    pub ops: Ops,
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
        let blobs = BlobStore::local(&dir.path().join("objects")).unwrap();
        let clock = ManualClock::new();
        let ops = Ops::new(node.clone(), blobs.clone(), std::sync::Arc::new(clock.clone()));
        if let Some(c) = compaction {
            ops.spawn_compactor(c);
        }
        let router = router(AppState::new(ops.clone(), ADMIN, "cluster-secret"));
        App { router, node, blobs, clock, ops, _dir: dir }
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

// ---- volumes, trees and archives (sync and snapshot tests) ----

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub struct Vol<'a> {
    pub app: &'a App,
    pub t: String,
    pub id: String,
}

impl<'a> Vol<'a> {
    /// An RWX volume (several replicas write to it).
    pub async fn new(app: &'a App) -> Vol<'a> {
        let t = app.token("team-a", &["*"]).await;
        let id = Self::create(app, &t, "RWX").await;
        Vol { app, t, id }
    }
    pub async fn create(app: &App, t: &str, mode: &str) -> String {
        let r = app.call("POST", "/api/v1/sandboxvolumes", Some(t), Some(json!({ "access_mode": mode }))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        r.data()["id"].as_str().unwrap().to_string()
    }
    pub fn url(&self, rest: &str) -> String {
        format!("/api/v1/sandboxvolumes/{}{rest}", self.id)
    }
    pub async fn replica(&self, rid: &str, body: Value) -> Value {
        self.app.call("PUT", &self.url(&format!("/sync/replicas/{rid}")), Some(&self.t), Some(body)).await.data()
    }
    pub async fn append(&self, rid: &str, request_id: &str, base_seq: i64, changes: Value) -> Reply {
        let body = json!({ "request_id": request_id, "base_seq": base_seq, "changes": changes });
        self.app.call("POST", &self.url(&format!("/sync/replicas/{rid}/changes")), Some(&self.t), Some(body)).await
    }
    pub async fn write(&self, p: &str, content: &str) {
        self.app.raw("POST", &self.url(&format!("/files?path={p}")), &self.t, content.to_string()).await.data();
    }
    pub async fn read(&self, p: &str) -> Option<String> {
        let r = self.app.raw("GET", &self.url(&format!("/files?path={}", urlencode(p))), &self.t, "").await;
        (r.status == StatusCode::OK).then(|| String::from_utf8(r.body.to_vec()).unwrap())
    }
    pub async fn stat(&self, p: &str) -> Reply {
        self.app.call("GET", &self.url(&format!("/files/stat?path={}", urlencode(p))), Some(&self.t), None).await
    }
    pub async fn head(&self) -> u64 {
        let page = self.app.call("GET", &self.url("/sync/changes?after=0&limit=1"), Some(&self.t), None).await.data();
        page["head_seq"].as_u64().unwrap()
    }
    pub async fn conflicts(&self, q: &str) -> Vec<Value> {
        let r = self.app.call("GET", &self.url(&format!("/sync/conflicts{q}")), Some(&self.t), None).await.data();
        r["conflicts"].as_array().unwrap().clone()
    }
}

pub fn urlencode(p: &str) -> String {
    p.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// path → `None` for a directory, `Some("<len>:<sha256>")` for a file.
pub type Tree = std::collections::BTreeMap<String, Option<String>>;

pub fn digest(b: &[u8]) -> String {
    format!("{}:{}", b.len(), hex::encode(Sha256::digest(b)))
}

/// Every entry (`FileInfo` JSON) of a volume, through `list`, directories before their children.
pub async fn walk(v: &Vol<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut dirs = vec!["/".to_string()];
    while let Some(d) = dirs.pop() {
        let list =
            v.app.call("GET", &v.url(&format!("/files/list?path={}", urlencode(&d))), Some(&v.t), None).await.data();
        for e in list["entries"].as_array().unwrap() {
            if e["type"] == "dir" {
                dirs.push(e["path"].as_str().unwrap().to_string());
            }
            out.push(e.clone());
        }
    }
    out
}

/// A volume's tree through the files API: path → `None` for a directory, `Some(digest)` for a file.
pub async fn live_tree(v: &Vol<'_>) -> Tree {
    let mut out = Tree::new();
    for e in walk(v).await {
        let p = e["path"].as_str().unwrap().to_string();
        if e["type"] == "dir" {
            out.insert(p, None);
        } else {
            let r = v.app.raw("GET", &v.url(&format!("/files?path={}", urlencode(&p))), &v.t, "").await;
            out.insert(p, Some(digest(&r.body)));
        }
    }
    out
}

/// Unpacks a bootstrap archive into a tree like [`live_tree`]'s; checks names are sorted,
/// relative, and directories end in `/`.
pub fn unpack(gz: &[u8]) -> Tree {
    let mut out = std::collections::BTreeMap::new();
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        assert!(!name.starts_with('/'), "relative names: {name}");
        names.push(name.clone());
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                assert!(name.ends_with('/'), "{name}");
                out.insert(format!("/{}", name.trim_end_matches('/')), None);
            }
            tar::EntryType::Regular => {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut body).unwrap();
                out.insert(format!("/{name}"), Some(digest(&body)));
            }
            other => panic!("unexpected entry type {other:?} for {name}"),
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "archive names are sorted");
    out
}

/// Applies `changes` entries (fetching payloads) to a tree from [`unpack`].
pub async fn replay_into(v: &Vol<'_>, tree: &mut Tree, changes: &[Value]) {
    for e in changes {
        let p = e["path"].as_str().unwrap().to_string();
        let parents = |tree: &mut Tree, p: &str| {
            let mut acc = String::new();
            let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            for part in &parts[..parts.len() - 1] {
                acc = format!("{acc}/{part}");
                tree.entry(acc.clone()).or_insert(None);
            }
        };
        let subtree = |tree: &Tree, p: &str| -> Vec<String> {
            tree.keys().filter(|k| *k == p || k.starts_with(&format!("{p}/"))).cloned().collect()
        };
        match e["event_type"].as_str().unwrap() {
            "write" | "create" if e["entry_kind"] == "file" => {
                let r = e["content_ref"].as_str().unwrap();
                let body = v.app.raw("GET", &v.url(&format!("/sync/replay-payload?content_ref={r}")), &v.t, "").await;
                assert_eq!(body.status, StatusCode::OK);
                parents(tree, &p);
                tree.insert(p, Some(digest(&body.body)));
            }
            "create" => {
                parents(tree, &p);
                tree.entry(p).or_insert(None);
            }
            "remove" => {
                for k in subtree(tree, &p) {
                    tree.remove(&k);
                }
            }
            "rename" => {
                let old = e["old_path"].as_str().unwrap();
                parents(tree, &p);
                for k in subtree(tree, old) {
                    let val = tree.remove(&k).unwrap();
                    tree.insert(format!("{p}{}", &k[old.len()..]), val);
                }
            }
            _ => {}
        }
    }
}
