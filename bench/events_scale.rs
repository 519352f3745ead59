//! Scale check for the communications log (issue #6): fills a fresh store with
//! N events (default 1,000,000) over 20,000 recipients, then times the queries
//! an operator runs: by recipient, by message, by status and by time window.
//!
//! Also times the core of the undelivered report over the last 30 days: the current-status
//! index scan plus one event read per recipient not delivered.
//!
//! `cargo run --release --example events_scale -- [N] [--undelivered-only]` (the report's store
//! holds N / 10 recipients)

use std::time::Instant;

use rebound::model::time::Timestamp;
use rebound::model::{Event, EventKind};
use rebound::store::events::EventQuery;
use rebound::store::{Store, WriteSet};

const KINDS: [EventKind; 4] = [
    EventKind::Queued,
    EventKind::Deferred,
    EventKind::Delivered,
    EventKind::Bounced,
];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    if std::env::args().any(|a| a == "--undelivered-only") {
        undelivered(Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap(), n);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let t0 = Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
    let fill = Instant::now();
    let mut ws = WriteSet::new();
    for i in 0..n {
        let mut e = Event::new(KINDS[i % 4], Timestamp(t0.millis() + i as i64 * 100));
        e.recipient = Some(format!("user{}@example{}.net", i % 20_000, i % 7));
        e.queue_id = Some(format!("{:X}", i / 3));
        e.diagnostic = Some("250 2.0.0 Ok: queued as ABC".into());
        store.stamp_event(&mut e).unwrap();
        store.index_current(&mut ws, &e).unwrap();
        ws.put_event(&e, false);
        if ws.len() >= 4_000 {
            store.apply(&std::mem::take(&mut ws)).unwrap();
        }
    }
    store.apply(&ws).unwrap();
    println!(
        "filled {n} events in {:.1} s ({:.0} events/s), {} MB on disk",
        fill.elapsed().as_secs_f64(),
        n as f64 / fill.elapsed().as_secs_f64(),
        store.size_on_disk() / 1_000_000
    );
    let queries = [
        (
            "by recipient (newest 100)",
            EventQuery {
                recipient: Some("user1234@example2.net".into()),
                limit: 100,
                ..Default::default()
            },
        ),
        (
            "by message",
            EventQuery {
                queue_id: Some(0x1234),
                limit: 100,
                ..Default::default()
            },
        ),
        (
            "by status bounced (newest 100)",
            EventQuery {
                statuses: vec!["bounced".into()],
                limit: 100,
                ..Default::default()
            },
        ),
        (
            "time window of 1 minute",
            EventQuery {
                since: Some(t0.plus(std::time::Duration::from_secs(3600))),
                until: Some(t0.plus(std::time::Duration::from_secs(3660))),
                limit: 1000,
                ..Default::default()
            },
        ),
    ];
    for (name, q) in queries {
        let runs = 50;
        let start = Instant::now();
        let mut found = 0;
        for _ in 0..runs {
            found = store.query_events(&q).unwrap().events.len();
        }
        println!(
            "{name:32} {found:5} events  {:8.3} ms per query",
            start.elapsed().as_secs_f64() * 1000.0 / runs as f64
        );
    }
    undelivered(t0, n);
}

/// The undelivered report's store reads over a 30-day window, on a second store holding
/// `messages` recipients that were each queued then delivered, 2 % of them bounced instead
/// (the shape of a real relay's month).
fn undelivered(t0: Timestamp, n: usize) {
    let messages = (n / 10).max(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let mut ws = WriteSet::new();
    for i in 0..messages {
        let last = if i % 50 == 0 {
            EventKind::Bounced
        } else {
            EventKind::Delivered
        };
        for (k, kind) in [EventKind::Queued, last].into_iter().enumerate() {
            let mut e = Event::new(kind, Timestamp(t0.millis() + i as i64 * 1000 + k as i64));
            e.recipient = Some(format!("user{i}@example{}.net", i % 7));
            e.queue_id = Some(format!("{i:X}"));
            e.diagnostic = Some("250 2.0.0 Ok".into());
            store.stamp_event(&mut e).unwrap();
            store.index_current(&mut ws, &e).unwrap();
            ws.put_event(&e, false);
            store.apply(&std::mem::take(&mut ws)).unwrap();
        }
    }
    let until = Timestamp(t0.millis() + messages as i64 * 1000);
    let since = until.minus(std::time::Duration::from_secs(30 * 86_400));
    let runs = 10;
    let start = Instant::now();
    let (mut recipients, mut undelivered) = (0, 0);
    for _ in 0..runs {
        let current = store
            .current_between(since, until, |s| s != rebound::model::Status::Delivered)
            .unwrap();
        recipients = current.len();
        undelivered = 0;
        for c in &current {
            undelivered += usize::from(store.event_of(c).unwrap().is_some());
        }
    }
    println!(
        "{:32} {messages} recipients, {recipients} not delivered ({undelivered} read)  {:8.3} ms per report",
        "undelivered report (30 days)",
        start.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
}
