//! Server configuration: command-line flags (each also an environment variable) over an
//! optional TOML file with the same keys, over defaults.
//!
//! ```toml
//! node_id = 2
//! data_dir = "/var/lib/tideline"
//! listen = "0.0.0.0:7070"
//! advertise = "10.0.0.2:7070"
//! peers = "1=10.0.0.1:7070,2=10.0.0.2:7070,3=10.0.0.3:7070"
//! cluster_secret = "…"
//! object_store = "s3://bucket/prefix"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// TOML file with any of the keys below (flags win over it).
    #[arg(long, env = "TIDELINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id (> 0), unique in the cluster.
    #[arg(long, env = "TIDELINE_NODE_ID")]
    pub node_id: Option<u64>,
    /// Where this node keeps its database, snapshots and (by default) its object store.
    #[arg(long, env = "TIDELINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "TIDELINE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address peers and clients reach this node at (default: the listen address).
    #[arg(long, env = "TIDELINE_ADVERTISE")]
    pub advertise: Option<String>,
    /// The cluster's initial voters: `1=host:port,2=host:port,3=host:port`.
    #[arg(long, env = "TIDELINE_PEERS")]
    pub peers: Option<String>,
    /// Start without initializing a cluster: wait to be added by `tideline cluster add-node`.
    #[arg(long, env = "TIDELINE_JOIN")]
    pub join: bool,
    /// Shared secret of node-to-node traffic (required with peers).
    #[arg(long, env = "TIDELINE_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Object store: `file:///shared/dir` or `s3://bucket/prefix` (default: `<data-dir>/objects`).
    #[arg(long, env = "TIDELINE_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// S3 endpoint (for S3-compatible servers); credentials come from the usual AWS variables.
    #[arg(long, env = "TIDELINE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Admin token; if absent, read from or generated into <data-dir>/admin.token.
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Build a Raft snapshot (and purge the log before it) after at least this many entries; a
    /// store over 64 MiB waits until the log since its last snapshot is half its size.
    #[arg(long, env = "TIDELINE_SNAPSHOT_LOGS")]
    pub snapshot_logs: Option<u64>,
    /// Log entries kept before a snapshot when purging (lagging followers catch up from them).
    #[arg(long, env = "TIDELINE_SNAPSHOT_KEEP_LOGS")]
    pub snapshot_keep_logs: Option<u64>,
    /// Journal entries kept per volume; older ones are compacted (clients below get a reseed).
    #[arg(long, env = "TIDELINE_JOURNAL_RETAIN_ENTRIES")]
    pub journal_retain_entries: Option<u64>,
    /// How often the leader compacts journals (e.g. `10m`, `30s`).
    #[arg(long, env = "TIDELINE_COMPACTION_INTERVAL")]
    pub compaction_interval: Option<String>,
    /// How often the leader looks for unreferenced blobs (e.g. `10m`).
    #[arg(long, env = "TIDELINE_GC_INTERVAL")]
    pub gc_interval: Option<String>,
    /// How long a blob stays unreferenced before it is deleted (at least 1h: blob puts re-upload
    /// objects older than 30 min, and that must stay well inside the grace period).
    #[arg(long, env = "TIDELINE_GC_GRACE")]
    pub gc_grace: Option<String>,
    /// Batched Raft entries this node's proposer commits at once (1–16, default 2): while they
    /// are committed, new writes queue and become the next batch.
    #[arg(long, env = "TIDELINE_PROPOSALS_IN_FLIGHT")]
    pub proposals_in_flight: Option<usize>,
    /// Serve HTTPS with this certificate chain (PEM; give --tls-key too). With --peer-ca it
    /// is also the node's client certificate towards its peers (serverAuth and clientAuth).
    #[arg(long, env = "TIDELINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "TIDELINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA (PEM): peers call each other over mutual TLS and `/raft/*` accepts only
    /// connections whose client certificate it signed. Required with TLS in a cluster.
    #[arg(long, env = "TIDELINE_PEER_CA")]
    pub peer_ca: Option<PathBuf>,
    /// Allow plain HTTP on a listen address that is not loopback (tokens, the cluster secret
    /// and file content then cross the network in cleartext).
    #[arg(long, env = "TIDELINE_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Hidden, and compiled in only with the `planted-bugs` feature: switch on a deliberate bug
    /// (`ack-before-commit`) so the jepsen harness can show it catches it.
    #[cfg(feature = "planted-bugs")]
    #[arg(long = "planted-bug", hide = true)]
    pub planted_bug: Vec<String>,
}

