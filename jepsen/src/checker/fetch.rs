//! Fetching every node's final state over HTTP, directly (never through a fault proxy) and with
//! `consistency=local` wherever the route takes it, so each node answers from its own applied
//! state: journals (paged to the head, from the retention floor), namespaces (a recursive
//! `list` walk plus each file's content hash) and a bootstrap per volume (archive unpacked).

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::model::{Bootstrap, Entry, Journal, Kind, Namespace, Node};
use crate::target::{NodeEndpoint, Target};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per request (connection errors and 5xx are retried).
const ATTEMPTS: u32 = 5;
const PAGE_ENTRIES: u64 = 2048;
/// File reads in flight per node while hashing a namespace.
const READS_IN_FLIGHT: usize = 16;
/// Times the journals are re-read while the nodes disagree on a head (a follower still applying).
const CONVERGE_ATTEMPTS: u32 = 15;
/// Times a bootstrap archive answering 409 (its seal not yet applied on this node) is re-read.
const ARCHIVE_NOT_READY_RETRIES: u32 = 40;

/// One node's final state; a part that could not be fetched is absent (and named in `errors`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeState {
    pub journals: BTreeMap<String, Journal>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub bootstraps: BTreeMap<String, Bootstrap>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FinalState {
    pub nodes: BTreeMap<u64, NodeState>,
    /// `{"node","volume","what","error"}` for each part that could not be fetched.
    pub errors: Vec<Value>,
    pub notes: Vec<String>,
}

struct Http {
    client: reqwest::Client,
    token: String,
}

impl Http {
    /// Sends a request, retrying connection errors and 5xx; returns the status and body.
    async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let mut last = anyhow!("no attempt");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt.min(4))).await;
            }
            let mut req = self.client.request(method.clone(), url).bearer_auth(&self.token);
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) if r.status().is_server_error() => {
                    last = anyhow!("{} {}", r.status(), String::from_utf8_lossy(&r.bytes().await.unwrap_or_default()));
                }
                Ok(r) => {
                    let status = r.status();
                    match r.bytes().await {
                        Ok(b) => return Ok((status, b.to_vec())),
                        Err(e) => last = anyhow!("read body: {e}"),
                    }
                }
                Err(e) => last = anyhow!("{e}"),
            }
        }
        Err(last.context(format!("{method} {url}")))
    }

    /// A JSON call that must succeed: the envelope's `data`.
    async fn data(&self, method: Method, url: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let (status, bytes) = self.send(method.clone(), url, body).await?;
        let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("{method} {url}: not JSON"))?;
        if !status.is_success() {
            bail!("{method} {url}: {status} {v}");
        }
        Ok(v["data"].clone())
    }
}

fn vol_url(node: &NodeEndpoint, vol: &str, rest: &str) -> String {
    format!("{}/api/v1/sandboxvolumes/{vol}{rest}", node.url.trim_end_matches('/'))
}

fn urlencode(p: &str) -> String {
    p.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A volume's retained journal on one node, paged to the head. A reseed 409 (the floor moved
/// past the cursor) restarts from the floor it names.
async fn journal(http: &Http, node: &NodeEndpoint, vol: &str) -> anyhow::Result<Journal> {
    let mut restarts = 0;
    let mut after = 0u64;
    'restart: loop {
        let mut j = Journal { retained_after_seq: after, head_seq: 0, entries: Vec::new() };
        let mut first_page = true;
        loop {
            let url =
                vol_url(node, vol, &format!("/sync/changes?after={after}&limit={PAGE_ENTRIES}&consistency=local"));
            let (status, bytes) = http.send(Method::GET, &url, None).await?;
            let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("GET {url}: not JSON"))?;
            if status == StatusCode::CONFLICT && v["error"]["details"]["reason"] == "reseed_required" {
                restarts += 1;
                if restarts > 10 {
                    bail!("GET {url}: reseed 409 ten times in a row: {v}");
                }
                after = v["error"]["details"]["retained_after_seq"].as_u64().context("reseed without a floor")?;
                continue 'restart;
            }
            if !status.is_success() {
                bail!("GET {url}: {status} {v}");
            }
            let d = &v["data"];
            if first_page {
                j.retained_after_seq = d["retained_after_seq"].as_u64().unwrap_or(0).max(after);
                first_page = false;
            }
            j.head_seq = d["head_seq"].as_u64().context("no head_seq")?;
            let page: Vec<Entry> = serde_json::from_value(d["changes"].clone()).context("parse changes")?;
            let Some(last) = page.last().map(|e| e.seq) else { return Ok(j) };
            j.entries.extend(page);
            after = last;
            if after >= j.head_seq {
                return Ok(j);
            }
        }
    }
}

