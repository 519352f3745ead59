//! The inbound SMTP listener: accepts connections (with a connection cap), runs one
//! session per connection, and drains sessions on shutdown with `421 4.3.0`.
//! It talks to the queue only through [`crate::inbound::intake::Intake`].
//!
//! - [`session`]: the per-connection loop (reading, pipelining, timeouts, phases);
//! - [`commands`]: EHLO/HELO, MAIL, RCPT and the small verbs;
//! - [`auth`]: AUTH PLAIN / LOGIN; [`data`]: DATA / BDAT and submission;
//! - [`body`]: the pure body receiver (end of data, limits, normalisation);
//! - [`tls`]: certificate loading and the plain/TLS stream;
//! - [`anvil`]: per-IP connection count and rate, AUTH failures and lockout.

pub mod accept;
pub mod anvil;
pub mod auth;
pub mod body;
pub mod commands;
pub mod data;
pub mod intake;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::inbound::intake::Intake;

/// Why the listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The certificate or key file named in the config is unusable.
    #[error("{path}: {message}")]
    Tls { path: String, message: String },
}

/// Counters the lead can export as metrics.
#[derive(Debug, Default)]
pub struct SmtpStats {
    /// Sessions ever started (refused connections not included).
    pub sessions_total: AtomicU64,
    /// Sessions currently open.
    pub sessions_active: AtomicU64,
    /// Connections refused with `421 4.7.0 Too many connections`.
    pub connections_refused: AtomicU64,
    /// Messages acknowledged with `250 ... queued as`.
    pub messages_accepted: AtomicU64,
    /// Replies with a 4xx or 5xx code.
    pub rejections: AtomicU64,
    /// Connections refused by the per-IP connection or rate limit (also in `connections_refused`).
    pub connections_refused_per_ip: AtomicU64,
    /// Addresses locked out of AUTH after too many failures.
    pub auth_lockouts: AtomicU64,
}

impl SmtpStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The listener; shared by all sessions.
pub struct SmtpServer<I: Intake> {
    cfg: Arc<Config>,
    intake: Arc<I>,
    tls: Option<TlsAcceptor>,
    stats: Arc<SmtpStats>,
    /// Time the server waits before the greeting, watching for early talkers.
    greeting_delay: Duration,
    /// Per-IP limits and AUTH lockout.
    pub(crate) anvil: Arc<anvil::Anvil>,
}

impl<I: Intake> std::fmt::Debug for SmtpServer<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("tls", &self.tls.is_some())
            .field("stats", &self.stats)
            .field("greeting_delay", &self.greeting_delay)
            .finish_non_exhaustive()
    }
}

impl<I: Intake> SmtpServer<I> {
    /// Loads TLS cert/key from config if set (error names the file).
    pub fn new(cfg: Arc<Config>, intake: Arc<I>) -> Result<Self, SmtpError> {
        let tls = match (&cfg.smtp.tls_cert, &cfg.smtp.tls_key) {
            (Some(cert), Some(key)) => Some(tls::load_acceptor(cert, key)?),
            _ => None,
        };
        let anvil = anvil::Anvil::new(anvil::Limits::from_config(&cfg.smtp));
        Ok(SmtpServer {
            cfg,
            intake,
            tls,
            stats: Arc::new(SmtpStats::default()),
            greeting_delay: Duration::ZERO,
            anvil,
        })
    }

    /// Waits this long before the 220 greeting; a client that talks first gets `554 5.5.0`.
    /// Zero (the default) still catches commands that arrived with the connection.
    pub fn with_greeting_delay(mut self, delay: Duration) -> Self {
        self.greeting_delay = delay;
        self
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<SmtpStats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` is cancelled; then open sessions get `421 4.3.0` and it returns
    /// once they ended (or after `server.shutdown_timeout`).
    pub async fn serve(self: Arc<Self>, listeners: Vec<TcpListener>, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        for listener in listeners {
            tracker.spawn(
                self.clone()
                    .accept_loop(listener, shutdown.clone(), tracker.clone()),
            );
        }
        shutdown.cancelled().await;
        tracker.close();
        let limit = self.cfg.server.shutdown_timeout.0;
        if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
            tracing::warn!(
                open = tracker.len(),
                "smtp: sessions still open after shutdown_timeout; giving up on them"
            );
        }
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        let local = listener.local_addr().ok();
        tracing::info!(?local, "smtp: listening");
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => self.clone().admit(stream, peer, &shutdown, &tracker),
                Err(e) => {
                    tracing::warn!(error = %e, "smtp: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Starts a session, or refuses the connection when the global cap or a per-IP limit is reached.
    fn admit(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        let host = self.cfg.server.hostname.clone();
        let active = self.stats.sessions_active.load(Ordering::Relaxed);
        if active >= self.cfg.smtp.max_connections as u64 {
            SmtpStats::bump(&self.stats.connections_refused);
            tracing::warn!(%peer, active, "smtp: too many connections");
            tracker.spawn(refuse(
                stream,
                format!("{host} Too many connections, try again later"),
            ));
            return;
        }
        let permit = match self.anvil.connect(peer.ip(), std::time::Instant::now()) {
            Ok(permit) => permit,
            Err(refused) => {
                self.refused_per_ip(peer, &refused);
                tracker.spawn(refuse(stream, format!("{host} {}", refused.why)));
                return;
            }
        };
        SmtpStats::bump(&self.stats.sessions_total);
        self.stats.sessions_active.fetch_add(1, Ordering::Relaxed);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let guard = ActiveGuard(self.stats.clone());
            session::Session::new(self.clone(), stream, peer, shutdown)
                .run()
                .await;
            drop((guard, permit));
        });
    }

    /// Counts a per-IP refusal; logs only the first one of an address in each rate window.
    fn refused_per_ip(&self, peer: SocketAddr, refused: &anvil::Refused) {
        SmtpStats::bump(&self.stats.connections_refused);
        SmtpStats::bump(&self.stats.connections_refused_per_ip);
        if refused.first {
            tracing::warn!(ip = %peer.ip(), reason = %refused.why, "smtp: refusing connections from this address");
        } else {
            tracing::debug!(%peer, reason = %refused.why, "smtp: per-IP refusal");
        }
    }
}

/// Decrements `sessions_active` however the session ends.
struct ActiveGuard(Arc<SmtpStats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.sessions_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers `421 4.7.0 {text}` and closes.
async fn refuse(mut stream: TcpStream, text: String) {
    let line = format!("421 4.7.0 {text}\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(line.as_bytes())).await;
    let _ = stream.shutdown().await;
}
