//! TLS for the listener: loading the certificate and key named in the config into
//! a `TlsAcceptor` (ring provider), and the session stream that is plain TCP until
//! STARTTLS and TLS afterwards.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::SmtpError;

/// Builds the acceptor from PEM files; errors name the file at fault.
pub fn load_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, SmtpError> {
    let certs = read_certs(cert)?;
    let key_der = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SmtpError::Tls {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| SmtpError::Tls {
            path: key.display().to_string(),
            message: key_problem(&e, cert),
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, SmtpError> {
    let bad = |message: String| SmtpError::Tls {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read certificate: {e}")))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() && has_private_key(&pem) {
        return Err(bad(
            "holds a private key, not a certificate (tls_cert and tls_key swapped?)".into(),
        ));
    }
    if certs.is_empty() {
        return Err(bad("no certificate found in PEM file".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, SmtpError> {
    let bad = |message: String| SmtpError::Tls {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read private key: {e}")))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| bad(format!("bad PEM private key: {e}")))?
        .ok_or_else(|| {
            bad(if has_certificate(&pem) {
                "holds a certificate, not a private key (tls_cert and tls_key swapped?)"
            } else {
                "no private key found in PEM file"
            }
            .into())
        })
}

fn has_private_key(pem: &[u8]) -> bool {
    matches!(rustls_pemfile::private_key(&mut &pem[..]), Ok(Some(_)))
}

fn has_certificate(pem: &[u8]) -> bool {
    rustls_pemfile::certs(&mut &pem[..]).any(|c| c.is_ok())
}

/// The key was read but cannot serve the certificate.
fn key_problem(e: &rustls::Error, cert: &Path) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "private key does not match the certificate in {}",
            cert.display()
        ),
        other => format!("unusable private key: {other}"),
    }
}

/// The connection as the session sees it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only during the STARTTLS handshake (or after a failed one).
    Gone,
}

/// Which kind of connection, not its state.
impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
            Stream::Gone => "Stream::Gone",
        })
    }
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}
