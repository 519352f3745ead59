//! Closing the loop end to end: mail relayed through rebound to a scripted MX,
//! then returned mail sent back over SMTP from an outside host (127.0.0.2, not in
//! `relay_networks`) to the VERP address it used (an RFC 3464 DSN, a plain-text
//! NDR, an ARF complaint) updates that recipient and the suppression list only when
//! a signed VERP tag or report token ties it to that recipient. Forged, tampered,
//! expired, Message-ID-only, co-recipient and replayed reports change nothing and
//! land in the security log.

use std::time::Duration;

use crate::support::prelude::*;
use rebound::daemon::Running;
use rebound::feedback::verp::VerpTag;
use rebound::model::{EventKind, Status, SuppressionReason};

/// What one recipient's copy carried on the wire.
struct Copy {
    verp: String,
    mid: String,
    token: String,
}

/// The copy the scripted MX received for `rcpt` (the last one).
fn copy_for(mx: &ScriptedMx, rcpt: &str) -> Copy {
    let rec = mx.record();
    let idx = rec
        .commands
        .iter()
        .rposition(|c| c.eq_ignore_ascii_case(&format!("RCPT TO:<{rcpt}>")))
        .expect("rcpt seen");
    let mail_from = rec.commands[..idx]
        .iter()
        .rev()
        .find(|c| c.starts_with("MAIL FROM:"))
        .unwrap();
    let verp = mail_from
        .trim_start_matches("MAIL FROM:<")
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let n = rec.commands[..idx]
        .iter()
        .filter(|c| c.starts_with("MAIL FROM:"))
        .count();
    let text = String::from_utf8_lossy(&rec.messages[n - 1]).into_owned();
    let header = |name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(name))
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .trim()
            .to_string()
    };
    Copy {
        verp,
        mid: header("message-id:"),
        token: header("x-rebound-token:"),
    }
}

/// Sends one message to `rcpts` through rebound, waits until each is delivered.
async fn relay_to(d: &Running, rcpts: &[&str]) {
    let smtp = d.smtp_addrs[0];
    let r: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = r.iter().map(String::as_str).collect();
        python_send(
            smtp,
            "crm@school.test",
            &refs,
            "Subject: Term dates\r\n\r\nSee you soon.\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    for rcpt in rcpts {
        let h = wait_for(d, rcpt, &[EventKind::Delivered], Duration::from_secs(15)).await;
        assert_eq!(h, ["queued", "delivered"], "{rcpt}");
    }
}

/// Sends `rcpt` one message through rebound and returns what its copy carried.
async fn relay_one(d: &Running, mx: &ScriptedMx, rcpt: &str) -> Copy {
    relay_to(d, &[rcpt]).await;
    copy_for(mx, rcpt)
}

fn dsn_with(rcpt: &str, action: &str, status: &str, diag: &str, original_headers: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: <placeholder>\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diag}\r\n\r\n--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}Subject: Term dates\r\n\r\n--BB--\r\n"
    )
}

fn dsn(rcpt: &str, status: &str, diag: &str, mid: &str) -> String {
    dsn_with(
        rcpt,
        "failed",
        status,
        diag,
        &format!("Message-ID: {mid}\r\n"),
    )
}

fn arf(rcpt: &str, original_headers: &str) -> String {
    format!(
        "From: feedback@fbl.example.com\r\nTo: abuse@school.test\r\nSubject: FW: Term dates\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"AA\"\r\n\r\n--AA\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n--AA\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: <{rcpt}>\r\n\r\n--AA\r\nContent-Type: message/rfc822\r\n\r\nFrom: crm@school.test\r\nTo: {rcpt}\r\n{original_headers}Subject: Term dates\r\n\r\nSee you soon.\r\n\r\n--AA--\r\n"
    )
}

