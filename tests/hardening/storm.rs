//! The redelivery storm after a storage failure, against the real binary: the
//! next hop (a sink counting the DATA transactions it accepted, per `X-Seq`)
//! injects a flush failure (`REBOUND_FAIL_FLUSH`) when the first message
//! reaches it. From then on no message is delivered twice, `/healthz` is 503
//! with the reason, `/metrics` says the store is faulted and the fault is
//! logged once; once the failure is switched off the daemon resumes by itself
//! and every message is delivered exactly once. SIGTERM while faulted exits,
//! non-zero, within `shutdown_timeout`, and the restart records the outcomes
//! saved at shutdown instead of delivering those messages again. On a real full
//! tmpfs (root only): no storm, SIGTERM in time, delivery resumes once space
//! returns (in place, or after the daemon exits for its service manager).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::config::{child, closed_port, write};
use crate::support::daemon::ChildDaemon;
use crate::support::http::{api_get, api_status};
use crate::support::smtp::{Blocking as Smtp, stuffed};

/// Messages queued before the fault.
const N: u64 = 6;
/// `shutdown_timeout` in the file of [`child`].
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A next hop that accepts everything and counts accepted transactions by `X-Seq`;
/// it creates `trigger` (once) when the first message's data has arrived, before answering.
struct Sink {
    addr: SocketAddr,
    accepted: Arc<Mutex<BTreeMap<u64, usize>>>,
}

impl Sink {
    fn start(trigger: Option<PathBuf>) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted: Arc<Mutex<BTreeMap<u64, usize>>> = Arc::default();
        let (counts, fired) = (accepted.clone(), Arc::new(AtomicBool::new(false)));
        std::thread::spawn(move || {
            for sock in listener.incoming().flatten() {
                let (counts, fired, trigger) = (counts.clone(), fired.clone(), trigger.clone());
                std::thread::spawn(move || converse(sock, &counts, &fired, trigger.as_deref()));
            }
        });
        Sink { addr, accepted }
    }

    fn counts(&self) -> BTreeMap<u64, usize> {
        self.accepted.lock().unwrap().clone()
    }
}

fn converse(
    sock: TcpStream,
    counts: &Mutex<BTreeMap<u64, usize>>,
    fired: &AtomicBool,
    trigger: Option<&Path>,
) -> Option<()> {
    let mut out = sock.try_clone().ok()?;
    let mut lines = BufReader::new(sock);
    out.write_all(b"220 sink.test ESMTP\r\n").ok()?;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let verb = line
            .split([' ', ':', '\r'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
            "DATA" => {
                out.write_all(b"354 go ahead\r\n").ok()?;
                let seq = read_data(&mut lines)?;
                if let Some(t) = trigger
                    && !fired.swap(true, Ordering::SeqCst)
                {
                    std::fs::write(t, b"").ok()?;
                }
                *counts.lock().unwrap().entry(seq).or_default() += 1;
                b"250 2.0.0 accepted\r\n"
            }
            "QUIT" => {
                let _ = out.write_all(b"221 2.0.0 bye\r\n");
                return Some(());
            }
            _ => b"250 2.0.0 ok\r\n",
        };
        out.write_all(reply).ok()?;
    }
}

/// Reads the data up to the terminating dot; returns its `X-Seq` (0 when missing).
fn read_data(lines: &mut BufReader<TcpStream>) -> Option<u64> {
    let mut seq = 0;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == ".\r\n" {
            return Some(seq);
        }
        if let Some(n) = line.strip_prefix("X-Seq: ") {
            seq = n.trim().parse().unwrap_or(0);
        }
    }
}

/// Queues messages 1..=N in a daemon whose next hop is unreachable, and stops it.
fn queue_messages(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let held = write(&child(&data, closed_port()), &dir.join("held.toml"));
    let d = ChildDaemon::spawn(&held, &[]).expect("starts");
    let mut s = Smtp::greeted(d.smtp).unwrap();
    for n in 1..=N {
        let text = format!("X-Seq: {n}\r\nSubject: storm {n}\r\n\r\nbody {n}\r\n");
        let r = s
            .transaction(
                "app@school.test",
                &[&format!("r{n}@example.net")],
                &stuffed(&text),
            )
            .unwrap();
        assert!(r[3].starts_with("250 "), "{r:?}");
    }
    let (ok, log) = d.term();
    assert!(ok, "{log}");
    data
}

/// Polls `check` every 100 ms until it is true or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

