//! `rebound serve`: opens the store, recovers the queue, binds the listeners,
//! starts the SMTP server, the scheduler, the admin API, the webhook sender and
//! the retention task, tells systemd it is ready, and on SIGTERM/SIGINT drains:
//! sessions get `421`, in-flight attempts finish or time out, everything is flushed.
//! The whole shutdown is bounded by `server.shutdown_timeout` (a watchdog exits
//! non-zero if a flush hangs on a failed disk); a final flush that fails, or a
//! store that needs a restart to write again, exits non-zero.
//!
//! Startup order: everything the config names is loaded and checked first
//! ([`preflight`]), then the data directory is created and locked ([`pidlock`]),
//! then the store is opened. `serve` leaves a [`pointer`] for the CLI while it runs.

pub mod pidlock;
pub mod pointer;
pub mod preflight;
pub mod state;

pub use state::{Daemon, StateError};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::delivery::outbound::Deliverer;
use crate::inbound::accept::QueueIntake;
use crate::inbound::{SmtpServer, SmtpStats};
use crate::model::time::{SharedClock, SystemClock};
use state::load_or_create_secret;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A step of start-up failed; `context` says which (may be empty), `source` why.
    #[error("{context}{source}")]
    Startup {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A setting that parses but cannot be used (TLS files, routes, listeners).
    #[error(transparent)]
    Config(#[from] preflight::PreflightError),
    /// Another daemon holds the data directory.
    #[error(transparent)]
    Locked(#[from] pidlock::PidLockError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The store could not be flushed at shutdown, or needs a restart to take writes again.
    #[error("storage failed: {0}")]
    Storage(String),
}

/// A running daemon (in-process), with the addresses it actually bound.
// Not `Debug` yet: with it, clippy's `err_expect` would ask tests/delivery/dkim.rs for
// `expect_err` where it calls `start(..).await.err().expect(..)`; change that first.
#[allow(missing_debug_implementations)]
pub struct Running {
    pub smtp_addrs: Vec<SocketAddr>,
    pub api_addr: SocketAddr,
    /// The public one-click unsubscribe listener, when `unsubscribe.listen` is set.
    pub unsubscribe_addr: Option<SocketAddr>,
    pub daemon: Arc<Daemon>,
    pub smtp_stats: Arc<SmtpStats>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    attempts: TaskTracker,
    /// Held until the daemon has stopped (dropped with the rest of `Running`).
    _pid_lock: pidlock::PidLock,
}

/// Share of `shutdown_timeout` given to draining; the rest is for the final flush.
const DRAIN_SHARE: f64 = 0.75;
/// Share of `shutdown_timeout` by which the final flush must have finished.
const FLUSH_SHARE: f64 = 0.9;

impl Running {
    /// Drains and stops: sessions get 421, attempts finish (bounded by `server.shutdown_timeout`).
    pub async fn stop(self) {
        let _ = self.stop_checked().await;
    }

    /// Like [`Running::stop`]; an error when the final flush failed or did not finish in time.
    pub async fn stop_checked(self) -> Result<(), DaemonError> {
        let daemon = self.daemon.clone();
        daemon.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.cancel();
        self.attempts.close();
        let timeout = daemon.cfg.server.shutdown_timeout.0;
        let drain = async {
            for t in self.tasks {
                let _ = t.await;
            }
            self.attempts.wait().await;
        };
        let drained = tokio::time::timeout(timeout.mul_f64(DRAIN_SHARE), drain)
            .await
            .is_ok();
        if !drained {
            tracing::warn!(
                "shutdown deadline passed with work still running; it resumes after restart"
            );
        }
        let flush_budget = timeout.mul_f64(FLUSH_SHARE - DRAIN_SHARE);
        let flushed = match tokio::time::timeout(flush_budget, daemon.committer.durable()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the final flush did not finish within server.shutdown_timeout".into()),
        };
        if let Err(e) = flushed {
            tracing::error!(error = %e, "final flush failed");
            return Err(DaemonError::Storage(format!("final flush failed: {e}")));
        }
        if drained {
            mark_closed_cleanly(&daemon, flush_budget).await;
        }
        Ok(())
    }
}

/// Nothing writes any more: the next start may skip its queue scan.
async fn mark_closed_cleanly(daemon: &Daemon, budget: Duration) {
    let store = daemon.store.clone();
    let marked = tokio::time::timeout(
        budget,
        tokio::task::spawn_blocking(move || store.close_cleanly().map_err(|e| e.to_string())),
    )
    .await;
    let res = match marked {
        Ok(joined) => joined.map_err(|e| e.to_string()).and_then(|r| r),
        Err(_) => Err("timed out".into()),
    };
    if let Err(e) = res {
        tracing::error!(error = %e, "could not mark the store closed cleanly");
    }
}

/// A start-up error keeping its cause, `context` before it in the message.
fn startup(
    context: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> DaemonError {
    DaemonError::Startup {
        context,
        source: Box::new(e),
    }
}

/// Starts every part of the daemon on the current runtime.
pub async fn start(cfg: Config, clock: SharedClock) -> Result<Running, DaemonError> {
    preflight::check(&cfg)?;
    let deliverer =
        Arc::new(Deliverer::new(&cfg.delivery, &cfg.server.hostname).map_err(|e| startup("", e))?);
    let pid_lock = pidlock::acquire(&cfg.server.data_dir)?;
    let cfg = Arc::new(cfg);
    let daemon = open_daemon(cfg.clone(), clock, &deliverer)?;
    catch_up_records(&daemon).await?;
    let listeners = Listeners::bind(&cfg).await?;
    let smtp = Arc::new(
        SmtpServer::new(
            cfg.clone(),
            Arc::new(QueueIntake {
                daemon: daemon.clone(),
            }),
        )
        .map_err(|e| startup("", e))?,
    );
    let smtp_stats = smtp.stats();
    let _ = daemon.smtp_stats.set(smtp_stats.clone());
    let _ = daemon.shaping.set(deliverer.shaper());
    let shutdown = CancellationToken::new();
    let attempts = TaskTracker::new();
    let (smtp_addrs, api_addr, unsubscribe_addr) = (
        listeners.smtp_addrs.clone(),
        listeners.api_addr,
        listeners.unsubscribe_addr,
    );
    let tasks = spawn_tasks(&daemon, smtp, deliverer, listeners, &shutdown, &attempts)?;
    daemon.ready.store(true, Ordering::SeqCst);
    Ok(Running {
        smtp_addrs,
        api_addr,
        unsubscribe_addr,
        daemon,
        smtp_stats,
        shutdown,
        tasks,
        attempts,
        _pid_lock: pid_lock,
    })
}

/// Opens the store into the shared state, hands the deliverer its MTA-STS policy cache,
/// and loads or makes the DKIM keys (their TXT records are logged).
fn open_daemon(
    cfg: Arc<Config>,
    clock: SharedClock,
    deliverer: &Deliverer,
) -> Result<Arc<Daemon>, DaemonError> {
    let daemon = Daemon::open(cfg.clone(), clock).map_err(|e| startup("", e))?;
    deliverer.use_policy_cache(
        daemon
            .store
            .mta_sts_cache()
            .map_err(|e| startup("MTA-STS policy cache: ", e))?
            .with_clock(daemon.clock.clone()),
    );
    crate::delivery::outbound::dkim::prepare(&cfg).map_err(|e| startup("", e))?;
    Ok(daemon)
}

/// Brings the store up to date before anything new comes in: builds the current-status
/// index when it is missing, records delivery outcomes saved but not yet recorded, and
/// scans the queue unless the last shutdown was clean.
async fn catch_up_records(daemon: &Arc<Daemon>) -> Result<(), DaemonError> {
    let indexed = daemon
        .store
        .backfill_current()
        .map_err(|e| startup("current-status index: ", e))?;
    if indexed > 0 {
        tracing::info!(
            recipients = indexed,
            "built the current-status index from the event log"
        );
    }
    crate::delivery::scheduler::record_unrecorded(daemon)
        .await
        .map_err(|e| startup("saved delivery outcomes: ", e))?;
    if daemon.store.opened_clean() {
        tracing::info!(
            messages = daemon.store.queue_len(),
            "queue opened after a clean shutdown; no scan needed"
        );
    } else {
        let (n, bad, fixed) = daemon
            .store
            .recover(daemon.now())
            .map_err(|e| startup("", e))?;
        tracing::info!(
            messages = n,
            quarantined = bad,
            rescheduled = fixed,
            "queue recovered"
        );
    }
    Ok(())
}

/// The sockets the daemon listens on, bound before any task starts.
struct Listeners {
    smtp: Vec<TcpListener>,
    smtp_addrs: Vec<SocketAddr>,
    api: TcpListener,
    api_addr: SocketAddr,
    unsubscribe: Option<TcpListener>,
    unsubscribe_addr: Option<SocketAddr>,
}

impl Listeners {
    /// Binds `smtp.listen` (each address in turn), `api.listen` and `unsubscribe.listen`.
    async fn bind(cfg: &Config) -> Result<Listeners, DaemonError> {
        let mut smtp = Vec::new();
        for addr in &cfg.smtp.listen {
            smtp.push(bind_smtp(*addr).map_err(|source| DaemonError::Bind {
                addr: *addr,
                source,
            })?);
        }
        let smtp_addrs: Vec<SocketAddr> = smtp.iter().filter_map(|l| l.local_addr().ok()).collect();
        let api = TcpListener::bind(cfg.api.listen)
            .await
            .map_err(|source| DaemonError::Bind {
                addr: cfg.api.listen,
                source,
            })?;
        let api_addr = api.local_addr().map_err(|e| startup("", e))?;
        let unsubscribe = match cfg.unsubscribe.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| DaemonError::Bind { addr, source })?,
            ),
            None => None,
        };
        let unsubscribe_addr = unsubscribe.as_ref().and_then(|l| l.local_addr().ok());
        Ok(Listeners {
            smtp,
            smtp_addrs,
            api,
            api_addr,
            unsubscribe,
            unsubscribe_addr,
        })
    }
}

