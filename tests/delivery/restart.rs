//! Restarts keep the schedule: attempt counts and next-attempt times survive a
//! stop/start on the same data_dir without a retry stampede, the saved next attempt
//! happens when the (injected) clock reaches it, and `queue retry` (the admin API the CLI
//! uses) forces an attempt now.

use std::time::Duration;

use crate::support::prelude::*;
use rebound::model::EventKind;
use rebound::model::time::{ManualClock, Timestamp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_survives_restart_and_retry_forces_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hourly_retries_to_nowhere(dir.path());
    let clock = ManualClock::new(Timestamp::now());
    let d = start_on_clock(cfg.clone(), clock.clone()).await;
    let smtp = d.smtp_addrs[0];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "crm@school.test",
            &["late@example.net"],
            "Subject: x\r\n\r\nx\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let h = wait_for(
        &d,
        "late@example.net",
        &[EventKind::Deferred],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(h, ["queued", "deferred"]);
    let before = d.daemon.store.messages_after(None, 10).unwrap().remove(0);
    assert_eq!(before.attempts, 1);
    let next = before.next_attempt.expect("scheduled");
    assert!(
        next.since(d.daemon.now()) > Duration::from_secs(3000),
        "next attempt about an hour away"
    );
    d.stop().await;

    let d = start_on_clock(cfg, clock.clone()).await;
    assert!(
        d.daemon.store.opened_clean(),
        "a graceful stop lets the next start skip its queue scan"
    );
    assert_eq!(d.daemon.store.queue_len(), 1, "the saved queue size");
    // A minute before the saved next attempt: the scheduler (it looks at least once a
    // second) has nothing due.
    clock.set(Timestamp(next.0 - 60_000));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = d
        .daemon
        .store
        .message(before.id)
        .unwrap()
        .expect("still queued");
    assert_eq!(after.attempts, 1, "no attempt right after the restart");
    assert_eq!(after.next_attempt, Some(next), "next attempt time survives");
    assert_eq!(history(&d, "late@example.net"), ["queued", "deferred"]);
    // The clock reaches it: the saved attempt happens.
    clock.set(Timestamp(next.0 + 1_000));
    for _ in 0..200 {
        if history(&d, "late@example.net").len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        history(&d, "late@example.net"),
        ["queued", "deferred", "deferred"],
        "the saved next attempt ran when the clock reached it"
    );
    let after = d.daemon.store.message(before.id).unwrap().unwrap();
    assert_eq!(after.attempts, 2);
    let later = after.next_attempt.expect("scheduled again");
    assert!(
        later.since(d.daemon.now()) > Duration::from_secs(3000),
        "the next one about an hour away again"
    );

    let url = format!(
        "http://{}/v1/messages/{}/retry",
        d.api_addr,
        after.queue_id()
    );
    let resp = rebound::records::http_client::post(
        &url,
        &[("authorization", "Bearer test-token".into())],
        Vec::new(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    for _ in 0..100 {
        if history(&d, "late@example.net").len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        history(&d, "late@example.net"),
        ["queued", "deferred", "deferred", "deferred"],
        "queue retry forced an attempt an hour early"
    );
    assert_eq!(
        d.daemon.store.message(before.id).unwrap().unwrap().attempts,
        3
    );
    d.stop().await;
}
