//! What the benchmark binaries share: talking to a Tideline server as a client (envelopes,
//! error messages, creating a team token and a volume).

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// How much of an error body is shown.
const ERROR_BODY_CHARS: usize = 500;

/// At most `ERROR_BODY_CHARS` characters of a body, for messages.
pub fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(ERROR_BODY_CHARS).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

/// Sends a JSON POST and returns the envelope's `data`, or an error naming the status and body.
pub async fn post_json(http: &reqwest::Client, url: &str, bearer: &str, body: &Value) -> Result<Value> {
    let resp = http.post(url).bearer_auth(bearer).json(body).send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await.with_context(|| format!("POST {url}: reading the response body"))?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {}", excerpt(&text));
    }
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("POST {url}: {status} with a body that is not JSON: {}", excerpt(&text)))?;
    v.get("data")
        .cloned()
        .ok_or_else(|| anyhow!("POST {url}: {status} without `data` in the envelope: {}", excerpt(&text)))
}

pub fn string_field(data: &Value, field: &str, what: &str) -> Result<String> {
    data.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what}: response has no string `data.{field}`: {}", excerpt(&data.to_string())))
}

/// Creates a team token (with the admin token) and one volume for it: `(token, volume id)`.
pub async fn team_volume(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    team: &str,
) -> Result<(String, String)> {
    let data =
        post_json(http, &format!("{base}/api/v1/tokens"), admin_token, &json!({"team_id": team, "permissions": ["*"]}))
            .await
            .with_context(|| format!("creating the {team} team token with the admin token"))?;
    let token = string_field(&data, "token", "creating the team token")?;
    let data = post_json(http, &format!("{base}/api/v1/sandboxvolumes"), &token, &json!({}))
        .await
        .with_context(|| format!("creating the {team} volume"))?;
    let volume = string_field(&data, "id", "creating the volume")?;
    Ok((token, volume))
}

/// An error and its sources, `: `-separated (reqwest's top-level message hides the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Microseconds as milliseconds, for reports.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A binary's exit: success, or the error's context chain on one line (no backtrace).
pub fn exit(name: &str, result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Changes per replica append when seeding.
const SEED_BATCH: u64 = 1000;

/// Seeds `files` small files (`/d<n % 100>/f<n>`, one journal entry each) into `volume` through
/// a replica's appends of 1 000 changes: much faster than one files-API write per file.
pub async fn seed_with_appends(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    volume: &str,
    files: u64,
) -> Result<()> {
    use base64::Engine;
    let url = format!("{base}/api/v1/sandboxvolumes/{volume}/sync/replicas/seed");
    let resp =
        http.put(&url).bearer_auth(token).json(&json!({})).send().await.context("register the seeding replica")?;
    if !resp.status().is_success() {
        bail!("register the seeding replica: {}: {}", resp.status(), excerpt(&resp.text().await.unwrap_or_default()));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut head = 0u64;
    for batch in 0..files.div_ceil(SEED_BATCH) {
        let changes: Vec<Value> = (batch * SEED_BATCH..((batch + 1) * SEED_BATCH).min(files))
            .map(|n| json!({ "event_type": "write", "path": format!("/d{}/f{n}", n % 100), "content_base64": b64.encode(n.to_le_bytes()) }))
            .collect();
        let body = json!({ "request_id": format!("seed-{batch}"), "base_seq": head, "changes": changes });
        let data = post_json(http, &format!("{url}/changes"), token, &body).await?;
        head = data["head_seq"].as_u64().ok_or_else(|| anyhow!("append answered without head_seq"))?;
    }
    Ok(())
}
