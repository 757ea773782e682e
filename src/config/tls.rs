//! TLS settings: the certificate, key and client CA files, read and checked at start so that
//! a bad file stops the process with one line naming the setting and the path.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{anyhow, bail};
use clap::Args;
use rustls::server::{WebPkiClientVerifier, danger::ClientCertVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_rustls::TlsAcceptor;

/// TLS files. A certificate and its key turn TLS on; a client CA also requires clients to
/// present a certificate it signed (mutual TLS).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// PEM certificate chain the server presents (its own certificate first); needs --tls-key.
    #[arg(long, env = "CXMETRICS_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CXMETRICS_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate signed by one of these (mutual TLS).
    #[arg(long, env = "CXMETRICS_TLS_CLIENT_CA", value_name = "PATH")]
    pub tls_client_ca: Option<PathBuf>,
}

/// A setting as the operator knows it: its flag and its environment variable.
#[derive(Clone, Copy)]
pub(super) struct Setting(pub(super) &'static str, pub(super) &'static str);

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.1)
    }
}

const TLS_CERT: Setting = Setting("--tls-cert", "CXMETRICS_TLS_CERT");
const TLS_KEY: Setting = Setting("--tls-key", "CXMETRICS_TLS_KEY");
const TLS_CLIENT_CA: Setting = Setting("--tls-client-ca", "CXMETRICS_TLS_CLIENT_CA");

/// How long a client gets to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsArgs {
    /// Reads and checks the files: `None` without TLS settings, an error naming the setting
    /// and its path when a file is missing, unreadable, not PEM, or the pieces do not fit.
    pub fn load(&self) -> anyhow::Result<Option<TlsSettings>> {
        let (cert_path, key_path) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => bail!("{TLS_CERT} is set but {TLS_KEY} is not: give both"),
            (None, Some(_)) => bail!("{TLS_KEY} is set but {TLS_CERT} is not: give both"),
            (None, None) if self.tls_client_ca.is_some() => {
                bail!("{TLS_CLIENT_CA} needs {TLS_CERT} and {TLS_KEY}: mutual TLS runs over TLS")
            }
            (None, None) => return Ok(None),
        };
        let cert = read_certificates(TLS_CERT, cert_path)?;
        let key = read_private_key(TLS_KEY, key_path)?;
        let identity_error = |e: anyhow::Error| {
            anyhow!(
                "{TLS_CERT} {} and {TLS_KEY} {} do not make a usable identity: {e}",
                cert_path.display(),
                key_path.display()
            )
        };
        let mut acceptor = acceptor(&cert, &key, None).map_err(identity_error)?;
        let mutual = match &self.tls_client_ca {
            Some(path) => {
                let ca = read_certificates(TLS_CLIENT_CA, path)?;
                let verifier = client_verifier(&ca)
                    .map_err(|e| anyhow!("{TLS_CLIENT_CA} {}: unusable CA: {e}", path.display()))?;
                acceptor = self::acceptor(&cert, &key, Some(verifier)).map_err(identity_error)?;
                true
            }
            None => false,
        };
        Ok(Some(TlsSettings { mutual, acceptor }))
    }
}

/// The rustls acceptor the server terminates TLS with, offering both HTTP/2 and HTTP/1.1 by
/// ALPN (tonic's own acceptor offers h2 only, which HTTP/1.1 clients of the HTTP API cannot
/// use); clients must present a certificate `verifier` accepts when there is one.
fn acceptor(
    cert: &[u8],
    key: &[u8],
    verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts client certificates signed by a CA of the PEM bundle `ca`.
fn client_verifier(ca: &[u8]) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca) {
        roots.add(certificate?)?;
    }
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(setting: Setting, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow!("{setting} {}: cannot read: {e}", path.display()))
}

/// The file's bytes, when it holds at least one PEM certificate and nothing malformed.
pub(super) fn read_certificates(setting: Setting, path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = read(setting, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{setting} {}: not a PEM file: {e}", path.display()))?;
    if certificates.is_empty() {
        bail!(
            "{setting} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        );
    }
    Ok(pem)
}

/// The file's bytes, when it holds a PEM private key.
pub(super) fn read_private_key(setting: Setting, path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow!(
            "{setting} {}: no PEM private key (-----BEGIN PRIVATE KEY-----) in the file: {e}",
            path.display()
        )
    })?;
    Ok(pem)
}

/// Checked TLS material, ready for the server.
#[derive(Clone)]
pub struct TlsSettings {
    mutual: bool,
    acceptor: TlsAcceptor,
}

impl TlsSettings {
    /// The acceptor that serves both HTTP/2 and HTTP/1.1 over TLS.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }
}

/// Never shows the key.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}
