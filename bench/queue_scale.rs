//! Queue-scale benchmark: fills a store with deferred messages (all due in the
//! future), then times `Store::due` (the scheduler's wake-up query) with nothing
//! due and with a small due slice, and prints this process's peak RSS. The data
//! directory it leaves behind can be served by `rebound serve` to measure the
//! daemon's RSS with that queue (see `bench/scale.sh`).
//!
//! `cargo run --release --example queue_scale -- DATA_DIR [MESSAGES] [BODY_BYTES]`

use std::time::{Duration, Instant};

use rebound::model::Status;
use rebound::model::time::Timestamp;
use rebound::store::queue::{MessageRecord, RcptRecord};
use rebound::store::{Committer, Store, TreeId, WriteSet};

/// Messages per write set while filling.
const CHUNK: u64 = 1000;
/// Repetitions of each timed query.
const REPS: u32 = 2000;

fn record(id: u64, now: Timestamp, due: Timestamp) -> MessageRecord {
    MessageRecord {
        id,
        received: now,
        sender: "app@bench.test".into(),
        message_id: Some(format!("<{id:X}@bench.test>")),
        env_id: None,
        ret: None,
        client: "127.0.0.1".into(),
        auth_user: None,
        recipients: vec![RcptRecord {
            address: format!("user{id}@deferred.test"),
            orcpt: None,
            notify: None,
            status: Status::Deferred,
            attempts: 1,
            last_diagnostic: Some("451 4.7.1 try again later".into()),
        }],
        attempts: 1,
        next_attempt: Some(due),
        resent_from: None,
        size: 0,
        is_dsn: false,
    }
}

/// Writes `n` deferred messages due between `now + 10 min` and `now + 70 min`.
fn fill(
    store: &Store,
    n: u64,
    body_len: usize,
    now: Timestamp,
) -> Result<(), Box<dyn std::error::Error>> {
    let body = vec![b'x'; body_len];
    let mut i = 0;
    while i < n {
        let mut ws = WriteSet::new();
        for id in i..(i + CHUNK).min(n) {
            let due = now.plus(Duration::from_millis(600_000 + (id * 37) % 3_600_000));
            let mut rec = record(id + 1, now, due);
            rec.size = body_len as u64;
            ws.put_message(&rec, None).expect("record encodes");
            ws.insert(
                TreeId::Bodies,
                (id + 1).to_be_bytes().to_vec(),
                body.clone(),
            );
        }
        store.apply(&ws)?;
        i += CHUNK;
    }
    Ok(())
}

/// Mean time of `Store::due(now, 512)` and how many entries it returned.
fn time_due(
    store: &Store,
    now: Timestamp,
) -> Result<(Duration, usize), Box<dyn std::error::Error>> {
    let mut got = 0;
    let t = Instant::now();
    for _ in 0..REPS {
        got = store.due(now, 512)?.len();
    }
    Ok((t.elapsed() / REPS, got))
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: queue_scale DATA_DIR [MESSAGES] [BODY_BYTES]");
        std::process::exit(2);
    };
    let n: u64 = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let body_len: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(4096);
    let store = Store::open(std::path::Path::new(dir))?;
    let now = Timestamp::now();
    let started = Instant::now();
    fill(&store, n, body_len, now)?;
    Committer::start(store.clone()).durable().await?;
    println!(
        "filled {n} deferred messages ({body_len}-byte bodies) in {:.1?}; queue_len={}",
        started.elapsed(),
        store.queue_len()
    );
    let (t, got) = time_due(&store, now)?;
    println!("Store::due with nothing due among {n}: {t:.2?} per call ({got} returned)");
    let (t, got) = time_due(&store, now.plus(Duration::from_secs(600 + 36)))?;
    println!("Store::due with ~1000 due among {n} (limit 512): {t:.2?} per call ({got} returned)");
    let (t, got) = time_due(&store, now.plus(Duration::from_secs(3 * 3600)))?;
    println!("Store::due with all {n} due (limit 512): {t:.2?} per call ({got} returned)");
    match store.next_due()? {
        Some(next) => println!("next_due: in {:.0?}", next.since(now)),
        None => println!("next_due: nothing scheduled"),
    }
    println!("peak RSS of this process: {}", vm_hwm());
    // Leave the store as a graceful stop of the daemon would (QUEUE_SCALE_UNCLEAN=1: as a crash would).
    if std::env::var("QUEUE_SCALE_UNCLEAN")
        .unwrap_or_default()
        .is_empty()
    {
        store.close_cleanly()?;
    }
    Ok(())
}
