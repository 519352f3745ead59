//! Limits and slow peers against the whole daemon: 1,000 idle connections (in-process) and
//! one real session that still completes; many clients trickling DATA a few bytes at a time
//! keep the daemon's RSS within a fixed bound (a child process, so the VmRSS measured is the
//! daemon's alone, not that of tests running beside it in this binary).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::config::{child, closed_port, write};
use crate::support::daemon::{ChildDaemon, start_routed};
use crate::support::smtp::{Blocking as Smtp, Client, stuffed};

const IDLE: usize = 1000;

/// Raises the soft fd limit to the hard limit (the process's other tests need fds too)
/// when it is under `want`; false when the hard limit is under `want`.
fn ensure_fds(want: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return false;
        }
        if lim.rlim_cur >= want {
            return true;
        }
        if lim.rlim_max < want {
            return false;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
    }
}

/// VmRSS of process `pid`, in KiB.
fn vm_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_idle_connections_and_one_real_session() {
    if !ensure_fds(4 * IDLE as u64 + 256) {
        let want = 4 * IDLE + 256;
        crate::support::skip::skip(
            "thousand_idle_connections_and_one_real_session",
            &format!(
                "an RLIMIT_NOFILE hard limit of {want} (cannot raise the soft limit that far)"
            ),
            &format!(
                "raise the hard limit first, e.g. `ulimit -Hn {want}` as root or LimitNOFILE= / limits.conf"
            ),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), closed_port(), |cfg| {
        cfg.smtp.max_connections = IDLE + 50
    })
    .await;
    let addr = d.smtp_addrs[0];
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(Client::greeted(addr).await);
    }
    assert!(
        d.smtp_stats.sessions_active.load(Ordering::SeqCst) >= IDLE as u64,
        "the idle connections are live sessions"
    );
    let r = tokio::task::spawn_blocking(move || {
        let mut s = Smtp::greeted(addr).expect("a real session gets in");
        s.transaction(
            "app@school.test",
            &["busy@example.net"],
            &stuffed("Subject: through\r\n\r\nx\r\n"),
        )
        .expect("transaction")
    })
    .await
    .unwrap();
    assert!(r.len() == 4 && r[3].starts_with("250 2.0.0"), "{r:?}");
    // The idle sessions are still there and still answer.
    let line = idle.last_mut().unwrap().cmd("NOOP").await;
    assert!(line.starts_with("250"), "{line}");
    drop(idle);
    d.stop().await;
}

/// A client that enters DATA, then sends a long body a few bytes at a time and the terminator.
async fn trickle(addr: std::net::SocketAddr, n: usize) -> String {
    let mut c = Client::greeted(addr).await;
    let mut line = String::new();
    for cmd in [
        "EHLO t.test",
        "MAIL FROM:<app@school.test>",
        &format!("RCPT TO:<t{n}@example.net>"),
        "DATA",
    ] {
        line = c.cmd(cmd).await;
    }
    assert!(line.starts_with("354"), "{line}");
    c.send(b"Subject: slow\r\n\r\n").await;
    for _ in 0..40 {
        if c.write(b"slow bytes ").await.is_err() {
            return "closed".into();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = c.write(b"\r\n.\r\n").await;
    // No reply at all after the terminator is a failure (the caller wants 250 or 421).
    c.try_reply()
        .await
        .and_then(|mut r| r.pop())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_trickle_clients_keep_memory_bounded() {
    const CLIENTS: usize = 300;
    if !ensure_fds(4 * CLIENTS as u64 + 256) {
        let want = 4 * CLIENTS + 256;
        crate::support::skip::skip(
            "slow_trickle_clients_keep_memory_bounded",
            &format!(
                "an RLIMIT_NOFILE hard limit of {want} (cannot raise the soft limit that far)"
            ),
            &format!(
                "raise the hard limit first, e.g. `ulimit -Hn {want}` as root or LimitNOFILE= / limits.conf"
            ),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = child(&dir.path().join("data"), closed_port());
    cfg.smtp.max_connections = rebound::config::Config::default().smtp.max_connections;
    let config = write(&cfg, &dir.path().join("rebound.toml"));
    let d = ChildDaemon::spawn(&config, &[]).expect("starts");
    let (addr, pid) = (d.smtp, d.pid());
    let before = vm_rss_kib(pid);
    assert!(
        before > 0,
        "VmRSS of the daemon read from /proc/{pid}/status"
    );
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(trickle(addr, n)))
        .collect();
    let mut peak = before;
    while clients.iter().any(|c| !c.is_finished()) {
        peak = peak.max(vm_rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut accepted = 0;
    for c in clients {
        let end = c.await.unwrap();
        assert!(
            end.starts_with("250") || end.starts_with("421") || end == "closed",
            "{end}"
        );
        accepted += usize::from(end.starts_with("250"));
    }
    eprintln!(
        "{CLIENTS} trickling clients: VmRSS {before} KiB -> peak {peak} KiB, {accepted} accepted"
    );
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "RSS grew by {} KiB",
        peak - before
    );
    assert!(accepted > 0, "no trickling client got through");
    let (ok, log) = d.term();
    assert!(ok, "the daemon exits 0 on SIGTERM:\n{log}");
}