/// A volume's namespace on one node: a recursive `list` walk, each file's content read and hashed.
async fn namespace(http: &Http, node: &NodeEndpoint, vol: &str) -> anyhow::Result<Namespace> {
    let mut ns = Namespace::new();
    let mut dirs = vec!["/".to_string()];
    let mut files = Vec::new();
    while let Some(d) = dirs.pop() {
        let url = vol_url(node, vol, &format!("/files/list?path={}&consistency=local", urlencode(&d)));
        let data = http.data(Method::GET, &url, None).await?;
        for e in data["entries"].as_array().context("list without entries")? {
            let path = e["path"].as_str().context("entry without path")?.to_string();
            let mode = u32::from_str_radix(e["mode"].as_str().unwrap_or("0"), 8).context("mode")? & 0o7777;
            if e["type"] == "dir" {
                dirs.push(path.clone());
                ns.insert(path, Node { kind: Kind::Dir, sha256: None, mode });
            } else {
                files.push(path.clone());
                ns.insert(path, Node { kind: Kind::File, sha256: None, mode });
            }
        }
    }
    let hashes: Vec<(String, String)> = futures::stream::iter(files)
        .map(|p| async move {
            let url = vol_url(node, vol, &format!("/files?path={}&consistency=local", urlencode(&p)));
            let (status, body) = http.send(Method::GET, &url, None).await?;
            if !status.is_success() {
                bail!("GET {url}: {status} {}", String::from_utf8_lossy(&body));
            }
            Ok::<_, anyhow::Error>((p, hex::encode(Sha256::digest(&body))))
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    for (p, h) in hashes {
        if let Some(n) = ns.get_mut(&p) {
            n.sha256 = Some(h);
        }
    }
    Ok(ns)
}

/// Unpacks a bootstrap `tar.gz` into a namespace (relative names, directories end in `/`).
pub fn unpack(gz: &[u8]) -> anyhow::Result<Namespace> {
    let mut ns = Namespace::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    for e in ar.entries().context("read archive")? {
        let mut e = e.context("read archive entry")?;
        let name = String::from_utf8(e.path_bytes().to_vec()).context("entry name is not UTF-8")?;
        let mode = e.header().mode().unwrap_or(0) & 0o7777;
        let path = format!("/{}", name.trim_end_matches('/'));
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                ns.insert(path, Node { kind: Kind::Dir, sha256: None, mode });
            }
            tar::EntryType::Regular => {
                let mut body = Vec::new();
                e.read_to_end(&mut body).context("read archive body")?;
                ns.insert(path, Node { kind: Kind::File, sha256: Some(hex::encode(Sha256::digest(&body))), mode });
            }
            other => bail!("unexpected archive entry type {other:?} for {name}"),
        }
    }
    Ok(ns)
}