/// Spawns the long-running tasks: the SMTP server, the scheduler, the admin API, the
/// retention loop, and when configured the unsubscribe listener, the admin unix socket
/// and the webhook sender.
fn spawn_tasks(
    daemon: &Arc<Daemon>,
    smtp: Arc<SmtpServer<QueueIntake>>,
    deliverer: Arc<Deliverer>,
    listeners: Listeners,
    shutdown: &CancellationToken,
    attempts: &TaskTracker,
) -> Result<Vec<JoinHandle<()>>, DaemonError> {
    let cfg = &daemon.cfg;
    // The API token exists before `start` returns (and so before the pointer and READY=1 tell
    // the CLI where to find it), not only once the API task has run.
    crate::api::api_token(cfg).map_err(|e| startup("api token", e))?;
    let mut tasks = vec![
        tokio::spawn(smtp.serve(listeners.smtp, shutdown.clone())),
        tokio::spawn(crate::delivery::scheduler::run(
            daemon.clone(),
            deliverer,
            shutdown.clone(),
            attempts.clone(),
        )),
        tokio::spawn(serve_api(daemon.clone(), listeners.api, shutdown.clone())),
        tokio::spawn(retention_loop(daemon.clone(), shutdown.clone())),
    ];
    tasks.extend(crate::delivery::outbound::dkim::watch_rotations(
        cfg,
        daemon.clock.clone(),
        shutdown.clone(),
    ));
    if let Some(listener) = listeners.unsubscribe {
        tasks.push(tokio::spawn(serve_unsubscribe(
            daemon.clone(),
            listener,
            shutdown.clone(),
        )));
    }
    if let Some(path) = cfg.api.socket.clone() {
        tasks.push(tokio::spawn(serve_api_socket(
            daemon.clone(),
            path,
            shutdown.clone(),
        )));
    }
    if cfg.webhooks.url.is_some() {
        let secret = webhook_secret(cfg)?;
        tasks.push(tokio::spawn(crate::records::webhooks::run(
            daemon.clone(),
            secret,
            shutdown.clone(),
        )));
    }
    Ok(tasks)
}

