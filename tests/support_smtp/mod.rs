//! Test peers for the SMTP listener: an in-memory `Intake` with failure switches,
//! a server started on 127.0.0.1 port 0, a raw line-oriented client (plain or TLS),
//! and a self-signed certificate written to a temp dir.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound::config::{Config, Secret, SmtpUser};
use rebound::inbound::intake::{Intake, IntakeError, RcptDecision, Receipt, Submission};
use rebound::inbound::{SmtpServer, SmtpStats};
use rebound::model::SuppressionReason;
use rebound::model::address::Address;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub const HOST: &str = "mx.rebound.test";
pub const BOUNCE_DOMAIN: &str = "bounces.rebound.test";
/// Guard against hangs only; never asserted on.
const READ_GUARD: Duration = Duration::from_secs(20);

/// An in-memory queue recording what the listener hands over.
#[derive(Default)]
pub struct MemIntake {
    pub submissions: Mutex<Vec<Submission>>,
    pub storage_full: AtomicBool,
    pub fail_writes: AtomicBool,
    pub suppressed: Mutex<HashMap<String, SuppressionReason>>,
    next_id: AtomicU64,
}

impl MemIntake {
    pub fn count(&self) -> usize {
        self.submissions.lock().unwrap().len()
    }

    pub fn take(&self) -> Vec<Submission> {
        std::mem::take(&mut *self.submissions.lock().unwrap())
    }

    pub fn suppress(&self, addr: &str, reason: SuppressionReason) {
        self.suppressed
            .lock()
            .unwrap()
            .insert(addr.to_string(), reason);
    }
}

impl Intake for MemIntake {
    fn accepting(&self) -> Result<(), IntakeError> {
        if self.storage_full.load(Ordering::SeqCst) {
            Err(IntakeError::InsufficientStorage)
        } else {
            Ok(())
        }
    }

    fn check_recipient(&self, rcpt: &Address) -> RcptDecision {
        if rcpt.domain_key() == BOUNCE_DOMAIN {
            return RcptDecision::BounceIntake;
        }
        match self.suppressed.lock().unwrap().get(&rcpt.key()) {
            Some(r) => RcptDecision::RejectSuppressed(*r),
            None => RcptDecision::Relay,
        }
    }

    async fn submit(&self, sub: Submission) -> Result<Receipt, IntakeError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(IntakeError::StorageFailed("disk on fire".into()));
        }
        let n = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        self.submissions.lock().unwrap().push(sub);
        Ok(Receipt {
            queue_id: format!("Q{n:04}"),
        })
    }
}

/// A running listener.
pub struct TestServer {
    pub addr: SocketAddr,
    pub intake: Arc<MemIntake>,
    pub stats: Arc<SmtpStats>,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<()>,
    /// Keeps the certificate files alive.
    pub _dir: Option<tempfile::TempDir>,
}

pub fn base_config() -> Config {
    let mut cfg = Config::default();
    cfg.server.hostname = HOST.to_string();
    cfg.bounces.domain = BOUNCE_DOMAIN.to_string();
    cfg.smtp.max_message_size = rebound::config::Size(64 * 1024);
    cfg.smtp.max_recipients = 5;
    cfg
}

pub fn with_user(cfg: &mut Config) {
    cfg.smtp.users = vec![SmtpUser {
        name: "app".into(),
        password: Secret("correct horse".into()),
    }];
}

pub async fn start(cfg: Config) -> TestServer {
    start_with(cfg, Duration::ZERO).await
}

pub async fn start_with(cfg: Config, greeting_delay: Duration) -> TestServer {
    let intake = Arc::new(MemIntake::default());
    let server = SmtpServer::new(Arc::new(cfg), intake.clone())
        .expect("server")
        .with_greeting_delay(greeting_delay);
    let stats = server.stats();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(Arc::new(server).serve(vec![listener], shutdown.clone()));
    TestServer {
        addr,
        intake,
        stats,
        shutdown,
        handle,
        _dir: None,
    }
}

/// Starts a server with a fresh self-signed certificate for `localhost` and one AUTH user.
pub async fn start_tls(
    mut cfg: Config,
) -> (TestServer, rustls::pki_types::CertificateDer<'static>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("rcgen");
    let cert_path: PathBuf = dir.path().join("cert.pem");
    let key_path: PathBuf = dir.path().join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).expect("write cert");
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).expect("write key");
    cfg.smtp.tls_cert = Some(cert_path);
    cfg.smtp.tls_key = Some(key_path);
    with_user(&mut cfg);
    let mut srv = start(cfg).await;
    srv._dir = Some(dir);
    (srv, ck.cert.der().clone())
}

/// A line-oriented SMTP client over any stream.
pub struct Client<S> {
    pub io: BufReader<S>,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        Client {
            io: BufReader::new(tcp),
        }
    }

    /// Connects and reads the greeting.
    pub async fn greeted(addr: SocketAddr) -> Self {
        let mut c = Client::connect(addr).await;
        let g = c.reply().await;
        assert!(g[0].starts_with("220 "), "greeting: {g:?}");
        c
    }

    /// STARTTLS already answered 220: performs the handshake trusting `cert`.
    pub async fn into_tls(
        self,
        cert: &rustls::pki_types::CertificateDer<'static>,
    ) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = connector
            .connect(name, self.io.into_inner())
            .await
            .expect("tls handshake");
        Client {
            io: BufReader::new(tls),
        }
    }
}

impl<S: AsyncRead + Unpin> Client<S> {
    /// Reads one reply on a read-only half.
    pub async fn reply_only(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(READ_GUARD, self.io.read_line(&mut line))
                .await
                .expect("reply guard")
                .expect("read");
            assert!(n > 0, "connection closed while waiting for a reply");
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io
            .get_mut()
            .write_all(bytes.as_ref())
            .await
            .expect("write");
        self.io.get_mut().flush().await.expect("flush");
    }

    /// Reads one (possibly multi-line) reply; panics on EOF.
    pub async fn reply(&mut self) -> Vec<String> {
        self.try_reply()
            .await
            .expect("connection closed while waiting for a reply")
    }

    /// Reads one reply, or `None` at EOF / connection reset.
    pub async fn try_reply(&mut self) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(READ_GUARD, self.io.read_line(&mut line))
                .await
                .expect("reply guard")
                .ok()?;
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Some(lines);
            }
        }
    }

    /// Sends a command and returns the last line of its reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        self.reply().await.pop().unwrap_or_default()
    }

    /// True once the server has closed the connection (after any pending replies are read).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(
            READ_GUARD,
            tokio::io::AsyncReadExt::read_to_end(&mut self.io, &mut rest),
        )
        .await
        {
            Ok(Ok(_)) | Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    /// EHLO + MAIL + RCPT, asserting each is accepted.
    pub async fn envelope(&mut self, from: &str, to: &[&str]) {
        let r = self.cmd("EHLO client.test").await;
        assert!(r.starts_with("250 "), "{r}");
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(r.starts_with("250 "), "{r}");
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>")).await;
            assert!(r.starts_with("250 "), "{r}");
        }
    }
}
