//! TLS for the client: what the Java client does with `zookeeper.client.secure=true` and its
//! `zookeeper.ssl.keyStore` / `trustStore` settings, with PEM files: the CA certificates that
//! the server's certificate must chain to (its name checked against the host connected to), and
//! optionally a client certificate and key, which a server with `ssl.clientAuth=need` requires
//! and which authenticates the session as `x509:<subject>`.
//!
//! This module owns building the rustls client configuration ([`TlsSettings::client_config`]);
//! the session task wraps each new TCP connection with it before the ZooKeeper handshake.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// The certificates and key do not make a configuration.
    #[error("TLS: {0}")]
    Config(String),
}

/// PEM files for a TLS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA certificates (PEM) the server's certificate must chain to.
    pub ca: PathBuf,
    /// The client's certificate chain (PEM), if it has one.
    pub cert: Option<PathBuf>,
    /// The client's private key (PEM, unencrypted), with `cert`.
    pub key: Option<PathBuf>,
}

fn file_err(p: &std::path::Path, message: impl Into<String>) -> TlsError {
    TlsError::File { path: p.display().to_string(), message: message.into() }
}

impl TlsSettings {
    /// The rustls configuration these files make (with the *ring* provider).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| file_err(p, format!("cannot read: {e}")));
        let mut roots = rustls::RootCertStore::empty();
        let ca = read(&self.ca)?;
        for c in CertificateDer::pem_slice_iter(&ca) {
            let c = c.map_err(|e| file_err(&self.ca, format!("bad PEM certificate: {e}")))?;
            roots.add(c).map_err(|e| file_err(&self.ca, format!("unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(file_err(&self.ca, "no CA certificate found"));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let cfg = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&read(cert)?)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| file_err(cert, format!("bad PEM certificate: {e}")))?;
                let k = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| file_err(key, format!("no private key found: {e}")))?;
                builder.with_client_auth_cert(chain, k).map_err(|e| TlsError::Config(format!("client certificate and key: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::Config("a client certificate needs its key, and a key its certificate".into())),
        };
        Ok(Arc::new(cfg))
    }
}

/// rustls with *ring* (builds with cargo and a C compiler alone; deprecated in rustls 0.23.48
/// for lacking post-quantum key exchange, which ZooKeeper's JDK TLS does not offer either).
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
