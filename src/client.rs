//! The CLI's HTTP client for admin routes: envelope decoding, and one hop to the leader when
//! a node answers that a request must run there.

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::Value;

pub struct AdminClient {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl AdminClient {
    pub fn new(server: &str, token: &str) -> Self {
        AdminClient {
            http: reqwest::Client::new(),
            server: server.trim_end_matches('/').to_string(),
            token: token.into(),
        }
    }

    /// Sends a request and returns the envelope's `data`; follows a leader hint once.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        match self.call_at(&self.server, method.clone(), path, body).await? {
            Ok(data) => Ok(data),
            Err(err) => match err["details"]["leader_addr"].as_str() {
                Some(leader) => match self.call_at(&format!("http://{leader}"), method, path, body).await? {
                    Ok(data) => Ok(data),
                    Err(err) => bail!("leader refused: {}", err["message"].as_str().unwrap_or("unknown error")),
                },
                None => bail!("server refused: {}", err["message"].as_str().unwrap_or("unknown error")),
            },
        }
    }

    /// One request; `Err(error object)` if the server answered with an error envelope.
    async fn call_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Result<Value, Value>> {
        let url = format!("{base}{path}");
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| format!("reach {url}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.with_context(|| format!("read response of {url}"))?;
        if status.is_success() {
            return Ok(Ok(v["data"].clone()));
        }
        let mut err = v["error"].clone();
        if let Some(m) = err["message"].as_str() {
            err["message"] = Value::String(format!("{status}: {m}"));
        }
        Ok(Err(err))
    }
}