/// A bootstrap taken through `node` (which freezes the namespace itself) and its archive.
async fn bootstrap(http: &Http, node: &NodeEndpoint, vol: &str) -> anyhow::Result<Bootstrap> {
    let url = vol_url(node, vol, "/sync/bootstrap");
    let body = json!({ "snapshot_name": format!("jepsen-check-n{}", node.id), "case_sensitive": true });
    let d = http.data(Method::POST, &url, Some(&body)).await?;
    let seq = d["replay_after_seq"].as_u64().context("no replay_after_seq")?;
    let path = d["archive_download_path"].as_str().context("no archive_download_path")?;
    let url = format!("{}{path}&consistency=local", node.url.trim_end_matches('/'));
    // The seal is committed when the POST answers, but this node may apply it a moment later
    // (a local read does not wait): "snapshot is not ready" is retried, bounded.
    for _ in 0..ARCHIVE_NOT_READY_RETRIES {
        let (status, gz) = http.send(Method::GET, &url, None).await?;
        if status == StatusCode::CONFLICT {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        if !status.is_success() {
            bail!("GET {url}: {status} {}", String::from_utf8_lossy(&gz));
        }
        return Ok(Bootstrap { replay_after_seq: seq, tree: unpack(&gz)? });
    }
    bail!("GET {url}: still 409 after {ARCHIVE_NOT_READY_RETRIES} tries")
}

/// Fetches every node's bootstraps, then journals (re-read until the nodes agree on each head,
/// bounded), then namespaces.
pub async fn fetch_all(target: &Target) -> FinalState {
    let http = Http {
        client: reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("http client"),
        token: target.team_token.clone(),
    };
    let mut st = FinalState::default();
    for n in &target.nodes {
        st.nodes.insert(n.id, NodeState::default());
    }
    let err = |st: &mut FinalState, node: u64, vol: &str, what: &str, e: anyhow::Error| {
        tracing::warn!(node, volume = vol, what, error = %format!("{e:#}"), "checker: fetch failed");
        st.errors.push(json!({ "node": node, "volume": vol, "what": what, "error": format!("{e:#}") }));
    };
    for n in &target.nodes {
        for vol in &target.volumes {
            match bootstrap(&http, n, vol).await {
                Ok(b) => {
                    st.nodes.get_mut(&n.id).expect("node").bootstraps.insert(vol.clone(), b);
                }
                Err(e) => err(&mut st, n.id, vol, "bootstrap", e),
            }
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut fetched: BTreeMap<u64, BTreeMap<String, Journal>> = BTreeMap::new();
        let mut failures = Vec::new();
        for n in &target.nodes {
            for vol in &target.volumes {
                match journal(&http, n, vol).await {
                    Ok(j) => {
                        fetched.entry(n.id).or_default().insert(vol.clone(), j);
                    }
                    Err(e) => failures.push((n.id, vol.clone(), e)),
                }
            }
        }
        let disagree: Vec<&String> = target
            .volumes
            .iter()
            .filter(|v| {
                let heads: std::collections::BTreeSet<u64> =
                    fetched.values().filter_map(|js| js.get(*v)).map(|j| j.head_seq).collect();
                heads.len() > 1
            })
            .collect();
        if (disagree.is_empty() && failures.is_empty()) || attempt >= CONVERGE_ATTEMPTS {
            if !disagree.is_empty() {
                st.notes.push(format!("heads still differ after {attempt} reads for volumes {disagree:?}"));
            } else if attempt > 1 {
                st.notes.push(format!("journals re-read {attempt} times before the nodes' heads agreed"));
            }
            for (n, js) in fetched {
                st.nodes.get_mut(&n).expect("node").journals = js;
            }
            for (n, vol, e) in failures {
                err(&mut st, n, &vol, "journal", e);
            }
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for n in &target.nodes {
        for vol in &target.volumes {
            match namespace(&http, n, vol).await {
                Ok(ns) => {
                    st.nodes.get_mut(&n.id).expect("node").namespaces.insert(vol.clone(), ns);
                }
                Err(e) => err(&mut st, n.id, vol, "namespace", e),
            }
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_unpack_into_namespaces() {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        b.append_data(&mut dir, "d/", std::io::empty()).unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_entry_type(tar::EntryType::Regular);
        file.set_mode(0o600);
        file.set_size(2);
        b.append_data(&mut file, "d/f.txt", &b"hi"[..]).unwrap();
        let gz = b.into_inner().unwrap().finish().unwrap();
        let ns = unpack(&gz).unwrap();
        assert_eq!(ns["/d"], Node { kind: Kind::Dir, sha256: None, mode: 0o755 });
        assert_eq!(ns["/d/f.txt"].sha256.as_deref(), Some(hex::encode(Sha256::digest(b"hi")).as_str()));
        assert_eq!(ns["/d/f.txt"].mode, 0o600);
        assert!(unpack(b"not a gzip").is_err());
    }

    #[test]
    fn journal_entries_parse_and_compare_in_full() {
        let wire = json!({ "seq": 3, "volume_id": "v", "team_id": "t", "source": "replica", "replica_id": "r",
            "event_type": "write", "path": "/a.conflict-r-seq-2", "normalized_path": "/a.conflict-r-seq-2",
            "tombstone": false, "entry_kind": "file", "mode": 420, "content_ref": "sha256:ab", "content_sha256": "ab",
            "size_bytes": 2, "metadata": { "conflict_artifact": true }, "created_at": "2026-11-22T00:00:00Z" });
        let e: Entry = serde_json::from_value(wire.clone()).unwrap();
        assert!(e.is_file_write() && e.is_conflict_artifact());
        assert_eq!(e.sha256(), Some("ab"));
        assert_eq!(serde_json::to_value(&e).unwrap(), wire, "nothing is dropped");
        let mut other = wire.clone();
        other["created_at"] = json!("2026-11-22T00:00:01Z");
        assert_ne!(e, serde_json::from_value::<Entry>(other).unwrap(), "every field takes part in the comparison");
    }
}
