//! `tideline volume files VOL watch [PATH] [--recursive] [--count N]`: prints a volume's file
//! events as they happen (one line each, or one JSON document per line with `--json`).
//!
//! ```text
//!  GET …/files/watch (WebSocket, bearer token) ─▶ {"action":"subscribe","path","recursive"}
//!  ◀─ subscribed ◀─ event… (seq order; `invalidate` means: rescan PATH)
//! ```

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tideline_types::{WatchAction, WatchMessageType};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use tideline_client::{Client, ClientError};

use super::http::{CliError, CliResult, ErrorKind};

pub async fn watch(
    client: &Client,
    volume: &str,
    path: &str,
    recursive: bool,
    count: Option<u64>,
    json_lines: bool,
) -> CliResult<()> {
    let endpoint = client.watch_endpoint(volume)?;
    let (url, bearer) = (endpoint.url, endpoint.authorization);
    let mut req = url.as_str().into_client_request().map_err(|e| CliError::other(format!("watch URL {url}: {e}")))?;
    let auth = bearer.parse().map_err(|_| CliError::other("the token is not a valid header value"))?;
    req.headers_mut().insert("authorization", auth);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| handshake_error(&url, e))?;
    let subscribe = json!({ "action": WatchAction::Subscribe, "path": path, "recursive": recursive });
    ws.send(Message::text(subscribe.to_string())).await.map_err(|e| CliError::other(format!("subscribe: {e}")))?;
    let mut seen = 0u64;
    while count.is_none_or(|n| seen < n) {
        let Some(msg) = ws.next().await else {
            return Err(CliError::new(ErrorKind::Unavailable, "the server closed the watch"));
        };
        let msg = msg.map_err(|e| CliError::new(ErrorKind::Unavailable, format!("watch: {e}")))?;
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(frame) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(CliError::new(ErrorKind::Unavailable, format!("the server closed the watch {why}")));
            }
            _ => continue,
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| CliError::other(format!("watch message: {e}")))?;
        match v["type"].as_str().map(str::parse::<WatchMessageType>) {
            Some(Ok(WatchMessageType::Event)) => {
                seen += 1;
                if json_lines {
                    println!("{v}");
                } else {
                    let old = v["old_path"].as_str().map(|o| format!(" (from {o})")).unwrap_or_default();
                    println!(
                        "{:>8} {:<10} {}{old}",
                        v["seq"],
                        v["event"].as_str().unwrap_or("?"),
                        v["path"].as_str().unwrap_or("")
                    );
                }
            }
            Some(Ok(WatchMessageType::Error)) => {
                return Err(CliError::other(format!("watch: {}", v["error"].as_str().unwrap_or("error"))))
            }
            _ => {} // subscribed / unsubscribed
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// A refused upgrade carries the server's HTTP status: classify it like any other answer.
fn handshake_error(url: &str, e: tungstenite::Error) -> CliError {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = tideline_client::StatusCode::from_u16(resp.status().as_u16())
                .unwrap_or(tideline_client::StatusCode::BAD_GATEWAY);
            CliError::from(ClientError::refused(status, resp.body().as_deref().unwrap_or_default()))
        }
        other => CliError::new(ErrorKind::Unavailable, format!("reach {url}: {other}")),
    }
}