/// The key webhooks are signed with: `webhooks.secret`, or `webhook.key` in the data
/// directory (made on first use).
fn webhook_secret(cfg: &Config) -> Result<Vec<u8>, DaemonError> {
    Ok(match &cfg.webhooks.secret {
        Some(s) => s.expose().as_bytes().to_vec(),
        None => load_or_create_secret(&cfg.server.data_dir.join("webhook.key"))
            .map_err(|e| startup("", e))?
            .into_bytes(),
    })
}

/// Accept-queue length of the SMTP listeners. `TcpListener::bind` uses 128, which a
/// burst of 200 connecting clients overflows: dropped SYNs come back a second later.
const SMTP_BACKLOG: u32 = 4096;

fn bind_smtp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(SMTP_BACKLOG)
}

async fn serve_api(daemon: Arc<Daemon>, listener: TcpListener, shutdown: CancellationToken) {
    if let Err(e) = crate::api::serve(daemon, listener, shutdown).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

async fn serve_unsubscribe(
    daemon: Arc<Daemon>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    if let Err(e) = crate::feedback::unsubscribe::http::serve(daemon, listener, shutdown).await {
        tracing::error!(error = %e, "unsubscribe listener stopped");
    }
}

/// Serves the admin API on the unix socket `api.socket`; a failure is logged.
async fn serve_api_socket(daemon: Arc<Daemon>, path: PathBuf, shutdown: CancellationToken) {
    if let Err(e) = crate::api::serve_unix(daemon, path.clone(), shutdown).await {
        tracing::error!(socket = %path.display(), error = %e, "admin API unix socket stopped");
    }
}

/// Purges old events and bodies every hour (and once shortly after start).
async fn retention_loop(daemon: Arc<Daemon>, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        crate::records::retention::purge_logged(&daemon).await;
        wait = Duration::from_secs(3600);
    }
}

