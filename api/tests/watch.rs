//! `GET /files/watch` through a real listener and a real WebSocket client: auth and the volume
//! lookup before the upgrade, the subscribe/unsubscribe protocol and its errors, journal events in
//! `seq` order with path matching, a slow subscriber getting `invalidate` instead of a gap, a
//! deleted volume closing the connection, and no task outliving its connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tideline_test_support::wait_until;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

mod common;
use common::*;

/// Every wait in these tests ends by this deadline.
const DEADLINE: Duration = Duration::from_secs(15);

/// The router on a real socket (port 0); aborted when dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app`; `send_buffer_bytes` shrinks the kernel send buffer of accepted sockets.
async fn serve(app: &App, send_buffer_bytes: Option<u32>) -> Server {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(n) = send_buffer_bytes {
        socket.set_send_buffer_size(n).unwrap();
    }
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Server { addr, task }
}

type Ws = WebSocketStream<TcpStream>;

/// Opens a watch connection; `recv_buffer_bytes` shrinks the client's kernel receive buffer.
async fn connect(
    server: &Server,
    vol: &str,
    token: Option<&str>,
    recv_buffer_bytes: Option<u32>,
) -> Result<Ws, WsError> {
    let url = format!("ws://{}/api/v1/sandboxvolumes/{vol}/files/watch", server.addr);
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(n) = recv_buffer_bytes {
        socket.set_recv_buffer_size(n).unwrap();
    }
    let stream = socket.connect(server.addr).await.unwrap();
    tokio_tungstenite::client_async(req, stream).await.map(|(ws, _)| ws)
}

/// Asserts the handshake was refused with this status and error code, in the envelope.
async fn refused(server: &Server, vol: &str, token: Option<&str>, status: StatusCode, code: &str) {
    match connect(server, vol, token, None).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), status.as_u16());
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["success"], false, "{body}");
            assert_eq!(body["error"]["code"], code, "{body}");
        }
        Err(e) => panic!("expected HTTP {status}, got {e}"),
        Ok(_) => panic!("expected HTTP {status}, got an upgrade"),
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next text message, skipping pings and pongs.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(DEADLINE, ws.next()).await.expect("no message before the deadline");
        match frame {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

async fn subscribe(ws: &mut Ws, path: &str, recursive: bool) -> String {
    send(ws, json!({ "action": "subscribe", "path": path, "recursive": recursive })).await;
    let m = recv(ws).await;
    assert_eq!(m["type"], "subscribed", "{m}");
    m["watch_id"].as_str().unwrap().to_string()
}

/// `(event, path, old_path, seq)` of an event message.
fn ev(m: &Value) -> (String, String, Option<String>, u64) {
    assert_eq!(m["type"], "event", "{m}");
    (
        m["event"].as_str().unwrap().to_string(),
        m["path"].as_str().unwrap().to_string(),
        m.get("old_path").map(|p| p.as_str().unwrap().to_string()),
        m["seq"].as_u64().unwrap(),
    )
}

fn e(event: &str, path: &str, old_path: Option<&str>, seq: u64) -> (String, String, Option<String>, u64) {
    (event.to_string(), path.to_string(), old_path.map(str::to_string), seq)
}

/// A team token, a volume of its own and the helpers to change it.
struct Vol<'a> {
    app: &'a App,
    t: String,
    id: String,
}