/// The same keys, from a TOML file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<u64>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    advertise: Option<String>,
    peers: Option<String>,
    join: Option<bool>,
    cluster_secret: Option<String>,
    object_store: Option<String>,
    s3_endpoint: Option<String>,
    admin_token: Option<String>,
    snapshot_logs: Option<u64>,
    snapshot_keep_logs: Option<u64>,
    journal_retain_entries: Option<u64>,
    compaction_interval: Option<String>,
    gc_interval: Option<String>,
    gc_grace: Option<String>,
    proposals_in_flight: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    peer_ca: Option<PathBuf>,
    insecure_http: Option<bool>,
}

/// Everything the server needs, resolved.
#[derive(Debug)]
pub struct ServerConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub advertise: Option<String>,
    pub peers: BTreeMap<u64, String>,
    pub join: bool,
    pub cluster_secret: Option<String>,
    pub object_store: Option<String>,
    pub s3_endpoint: Option<String>,
    pub admin_token: Option<String>,
    pub snapshot_logs: u64,
    pub snapshot_keep_logs: u64,
    pub journal_retain_entries: u64,
    pub compaction_interval: std::time::Duration,
    pub gc_interval: std::time::Duration,
    pub gc_grace: std::time::Duration,
    pub proposals_in_flight: usize,
    /// HTTPS (and mutual TLS between peers with a cluster CA); `None`: plain HTTP.
    pub tls: Option<tideline_raft::tls::NodeTls>,
    #[cfg(feature = "planted-bugs")]
    pub planted_bugs: tideline_api::state::PlantedBugs,
}

impl ServerArgs {
    pub fn resolve(self) -> anyhow::Result<ServerConfig> {
        let file = match &self.config {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("read config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parse config {}", p.display()))?
            }
        };
        let node_id = self.node_id.or(file.node_id).unwrap_or(1);
        if node_id == 0 {
            bail!("--node-id must be greater than 0");
        }
        let peers = match self.peers.or(file.peers) {
            None => BTreeMap::new(),
            Some(s) => parse_peers(&s)?,
        };
        if !peers.is_empty() && !peers.contains_key(&node_id) {
            bail!("--peers does not name this node ({node_id})");
        }
        let join = self.join || file.join.unwrap_or(false);
        let cluster_secret = self.cluster_secret.or(file.cluster_secret).filter(|s| !s.is_empty());
        if (peers.len() > 1 || join) && cluster_secret.is_none() {
            bail!("--cluster-secret is required when --peers names other nodes or with --join");
        }
        let listen =
            self.listen.or(file.listen).unwrap_or_else(|| crate::DEFAULT_LISTEN.parse().expect("valid default"));
        let peer_ca = self.peer_ca.or(file.peer_ca);
        let insecure_http = self.insecure_http || file.insecure_http.unwrap_or(false);
        let tls = match (self.tls_cert.or(file.tls_cert), self.tls_key.or(file.tls_key)) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(tideline_raft::tls::NodeTls { cert, key, peer_ca: peer_ca.clone() }),
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        match &tls {
            None if peer_ca.is_some() => bail!("--peer-ca needs --tls-cert and --tls-key"),
            None if !listen.ip().is_loopback() && !insecure_http => bail!(
                "--listen {listen} is not a loopback address: serve TLS (--tls-cert/--tls-key) or, to send tokens \
                 and data in cleartext anyway, pass --insecure-http"
            ),
            Some(t) if t.peer_ca.is_none() && (peers.len() > 1 || join) => {
                bail!("a cluster over TLS needs --peer-ca (the CA that signed every node's certificate)")
            }
            _ => {}
        }
        Ok(ServerConfig {
            node_id,
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(crate::default_data_dir),
            listen,
            tls,
            advertise: self.advertise.or(file.advertise),
            peers,
            join,
            cluster_secret,
            object_store: self.object_store.or(file.object_store),
            s3_endpoint: self.s3_endpoint.or(file.s3_endpoint),
            admin_token: self.admin_token.or(file.admin_token),
            snapshot_logs: self.snapshot_logs.or(file.snapshot_logs).unwrap_or(10_000),
            snapshot_keep_logs: self.snapshot_keep_logs.or(file.snapshot_keep_logs).unwrap_or(1000),
            journal_retain_entries: self.journal_retain_entries.or(file.journal_retain_entries).unwrap_or(10_000),
            compaction_interval: duration(
                "--compaction-interval",
                self.compaction_interval.or(file.compaction_interval),
                std::time::Duration::from_secs(600),
            )?,
            gc_interval: duration(
                "--gc-interval",
                self.gc_interval.or(file.gc_interval),
                std::time::Duration::from_secs(600),
            )?,
            gc_grace: {
                let g = duration("--gc-grace", self.gc_grace.or(file.gc_grace), std::time::Duration::from_secs(3600))?;
                if g < std::time::Duration::from_secs(3600) {
                    bail!("--gc-grace must be at least 1h");
                }
                g
            },
            proposals_in_flight: match self.proposals_in_flight.or(file.proposals_in_flight) {
                None => tideline_raft::proposer::IN_FLIGHT_DEFAULT,
                Some(n @ 1..=tideline_raft::proposer::IN_FLIGHT_MAX) => n,
                Some(n) => bail!("--proposals-in-flight {n}: must be 1 to {}", tideline_raft::proposer::IN_FLIGHT_MAX),
            },
            #[cfg(feature = "planted-bugs")]
            planted_bugs: tideline_api::state::PlantedBugs::parse(&self.planted_bug)
                .map_err(|e| anyhow::anyhow!("--planted-bug: {e}"))?,
        })
    }
}

