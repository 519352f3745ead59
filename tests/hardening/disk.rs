//! Storage failures against the real binary: an injected flush failure
//! (`REBOUND_FAIL_FLUSH`) gives 451 4.3.0 after DATA and 4xx at MAIL while it
//! lasts, never a 250, and intake resumes by itself once it is switched off (the
//! refused message is never delivered); the free-space threshold gives 452
//! 4.3.1 at MAIL and 503 `insufficient_storage` on `/healthz`; a real full
//! tmpfs (root only) behaves like the injected failure; mail acknowledged
//! before the fault is delivered after a restart without it. Poison records
//! written into a stopped daemon's queue are quarantined and reported, the rest
//! delivered, and the daemon keeps starting.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::config::{child, closed_port, write};
use crate::support::daemon::ChildDaemon;
use crate::support::http::{api_get, api_status};
use crate::support::mx::seqs;
use crate::support::mx::{Script, ScriptedMx};
use crate::support::smtp::{Blocking as Smtp, stuffed};
use rebound::model::time::Timestamp;
use rebound::store::{Store, TreeId};

fn message(n: u64, filler: usize) -> Vec<u8> {
    let line = "y".repeat(76);
    let mut text = format!("X-Seq: {n}\r\nSubject: disk {n}\r\n\r\n");
    for _ in 0..filler {
        text.push_str(&line);
        text.push_str("\r\n");
    }
    stuffed(&text)
}