fn health(d: &ChildDaemon) -> (u16, String) {
    api_status(d.api, "/healthz").expect("healthz answers")
}

fn metric(d: &ChildDaemon, name: &str) -> Option<u64> {
    let text = api_get(d.api, "/metrics").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn assert_at_most_once(sink: &Sink, when: &str, log: &str) {
    let counts = sink.counts();
    assert!(
        counts.values().all(|&c| c <= 1),
        "a message was delivered twice {when}: {counts:?}\n{log}"
    );
}

/// Starts the daemon on the queued messages with the sink as next hop; returns once it is faulted.
fn faulted_daemon(dir: &Path, sink: &Sink, data: &Path) -> ChildDaemon {
    let cfg = write(&child(data, sink.addr), &dir.join("deliver.toml"));
    let d = ChildDaemon::spawn(&cfg, &[("REBOUND_FAIL_FLUSH", &dir.join("fail-flush"))])
        .expect("starts");
    assert!(
        eventually(Duration::from_secs(30), || health(&d).0 == 503),
        "never faulted: {:?}\n{}",
        health(&d),
        d.log()
    );
    d
}

#[test]
fn a_flush_failure_pauses_delivery_and_each_message_is_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = queue_messages(dir.path());
    let fail = dir.path().join("fail-flush");
    let sink = Sink::start(Some(fail.clone()));
    let d = faulted_daemon(dir.path(), &sink, &data);
    let (code, body) = health(&d);
    assert_eq!(code, 503);
    assert!(
        body.contains("storage_failed") && body.contains("REBOUND_FAIL_FLUSH"),
        "healthz gives the reason: {body}"
    );
    assert_eq!(metric(&d, "rebound_store_faulted"), Some(1));
    // The storm ran at one attempt per message every 50 ms: watch for a few seconds.
    let watch_end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_end {
        assert_at_most_once(&sink, "while the store is faulted", &d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        health(&d).0,
        503,
        "the fault does not clear while flushes still fail"
    );
    eprintln!(
        "delivered while faulted (outcomes held): {:?}",
        sink.counts()
    );
    std::fs::remove_file(&fail).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || health(&d).0 == 200),
        "never recovered: {:?}\n{}",
        health(&d),
        d.log()
    );
    let all = eventually(Duration::from_secs(30), || sink.counts().len() as u64 == N);
    std::thread::sleep(Duration::from_secs(2));
    let log = d.log();
    assert!(
        all,
        "not every message was delivered after recovery: {:?}\n{log}",
        sink.counts()
    );
    assert_at_most_once(&sink, "after recovery", &log);
    assert_eq!(
        (
            metric(&d, "rebound_store_faulted"),
            metric(&d, "rebound_store_faults_total")
        ),
        (Some(0), Some(1))
    );
    assert_eq!(
        log.matches("storage failed:").count(),
        1,
        "one line when the fault begins:\n{log}"
    );
    assert_eq!(
        log.matches("storage recovered").count(),
        1,
        "one line when it clears:\n{log}"
    );
    let (ok, log) = d
        .term_within(SHUTDOWN_TIMEOUT + Duration::from_secs(1))
        .expect("SIGTERM exits in time");
    assert!(ok, "{log}");
}

#[test]
fn sigterm_while_faulted_exits_in_time_and_the_restart_delivers_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = queue_messages(dir.path());
    let sink = Sink::start(Some(dir.path().join("fail-flush")));
    let d = faulted_daemon(dir.path(), &sink, &data);
    std::thread::sleep(Duration::from_secs(1));
    // One second of grace for the process to exit after its own deadline.
    let Some((ok, log)) = d.term_within(SHUTDOWN_TIMEOUT + Duration::from_secs(1)) else {
        panic!("SIGTERM while faulted did not exit within shutdown_timeout");
    };
    assert!(!ok, "a failed final flush must exit non-zero:\n{log}");
    assert!(log.contains("final flush failed"), "{log}");
    assert_at_most_once(&sink, "before the shutdown", &log);
    let held = sink.counts();
    assert!(
        !held.is_empty(),
        "the message that triggered the fault reached the sink"
    );
    // The restart (without the fault) records the outcomes saved at shutdown, then delivers the rest.
    let cfg = write(&child(&data, sink.addr), &dir.path().join("restart.toml"));
    let d = ChildDaemon::spawn(&cfg, &[]).expect("restarts without the fault");
    let all = eventually(Duration::from_secs(30), || sink.counts().len() as u64 == N);
    std::thread::sleep(Duration::from_secs(2));
    let (ok, log2) = d
        .term_within(SHUTDOWN_TIMEOUT + Duration::from_secs(1))
        .expect("SIGTERM exits in time");
    assert!(
        all && ok,
        "not every message delivered after the restart: {:?}\n{log2}",
        sink.counts()
    );
    assert_at_most_once(
        &sink,
        "after the restart (the outcomes of the fault were saved)",
        &format!("{log}\n---\n{log2}"),
    );
    assert!(
        log2.contains("recorded the delivery outcomes saved at the last shutdown"),
        "{log2}"
    );
}