/// A positive duration flag (`10m`, `30s`, …), or its default.
fn duration(flag: &str, raw: Option<String>, default: std::time::Duration) -> anyhow::Result<std::time::Duration> {
    let d = match raw {
        None => return Ok(default),
        Some(s) => humantime::parse_duration(s.trim()).with_context(|| format!("{flag} {s:?}"))?,
    };
    if d.is_zero() {
        bail!("{flag} must be positive");
    }
    Ok(d)
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_peers(s: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').with_context(|| format!("peer {part:?} is not id=host:port"))?;
        let id: u64 = id.trim().parse().with_context(|| format!("peer id {id:?} is not a number"))?;
        if id == 0 || addr.trim().is_empty() {
            bail!("peer {part:?}: id must be > 0 and the address non-empty");
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} appears twice");
        }
    }
    Ok(out)
}

/// Opens the object store a URL names (`file:///dir`, `s3://bucket/prefix`), or the local
/// default under the data dir.
pub fn object_store(
    url: Option<&str>,
    s3_endpoint: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<tideline_storage::BlobStore> {
    let Some(url) = url else {
        return tideline_storage::BlobStore::local(&data_dir.join("objects")).context("open local object store");
    };
    let parsed = url::Url::parse(url).with_context(|| format!("object store URL {url:?}"))?;
    match parsed.scheme() {
        "file" => {
            let path =
                parsed.to_file_path().map_err(|_| anyhow::anyhow!("object store URL {url:?} is not a local path"))?;
            tideline_storage::BlobStore::local(&path).context("open local object store")
        }
        "s3" => {
            let bucket = parsed.host_str().context("s3 URL without a bucket")?;
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(ep) = s3_endpoint {
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            let store = b.build().context("configure S3 object store")?;
            let prefix = parsed.path().trim_matches('/').to_string();
            let store: std::sync::Arc<dyn object_store::ObjectStore> = if prefix.is_empty() {
                std::sync::Arc::new(store)
            } else {
                std::sync::Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
            };
            Ok(tideline_storage::BlobStore::from_store(store))
        }
        other => bail!("object store scheme {other:?} is not supported (use file:// or s3://)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_flags_have_defaults_and_the_grace_is_at_least_an_hour() {
        let c = ServerArgs::default().resolve().unwrap();
        assert_eq!(c.gc_interval, std::time::Duration::from_secs(600));
        assert_eq!(c.gc_grace, std::time::Duration::from_secs(3600));
        let c = ServerArgs { gc_interval: Some("30s".into()), gc_grace: Some("2h".into()), ..Default::default() }
            .resolve()
            .unwrap();
        assert_eq!((c.gc_interval.as_secs(), c.gc_grace.as_secs()), (30, 7200));
        let err = ServerArgs { gc_grace: Some("30m".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("--gc-grace must be at least 1h"), "{err}");
        assert!(ServerArgs { gc_interval: Some("0s".into()), ..Default::default() }.resolve().is_err());
        assert!(ServerArgs { gc_interval: Some("soon".into()), ..Default::default() }.resolve().is_err());
    }

    #[test]
    fn peers_parse_and_refuse_nonsense() {
        let p = parse_peers("1=a:1, 2=b:2,3=c:3").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[&2], "b:2");
        assert!(parse_peers("1=a:1,1=b:2").is_err());
        assert!(parse_peers("x=a:1").is_err());
        assert!(parse_peers("0=a:1").is_err());
        assert!(parse_peers("1").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_clusters_need_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, "node_id = 2\npeers = \"1=a:1,2=b:2\"\ncluster_secret = \"s\"\nsnapshot_logs = 7\n")
            .unwrap();
        let c = ServerArgs { config: Some(f.clone()), snapshot_logs: Some(9), ..Default::default() }.resolve().unwrap();
        assert_eq!((c.node_id, c.snapshot_logs, c.peers.len()), (2, 9, 2));
        std::fs::write(&f, "node_id = 2\npeers = \"1=a:1,2=b:2\"\n").unwrap();
        assert!(ServerArgs { config: Some(f.clone()), ..Default::default() }.resolve().is_err());
        let c = ServerArgs { compaction_interval: Some("250ms".into()), ..Default::default() }.resolve().unwrap();
        assert_eq!(c.compaction_interval, std::time::Duration::from_millis(250));
        assert_eq!(c.journal_retain_entries, 10_000);
        assert!(ServerArgs { compaction_interval: Some("0s".into()), ..Default::default() }.resolve().is_err());
        assert!(ServerArgs { compaction_interval: Some("soon".into()), ..Default::default() }.resolve().is_err());
        std::fs::write(&f, "nodeid = 2\n").unwrap();
        assert!(ServerArgs { config: Some(f), ..Default::default() }.resolve().is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_packaged_config_is_a_single_node_on_loopback_under_var_lib() {
        let repo = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
        let args = ServerArgs { config: Some(repo.join("packaging/tideline.toml")), ..Default::default() };
        let c = args.resolve().expect("packaging/tideline.toml is a valid config");
        assert_eq!(c.node_id, 1);
        assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/tideline"));
        assert!(c.listen.ip().is_loopback(), "{}", c.listen);
        assert!(c.peers.is_empty() && c.object_store.is_none() && c.cluster_secret.is_none());
    }

    #[test]
    fn tls_flags_go_together_and_cleartext_stays_on_loopback() {
        let p = |s: &str| Some(PathBuf::from(s));
        let err = |a: ServerArgs| a.resolve().unwrap_err().to_string();
        assert!(err(ServerArgs { tls_cert: p("c.pem"), ..Default::default() }).contains("go together"));
        assert!(err(ServerArgs { peer_ca: p("ca.pem"), ..Default::default() }).contains("--peer-ca needs"));
        let open = || ServerArgs { listen: Some("0.0.0.0:7070".parse().unwrap()), ..Default::default() };
        assert!(err(open()).contains("--insecure-http"));
        assert!(ServerArgs { insecure_http: true, ..open() }.resolve().is_ok());
        let tls = ServerArgs { tls_cert: p("c.pem"), tls_key: p("k.pem"), ..open() }.resolve().unwrap();
        assert!(tls.tls.is_some_and(|t| t.peer_ca.is_none()), "one node over TLS needs no cluster CA");
        let cluster = || ServerArgs {
            peers: Some("1=a:1,2=b:2".into()),
            cluster_secret: Some("s".into()),
            tls_cert: p("c.pem"),
            tls_key: p("k.pem"),
            ..open()
        };
        assert!(err(cluster()).contains("needs --peer-ca"));
        let c = ServerArgs { peer_ca: p("ca.pem"), ..cluster() }.resolve().unwrap();
        assert_eq!(c.tls.unwrap().peer_ca, p("ca.pem"));
    }
}
