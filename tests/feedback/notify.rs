//! Whole-daemon DSNs to the sender (`bounces.notify_sender`): a recipient the
//! scripted MX refuses with 550 5.1.1 produces one RFC 3464 report, sent with
//! `MAIL FROM:<>` to the original sender, that our own bounce parser reads back
//! as a hard failure of that recipient. Recipients with NOTIFY=NEVER are left out
//! and null-sender originals get none.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::prelude::*;
use crate::support::smtp::Client;
use rebound::model::{Class, EventKind, Reason};

const FINAL: &[EventKind] = &[
    EventKind::Delivered,
    EventKind::Bounced,
    EventKind::Failed,
    EventKind::Expired,
    EventKind::Dropped,
];

/// Speaks SMTP over a raw socket: each line is a command whose reply must start with
/// the given code; `DATA` is followed by `body` and the terminator.
async fn raw_smtp(addr: SocketAddr, steps: &[(&str, &str)], body: &str) {
    let mut c = Client::greeted(addr).await;
    for (cmd, want) in steps {
        let reply = c.cmd(cmd).await;
        assert!(reply.starts_with(want), "{cmd} -> {reply}");
        if *cmd == "DATA" {
            c.send(format!("{body}\r\n.\r\n")).await;
            let reply = c.reply().await.pop().unwrap_or_default();
            assert!(reply.starts_with("250"), "end of data -> {reply}");
        }
    }
}

async fn wait_for_dsn(mx: &ScriptedMx, rcpt: &str) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(m) = mx.record().dsns_to(rcpt).pop() {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no DSN reached the MX for {rcpt}: {:?}",
            mx.record().commands
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_recipients_get_a_dsn_that_parses_back() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| cfg.bounces.notify_sender = true).await;
    let smtp = d.smtp_addrs[0];

    // One message: a bounce with NOTIFY=FAILURE, a bounce with NOTIFY=NEVER, a delivery.
    let steps = [
        ("EHLO app.test", "250"),
        ("MAIL FROM:<app@school.test> RET=HDRS ENVID=env-77", "250"),
        (
            "RCPT TO:<unknown@example.net> NOTIFY=FAILURE ORCPT=rfc822;unknown@example.net",
            "250",
        ),
        ("RCPT TO:<unknown@never.test> NOTIFY=NEVER", "250"),
        ("RCPT TO:<good@example.net>", "250"),
        ("DATA", "354"),
        ("QUIT", "221"),
    ];
    raw_smtp(
        smtp,
        &steps,
        "Subject: notice\r\nMessage-ID: <notice.1@school.test>\r\n\r\nSecret body.",
    )
    .await;
    assert_eq!(
        wait_for(&d, "unknown@example.net", FINAL, Duration::from_secs(20)).await,
        ["queued", "bounced", "suppression_added"]
    );
    assert_eq!(
        wait_for(&d, "unknown@never.test", FINAL, Duration::from_secs(20)).await,
        ["queued", "bounced", "suppression_added"]
    );

    let dsn = wait_for_dsn(&mx, "app@school.test").await;
    let text = String::from_utf8_lossy(&dsn).to_string();
    if std::env::var_os("SHOW_DSN").is_some() {
        eprintln!("{text}");
    }
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("Original-Envelope-Id: env-77"), "{text}");
    assert!(text.contains("Remote-MTA: dns;"), "{text}");
    assert!(
        !text.contains("unknown@never.test"),
        "NOTIFY=NEVER recipient reported: {text}"
    );
    assert!(
        !text.contains("good@example.net"),
        "delivered recipient reported: {text}"
    );
    assert!(
        text.contains("<notice.1@school.test>") && !text.contains("Secret body"),
        "RET=HDRS: {text}"
    );
    let body = dsn.strip_suffix(b".\r\n").unwrap_or(&dsn);
    let report = rebound::bounce::parse(body);
    assert_eq!(report.format, "dsn", "{report:?}");
    assert_eq!(report.recipients.len(), 1, "{report:?}");
    let r = &report.recipients[0];
    assert_eq!(r.recipient.as_deref(), Some("unknown@example.net"));
    assert_eq!(
        (r.class, r.reason),
        (Class::Hard, Reason::UserUnknown),
        "{r:?}"
    );

    // The DSN itself is a queued message with the null sender, marked as a DSN, delivered.
    assert_eq!(
        wait_for(&d, "app@school.test", FINAL, Duration::from_secs(20)).await,
        ["queued", "delivered"]
    );
    let dsn_rec = d
        .daemon
        .store
        .messages_after(None, 100)
        .unwrap()
        .into_iter()
        .find(|m| m.is_dsn)
        .expect("DSN record");
    assert_eq!(
        (
            dsn_rec.sender.as_str(),
            dsn_rec.recipients[0].address.as_str()
        ),
        ("", "app@school.test")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dsn_for_notify_never_or_a_null_sender() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| cfg.bounces.notify_sender = true).await;
    let smtp = d.smtp_addrs[0];

    let never = [
        ("EHLO app.test", "250"),
        ("MAIL FROM:<quiet@school.test>", "250"),
        ("RCPT TO:<unknown@a.test> NOTIFY=NEVER", "250"),
        ("DATA", "354"),
        ("QUIT", "221"),
    ];
    raw_smtp(smtp, &never, "Subject: quiet\r\n\r\nx").await;
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "",
            &["unknown@b.test"],
            "Subject: from nobody\r\n\r\nx\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(
        wait_for(&d, "unknown@a.test", FINAL, Duration::from_secs(20))
            .await
            .contains(&"bounced".to_string())
    );
    assert!(
        wait_for(&d, "unknown@b.test", FINAL, Duration::from_secs(20))
            .await
            .contains(&"bounced".to_string())
    );

    // A marker message sent afterwards: once its DSN has arrived, the earlier
    // attempts (which queue theirs before they finish) are long done.
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "marker@school.test",
            &["unknown@c.test"],
            "Subject: marker\r\n\r\nx\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    wait_for_dsn(&mx, "marker@school.test").await;
    let rec = mx.record();
    assert!(
        rec.dsns_to("quiet@school.test").is_empty(),
        "DSN sent despite NOTIFY=NEVER"
    );
    let null_mails = rec
        .commands
        .iter()
        .filter(|c| c.starts_with("MAIL FROM:<>"))
        .count();
    assert_eq!(
        null_mails, 2,
        "only the null-sender original and the marker's DSN: {:?}",
        rec.commands
    );
    assert_eq!(
        d.daemon
            .store
            .messages_after(None, 100)
            .unwrap()
            .iter()
            .filter(|m| m.is_dsn)
            .count(),
        1
    );
    d.stop().await;
}