/// A tmpfs mounted for the test and unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?
            .success();
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn grow(&self, size: &str) -> bool {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Submits ~400 KB messages until one is refused; returns how many were acknowledged.
fn fill(d: &ChildDaemon) -> u64 {
    let filler = format!("{}\r\n", "y".repeat(76)).repeat(5000);
    for n in 1..=200 {
        let text = format!("X-Seq: {n}\r\nSubject: full {n}\r\n\r\n{filler}");
        let mut s = Smtp::greeted(d.smtp).expect("daemon still answers");
        let r = s
            .transaction("app@school.test", &["filler@example.net"], &stuffed(&text))
            .expect("daemon still answers");
        if !(r.len() == 4 && r[3].starts_with("250 ")) {
            return n - 1;
        }
    }
    panic!("a 16 MB tmpfs never filled up");
}

/// A daemon on a 16 MB tmpfs routed to the sink, filled until intake refused; `None` when no
/// tmpfs can be mounted. Returns the mount, the config, the daemon and the acknowledged count.
fn full_disk(dir: &Path, sink: &Sink) -> Option<(Tmpfs, PathBuf, ChildDaemon, u64)> {
    let Some(fs) = Tmpfs::mount(&dir.join("spool"), "16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root, or no CAP_SYS_ADMIN)");
        return None;
    };
    let cfg = write(
        &child(&fs.0.join("data"), sink.addr),
        &dir.join("full.toml"),
    );
    let d = ChildDaemon::spawn(&cfg, &[]).expect("starts on tmpfs");
    let acked = fill(&d);
    assert!(acked > 0, "nothing fit on the tmpfs");
    assert_eq!(health(&d).0, 503, "health after disk full\n{}", d.log());
    // The storm gave 126 deliveries for 19 messages here: watch for a few seconds.
    let watch_end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_end {
        assert_at_most_once(sink, "after the disk filled", &d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((fs, cfg, d, acked))
}

#[test]
fn a_real_disk_full_gives_no_storm_and_delivery_resumes_after_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(None);
    let Some((fs, cfg, mut d, acked)) = full_disk(dir.path(), &sink) else {
        return;
    };
    assert!(fs.grow("256m"), "remount failed");
    // sled may stall on the disk that was full: then the daemon exits for its service manager.
    let settled = eventually(Duration::from_secs(60), || {
        d.exited().is_some() || api_status(d.api, "/healthz").is_ok_and(|h| h.0 == 200)
    });
    assert!(
        settled,
        "neither resumed nor exited for a restart after space returned:\n{}",
        d.log()
    );
    if let Some(ok) = d.exited() {
        let log = d.log();
        assert!(
            !ok && log.contains("exiting so the service manager restarts"),
            "{log}"
        );
        d = ChildDaemon::spawn(&cfg, &[])
            .unwrap_or_else(|l| panic!("restart after disk full failed:\n{l}\nfirst run:\n{log}"));
    }
    let all = eventually(Duration::from_secs(30), || {
        sink.counts().len() as u64 >= acked
    });
    std::thread::sleep(Duration::from_secs(1));
    let log = d.log();
    assert!(
        all,
        "{acked} acknowledged, delivered {:?}\n{log}",
        sink.counts()
    );
    assert_at_most_once(&sink, "after space returned", &log);
    let (ok, log) = d
        .term_within(SHUTDOWN_TIMEOUT + Duration::from_secs(1))
        .expect("SIGTERM exits in time");
    assert!(ok, "{log}");
}

#[test]
fn sigterm_after_a_real_disk_full_exits_within_the_shutdown_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(None);
    let Some((_fs, _, d, _)) = full_disk(dir.path(), &sink) else {
        return;
    };
    let Some((ok, log)) = d.term_within(SHUTDOWN_TIMEOUT + Duration::from_secs(1)) else {
        panic!("SIGTERM after a real disk full did not exit within shutdown_timeout");
    };
    assert!(!ok, "the final flush cannot succeed on a full disk:\n{log}");
}
