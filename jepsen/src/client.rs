//! The harness's HTTP client for Tideline's public API: bounded timeouts, the response envelope
//! unwrapped, and every answer classified the way the history needs it — acknowledged (`Ok`),
//! definitely not applied (`Fail`), or unknown (`Info`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::history::Outcome;

/// A client call never waits longer than this (then it is indeterminate).
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Connecting to a node may take this long (a refused or timed-out connect sent nothing).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The message prefix of the 503 a write gets when its content could not be stored.
const OBJECT_STORE_DOWN: &str = "object store unavailable";
/// Bodies of error answers are kept in the history up to this many bytes.
const ERROR_TEXT_MAX: usize = 512;

/// How one call ended.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 2xx: the envelope's `data`.
    Ok(Value),
    /// The server answered with an error; `body` is the whole envelope (or the raw text).
    Err { status: StatusCode, body: Value },
    /// No answer: `sent` is false when the request provably never reached the server (connect
    /// refused), so nothing can have been applied.
    NoAnswer { sent: bool, error: String },
}

impl Answer {
    /// The history outcome of a mutation with this answer. A 4xx is a definite refusal; so is
    /// the 503 of an unreachable object store (content is stored before anything is proposed,
    /// docs/ARCHITECTURE.md "Faults": "writes fail with 503, nothing half-done"). Any other 5xx may come
    /// after the command was proposed (a forward that timed out, a leader change), so it is
    /// indeterminate; so is a timeout or a reset connection.
    pub fn outcome(&self) -> Outcome {
        match self {
            Answer::Ok(_) => Outcome::Ok,
            Answer::Err { status, .. } if status.is_client_error() => Outcome::Fail,
            Answer::Err { status, body }
                if *status == StatusCode::SERVICE_UNAVAILABLE
                    && body["error"]["message"].as_str().is_some_and(|m| m.starts_with(OBJECT_STORE_DOWN)) =>
            {
                Outcome::Fail
            }
            Answer::Err { .. } => Outcome::Info,
            Answer::NoAnswer { sent: false, .. } => Outcome::Fail,
            Answer::NoAnswer { sent: true, .. } => Outcome::Info,
        }
    }

    /// A short description for `Op::error`, when it is not `Ok`.
    pub fn error_text(&self) -> Option<String> {
        match self {
            Answer::Ok(_) => None,
            Answer::Err { status, body } => {
                let msg = body["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| body.to_string());
                let mut text = format!("{}: {msg}", status.as_u16());
                text.truncate(ERROR_TEXT_MAX);
                Some(text)
            }
            Answer::NoAnswer { error, .. } => Some(error.clone()),
        }
    }

    /// `Some(data)` on success.
    pub fn data(&self) -> Option<&Value> {
        match self {
            Answer::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// The details of the reseed 409 (`retained_after_seq`, `head_seq`), if this is one.
    pub fn reseed(&self) -> Option<(u64, u64)> {
        match self {
            Answer::Err { status, body } if *status == StatusCode::CONFLICT => {
                let d = &body["error"]["details"];
                if d["reason"] != "reseed_required" {
                    return None;
                }
                Some((d["retained_after_seq"].as_u64()?, d["head_seq"].as_u64()?))
            }
            _ => None,
        }
    }
}

/// An HTTP client with the harness's timeouts. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
}

impl Default for Api {
    fn default() -> Self {
        Api::new(OP_TIMEOUT)
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

impl Api {
    pub fn new(timeout: Duration) -> Api {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(4)
            .build()
            .expect("build http client");
        Api { http }
    }

    /// One call to `url` (`http://host:port/path?query`) with a bearer token.
    pub async fn call(&self, method: Method, url: &str, token: &str, body: Body) -> Answer {
        let mut req = self.http.request(method, url).bearer_auth(token);
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(b) => req.body(b),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return no_answer(e),
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            // The status line arrived: the server got the request; the outcome is still unknown.
            Err(e) => return Answer::NoAnswer { sent: true, error: format!("{status}, body lost: {e}") },
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_TEXT_MAX)]).into())
        });
        if status.is_success() {
            Answer::Ok(body.get("data").cloned().unwrap_or(body))
        } else {
            Answer::Err { status, body }
        }
    }

    /// A plain GET without a token; `Some(status)` if the node answered.
    pub async fn probe(&self, url: &str) -> Option<StatusCode> {
        self.http.get(url).send().await.ok().map(|r| r.status())
    }
}

fn no_answer(e: reqwest::Error) -> Answer {
    // reqwest's connect errors (refused, connect timeout) happen before any byte is written.
    let sent = !e.is_connect();
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    Answer::NoAnswer { sent, error: format!("{kind}: {}", error_chain(&e)) }
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text.truncate(ERROR_TEXT_MAX);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_follow_the_answer() {
        assert_eq!(Answer::Ok(json!({})).outcome(), Outcome::Ok);
        let refused = Answer::Err { status: StatusCode::CONFLICT, body: json!({}) };
        assert_eq!(refused.outcome(), Outcome::Fail);
        let unavailable = Answer::Err { status: StatusCode::SERVICE_UNAVAILABLE, body: json!({}) };
        assert_eq!(unavailable.outcome(), Outcome::Info);
        let store_down = Answer::Err {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: json!({"error":{"code":"unavailable","message":"object store unavailable: HEAD failed"}}),
        };
        assert_eq!(store_down.outcome(), Outcome::Fail);
        assert_eq!(Answer::NoAnswer { sent: false, error: "x".into() }.outcome(), Outcome::Fail);
        assert_eq!(Answer::NoAnswer { sent: true, error: "x".into() }.outcome(), Outcome::Info);
    }

    #[test]
    fn reseed_details_are_read_from_the_envelope() {
        let body = json!({"success":false,"error":{"code":"conflict","message":"sync reseed required",
            "details":{"reason":"reseed_required","retained_after_seq":200,"head_seq":450}}});
        let a = Answer::Err { status: StatusCode::CONFLICT, body };
        assert_eq!(a.reseed(), Some((200, 450)));
        let other = Answer::Err { status: StatusCode::CONFLICT, body: json!({"error":{"details":{}}}) };
        assert_eq!(other.reseed(), None);
    }
}
