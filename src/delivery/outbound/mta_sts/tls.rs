//! Validated TLS for MTA-STS (RFC 8461 §4.2): the trust roots (the system's CA
//! certificates, as the webhook client uses, plus an optional PEM file from
//! `delivery.mta_sts_ca_file`), one rustls client config built from them for
//! both the policy fetch and STARTTLS to MX hosts a policy lists, and a
//! verifier to check, after the fact, what an unvalidated session presented.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

/// Why the trust roots could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("delivery.mta_sts_ca_file {0}: {1}")]
    CaFile(String, String),
    #[error("no trusted CA certificates: {0}")]
    Verifier(String),
}

/// The validating TLS pieces, built once.
#[derive(Clone)]
pub struct ValidatingTls {
    pub config: Arc<rustls::ClientConfig>,
    pub connector: TlsConnector,
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for ValidatingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValidatingTls")
    }
}

/// The system roots plus the certificates of `extra` (PEM), if given.
pub fn roots(extra: Option<&Path>) -> Result<rustls::RootCertStore, RootsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra {
        for cert in ca_file_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| RootsError::CaFile(path.display().to_string(), e.to_string()))?;
        }
    }
    Ok(roots)
}

/// The certificates of the PEM file `path`; an error names the file (unreadable, a bad
/// PEM block, no certificate in it).
fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RootsError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| RootsError::CaFile(shown.clone(), e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RootsError::CaFile(shown.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(RootsError::CaFile(
            shown,
            "no PEM certificate in the file".into(),
        ));
    }
    Ok(certs)
}

/// `rebound check-config`: `path` is readable and every certificate in it is a usable CA
/// certificate. Returns how many it holds.
pub fn check_ca_file(path: &Path) -> Result<usize, RootsError> {
    let certs = ca_file_certs(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            RootsError::CaFile(
                path.display().to_string(),
                format!("certificate {}: {e}", i + 1),
            )
        })?;
    }
    Ok(roots.len())
}

impl ValidatingTls {
    /// A client config that checks the chain against `roots` and the name against the host.
    pub fn new(roots: rustls::RootCertStore) -> Result<ValidatingTls, RootsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| RootsError::Verifier(e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RootsError::Verifier(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        Ok(ValidatingTls {
            connector: TlsConnector::from(config.clone()),
            config,
            verifier,
        })
    }

    /// Would `chain` (leaf first) have passed validation for `host`? `Err` says why not.
    /// Used in `testing`, where the session itself ran without validation.
    pub fn check(&self, host: &str, chain: &[CertificateDer<'_>]) -> Result<(), String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("no certificate presented".into());
        };
        let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        self.verifier
            .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
