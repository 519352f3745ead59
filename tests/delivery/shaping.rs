//! Polite sending against a throttling MX (real TCP on loopback): after `421 4.7.28`
//! the destination's connections drop and the queued recipients are deferred without
//! a burst of new connections; after the back-off, fewer transactions run at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use rebound::config::{DeliveryConfig, Dur, Shaping, TlsPolicy};
use rebound::delivery::outbound::{Deliverer, Transaction};
use rebound::model::address::Address;

/// What the throttling MX saw.
#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    /// Connections accepted after the first 421 was sent.
    connections_after_throttle: usize,
    accepted: usize,
    /// Transactions let through MAIL (accepted or still running).
    started: usize,
    throttled: usize,
    in_tx: usize,
    /// Most transactions in progress at once, per phase (phase = `Mx::phase`).
    max_in_tx: BTreeMap<u8, usize>,
    phase: u8,
}

/// Accepts `accept_first` messages, answers `421 4.7.28` to the next `throttle_next` MAILs
/// (closing the connection), then accepts again. Each DATA is held 100 ms so deliveries overlap.
async fn throttling_mx(
    accept_first: usize,
    throttle_next: usize,
) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            {
                let mut st = s.lock().unwrap();
                st.connections += 1;
                if st.throttled > 0 {
                    st.connections_after_throttle += 1;
                }
            }
            tokio::spawn(session(sock, s.clone(), accept_first, throttle_next));
        }
    });
    (addr, seen)
}

async fn session(
    sock: tokio::net::TcpStream,
    seen: Arc<Mutex<Seen>>,
    accept_first: usize,
    throttle_next: usize,
) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    if w.write_all(b"220 throttle.test ESMTP\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let up = line.to_ascii_uppercase();
        let reply: &[u8] = if up.starts_with("EHLO") || up.starts_with("HELO") {
            b"250 throttle.test\r\n"
        } else if up.starts_with("MAIL") {
            let throttle = {
                let mut st = seen.lock().unwrap();
                let throttle = st.started >= accept_first && st.throttled < throttle_next;
                if throttle {
                    st.throttled += 1;
                } else {
                    st.started += 1;
                    st.in_tx += 1;
                    let (phase, now) = (st.phase, st.in_tx);
                    let max = st.max_in_tx.entry(phase).or_default();
                    *max = (*max).max(now);
                }
                throttle
            };
            if throttle {
                let _ = w.write_all(b"421 4.7.28 Our system has detected an unusual rate of mail from your IP; try again later\r\n").await;
                return;
            }
            b"250 2.1.0 ok\r\n"
        } else if up.starts_with("RCPT") {
            b"250 2.1.5 ok\r\n"
        } else if up == "DATA" {
            if w.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            {
                let mut st = seen.lock().unwrap();
                st.accepted += 1;
                st.in_tx -= 1;
            }
            b"250 2.0.0 queued\r\n"
        } else if up == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn deliverer(mx: SocketAddr, backoff: &str) -> Deliverer {
    let mut cfg = DeliveryConfig {
        command_timeout: Dur(Duration::from_secs(5)),
        data_timeout: Dur(Duration::from_secs(5)),
        tls: TlsPolicy::Disabled,
        per_domain_concurrency: 10,
        ..DeliveryConfig::default()
    };
    cfg.routes.insert("*".into(), mx.to_string());
    let rule = Shaping {
        connections: Some(4),
        backoff: Some(Dur(humantime::parse_duration(backoff).unwrap())),
        ..Shaping::default()
    };
    cfg.shaping.insert("example.com".into(), rule);
    Deliverer::new(&cfg, "rebound.test").unwrap()
}

fn tx(i: usize) -> Transaction {
    Transaction {
        mail_from: "app@sender.test".into(),
        recipients: vec![Address::parse(&format!("parent{i}@example.com")).unwrap()],
        body: Arc::new(b"Subject: term dates\r\n\r\nhello\r\n".to_vec()),
    }
}

/// Runs `n` deliveries at once (as the scheduler does, one call per message); the replies.
async fn burst(d: &Arc<Deliverer>, range: std::ops::Range<usize>) -> Vec<rebound::model::Reply> {
    let calls = range.map(|i| {
        let d = d.clone();
        async move {
            d.deliver("example.com", vec![tx(i)])
                .await
                .remove(0)
                .remove(0)
                .reply
        }
    });
    futures_util::future::join_all(calls).await
}

#[tokio::test]
async fn after_a_throttle_no_new_connections_open_and_the_rest_is_deferred_without_a_burst() {
    let (addr, seen) = throttling_mx(10, usize::MAX).await;
    let d = Arc::new(deliverer(addr, "1h"));
    let replies = burst(&d, 0..40).await;
    let st = seen.lock().unwrap();
    let delivered = replies.iter().filter(|r| r.code == 250).count();
    let held_back: Vec<_> = replies
        .iter()
        .filter(|r| r.synthetic && r.text.contains("asked us to slow down"))
        .collect();
    assert_eq!(delivered, 10, "the first ten are accepted: {replies:?}");
    assert!(
        replies
            .iter()
            .all(|r| r.code == 250 || (400..500).contains(&r.code)),
        "every other recipient is a soft failure: {replies:?}"
    );
    assert!(
        st.throttled <= 4,
        "at most the deliveries already running hear the 421 ({} did)",
        st.throttled
    );
    assert!(
        st.connections_after_throttle <= 4,
        "no burst of new connections during the pause ({} opened)",
        st.connections_after_throttle
    );
    assert_eq!(
        held_back.len(),
        40 - 10 - st.throttled,
        "the rest is deferred without a connection"
    );
    assert!(
        held_back[0].text.contains("example.com") && held_back[0].text.contains("421 "),
        "the diagnostic names the destination and its reply: {}",
        held_back[0].text
    );
    assert_eq!(
        held_back[0]
            .enhanced
            .map(|e| (e.class, e.subject, e.detail)),
        Some((4, 4, 5))
    );
    let gate = d
        .shaper()
        .snapshot()
        .into_iter()
        .find(|g| g.name == "example.com")
        .expect("the destination is shown");
    assert_eq!(
        (gate.limit, gate.connections),
        (2, 4),
        "the limit is halved once"
    );
    assert!(
        gate.paused_for > Duration::from_secs(3000),
        "paused for the back-off: {gate:?}"
    );
    assert_eq!(gate.held_back as usize, held_back.len());
}

#[tokio::test]
async fn after_the_back_off_fewer_transactions_run_at_once_then_the_limit_recovers() {
    let (addr, seen) = throttling_mx(10, 2).await;
    let d = Arc::new(deliverer(addr, "1s"));
    burst(&d, 0..24).await;
    let before = *seen.lock().unwrap().max_in_tx.get(&0).unwrap();
    assert!(
        before > 2,
        "before the throttle four deliveries overlap (saw {before})"
    );
    assert_eq!(d.shaper().snapshot()[0].limit, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the back-off passes
    seen.lock().unwrap().phase = 1;
    let replies = burst(&d, 100..110).await;
    assert!(
        replies.iter().all(|r| r.code == 250),
        "the destination takes mail again: {replies:?}"
    );
    let after = *seen.lock().unwrap().max_in_tx.get(&1).unwrap();
    assert!(
        after <= 2,
        "after the throttle at most two transactions run at once (saw {after})"
    );
    let gate = d.shaper().snapshot()[0].clone();
    assert_eq!(
        gate.limit, 3,
        "ten accepted transactions raise the limit by one: {gate:?}"
    );
}
