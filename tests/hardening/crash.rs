//! Crash safety of the real binary: a kill -9 loop with concurrent clients
//! submitting uniquely numbered messages (every 250 must reach the sink at least
//! once after the last restart; duplicates are counted), and kill -9 right
//! after the 250s with the queue listed by the CLI after restart.
//!
//! `REBOUND_CRASH_CYCLES=200 cargo test --test hardening crash:: -- --nocapture`
//! runs the long variant (default 10 cycles). The drain after the last restart
//! lasts while deliveries keep arriving; it fails after 30 s without one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::config::{child, cli_config, closed_port, write};
use crate::support::daemon::{ChildDaemon, cli};

use crate::support::mx::seqs;
use crate::support::mx::{Script, ScriptedMx};
use crate::support::smtp::{Blocking as Smtp, stuffed};
use rand::Rng;

const CLIENTS: usize = 3;
/// The drain after the last restart fails once no new message reached the sink for this long.
const STALL: Duration = Duration::from_secs(30);

fn cycles() -> usize {
    std::env::var("REBOUND_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn message(n: u64) -> Vec<u8> {
    stuffed(&format!(
        "X-Seq: {n}\r\nSubject: crash test {n}\r\n\r\nbody of {n}\r\n.leading dot\r\n"
    ))
}

/// One client: connections of up to 10 messages each until `stop` or the daemon dies.
fn client(
    addr: std::net::SocketAddr,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut s) = Smtp::greeted(addr) else {
            return;
        };
        for _ in 0..10 {
            let n = next.fetch_add(1, Ordering::SeqCst);
            match s.transaction("app@school.test", &["sink@example.net"], &message(n)) {
                Ok(r) if r.last().is_some_and(|l| l.starts_with("250 ")) && r.len() == 4 => {
                    acked.lock().unwrap().insert(n);
                }
                Ok(_) => {}
                Err(_) => return,
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
        let _ = s.cmd("QUIT");
    }
}

/// Starts the daemon; a failure to start (e.g. sled refusing to open) fails the test.
fn must_start(config: &Path, cycle: usize) -> ChildDaemon {
    match ChildDaemon::spawn(config, &[]) {
        Ok(d) => d,
        Err(log) => panic!("cycle {cycle}: the daemon did not come up after kill -9:\n{log}"),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p))
        } else {
            out.push(p)
        }
    }
    out
}

fn kill_loop(config: PathBuf, data: PathBuf, record: Arc<Mutex<crate::support::mx::Record>>) {
    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let n = cycles();
    for cycle in 0..n {
        let d = must_start(&config, cycle);
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (next, acked, stop) = (next.clone(), acked.clone(), stop.clone());
                let addr = d.smtp;
                std::thread::spawn(move || client(addr, next, acked, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rand::thread_rng().gen_range(0..400)));
        d.kill9();
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("client thread");
        }
    }
    let acked = acked.lock().unwrap().clone();
    let d = must_start(&config, n);
    // Drain for as long as delivery progresses: the backlog after a long run takes longer than
    // any fixed deadline, so give up only once no new message reached the sink for STALL.
    let drain_start = Instant::now();
    let mut last_progress = Instant::now();
    let mut delivered = 0;
    let mut missing: Vec<u64>;
    let stalled = loop {
        let seen: BTreeSet<u64> = seqs(&record.lock().unwrap().messages).into_iter().collect();
        missing = acked.difference(&seen).copied().collect();
        if missing.is_empty() {
            break None;
        }
        if seen.len() > delivered {
            (delivered, last_progress) = (seen.len(), Instant::now());
        } else if last_progress.elapsed() > STALL {
            break Some(last_progress.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "kill -9 loop: the drain ended after {:?} with {} acknowledged messages undelivered",
        drain_start.elapsed(),
        missing.len()
    );
    let (clean, log) = d.term();
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for s in seqs(&record.lock().unwrap().messages) {
        *counts.entry(s).or_default() += 1;
    }
    let dups: usize = counts.values().map(|c| c - 1).sum();
    let files = files_under(&data);
    let unacked_delivered = counts.keys().filter(|k| !acked.contains(k)).count();
    eprintln!(
        "kill -9 loop: {n} cycles, {} submitted, {} acknowledged, {} delivered distinct, {dups} duplicate deliveries, {unacked_delivered} delivered without a 250, {} files in data_dir",
        next.load(Ordering::SeqCst) - 1,
        acked.len(),
        counts.len(),
        files.len()
    );
    assert!(
        !acked.is_empty(),
        "no message was ever acknowledged: the loop tested nothing"
    );
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered (no new delivery for {stalled:?}): {missing:?}\n{log}"
    );
    assert!(clean, "the last daemon did not stop cleanly:\n{log}");
    assert!(
        log.contains("queue recovered"),
        "a start after kill -9 must scan the queue:\n{log}"
    );
    let generating = files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".generating"))
        .count();
    assert!(
        generating <= 1 && files.len() < 40,
        "temporary files pile up in data_dir: {files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loop_loses_no_acknowledged_message() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write(&child(&data, mx.addr), &dir.path().join("rebound.toml"));
    let record = mx.record.clone();
    tokio::task::spawn_blocking(move || kill_loop(config, data, record))
        .await
        .unwrap();
}

fn queue_ids_after_kill(dir: &Path) -> (Vec<String>, String, String) {
    let config = write(
        &child(&dir.join("data"), closed_port()),
        &dir.join("rebound.toml"),
    );
    let d = must_start(&config, 0);
    let addr = d.smtp;
    let ids = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let ids = ids.clone();
            std::thread::spawn(move || {
                let mut s = Smtp::greeted(addr).expect("connect");
                for i in 0..10 {
                    let r = s
                        .transaction(
                            "app@school.test",
                            &["kept@example.net"],
                            &message(t * 100 + i),
                        )
                        .expect("transaction");
                    let last = r.last().cloned().unwrap_or_default();
                    let id = last
                        .strip_prefix("250 2.0.0 Ok: queued as ")
                        .unwrap_or_else(|| panic!("not accepted: {r:?}"));
                    ids.lock().unwrap().push(id.to_string());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    d.kill9();
    let d = must_start(&config, 1);
    let cli_cfg = cli_config(dir, d.api);
    let (code, stdout, stderr) = cli(&cli_cfg, &["queue", "list", "--json", "--limit", "1000"]);
    d.kill9();
    assert_eq!(code, 0, "{stderr}");
    let ids = ids.lock().unwrap().clone();
    (ids, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_right_after_250_keeps_every_message_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (ids, listed, _) = tokio::task::spawn_blocking(move || queue_ids_after_kill(&path))
        .await
        .unwrap();
    assert_eq!(ids.len(), 20);
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !listed.lines().any(|l| l.contains(&format!("\"{id}\""))))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in `rebound queue list` after kill -9: {missing:?}\n{listed}"
    );
}
