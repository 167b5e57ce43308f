//! TLS material from PEM files, and the rustls configurations built from it: rustls with the
//! *ring* provider, no OpenSSL. One node certificate (serverAuth and clientAuth) serves the
//! node's listener and identifies it to its peers; the cluster CA (`--peer-ca`) is what peers
//! trust in each other (mutual TLS).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {why}")]
pub struct TlsError {
    what: &'static str,
    path: String,
    why: String,
}

impl TlsError {
    /// A file that could not be used for `why`.
    pub fn other(what: &'static str, path: &Path, why: impl ToString) -> Self {
        Self::new(what, path, why)
    }

    fn new(what: &'static str, path: &Path, why: impl ToString) -> Self {
        TlsError { what, path: path.display().to_string(), why: why.to_string() }
    }
}

/// The provider every configuration here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, leaf first; an empty file is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new("certificate file", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new("certificate file", path, e))?;
    if certs.is_empty() {
        return Err(TlsError::new("certificate file", path, "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::new("private key file", path, e))
}

/// A trust store holding the CA certificates of a PEM file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::new("CA file", path, e))?;
    }
    Ok(roots)
}

/// The node's TLS files: its certificate chain and key, and the cluster CA if peers must
/// present certificates it signed.
#[derive(Clone, Debug)]
pub struct NodeTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub peer_ca: Option<std::path::PathBuf>,
}

impl NodeTls {
    /// The client side of node-to-node calls: trusts the cluster CA only and presents the node
    /// certificate. `None` without a cluster CA (peers are then called over plain HTTP).
    pub fn peer_client_config(&self) -> Result<Option<rustls::ClientConfig>, TlsError> {
        let Some(ca) = &self.peer_ca else { return Ok(None) };
        let roots = load_roots(ca)?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new("CA file", ca, e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(load_certs(&self.cert)?, load_key(&self.key)?)
            .map_err(|e| TlsError::new("certificate file", &self.cert, e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(config))
    }
}
