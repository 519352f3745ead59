//! The one daemon launcher: the whole daemon in-process on the real clock ([`start_daemon`],
//! [`start_routed`]) or on a `ManualClock` ([`start_on_clock`]), its store read directly by
//! [`history`], [`wait_for`] and [`security_log`]; or as a child `rebound serve` process
//! ([`ChildDaemon`]: its addresses read from its log, SIGKILL or SIGTERM); and [`cli`] to
//! run the `rebound` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound::config::Config;
use rebound::daemon::{Running, start};
use rebound::model::EventKind;
use rebound::model::time::{ManualClock, SystemClock};
use rebound::store::events::EventQuery;

use super::config::{route_all, test_config};

/// The daemon on an injected clock: its schedule (retries, expiry, retention) moves when
/// the test advances `clock` (the scheduler looks at least once a second).
pub async fn start_on_clock(cfg: Config, clock: ManualClock) -> Running {
    start(cfg, Arc::new(clock)).await.expect("daemon starts")
}

/// The daemon on the system clock.
pub async fn start_daemon(cfg: Config) -> Running {
    start(cfg, Arc::new(SystemClock))
        .await
        .expect("daemon starts")
}

/// `test_config` on `dir` with every domain routed to `to`, changed by `adjust`, then started.
pub async fn start_routed(
    dir: &std::path::Path,
    to: SocketAddr,
    adjust: impl FnOnce(&mut Config),
) -> Running {
    let mut cfg = test_config(dir);
    route_all(&mut cfg, to);
    adjust(&mut cfg);
    start_daemon(cfg).await
}

/// The security log (untrusted returned reports), newest first.
pub fn security_log(r: &Running) -> Vec<rebound::model::Event> {
    r.daemon.store.unverified(None, 10_000).unwrap().0
}

/// The event kinds of one recipient, oldest first.
pub fn history(r: &Running, rcpt: &str) -> Vec<String> {
    let q = EventQuery {
        recipient: Some(rcpt.into()),
        limit: 1000,
        ascending: true,
        ..Default::default()
    };
    r.daemon
        .store
        .query_events(&q)
        .unwrap()
        .events
        .iter()
        .map(|e| e.status.as_str().to_string())
        .collect()
}

/// Waits (bounded) until `rcpt` has an event of one of `kinds`; returns its history.
pub async fn wait_for(
    r: &Running,
    rcpt: &str,
    kinds: &[EventKind],
    within: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let h = history(r, rcpt);
        if h.iter().any(|k| kinds.iter().any(|w| w.as_str() == k))
            || tokio::time::Instant::now() > deadline
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `rebound serve` child process.
pub struct ChildDaemon {
    child: Child,
    pub smtp: SocketAddr,
    pub api: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ChildDaemon {
    /// Starts `rebound serve --config CONFIG` (see [`super::config::write`]) and waits until both listeners are up.
    /// `Err` carries the stderr seen so far (e.g. a sled open failure).
    pub fn spawn(config: &Path, envs: &[(&str, &Path)]) -> Result<ChildDaemon, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rebound"));
        cmd.args(["serve", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            // Its own place for the running-daemon pointer, never the user's.
            .env("REBOUND_RUNTIME_DIR", config.with_extension("runtime"))
            .env_remove("REBOUND_CONFIG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || read_log(stderr, sink, tx));
        let mut smtp = None;
        let mut api = None;
        while smtp.is_none() || api.is_none() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(("smtp", a)) => smtp = Some(a),
                Ok((_, a)) => api = Some(a),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(log.lock().unwrap().clone());
                }
            }
        }
        Ok(ChildDaemon {
            child,
            smtp: smtp.unwrap(),
            api: api.unwrap(),
            log,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL; returns the log.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM and wait; returns whether it exited 0, and the log.
    pub fn term(mut self) -> (bool, String) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        std::thread::sleep(Duration::from_millis(50));
        (ok, self.log.lock().unwrap().clone())
    }

    /// SIGTERM and wait at most `limit`: `Some((exited 0, log))`, or `None` (then SIGKILL) when
    /// it was still running.
    pub fn term_within(mut self, limit: Duration) -> Option<(bool, String)> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Some((status.success(), self.log.lock().unwrap().clone()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `Some(exited 0)` once the process has exited by itself.
    pub fn exited(&mut self) -> Option<bool> {
        self.child.try_wait().ok().flatten().map(|s| s.success())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(
    stderr: std::process::ChildStderr,
    log: Arc<Mutex<String>>,
    tx: mpsc::Sender<(&'static str, SocketAddr)>,
) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        for (what, marker) in [("smtp", "smtp listening on "), ("api", "api listening on ")] {
            if let Some(rest) = line.split(marker).nth(1)
                && let Some(addr) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.trim_end_matches(',').parse().ok())
            {
                let _ = tx.send((what, addr));
            }
        }
        let mut l = log.lock().unwrap();
        l.push_str(&line);
        l.push('\n');
    }
}

/// Runs a `rebound` CLI command with `--config`; returns (exit code, stdout, stderr).
pub fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("REBOUND_CONFIG")
        .output()
        .expect("rebound runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
