//! Webhooks end to end: a real HTTP receiver verifies every batch's signature,
//! fails the first attempts, and still gets every event at least once, in order
//! per recipient, across a daemon restart (the outbox is in sled).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::prelude::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rebound::config::{Dur, Secret};

const SECRET: &str = "whsec-test";

#[derive(Default)]
struct Receiver {
    /// Requests to refuse with 500 before accepting.
    fail_first: AtomicUsize,
    requests: AtomicUsize,
    events: Mutex<Vec<serde_json::Value>>,
    bad_signatures: AtomicUsize,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.requests.fetch_add(1, Ordering::SeqCst);
    let sig = headers
        .get("x-rebound-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let expected: String = ring::hmac::sign(&key, &body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if sig != expected || headers.get("x-rebound-timestamp").is_none() {
        r.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let batch: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("a JSON array");
    r.events.lock().unwrap().extend(batch);
    StatusCode::OK
}

async fn start_receiver(fail_first: usize) -> (SocketAddr, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    r.fail_first.store(fail_first, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, r)
}

fn config(dir: &std::path::Path, mx: SocketAddr, hook: SocketAddr) -> rebound::config::Config {
    let mut cfg = test_config(dir);
    route_all(&mut cfg, mx);
    cfg.webhooks.url = Some(format!("http://{hook}/hook"));
    cfg.webhooks.secret = Some(Secret(SECRET.into()));
    cfg.webhooks.batch_wait = Dur(Duration::from_millis(100));
    cfg.webhooks.batch_size = 3;
    cfg
}

async fn wait_events(r: &Receiver, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..300 {
        if r.events.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.events.lock().unwrap().clone()
}

fn by_recipient(events: &[serde_json::Value]) -> HashMap<String, Vec<(String, String)>> {
    let mut m: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for e in events {
        let rcpt = e["recipient"].as_str().unwrap_or("").to_string();
        m.entry(rcpt).or_default().push((
            e["id"].as_str().unwrap().to_string(),
            e["status"].as_str().unwrap().to_string(),
        ));
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_in_order_despite_failures_and_a_restart() {
    let mx = ScriptedMx::start(Script::default()).await;
    let (hook_addr, receiver) = start_receiver(2).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_daemon(config(dir.path(), mx.addr, hook_addr)).await;
    let smtp = d.smtp_addrs[0];
    let rcpts = ["a@example.net", "unknown@example.net", "b@example.org"];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(smtp, "crm@school.test", &rcpts, "Subject: hi\r\n\r\nhi\r\n")
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    // queued x3, delivered x2, bounced, suppression_added = 7 events.
    let events = wait_events(&receiver, 7).await;
    assert!(
        events.len() >= 7,
        "got {} events: {events:#?}",
        events.len()
    );
    assert!(
        receiver.requests.load(Ordering::SeqCst) >= 3,
        "the first two attempts were refused and retried"
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    let per = by_recipient(&events);
    let statuses = |r: &str| per[r].iter().map(|(_, s)| s.clone()).collect::<Vec<_>>();
    assert_eq!(statuses("a@example.net"), ["queued", "delivered"]);
    assert_eq!(
        statuses("unknown@example.net"),
        ["queued", "bounced", "suppression_added"]
    );
    for list in per.values() {
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0),
            "ids increase per recipient: {list:?}"
        );
    }
    d.stop().await;

    // While the daemon is down nothing is lost: events produced before a stop with the
    // receiver refusing are delivered after the restart.
    receiver.fail_first.store(usize::MAX / 2, Ordering::SeqCst);
    let d = start_daemon(config(dir.path(), mx.addr, hook_addr)).await;
    let smtp = d.smtp_addrs[0];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "crm@school.test",
            &["c@example.net"],
            "Subject: hi\r\n\r\nhi\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let h = wait_for(
        &d,
        "c@example.net",
        &[rebound::model::EventKind::Delivered],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(h, ["queued", "delivered"]);
    assert!(
        d.daemon.store.outbox_len() >= 2,
        "undelivered events wait in the outbox"
    );
    d.stop().await;
    receiver.fail_first.store(0, Ordering::SeqCst);
    let d = start_daemon(config(dir.path(), mx.addr, hook_addr)).await;
    let events = wait_events(&receiver, 9).await;
    let per = by_recipient(&events);
    assert_eq!(
        per["c@example.net"]
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>(),
        ["queued", "delivered"]
    );
    for _ in 0..100 {
        if d.daemon.store.outbox_len() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.daemon.store.outbox_len(), 0);
    d.stop().await;
}
