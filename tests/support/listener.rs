//! The SMTP listener alone, without a daemon: an in-memory `Intake` with failure switches
//! ([`MemIntake`]) behind a real `SmtpServer` on 127.0.0.1 port 0 ([`start`], [`start_tls`]
//! with a fresh self-signed certificate).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound::config::Config;
use rebound::inbound::intake::{Intake, IntakeError, RcptDecision, Receipt, Submission};
use rebound::inbound::{SmtpServer, SmtpStats};
use rebound::model::SuppressionReason;
use rebound::model::address::Address;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::{BOUNCE_DOMAIN, with_user};

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
