//! What the benchmark binaries share: a typed client of the server under test
//! ([`tideline_client`]), a team token and volumes made with the admin token, seeding through
//! replica appends, and report helpers.
//!
//! Benchmarks send every request once (`RetryPolicy::none()`): a retry would hide a failure
//! inside a latency figure.

use anyhow::{Context, Result};
use tideline_client::types::wire::{AppendRequest, ReplicaChange, ReplicaRequest, TokenRequest, VolumeRequest};
use tideline_client::{Client, RetryPolicy, Timeouts};

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

/// A client of `server` with `token`, every request sent once, each within `request_timeout`.
pub fn client(server: &str, token: &str, request_timeout: std::time::Duration) -> Result<Client> {
    let timeouts = Timeouts { request: request_timeout, ..Timeouts::default() };
    Client::builder(server, token)
        .timeouts(timeouts)
        .retry(RetryPolicy::none())
        .build()
        .with_context(|| format!("a client of {server}"))
}

/// A client for a fresh team token made with the admin client `admin` (same server and
/// settings).
pub async fn team(admin: &Client, team: &str) -> Result<Client> {
    let req = TokenRequest { team_id: team.into(), permissions: vec!["*".into()], ..Default::default() };
    let created = admin
        .create_token(&req)
        .await
        .with_context(|| format!("creating the {team} team token with the admin token"))?;
    Ok(admin.with_token(&created.token))
}

/// Creates a team token (with the admin client) and one volume for it: the team's client and
/// the volume id.
pub async fn team_volume(admin: &Client, team_name: &str) -> Result<(Client, String)> {
    let c = team(admin, team_name).await?;
    let vol =
        c.create_volume(&VolumeRequest::default()).await.with_context(|| format!("creating the {team_name} volume"))?;
    Ok((c, vol.id))
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
pub async fn seed_with_appends(c: &Client, volume: &str, files: u64) -> Result<()> {
    use base64::Engine;
    let mut head = c
        .put_replica(volume, "seed", &ReplicaRequest::default())
        .await
        .context("register the seeding replica")?
        .head_seq;
    let b64 = base64::engine::general_purpose::STANDARD;
    for batch in 0..files.div_ceil(SEED_BATCH) {
        let changes: Vec<ReplicaChange> = (batch * SEED_BATCH..((batch + 1) * SEED_BATCH).min(files))
            .map(|n| ReplicaChange::write(format!("/d{}/f{n}", n % 100), b64.encode(n.to_le_bytes())))
            .collect();
        let req = AppendRequest { request_id: format!("seed-{batch}"), base_seq: head, changes };
        head = c.append(volume, "seed", &req).await.with_context(|| format!("seed batch {batch}"))?.head_seq;
    }
    Ok(())
}
