//! Whole-daemon delivery: mail submitted with Python's smtplib goes through the
//! queue to a scripted remote MX; each recipient ends as README "What happens to each recipient" says, with the
//! suppression list updated for the hard bounce only, expiry at max_age, and a
//! later message to the bounced address dropped without any connection; and a message
//! without Message-ID and Date arriving with both added below rebound's `Received:`.

use std::time::Duration;

use crate::support::prelude::*;
use rebound::model::time::{ManualClock, Timestamp};
use rebound::model::{EventKind, SuppressionReason};

const FINAL: &[EventKind] = &[
    EventKind::Delivered,
    EventKind::Bounced,
    EventKind::Failed,
    EventKind::Expired,
    EventKind::Dropped,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_per_recipient_follow_the_lifecycle() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    let smtp = d.smtp_addrs[0];
    let rcpts = [
        "good@example.net",
        "unknown@example.net",
        "fulltwice@example.net",
        "spam@example.net",
        "greyonce@example.org",
    ];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "app@school.test",
            &rcpts,
            "Subject: notice\r\n\r\nHello.\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "smtplib failed: {out}");

    let good = wait_for(&d, "good@example.net", FINAL, Duration::from_secs(20)).await;
    assert_eq!(good, ["queued", "delivered"]);
    let unknown = wait_for(&d, "unknown@example.net", FINAL, Duration::from_secs(20)).await;
    assert_eq!(unknown, ["queued", "bounced", "suppression_added"]);
    let spam = wait_for(&d, "spam@example.net", FINAL, Duration::from_secs(20)).await;
    assert_eq!(spam, ["queued", "failed"]);
    let full = wait_for(&d, "fulltwice@example.net", FINAL, Duration::from_secs(20)).await;
    assert_eq!(full, ["queued", "deferred", "deferred", "delivered"]);
    let grey = wait_for(&d, "greyonce@example.org", FINAL, Duration::from_secs(20)).await;
    assert_eq!(grey, ["queued", "deferred", "delivered"]);

    let s = d
        .daemon
        .store
        .suppression("Unknown@EXAMPLE.net")
        .unwrap()
        .expect("hard bounce suppressed");
    assert_eq!(s.reason, SuppressionReason::HardBounce);
    assert!(
        s.diagnostic.as_deref().unwrap_or("").contains("5.1.1"),
        "{s:?}"
    );
    assert!(
        d.daemon
            .store
            .suppression("spam@example.net")
            .unwrap()
            .is_none(),
        "a block is never suppressed"
    );
    assert!(
        d.daemon
            .store
            .suppression("fulltwice@example.net")
            .unwrap()
            .is_none(),
        "a soft failure is never suppressed"
    );

    // The envelope sender is a VERP address that verifies back to the message and recipient.
    let rec = mx.record();
    let mail_from = rec
        .commands
        .iter()
        .find(|c| c.starts_with("MAIL FROM:<bounces+"))
        .expect("VERP sender used");
    let addr = mail_from
        .trim_start_matches("MAIL FROM:<")
        .split('>')
        .next()
        .unwrap();
    let tag = d
        .daemon
        .verp
        .verify(addr, d.daemon.now(), Duration::from_secs(3600))
        .expect("tag verifies");
    assert!(d.daemon.store.message(tag.queue_id).unwrap().is_some());

    // A second message to the bounced address is dropped; no connection is made for it.
    let before = mx.record().connections;
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "app@school.test",
            &["unknown@example.net"],
            "Subject: again\r\n\r\nHi\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let again = wait_for(
        &d,
        "unknown@example.net",
        &[EventKind::Dropped],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(again.last().map(String::as_str), Some("dropped"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        mx.record().connections,
        before,
        "no delivery attempt for a suppressed address"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_host_expires_at_max_age() {
    // A port with nothing listening: every attempt is a connection failure (deferred).
    // Retries an hour apart within 3 h, on an injected clock the test moves an hour at a time.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    route_all(&mut cfg, closed_port());
    cfg.delivery.retry = vec![rebound::config::Dur(Duration::from_secs(3600))];
    cfg.delivery.max_age = rebound::config::Dur(Duration::from_secs(3 * 3600));
    let clock = ManualClock::new(Timestamp::now());
    let d = start_on_clock(cfg, clock.clone()).await;
    let smtp = d.smtp_addrs[0];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "app@school.test",
            &["someone@nowhere.test"],
            "Subject: x\r\n\r\nx\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let rcpt = "someone@nowhere.test";
    let mut h = wait_for(&d, rcpt, &[EventKind::Deferred], Duration::from_secs(15)).await;
    for _ in 0..6 {
        if h.last().map(String::as_str) == Some("expired") {
            break;
        }
        let seen = h.len();
        clock.advance(Duration::from_secs(3600));
        // The hour's attempt (or the expiry), bounded; the clock moves on either way.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while history(&d, rcpt).len() == seen && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        h = history(&d, rcpt);
    }
    assert_eq!(h.first().map(String::as_str), Some("queued"));
    assert_eq!(h.last().map(String::as_str), Some("expired"), "{h:?}");
    let deferred = h.iter().filter(|k| *k == "deferred").count();
    assert!(deferred >= 2, "several attempts before expiry: {h:?}");
    assert_eq!(h.iter().filter(|k| *k == "expired").count(), 1);
    assert!(
        d.daemon.store.suppression(rcpt).unwrap().is_none(),
        "expiry never suppresses"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_message_id_and_date_are_added_below_received() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    let smtp = d.smtp_addrs[0];
    let app = "From: App <app@school.test>\r\nTo: good@example.net\r\nSubject: no id, no date\r\nX-App:  kept   as is\r\n";
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "app@school.test",
            &["good@example.net"],
            &format!("{app}\r\nHello.\r\n"),
        )
    })
    .await
    .unwrap();
    assert!(ok, "smtplib failed: {out}");
    let h = wait_for(&d, "good@example.net", FINAL, Duration::from_secs(20)).await;
    assert_eq!(h, ["queued", "delivered"]);

    let msg = String::from_utf8(
        mx.record()
            .messages
            .last()
            .expect("a message reached the MX")
            .clone(),
    )
    .unwrap();
    let (head, body) = msg.split_once("\r\n\r\n").expect("a header block");
    // Outbound prepends the per-copy report token at delivery; what intake stored starts below it.
    let fields: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .skip_while(|l| l.starts_with("X-Rebound-Token:"))
        .collect();
    assert!(
        fields[0].starts_with("Received: from app.test"),
        "trace field first: {head}"
    );
    let mid = fields[1]
        .strip_prefix("Message-ID: <")
        .unwrap_or_else(|| panic!("Message-ID second: {head}"));
    assert!(mid.ends_with('>') && mid.contains('@'), "{mid}");
    let date = fields[2]
        .strip_prefix("Date: ")
        .unwrap_or_else(|| panic!("Date third: {head}"));
    assert!(
        mail_parser::DateTime::parse_rfc822(date).is_some(),
        "an RFC 5322 date: {date}"
    );
    assert!(
        format!("{head}\r\n").ends_with(&format!("{}\r\n{app}", fields[2])),
        "the app's headers follow unchanged: {head}"
    );
    assert_eq!(body, "Hello.\r\n.\r\n");
    assert!(
        d.daemon
            .store
            .message_by_message_id(&format!("<{mid}"))
            .unwrap()
            .is_some(),
        "the added id is the one indexed"
    );
    d.stop().await;
}