/// Waits (bounded) until the sink has every number in `want`; returns the missing ones.
fn wait_delivered(
    rec: &std::sync::Mutex<crate::support::mx::Record>,
    want: &BTreeSet<u64>,
) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: BTreeSet<u64> = seqs(&rec.lock().unwrap().messages).into_iter().collect();
        let missing: Vec<u64> = want.difference(&seen).copied().collect();
        if missing.is_empty() || Instant::now() > deadline {
            return missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn injected_flush_failure(
    dir: &Path,
    sink: std::net::SocketAddr,
    rec: std::sync::Arc<std::sync::Mutex<crate::support::mx::Record>>,
) {
    let data = dir.join("data");
    let held = write(&child(&data, closed_port()), &dir.join("held.toml"));
    let fail = dir.join("fail-flush");
    let d = ChildDaemon::spawn(&held, &[("REBOUND_FAIL_FLUSH", &fail)]).expect("starts");
    let mut s = Smtp::greeted(d.smtp).unwrap();
    let r = s
        .transaction("app@school.test", &["a@example.net"], &message(1, 3))
        .unwrap();
    assert!(r[3].starts_with("250 "), "{r:?}");
    std::fs::write(&fail, b"").unwrap();
    let r = s
        .transaction("app@school.test", &["b@example.net"], &message(2, 3))
        .unwrap();
    assert!(
        r.last().unwrap().starts_with("451 4.3.0"),
        "a failed flush must give 451 4.3.0 after DATA: {r:?}"
    );
    assert!(r.iter().all(|l| !l.starts_with("250 2.0.0")), "{r:?}");
    let again = s.cmd("MAIL FROM:<app@school.test>").unwrap();
    assert_eq!(
        api_status(d.api, "/healthz").map(|r| r.0),
        Ok(503),
        "health after disk full"
    );
    assert!(again.starts_with('4'), "MAIL after a failed flush: {again}");
    let (code, health) = api_status(d.api, "/healthz").unwrap();
    assert_eq!(
        (code, health.contains("storage_failed")),
        (503, true),
        "{health}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut refused = Smtp::greeted(d.smtp).unwrap();
    let r = refused.cmd("MAIL FROM:<app@school.test>").unwrap();
    assert!(
        r.starts_with('4'),
        "no probe succeeds while flushes fail, so MAIL stays refused: {r}"
    );
    std::fs::remove_file(&fail).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while api_status(d.api, "/healthz").map(|r| r.0) != Ok(200) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut fresh = Smtp::greeted(d.smtp).unwrap();
    let later = fresh
        .transaction("app@school.test", &["c@example.net"], &message(3, 3))
        .unwrap();
    assert!(
        later.last().unwrap().starts_with("250 "),
        "a probe write succeeded, so intake resumes: {later:?}\n{}",
        d.log()
    );
    let log = d.kill9();
    assert!(
        log.contains("storage failed:") && log.contains("storage recovered"),
        "{log}"
    );
    let deliver = write(&child(&data, sink), &dir.join("deliver.toml"));
    let d = ChildDaemon::spawn(&deliver, &[]).expect("restarts without the fault");
    let missing = wait_delivered(&rec, &BTreeSet::from([1, 3]));
    std::thread::sleep(Duration::from_secs(1));
    let seen = seqs(&rec.lock().unwrap().messages);
    d.term();
    assert!(
        missing.is_empty(),
        "mail acknowledged before or after the fault was not delivered: {seen:?}"
    );
    assert!(
        !seen.contains(&2),
        "a message refused with 451 (its write set taken back) was delivered: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_flush_failure_never_acknowledges() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, addr, rec) = (dir.path().to_path_buf(), mx.addr, mx.record.clone());
    tokio::task::spawn_blocking(move || injected_flush_failure(&path, addr, rec))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_space_threshold_refuses_at_mail() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::support::config::test_config(dir.path());
    cfg.smtp.min_free_space = rebound::config::Size(u64::MAX / 2);
    let d = crate::support::daemon::start_daemon(cfg).await;
    let (addr, api) = (d.smtp_addrs[0], d.api_addr);
    let (r, health) = tokio::task::spawn_blocking(move || {
        let mut s = Smtp::greeted(addr).unwrap();
        (
            s.transaction("app@school.test", &["a@example.net"], &message(1, 1))
                .unwrap(),
            api_status(api, "/healthz").unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(r.len(), 1, "refused at MAIL: {r:?}");
    assert!(r[0].starts_with("452 4.3.1"), "{r:?}");
    assert_eq!(
        health.0, 503,
        "healthz while every MAIL gets 452 4.3.1: {health:?}"
    );
    assert!(
        health.1.contains("insufficient_storage") && health.1.contains("min_free_space"),
        "{health:?}"
    );
    d.stop().await;
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

/// Fills the spool with ~400 KB messages until refused; returns the acknowledged numbers and the refusal.
fn fill(d: &ChildDaemon) -> (BTreeSet<u64>, Vec<String>) {
    let mut acked = BTreeSet::new();
    for n in 1..=200 {
        let mut s = Smtp::greeted(d.smtp).expect("daemon still answers");
        let r = s
            .transaction(
                "app@school.test",
                &["filler@example.net"],
                &message(n, 5000),
            )
            .expect("daemon still answers");
        if r.len() == 4 && r[3].starts_with("250 ") {
            acked.insert(n);
        } else {
            return (acked, r);
        }
    }
    panic!("a 16 MB tmpfs never filled up");
}

fn full_tmpfs(
    dir: &Path,
    sink: std::net::SocketAddr,
    rec: std::sync::Arc<std::sync::Mutex<crate::support::mx::Record>>,
) {
    let Some(fs) = Tmpfs::mount(&dir.join("spool"), "16m") else {
        crate::support::skip::skip(
            "full_tmpfs",
            "permission to mount a tmpfs (root or CAP_SYS_ADMIN)",
            "run the suite as root, e.g. `sudo -E tests/run-all.sh`",
        );
        return;
    };
    let data = fs.0.join("data");
    let held = write(&child(&data, closed_port()), &dir.join("held.toml"));
    let d = ChildDaemon::spawn(&held, &[]).expect("starts on tmpfs");
    let (acked, refusal) = fill(&d);
    assert!(!acked.is_empty(), "nothing fit on the tmpfs");
    let last = refusal.last().unwrap();
    assert!(
        last.starts_with("451 4.3.0") || last.starts_with("452 4.3.1"),
        "disk full must be 451 4.3.0 or 452 4.3.1: {refusal:?}"
    );
    let mut s = Smtp::greeted(d.smtp).expect("the daemon survives a full disk");
    let again = s.cmd("MAIL FROM:<app@school.test>").unwrap();
    assert_eq!(
        api_status(d.api, "/healthz").map(|r| r.0),
        Ok(503),
        "health after disk full"
    );
    assert!(
        again.starts_with('4'),
        "MAIL after {refusal:?} (with {} acknowledged): {again}\n{}",
        acked.len(),
        d.log()
    );
    let log = d.kill9();
    assert!(fs.grow("256m"), "remount failed");
    let deliver = write(&child(&data, sink), &dir.join("deliver.toml"));
    let d = ChildDaemon::spawn(&deliver, &[])
        .unwrap_or_else(|l| panic!("restart after disk full failed:\n{l}\nfirst run:\n{log}"));
    let missing = wait_delivered(&rec, &acked);
    let (_, log2) = d.term();
    let dump = queue_dump(&data);
    assert!(
        missing.is_empty(),
        "acknowledged before the disk filled but not delivered: {missing:?}\nafter restart:\n{log2}\nqueue:\n{dump}"
    );
    eprintln!(
        "tmpfs: {} acknowledged then {refusal:?}; all delivered after growing the fs",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_tmpfs_refuses_and_delivers_after_space_returns() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, addr, rec) = (dir.path().to_path_buf(), mx.addr, mx.record.clone());
    tokio::task::spawn_blocking(move || full_tmpfs(&path, addr, rec))
        .await
        .unwrap();
}

/// Each queued message's state and the schedule index, for failure messages.
fn queue_dump(data: &Path) -> String {
    let Ok(store) = Store::open(data) else {
        return "cannot open".into();
    };
    let mut out = String::new();
    for item in store.tree(TreeId::Messages).iter().flatten() {
        match rebound::store::MessageRecord::decode(&item.1) {
            Ok(r) => out.push_str(&format!(
                "{} next={:?} attempts={} body={:?} last={:?}\n",
                r.queue_id(),
                r.next_attempt,
                r.attempts,
                store.has_body(r.id),
                r.recipients[0].last_diagnostic
            )),
            Err(e) => out.push_str(&format!("undecodable: {e}\n")),
        }
    }
    for item in store.tree(TreeId::Schedule).iter().flatten() {
        out.push_str(&format!("schedule {}\n", rebound::store::hex(&item.0)));
    }
    out
}

/// Writes bad values under message keys (with schedule entries) into a stopped daemon's db.
fn poison(data: &Path) -> usize {
    let store = Store::open(data).expect("opens the stopped daemon's db");
    let messages = store.tree(TreeId::Messages);
    let (_, good) = messages
        .iter()
        .next()
        .expect("a queued message")
        .expect("readable");
    let truncated = good[..good.len() / 2].to_vec();
    let bad: [(u64, Vec<u8>); 5] = [
        (1, Vec::new()),
        (2, truncated),
        (3, b"\x00garbage\xff\xfe".to_vec()),
        (4, [vec![1u8], vec![0xff; 64]].concat()),
        (5, vec![1u8, 0, 0]),
    ];
    for (id, value) in &bad {
        messages.insert(id.to_be_bytes(), value.as_slice()).unwrap();
        let key = rebound::store::queue::schedule_key(Timestamp(0), *id);
        store.tree(TreeId::Schedule).insert(key, &[][..]).unwrap();
    }
    messages.flush().unwrap();
    bad.len()
}

fn poison_records(
    dir: &Path,
    sink: std::net::SocketAddr,
    rec: std::sync::Arc<std::sync::Mutex<crate::support::mx::Record>>,
) {
    let data = dir.join("data");
    let held = write(&child(&data, closed_port()), &dir.join("held.toml"));
    let d = ChildDaemon::spawn(&held, &[]).expect("starts");
    let mut s = Smtp::greeted(d.smtp).unwrap();
    for n in 1..=3 {
        let r = s
            .transaction("app@school.test", &["p@example.net"], &message(n, 2))
            .unwrap();
        assert!(r[3].starts_with("250 "), "{r:?}");
    }
    let (ok, log) = d.term();
    assert!(ok, "{log}");
    let n_bad = poison(&data);
    let deliver = write(&child(&data, sink), &dir.join("deliver.toml"));
    let d = ChildDaemon::spawn(&deliver, &[])
        .unwrap_or_else(|l| panic!("poisoned queue stops the daemon from starting:\n{l}"));
    let missing = wait_delivered(&rec, &BTreeSet::from([1, 2, 3]));
    let metrics = api_get(d.api, "/metrics").expect("metrics");
    let (ok, log) = d.term();
    assert!(
        missing.is_empty(),
        "good messages not delivered: {missing:?}\n{log}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("rebound_quarantined_records {n_bad}")),
        "{metrics}"
    );
    assert!(log.contains("quarantined"), "{log}");
    assert!(ok, "{log}");
    let d = ChildDaemon::spawn(&deliver, &[])
        .unwrap_or_else(|l| panic!("second start after quarantine failed:\n{l}"));
    let metrics = api_get(d.api, "/metrics").expect("metrics");
    d.term();
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("rebound_quarantined_records {n_bad}")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_quarantined_and_the_rest_delivered() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, addr, rec) = (dir.path().to_path_buf(), mx.addr, mx.record.clone());
    tokio::task::spawn_blocking(move || poison_records(&path, addr, rec))
        .await
        .unwrap();
}