/// Sends returned mail to `to` from an outside host (127.0.0.2).
fn send_bounce(d: &Running, to: &str, body: String) {
    let smtp = d.smtp_addrs[0];
    let (ok, out) = python_send_from("127.0.0.2", smtp, "", &[to], &body);
    assert!(ok, "bounce refused: {out}");
}

/// Waits until the security log holds `n` entries (bounded); returns them.
async fn wait_security_log(d: &Running, n: usize) -> Vec<rebound::model::Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = security_log(d);
        if log.len() >= n || tokio::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_of(d: &Running, verp: &str, idx: usize) -> Status {
    let tag = d
        .daemon
        .verp
        .verify(verp, d.daemon.now(), Duration::from_secs(3600))
        .unwrap();
    d.daemon
        .store
        .message(tag.queue_id)
        .unwrap()
        .unwrap()
        .recipients[idx]
        .status
}

async fn setup() -> (Running, ScriptedMx, tempfile::TempDir) {
    setup_with(|_| {}).await
}

async fn setup_with(
    adjust: impl FnOnce(&mut rebound::config::Config),
) -> (Running, ScriptedMx, tempfile::TempDir) {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |c| {
        c.smtp.relay_networks = vec!["127.0.0.1/32".parse().unwrap()];
        adjust(c);
    })
    .await;
    (d, mx, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dsn_after_delivery_bounces_and_suppresses() {
    let (d, mx, _dir) = setup().await;
    let c = relay_one(&d, &mx, "pupil@example.net").await;
    send_bounce(
        &d,
        &c.verp,
        dsn(
            "pupil@example.net",
            "5.1.1",
            "550 5.1.1 <pupil@example.net>: Recipient address rejected: User unknown",
            &c.mid,
        ),
    );
    let h = wait_for(
        &d,
        "pupil@example.net",
        &[EventKind::Bounced],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(h, ["queued", "delivered", "bounced", "suppression_added"]);
    let s = d
        .daemon
        .store
        .suppression("pupil@example.net")
        .unwrap()
        .expect("suppressed");
    assert_eq!(s.reason, SuppressionReason::HardBounce);
    assert!(s.diagnostic.unwrap().contains("User unknown"));
    assert_eq!(status_of(&d, &c.verp, 0), Status::Bounced);
    assert!(security_log(&d).is_empty());
    d.stop().await;
}

/// A final failure after delivery is final: a full mailbox that the remote gave up on ends
/// `failed` (not suppressed); a delay warning records `delayed` and changes no status; a
/// legacy notice that says it gave up is a final failure too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_failures_after_delivery_end_the_recipient_and_delays_do_not() {
    let (d, mx, _dir) = setup().await;
    let c = relay_one(&d, &mx, "parent@example.org").await;
    let ndr = "From: MAILER-DAEMON@mail.example.org\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program at mail.example.org.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n<parent@example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n".to_string();
    send_bounce(&d, &c.verp, ndr);
    let h = wait_for(
        &d,
        "parent@example.org",
        &[EventKind::Bounced],
        Duration::from_secs(5),
    )
    .await;
    assert!(h.contains(&"bounced".to_string()), "{h:?}");
    assert!(
        d.daemon
            .store
            .suppression("parent@example.org")
            .unwrap()
            .is_some()
    );

    let c2 = relay_one(&d, &mx, "busy@example.org").await;
    let warn = dsn_with(
        "busy@example.org",
        "delayed",
        "4.2.2",
        "452 4.2.2 Mailbox full",
        &format!("Message-ID: {}\r\n", c2.mid),
    );
    send_bounce(&d, &c2.verp, warn);
    let h = wait_for(
        &d,
        "busy@example.org",
        &[EventKind::Delayed],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(h, ["queued", "delivered", "delayed"]);
    assert_eq!(
        status_of(&d, &c2.verp, 0),
        Status::Delivered,
        "a delay changes no status"
    );
    send_bounce(
        &d,
        &c2.verp,
        dsn(
            "busy@example.org",
            "5.2.2",
            "552 5.2.2 Mailbox full, over quota",
            &c2.mid,
        ),
    );
    let h = wait_for(
        &d,
        "busy@example.org",
        &[EventKind::Failed],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(h, ["queued", "delivered", "delayed", "failed"]);
    assert_eq!(status_of(&d, &c2.verp, 0), Status::Failed);
    assert!(
        d.daemon
            .store
            .suppression("busy@example.org")
            .unwrap()
            .is_none(),
        "a full mailbox never suppresses"
    );
    let q = rebound::store::events::EventQuery {
        recipient: Some("busy@example.org".into()),
        statuses: vec!["failed".into()],
        limit: 10,
        ..Default::default()
    };
    let ev = d.daemon.store.query_events(&q).unwrap().events;
    assert_eq!(ev[0].action, Some(rebound::model::Action::Failed));
    assert_eq!(ev[0].reason, Some(rebound::model::Reason::MailboxFull));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_expired_and_message_id_only_reports_change_nothing() {
    let (d, mx, _dir) = setup().await;
    let c = relay_one(&d, &mx, "target@example.net").await;
    let body = || {
        dsn(
            "target@example.net",
            "5.1.1",
            "550 5.1.1 User unknown",
            &c.mid,
        )
    };
    // Wrong MAC: flip one character of the tag.
    let mut bad = c.verp.clone().into_bytes();
    let i = "bounces+".len() + 3;
    bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
    send_bounce(&d, std::str::from_utf8(&bad).unwrap(), body());
    // A tag signed with another key.
    let other = rebound::feedback::verp::Verp::new(b"attacker", "bounces.relay.test");
    let tag = d
        .daemon
        .verp
        .verify(&c.verp, d.daemon.now(), Duration::from_secs(3600))
        .unwrap();
    send_bounce(&d, &other.address(&tag), body());
    // An expired tag (issued long before the validity window).
    let old = VerpTag {
        issued: rebound::model::time::Timestamp::parse_rfc3339("2021-01-01T00:00:00Z").unwrap(),
        ..tag
    };
    send_bounce(&d, &d.daemon.verp.address(&old), body());
    // No tag, but the right Message-ID: a DSN and an ARF complaint.
    send_bounce(&d, "bounces@bounces.relay.test", body());
    send_bounce(
        &d,
        "abuse@bounces.relay.test",
        arf("target@example.net", &format!("Message-ID: {}\r\n", c.mid)),
    );
    // A forged report token in the quoted original.
    send_bounce(
        &d,
        "fbl@bounces.relay.test",
        arf(
            "target@example.net",
            "X-Rebound-Token: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        ),
    );
    let log = wait_security_log(&d, 6).await;
    assert_eq!(
        log.len(),
        6,
        "each untrusted report is in the security log: {log:#?}"
    );
    assert!(
        log.iter().all(|e| e.status == EventKind::Unverified
            && e.diagnostic
                .as_deref()
                .is_some_and(|t| t.contains("via SMTP from 127.0.0.2"))),
        "{log:#?}"
    );
    assert!(log.iter().any(|e| {
        e.diagnostic
            .as_deref()
            .unwrap()
            .contains("a Message-ID alone proves nothing")
    }));
    // The recipient's own log and status are untouched.
    assert_eq!(history(&d, "target@example.net"), ["queued", "delivered"]);
    assert_eq!(status_of(&d, &c.verp, 0), Status::Delivered);
    assert!(
        d.daemon
            .store
            .suppression("target@example.net")
            .unwrap()
            .is_none()
    );
    // The generated Message-ID says nothing about the queue id.
    let qid = rebound::store::queue::format_queue_id(tag.queue_id);
    assert!(!c.mid.contains(&qid), "{} names queue id {qid}", c.mid);
    // The metric counts them.
    let (code, text) = api_request(d.api_addr, "GET", "/metrics", Some("test-token"), "").await;
    assert_eq!(code, 200);
    assert!(
        text.contains("rebound_unverified_reports_total 6"),
        "{text}"
    );
    // And the API shows them.
    let (code, body) = api_request(
        d.api_addr,
        "GET",
        "/v1/unverified?limit=2",
        Some("test-token"),
        "",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert!(v["next_cursor"].is_string());
    d.stop().await;
}

/// One recipient of a shared message forges reports about another with their own tag and
/// token: the signature proves only their own copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_recipient_cannot_report_for_another() {
    let (d, mx, _dir) = setup().await;
    relay_to(&d, &["victim@example.net", "attacker@example.net"]).await;
    let mine = copy_for(&mx, "attacker@example.net");
    let theirs = copy_for(&mx, "victim@example.net");
    assert_ne!(mine.token, theirs.token);
    assert_ne!(mine.verp, theirs.verp);
    // The attacker's VERP tag, naming the victim.
    send_bounce(
        &d,
        &mine.verp,
        dsn(
            "victim@example.net",
            "5.1.1",
            "550 5.1.1 User unknown",
            &theirs.mid,
        ),
    );
    // The attacker's token in a complaint naming the victim.
    send_bounce(
        &d,
        "fbl@bounces.relay.test",
        arf(
            "victim@example.net",
            &format!("X-Rebound-Token: {}\r\n", mine.token),
        ),
    );
    let log = wait_security_log(&d, 2).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(
        log.iter().all(|e| e
            .diagnostic
            .as_deref()
            .unwrap()
            .contains("signed for attacker@example.net but the report names victim@example.net")),
        "{log:#?}"
    );
    assert_eq!(history(&d, "victim@example.net"), ["queued", "delivered"]);
    assert!(
        d.daemon
            .store
            .suppression("victim@example.net")
            .unwrap()
            .is_none()
    );
    assert_eq!(history(&d, "attacker@example.net"), ["queued", "delivered"]);
    d.stop().await;
}

/// A feedback loop sends complaints to a registered address, not the VERP sender: the report
/// token in the embedded original is what ties the complaint to the recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_carrying_the_report_token_is_applied_once() {
    let (d, mx, _dir) = setup().await;
    let c = relay_one(&d, &mx, "reader@example.com").await;
    let report = arf(
        "reader@example.com",
        &format!("Message-ID: {}\r\nX-Rebound-Token: {}\r\n", c.mid, c.token),
    );
    send_bounce(&d, "fbl@bounces.relay.test", report.clone());
    let h = wait_for(
        &d,
        "reader@example.com",
        &[EventKind::Complained],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        h,
        ["queued", "delivered", "complained", "suppression_added"]
    );
    assert_eq!(
        d.daemon
            .store
            .suppression("reader@example.com")
            .unwrap()
            .unwrap()
            .reason,
        SuppressionReason::Complaint
    );
    // The same complaint again: nothing new in the recipient's log.
    send_bounce(&d, "fbl@bounces.relay.test", report);
    let log = wait_security_log(&d, 1).await;
    assert!(
        log[0].diagnostic.as_deref().unwrap().contains("a replay"),
        "{log:#?}"
    );
    assert_eq!(
        history(&d, "reader@example.com"),
        ["queued", "delivered", "complained", "suppression_added"]
    );
    d.stop().await;
}

/// A genuine, signed DSN sent again after an operator removed the block does not suppress
/// the address again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_genuine_dsn_after_unblock_changes_nothing() {
    let (d, mx, _dir) = setup().await;
    let c = relay_one(&d, &mx, "fixed@example.net").await;
    let report = dsn(
        "fixed@example.net",
        "5.1.1",
        "550 5.1.1 User unknown",
        &c.mid,
    );
    send_bounce(&d, &c.verp, report.clone());
    wait_for(
        &d,
        "fixed@example.net",
        &[EventKind::Bounced],
        Duration::from_secs(5),
    )
    .await;
    assert!(
        d.daemon
            .store
            .suppression("fixed@example.net")
            .unwrap()
            .is_some()
    );
    let (code, body) = api_request(
        d.api_addr,
        "DELETE",
        "/v1/suppressions/fixed@example.net",
        Some("test-token"),
        "",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // Replayed unchanged, and a variant with other wording (a different digest).
    send_bounce(&d, &c.verp, report);
    send_bounce(
        &d,
        &c.verp,
        dsn(
            "fixed@example.net",
            "5.1.1",
            "550 5.1.1 No such user here",
            &c.mid,
        ),
    );
    let log = wait_security_log(&d, 2).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(
        log.iter()
            .any(|e| e.diagnostic.as_deref().unwrap().contains("a replay")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|e| e
            .diagnostic
            .as_deref()
            .unwrap()
            .contains("removed from the suppression list")),
        "{log:#?}"
    );
    assert!(
        d.daemon
            .store
            .suppression("fixed@example.net")
            .unwrap()
            .is_none(),
        "not suppressed again"
    );
    assert_eq!(
        history(&d, "fixed@example.net"),
        [
            "queued",
            "delivered",
            "bounced",
            "suppression_added",
            "suppression_removed"
        ]
    );
    d.stop().await;
}

/// `POST /v1/ingest` follows the same rule: a Message-ID alone is not enough unless the
/// operator turned `bounces.trust_message_id` on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_api_needs_a_signature_unless_message_ids_are_trusted() {
    for trusted in [false, true] {
        let (d, mx, _dir) = setup_with(|c| c.bounces.trust_message_id = trusted).await;
        let c = relay_one(&d, &mx, "reader@example.com").await;
        let report = arf("reader@example.com", &format!("Message-ID: {}\r\n", c.mid));
        let resp = rebound::records::http_client::post(
            &format!("http://{}/v1/ingest", d.api_addr),
            &[("authorization", "Bearer test-token".into())],
            report.into_bytes(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        let h = history(&d, "reader@example.com");
        if trusted {
            assert_eq!(
                h,
                ["queued", "delivered", "complained", "suppression_added"]
            );
            assert!(security_log(&d).is_empty());
        } else {
            assert_eq!(h, ["queued", "delivered"]);
            assert_eq!(security_log(&d).len(), 1);
            assert!(
                d.daemon
                    .store
                    .suppression("reader@example.com")
                    .unwrap()
                    .is_none()
            );
        }
        // Without the token the API refuses.
        let resp = rebound::records::http_client::post(
            &format!("http://{}/v1/ingest", d.api_addr),
            &[],
            b"x".to_vec(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(resp.status, 401);
        d.stop().await;
    }
}

/// With `notify_sender`, a failure learnt from a returned report after delivery also reaches
/// the app's envelope sender, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_failure_is_reported_to_the_sender_once() {
    let (d, mx, _dir) = setup_with(|c| c.bounces.notify_sender = true).await;
    let c = relay_one(&d, &mx, "gone@example.net").await;
    let report = dsn(
        "gone@example.net",
        "5.1.1",
        "550 5.1.1 <gone@example.net>: User unknown",
        &c.mid,
    );
    send_bounce(&d, &c.verp, report.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while mx.record().dsns_to("crm@school.test").is_empty()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dsns = mx.record().dsns_to("crm@school.test");
    assert_eq!(dsns.len(), 1, "one DSN to the sender");
    let parsed = rebound::bounce::parse(&dsns[0]);
    let line = &parsed.recipients[0];
    assert_eq!(line.recipient.as_deref(), Some("gone@example.net"));
    assert_eq!(line.class, rebound::model::Class::Hard);
    assert_eq!(line.action.as_deref(), Some("failed"));
    // A replay of the report sends nothing more.
    send_bounce(&d, &c.verp, report);
    wait_security_log(&d, 1).await;
    assert_eq!(
        d.daemon.store.queue_len(),
        2,
        "the original and one DSN, nothing queued for the replay"
    );
    assert_eq!(mx.record().dsns_to("crm@school.test").len(), 1);
    d.stop().await;
}

/// Resident memory of process `pid` (VmRSS), in bytes.
fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes of the files under `dir`.
fn bytes_under(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        n += if p.is_dir() {
            bytes_under(&p)
        } else {
            e.metadata().map_or(0, |m| m.len())
        };
    }
    n
}

/// `GET path` on the child daemon's API: the JSON `items`.
async fn items(d: &ChildDaemon, path: &str) -> Vec<serde_json::Value> {
    let (code, body) = api_request(d.api, "GET", path, Some(TOKEN), "").await;
    assert_eq!(code, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{path}: {body}"))
}

/// One outside host, one transaction, 100 bounce-domain recipients: a report over
/// `bounces.max_report_size` is refused before anything is stored; one under it is parsed
/// and stored once (one security-log entry, its text capped), not once per recipient.
/// The daemon is a child process: its memory is its own, not that of the tests beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_big_report_to_many_bounce_addresses_is_bounded() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cfg = child(&data, mx.addr);
    cfg.smtp.relay_networks = vec!["127.0.0.1/32".parse().unwrap()];
    let config = write(&cfg, &dir.path().join("rebound.toml"));
    let d = ChildDaemon::spawn(&config, &[]).expect("starts");
    let smtp = d.smtp;
    let rcpts: Vec<String> = (0..100)
        .map(|i| format!("bounces+x{i}@bounces.relay.test"))
        .collect();
    let report = |mb: usize| {
        let line = format!("{}\r\n", "Diagnostic text that goes on and on ".repeat(2));
        let mut body = String::from(
            "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nThis is a permanent error; I've given up.\r\n\r\n<victim@example.net>: 550 5.1.1 User unknown ",
        );
        while body.len() < mb * 1_000_000 {
            body.push_str(&line);
        }
        body
    };
    let (r4, r1) = (report(4), report(1));
    let before = bytes_under(&data);
    let rss_before = rss_bytes(d.pid());
    assert!(
        rss_before > 1_000_000,
        "VmRSS read from /proc/{}/status",
        d.pid()
    );
    let rc = rcpts.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = rc.iter().map(String::as_str).collect();
        python_send_from("127.0.0.2", smtp, "fbl@outside.example", &refs, &r4)
    })
    .await
    .unwrap();
    assert!(
        !ok && out.contains("552"),
        "a 4 MB report is refused with 552: {out}"
    );
    assert!(items(&d, "/v1/unverified").await.is_empty());
    let rc = rcpts.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = rc.iter().map(String::as_str).collect();
        python_send_from("127.0.0.2", smtp, "fbl@outside.example", &refs, &r1)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut log = items(&d, "/v1/unverified").await;
    while log.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = items(&d, "/v1/unverified").await;
    }
    assert_eq!(
        log.len(),
        1,
        "stored once for 100 recipients: {}",
        log.len()
    );
    let diagnostic = log[0]["diagnostic"]
        .as_str()
        .unwrap_or_else(|| panic!("{:?}", log[0]));
    assert!(diagnostic.len() < 3_000, "the stored text is capped");
    assert!(
        items(&d, "/v1/events?recipient=victim@example.net")
            .await
            .is_empty()
    );
    // Its resident memory may not grow by much more than the one report it had to hold.
    let rss_grown = rss_bytes(d.pid()).saturating_sub(rss_before);
    assert!(
        rss_grown < 150_000_000,
        "resident memory grew by {rss_grown} bytes"
    );
    let (ok, log) = d.term();
    assert!(ok, "the daemon exits 0 on SIGTERM:\n{log}");
    let grown = bytes_under(&data).saturating_sub(before);
    assert!(
        grown < 8_000_000,
        "5 MB of hostile input grew the store by {grown} bytes"
    );
}
