//! What every request leaves behind: a request id, one access-log line and a latency sample.
//!
//! ```text
//!  request ─▶ x-request-id: the caller's (if sane) or a new one ─▶ handler
//!          ─▶ response gets x-request-id ─▶ access line (target tideline::access)
//!          ─▶ tideline_http_request_duration_seconds{route,method,status}
//! ```
//!
//! The access line names the method, the matched route (its template, not the raw path), the
//! status, the latency, the volume and the request id. Never a header, a query string or a
//! body: tokens travel in the first and paths in the second. Client routes log at `info`;
//! node-to-node RPCs (`/raft/…`, thousands a second under load) at `debug`.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::Histogram;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// A caller's request id longer than this is replaced by one of ours.
pub const REQUEST_ID_LEN_MAX: usize = 128;

/// The middleware: wraps every route (see the module header).
pub async fn track(mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let method = req.method().clone();
    let volume = volume_of(route.as_deref(), req.uri().path()).map(str::to_string);
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane(id))
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    // Handlers and whatever they forward to see the same id.
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let route_label = route.as_deref().unwrap_or("unmatched");
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let volume = volume.as_deref().unwrap_or("");
    if route_label.starts_with("/raft/") {
        tracing::debug!(target: "tideline::access", %method, route = route_label, status, latency_ms, volume, request_id);
    } else {
        tracing::info!(target: "tideline::access", %method, route = route_label, status, latency_ms, volume, request_id);
    }
    latency_histogram(route, method, status).record(elapsed.as_secs_f64());
    resp
}

/// Visible ASCII without spaces, at most [`REQUEST_ID_LEN_MAX`]: safe to echo and to log.
fn is_sane(id: &str) -> bool {
    !id.is_empty() && id.len() <= REQUEST_ID_LEN_MAX && id.bytes().all(|b| b.is_ascii_graphic())
}

/// 16 random bytes in hex.
fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The volume id in `path` when the matched route names one (`…/sandboxvolumes/{id}…`).
fn volume_of<'p>(route: Option<&str>, path: &'p str) -> Option<&'p str> {
    let route = route?;
    let at = route.split('/').position(|s| s == "{id}")?;
    let mut segments = path.split('/');
    let previous = route.split('/').nth(at.checked_sub(1)?)?;
    if previous != "sandboxvolumes" {
        return None;
    }
    segments.nth(at)
}

/// Label sets of the request histogram kept as handles, at most: routes are the router's
/// own paths, but a client may send any method name.
const LATENCY_HANDLES_MAX: usize = 1024;

type HistogramKey = (Option<String>, Method, u16);

/// The request-latency histogram of one (route, method, status), its handle built once: a
/// handle built per request costs three label strings and a registry lookup on every write.
fn latency_histogram(route: Option<String>, method: Method, status: u16) -> Histogram {
    static HANDLES: OnceLock<RwLock<HashMap<HistogramKey, Histogram>>> = OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        crate::observe::prometheus(); // handles are bound to the recorder installed when they are built
        RwLock::new(HashMap::new())
    });
    let key = (route, method, status);
    if let Some(h) = handles.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return h.clone();
    }
    let (route, method, status) = &key;
    let labels = [
        ("route", route.clone().unwrap_or_else(|| "unmatched".into())),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    let h = metrics::histogram!("tideline_http_request_duration_seconds", &labels);
    let mut handles = handles.write().unwrap_or_else(|e| e.into_inner());
    if handles.len() < LATENCY_HANDLES_MAX {
        handles.insert(key, h.clone());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_comes_from_the_segment_the_route_names() {
        let vol = |route, path| volume_of(Some(route), path);
        assert_eq!(vol("/api/v1/sandboxvolumes/{id}/files", "/api/v1/sandboxvolumes/vol-1/files"), Some("vol-1"));
        assert_eq!(vol("/api/v1/sandboxvolumes/{id}", "/api/v1/sandboxvolumes/vol-2"), Some("vol-2"));
        assert_eq!(vol("/api/v1/sandboxvolumes", "/api/v1/sandboxvolumes"), None);
        assert_eq!(vol("/api/v1/cluster/nodes/{node_id}", "/api/v1/cluster/nodes/3"), None);
        assert_eq!(volume_of(None, "/api/v1/sandboxvolumes/vol-1"), None, "an unmatched path names nothing");
    }

    #[test]
    fn only_sane_request_ids_are_echoed() {
        assert!(is_sane("a1b2-c3.d4_e5:f6"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("newline\n"));
        assert!(!is_sane(&"x".repeat(REQUEST_ID_LEN_MAX + 1)));
        let id = new_request_id();
        assert_eq!(id.len(), 32);
        assert!(is_sane(&id));
        assert_ne!(id, new_request_id());
    }
}
