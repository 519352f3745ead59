//! Suppression while a message waits: an address suppressed after its message was
//! queued is not attempted again; the recipient ends `dropped`. Case and IDN
//! forms of an address match the same entry.

use std::time::Duration;

use crate::support::prelude::*;
use rebound::model::EventKind;

async fn api(d: &rebound::daemon::Running, method: &str, path: &str, body: &str) -> u16 {
    api_request(d.api_addr, method, path, Some("test-token"), body)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_while_queued_is_dropped_not_attempted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hourly_retries_to_nowhere(dir.path());
    let d = start_daemon(cfg).await;
    let smtp = d.smtp_addrs[0];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "crm@school.test",
            &["Wait@Example.net"],
            "Subject: x\r\n\r\nx\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    wait_for(
        &d,
        "wait@example.net",
        &[EventKind::Deferred],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        api(
            &d,
            "PUT",
            "/v1/suppressions/WAIT@EXAMPLE.NET",
            r#"{"reason":"manual"}"#
        )
        .await,
        201,
        "created"
    );
    let rec = d
        .daemon
        .store
        .messages_after(None, 10)
        .unwrap()
        .into_iter()
        .find(|r| r.recipients[0].address == "Wait@Example.net")
        .unwrap();
    assert_eq!(
        api(
            &d,
            "POST",
            &format!("/v1/messages/{}/retry", rec.queue_id()),
            ""
        )
        .await,
        200
    );
    let h = wait_for(
        &d,
        "wait@example.net",
        &[EventKind::Dropped],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(h, ["queued", "deferred", "suppression_added", "dropped"]);
    let after = d.daemon.store.message(rec.id).unwrap().unwrap();
    assert_eq!(after.attempts, 2);
    assert_eq!(
        after.recipients[0].attempts, 1,
        "no delivery attempt after the suppression"
    );
    assert!(after.next_attempt.is_none(), "finished");
    // IDN: the U-label and A-label forms are one entry.
    assert_eq!(
        api(
            &d,
            "PUT",
            "/v1/suppressions/hans@xn--bcher-kva.example",
            r#"{"reason":"manual"}"#
        )
        .await,
        201
    );
    assert!(
        d.daemon
            .store
            .suppression("HANS@bücher.example")
            .unwrap()
            .is_some()
    );
    d.stop().await;
}