impl<'a> Vol<'a> {
    async fn new(app: &'a App) -> Vol<'a> {
        let t = app.token("team-a", &["*"]).await;
        let id = app.volume(&t).await;
        Vol { app, t, id }
    }
    fn url(&self, rest: &str) -> String {
        format!("/api/v1/sandboxvolumes/{}{rest}", self.id)
    }
    async fn mkdir(&self, p: &str) {
        let r = self.app.call("POST", &self.url(&format!("/files?path={p}&mkdir=true")), Some(&self.t), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    }
    async fn write(&self, p: &str) {
        self.app.raw("POST", &self.url(&format!("/files?path={p}")), &self.t, "content").await.data();
    }
    async fn remove(&self, p: &str) {
        self.app.call("DELETE", &self.url(&format!("/files?path={p}")), Some(&self.t), None).await.data();
    }
    async fn rename(&self, from: &str, to: &str) {
        let body = json!({ "source": from, "destination": to });
        self.app.call("POST", &self.url("/files/move"), Some(&self.t), Some(body)).await.data();
    }
    async fn chmod(&self, p: &str, mode: u32) {
        let head = self.app.call("PUT", &self.url("/sync/replicas/r1"), Some(&self.t), Some(json!({}))).await.data()
            ["head_seq"]
            .as_u64()
            .unwrap();
        let body = json!({
            "request_id": format!("chmod-{head}"),
            "base_seq": head,
            "changes": [{ "event_type": "chmod", "path": p, "mode": mode }],
        });
        let r = self.app.call("POST", &self.url("/sync/replicas/r1/changes"), Some(&self.t), Some(body)).await.data();
        assert_eq!(r["accepted"].as_array().unwrap().len(), 1, "{r}");
    }
    async fn head(&self) -> u64 {
        let page = self.app.call("GET", &self.url("/sync/changes?after=0&limit=1"), Some(&self.t), None).await.data();
        page["head_seq"].as_u64().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_before_the_upgrade() {
    let app = App::new().await;
    let server = serve(&app, None).await;
    let v = Vol::new(&app).await;
    let other = app.token("team-b", &["*"]).await;
    let no_files = app.token("team-a", &["sandboxvolume:read"]).await;

    tracing::info!("--- a missing or invalid token is a 401 envelope, not an upgrade");
    refused(&server, &v.id, None, StatusCode::UNAUTHORIZED, "unauthorized").await;
    refused(&server, &v.id, Some("nope"), StatusCode::UNAUTHORIZED, "unauthorized").await;

    tracing::info!("--- file read permission is required");
    refused(&server, &v.id, Some(&no_files), StatusCode::FORBIDDEN, "forbidden").await;

    tracing::info!("--- another team's volume and a missing one are both 404");
    refused(&server, &v.id, Some(&other), StatusCode::NOT_FOUND, "not_found").await;
    refused(&server, "vol-missing", Some(&v.t), StatusCode::NOT_FOUND, "not_found").await;

    tracing::info!("--- a plain GET (no upgrade) is a 400 envelope");
    app.call("GET", &v.url("/files/watch"), Some(&v.t), None).await.error(StatusCode::BAD_REQUEST, "bad_request");

    tracing::info!("--- the owner upgrades");
    let mut ws = connect(&server, &v.id, Some(&v.t), None).await.unwrap();
    subscribe(&mut ws, "/", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_seq_order_and_match_paths() {
    let app = App::new().await;
    let server = serve(&app, None).await;
    let v = Vol::new(&app).await;
    let mut ws = connect(&server, &v.id, Some(&v.t), None).await.unwrap();

    tracing::info!("--- subscribe: the root recursively, /d flat, /d recursively");
    let all = subscribe(&mut ws, "/", true).await;
    let flat = subscribe(&mut ws, "d/", false).await; // cleaned to /d
    let deep = subscribe(&mut ws, "/d", true).await;
    assert_ne!(flat, deep);

    tracing::info!("--- create, write, grandchild write, chmod (replica), rename, remove, outside write");
    v.mkdir("/d").await; // 1
    v.write("/d/f").await; // 2
    v.mkdir("/d/s").await; // 3
    v.write("/d/s/g").await; // 4: a grandchild of /d
    v.chmod("/d/f", 0o755).await; // 5
    v.rename("/d/f", "/d/s/h").await; // 6: old_path is a child of /d
    v.remove("/d/s").await; // 7
    v.write("/top").await; // 8: outside /d
    let expected_all = vec![
        e("create", "/d", None, 1),
        e("write", "/d/f", None, 2),
        e("create", "/d/s", None, 3),
        e("write", "/d/s/g", None, 4),
        e("chmod", "/d/f", None, 5),
        e("rename", "/d/s/h", Some("/d/f"), 6),
        e("remove", "/d/s", None, 7),
        e("write", "/top", None, 8),
    ];
    let expected_deep: Vec<_> = expected_all[..7].to_vec();
    let expected_flat: Vec<_> = expected_deep.iter().filter(|x| x.3 != 4).cloned().collect();

    tracing::info!("--- every subscription gets exactly its entries, in seq order");
    let total = expected_all.len() + expected_flat.len() + expected_deep.len();
    let mut got: HashMap<String, Vec<_>> = HashMap::new();
    let mut wire_seqs = Vec::new();
    for _ in 0..total {
        let m = recv(&mut ws).await;
        let x = ev(&m);
        wire_seqs.push(x.3);
        got.entry(m["watch_id"].as_str().unwrap().to_string()).or_default().push(x);
    }
    assert!(wire_seqs.windows(2).all(|w| w[0] <= w[1]), "wire order follows the journal: {wire_seqs:?}");
    assert_eq!(got[&all], expected_all);
    assert_eq!(got[&deep], expected_deep);
    assert_eq!(got[&flat], expected_flat, "a flat watch sees no grandchildren");

    tracing::info!("--- unsubscribe: answered, and nothing more for that watch");
    send(&mut ws, json!({ "action": "unsubscribe", "watch_id": flat })).await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "unsubscribed", "watch_id": flat }));
    v.write("/d/x").await; // 9: all and deep
    v.write("/zz").await; // 10: all only — once it arrives, anything for /d/x has arrived too
    let mut rest = Vec::new();
    loop {
        let m = recv(&mut ws).await;
        assert_ne!(m["watch_id"], flat.as_str(), "event after unsubscribe: {m}");
        let done = m["seq"] == 10;
        rest.push((m["watch_id"].as_str().unwrap().to_string(), ev(&m)));
        if done {
            break;
        }
    }
    assert_eq!(
        rest,
        vec![
            (all.clone(), e("write", "/d/x", None, 9)),
            (deep.clone(), e("write", "/d/x", None, 9)),
            (all.clone(), e("write", "/zz", None, 10)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_and_the_connection_stays() {
    let app = App::new().await;
    let server = serve(&app, None).await;
    let v = Vol::new(&app).await;
    let mut ws = connect(&server, &v.id, Some(&v.t), None).await.unwrap();

    tracing::info!("--- malformed JSON, unknown action, binary frames");
    ws.send(Message::text("{not json")).await.unwrap();
    let m = recv(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert!(m["error"].as_str().unwrap().starts_with("invalid message"), "{m}");
    send(&mut ws, json!({ "action": "dance" })).await;
    assert!(recv(&mut ws).await["error"].as_str().unwrap().contains("unknown action"));
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "error");

    tracing::info!("--- bad paths and unknown watch ids");
    send(&mut ws, json!({ "action": "subscribe", "path": "  " })).await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "error", "error": "path is required" }));
    send(&mut ws, json!({ "action": "subscribe", "path": "a\u{0}b" })).await;
    assert!(recv(&mut ws).await["error"].as_str().unwrap().starts_with("invalid path"));
    send(&mut ws, json!({ "action": "unsubscribe", "watch_id": "watch-nope" })).await;
    assert!(recv(&mut ws).await["error"].as_str().unwrap().contains("unknown watch_id"));
    send(&mut ws, json!({ "action": "unsubscribe" })).await;
    assert_eq!(recv(&mut ws).await["type"], "error");

    tracing::info!("--- `..` never escapes: it cleans to the root, which is valid");
    send(&mut ws, json!({ "action": "subscribe", "path": "/../..", "recursive": false })).await;
    let m = recv(&mut ws).await;
    assert_eq!((m["type"].as_str(), m["path"].as_str()), (Some("subscribed"), Some("/")));
    let root = m["watch_id"].as_str().unwrap().to_string();

    tracing::info!("--- at most 64 subscriptions per connection");
    for i in 1..64 {
        subscribe(&mut ws, &format!("/p{i}"), false).await;
    }
    send(&mut ws, json!({ "action": "subscribe", "path": "/one-too-many" })).await;
    assert!(recv(&mut ws).await["error"].as_str().unwrap().contains("limit 64"));

    tracing::info!("--- still open: events flow and unsubscribe frees a slot");
    v.write("/hello").await;
    let m = recv(&mut ws).await;
    assert_eq!(ev(&m), e("write", "/hello", None, 1));
    assert_eq!(m["watch_id"], root.as_str());
    send(&mut ws, json!({ "action": "unsubscribe", "watch_id": root })).await;
    assert_eq!(recv(&mut ws).await["type"], "unsubscribed");
    subscribe(&mut ws, "/again", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_gets_invalidate_instead_of_a_gap() {
    let app = App::new().await;
    // Small kernel buffers on both ends, so an unread socket backs up into the server's queue.
    let server = serve(&app, Some(4096)).await;
    let v = Vol::new(&app).await;
    let mut ws = connect(&server, &v.id, Some(&v.t), Some(4096)).await.unwrap();
    let w = subscribe(&mut ws, "/", true).await;

    tracing::info!("--- write far more than the queue holds while the client reads nothing");
    const FILES: usize = 800;
    let long = "x".repeat(200); // large events fill the socket buffers sooner
    futures::stream::iter(0..FILES)
        .for_each_concurrent(8, |i| {
            let (v, long) = (&v, &long);
            async move { v.write(&format!("/slow/{i:04}-{long}")).await }
        })
        .await;
    let head = v.head().await;
    assert_eq!(head, FILES as u64);

    tracing::info!("--- read it all: seqs strictly increase, every jump is an invalidate");
    let (mut prev, mut invalidates, mut events) = (0u64, 0, 0);
    while prev < head {
        let m = recv(&mut ws).await;
        assert_eq!(m["watch_id"], w.as_str());
        let (event, path, _, seq) = ev(&m);
        assert!(seq > prev, "seq {seq} after {prev}");
        if event == "invalidate" {
            assert_eq!(path, "/", "an invalidate names the subscription's path");
            invalidates += 1;
        } else {
            assert_eq!(event, "write");
            assert_eq!(seq, prev + 1, "silent gap before seq {seq}");
            events += 1;
        }
        prev = seq;
    }
    tracing::info!(events, invalidates, "slow subscriber caught up");
    assert!(invalidates >= 1, "the queue never overflowed");
    assert!(events >= 1);

    tracing::info!("--- after the invalidate, events flow again");
    v.write("/after").await;
    assert_eq!(ev(&recv(&mut ws).await), e("write", "/after", None, head + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_volume_ends_the_watch() {
    let app = App::new().await;
    let server = serve(&app, None).await;
    let v = Vol::new(&app).await;
    let mut ws = connect(&server, &v.id, Some(&v.t), None).await.unwrap();
    subscribe(&mut ws, "/", true).await;
    v.write("/f").await;
    assert_eq!(ev(&recv(&mut ws).await), e("write", "/f", None, 1));

    tracing::info!("--- delete: an error message, then a close frame");
    app.call("DELETE", &v.url(""), Some(&v.t), None).await.data();
    assert_eq!(recv(&mut ws).await, json!({ "type": "error", "error": "volume deleted" }));
    match tokio::time::timeout(DEADLINE, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
        None | Some(Err(_)) => {}
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connections_leave_no_tasks() {
    let app = App::new().await;
    let server = serve(&app, None).await;
    let v = Vol::new(&app).await;
    let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let baseline = tasks();

    tracing::info!("--- two watchers: one closes politely, one just drops its socket");
    let mut polite = connect(&server, &v.id, Some(&v.t), None).await.unwrap();
    let mut rude = connect(&server, &v.id, Some(&v.t), None).await.unwrap();
    subscribe(&mut polite, "/", true).await;
    subscribe(&mut rude, "/", true).await;
    v.write("/f").await;
    assert_eq!(ev(&recv(&mut polite).await).3, 1);
    assert_eq!(ev(&recv(&mut rude).await).3, 1);
    assert!(tasks() > baseline, "sessions run as tasks");
    polite.close(None).await.unwrap();
    drop(rude);

    tracing::info!("--- every connection task ends");
    wait_until("every connection task to end", DEADLINE, || async {
        let alive = tasks();
        if alive > baseline {
            Err(format!("{alive} tasks alive, {baseline} before"))
        } else {
            Ok(())
        }
    })
    .await;
}