/// Runs the daemon until SIGTERM/SIGINT, or until the store needs a restart (blocking; builds
/// its own runtime). Returns within `server.shutdown_timeout` of the signal.
pub fn serve(cfg: Config, config_path: Option<PathBuf>) -> Result<(), DaemonError> {
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rebound")
        .build()
        .map_err(|e| startup("", e))?;
    let timeout = cfg.server.shutdown_timeout.0;
    let res = rt.block_on(async move {
        let source = config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in defaults".into());
        let running = start(cfg, Arc::new(SystemClock)).await?;
        for a in &running.smtp_addrs {
            tracing::info!("smtp listening on {a}");
        }
        if let Some(a) = running.unsubscribe_addr {
            tracing::info!("unsubscribe listening on {a}");
        }
        tracing::info!(config = %source, data_dir = %running.daemon.cfg.server.data_dir.display(), "api listening on {}", running.api_addr);
        let pointer = leave_pointer(&running, config_path.as_deref());
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let daemon = running.daemon.clone();
        let restart = tokio::select! {
            _ = wait_for_signal() => false,
            _ = daemon.committer.health().restart_needed() => true,
        };
        start_watchdog(timeout);
        tracing::info!("shutting down");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        let stopped = running.stop_checked().await;
        if let Some((path, p)) = &pointer {
            pointer::remove_if_mine(path, p);
        }
        if restart {
            return Err(DaemonError::Storage("the database needs a restart to take writes again".into()));
        }
        stopped
    });
    // Blocking tasks stuck on a failed disk must not hold the exit.
    rt.shutdown_timeout(timeout.mul_f64(1.0 - FLUSH_SHARE) / 2);
    res
}

/// Writes the running-daemon pointer for the CLI; a failure is only logged (`--config` still works).
fn leave_pointer(
    running: &Running,
    config_path: Option<&std::path::Path>,
) -> Option<(PathBuf, pointer::DaemonPointer)> {
    let cfg = &running.daemon.cfg;
    let absolute = |p: &std::path::Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let data_dir = absolute(&cfg.server.data_dir);
    let p = pointer::DaemonPointer {
        pid: std::process::id(),
        api_url: cfg
            .api
            .url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| crate::cli::client::url_for(running.api_addr)),
        token_file: cfg.api.token.is_none().then(|| data_dir.join("api.token")),
        data_dir,
        config: config_path.map(absolute),
    };
    let path = pointer::path();
    match p.write(&path) {
        Ok(()) => {
            tracing::info!(pointer = %path.display(), "admin commands find this daemon through the pointer");
            Some((path, p))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not write the running-daemon pointer; admin commands need --config");
            None
        }
    }
}

/// Exits non-zero if the shutdown has not finished within `timeout` (a flush hung on a failed disk).
fn start_watchdog(timeout: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        tracing::error!(
            "shutdown did not finish within server.shutdown_timeout; exiting without a clean close"
        );
        std::process::exit(1);
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `REBOUND_LOG_FORMAT=json` for JSON lines.
/// Colour only when stderr is a terminal and `NO_COLOR` is not set.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour());
    let _ = if std::env::var("REBOUND_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// <https://no-color.org>: a non-empty `NO_COLOR` turns colour off; so does a stderr that is
/// a file, a pipe or the journal.
fn log_colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
