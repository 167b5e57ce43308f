//! `tideline dev-certs`: a throwaway cluster CA and one certificate per node, for development,
//! tests and `dev-cluster --tls`. Production clusters bring certificates from their own PKI.
//!
//! ```text
//! <out>/ca.pem                     the CA certificate: --peer-ca of every node, --ca-cert of clients
//! <out>/ca-key.pem                 its key (0600)
//! <out>/node<N>.pem, node<N>-key.pem   node N's certificate (serverAuth + clientAuth) and key (0600)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

#[derive(Args, Debug)]
pub struct DevCertsArgs {
    /// Where to write the files (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Node certificates to issue (node1 … nodeN).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Names and addresses every node certificate is valid for (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1,localhost")]
    hosts: Vec<String>,
}

pub fn run(args: DevCertsArgs) -> anyhow::Result<()> {
    let made = ensure(&args.out, args.nodes, &args.hosts)?;
    println!("{} {}", if made { "wrote" } else { "kept" }, args.out.display());
    Ok(())
}

/// The node certificate and key paths of node `id` under `dir`.
pub fn node_files(dir: &Path, id: u64) -> (PathBuf, PathBuf) {
    (dir.join(format!("node{id}.pem")), dir.join(format!("node{id}-key.pem")))
}

/// Writes a CA and `nodes` node certificates into `dir` unless all of them are there already.
/// Answers whether it wrote them.
pub fn ensure(dir: &Path, nodes: u64, hosts: &[String]) -> anyhow::Result<bool> {
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let all: Vec<PathBuf> = [dir.join("ca.pem"), dir.join("ca-key.pem")]
        .into_iter()
        .chain((1..=nodes).flat_map(|id| {
            let (c, k) = node_files(dir, id);
            [c, k]
        }))
        .collect();
    match all.iter().filter(|p| p.exists()).count() {
        0 => {}
        n if n == all.len() => return Ok(false),
        _ => bail!("{} holds some of the certificates but not all: remove it to start over", dir.display()),
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;

    let ca_key = KeyPair::generate().context("generate the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca.distinguished_name.push(DnType::CommonName, "tideline development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).context("sign the CA")?;
    write(&dir.join("ca.pem"), &ca_cert.pem(), false)?;
    write(&dir.join("ca-key.pem"), &ca_key.serialize_pem(), true)?;

    for id in 1..=nodes {
        let key = KeyPair::generate().context("generate a node key")?;
        let mut node = CertificateParams::new(hosts.to_vec()).context("node certificate parameters")?;
        node.distinguished_name.push(DnType::CommonName, format!("tideline node {id}"));
        node.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = node.signed_by(&key, &ca_cert, &ca_key).context("sign a node certificate")?;
        let (cert_path, key_path) = node_files(dir, id);
        write(&cert_path, &cert.pem(), false)?;
        write(&key_path, &key.serialize_pem(), true)?;
    }
    Ok(true)
}

/// Writes a new file; a key only its owner can read.
fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    }
    let mut f = open.open(path).with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).with_context(|| format!("write {}", path.display()))
}
