//! Closing the loop end to end: mail relayed through rebound to a scripted MX,
//! then returned mail sent back over SMTP to the VERP address it used (an RFC
//! 3464 DSN, a plain-text NDR, an ARF complaint) updates that recipient and the
//! suppression list; forged, tampered and expired tags change nothing.

mod support_daemon;
mod support_outbound;

use std::time::Duration;

use rebound::daemon::Running;
use rebound::model::{EventKind, Status, SuppressionReason};
use rebound::verp::VerpTag;
use support_daemon::*;
use support_outbound::{Script, ScriptedMx};

/// Sends `rcpt` one message through rebound and returns (VERP sender used, Message-ID).
async fn relay_one(d: &Running, mx: &ScriptedMx, rcpt: &str) -> (String, String) {
    let smtp = d.smtp_addrs[0];
    let r = rcpt.to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || python_send(smtp, "crm@school.test", &[r.as_str()], "Subject: Term dates\r\n\r\nSee you soon.\r\n")).await.unwrap();
    assert!(ok, "{out}");
    let h = wait_for(d, rcpt, &[EventKind::Delivered], Duration::from_secs(15)).await;
    assert_eq!(h, ["queued", "delivered"]);
    let rec = mx.record();
    let idx = rec.commands.iter().rposition(|c| c.eq_ignore_ascii_case(&format!("RCPT TO:<{rcpt}>"))).expect("rcpt seen");
    let mail_from = rec.commands[..idx].iter().rev().find(|c| c.starts_with("MAIL FROM:")).unwrap();
    let verp = mail_from.trim_start_matches("MAIL FROM:<").split('>').next().unwrap().to_string();
    let msg = rec.messages.last().unwrap();
    let text = String::from_utf8_lossy(msg);
    let mid = text.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).unwrap().split_once(':').unwrap().1.trim().to_string();
    (verp, mid)
}

fn dsn(rcpt: &str, status: &str, diag: &str, mid: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: <placeholder>\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diag}\r\n\r\n--BB\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {mid}\r\nSubject: Term dates\r\n\r\n--BB--\r\n"
    )
}

fn send_bounce(d: &Running, to: &str, body: String) {
    let smtp = d.smtp_addrs[0];
    let (ok, out) = python_send(smtp, "", &[to], &body);
    assert!(ok, "bounce refused: {out}");
}

async fn setup() -> (Running, ScriptedMx, tempfile::TempDir) {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    (start_routed(dir.path(), mx.addr, |_| {}).await, mx, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_dsn_after_delivery_bounces_and_suppresses() {
    let (d, mx, _dir) = setup().await;
    let (verp, mid) = relay_one(&d, &mx, "pupil@example.net").await;
    send_bounce(&d, &verp, dsn("pupil@example.net", "5.1.1", "550 5.1.1 <pupil@example.net>: Recipient address rejected: User unknown", &mid));
    let h = wait_for(&d, "pupil@example.net", &[EventKind::Bounced], Duration::from_secs(5)).await;
    assert_eq!(h, ["queued", "delivered", "bounced", "suppression_added"]);
    let s = d.relay.store.suppression("pupil@example.net").unwrap().expect("suppressed");
    assert_eq!(s.reason, SuppressionReason::HardBounce);
    assert!(s.diagnostic.unwrap().contains("User unknown"));
    let tag = d.relay.verp.verify(&verp, d.relay.now(), Duration::from_secs(3600)).unwrap();
    let rec = d.relay.store.message(tag.queue_id).unwrap().unwrap();
    assert_eq!(rec.recipients[0].status, Status::Bounced);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_ndr_and_mailbox_full_dsn() {
    let (d, mx, _dir) = setup().await;
    let (verp, _) = relay_one(&d, &mx, "parent@example.org").await;
    let ndr = "From: MAILER-DAEMON@mail.example.org\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program at mail.example.org.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n<parent@example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n".to_string();
    send_bounce(&d, &verp, ndr);
    let h = wait_for(&d, "parent@example.org", &[EventKind::Bounced], Duration::from_secs(5)).await;
    assert!(h.contains(&"bounced".to_string()), "{h:?}");
    assert!(d.relay.store.suppression("parent@example.org").unwrap().is_some());

    let (verp2, mid2) = relay_one(&d, &mx, "busy@example.org").await;
    send_bounce(&d, &verp2, dsn("busy@example.org", "4.2.2", "452 4.2.2 Mailbox full", &mid2));
    let h = wait_for(&d, "busy@example.org", &[EventKind::Deferred], Duration::from_secs(5)).await;
    assert_eq!(h, ["queued", "delivered", "deferred"]);
    assert!(d.relay.store.suppression("busy@example.org").unwrap().is_none(), "soft never suppresses");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_expired_and_mismatched_bounces_change_nothing() {
    let (d, mx, _dir) = setup().await;
    let (verp, mid) = relay_one(&d, &mx, "target@example.net").await;
    let body = || dsn("target@example.net", "5.1.1", "550 5.1.1 User unknown", "<unrelated@elsewhere>");
    // Wrong MAC: flip one character of the tag.
    let mut bad = verp.clone().into_bytes();
    let i = "bounces+".len() + 3;
    bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
    send_bounce(&d, std::str::from_utf8(&bad).unwrap(), body());
    // A tag signed with another key.
    let other = rebound::verp::Verp::new(b"attacker", "bounces.relay.test");
    let tag = d.relay.verp.verify(&verp, d.relay.now(), Duration::from_secs(3600)).unwrap();
    send_bounce(&d, &other.address(&tag), body());
    // An expired tag (issued long before the validity window).
    let old = VerpTag { issued: rebound::time::Timestamp::parse_rfc3339("2021-01-01T00:00:00Z").unwrap(), ..tag };
    send_bounce(&d, &d.relay.verp.address(&old), body());
    // No tag at all, and a Message-ID we never sent.
    send_bounce(&d, "bounces@bounces.relay.test", body());
    // A valid tag, but the report names someone else.
    send_bounce(&d, &verp, dsn("someone.else@example.net", "5.1.1", "550 5.1.1 User unknown", &mid));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = history(&d, "target@example.net");
    let status_changes: Vec<&String> = h.iter().filter(|k| *k != "unverified").collect();
    assert_eq!(status_changes, ["queued", "delivered"], "{h:?}");
    assert_eq!(h.iter().filter(|k| *k == "unverified").count(), 4, "recorded against the claimed recipient: {h:?}");
    assert!(d.relay.store.suppression("target@example.net").unwrap().is_none());
    assert!(d.relay.store.suppression("someone.else@example.net").unwrap().is_none());
    let q = rebound::store::events::EventQuery { statuses: vec!["unverified".into()], limit: 100, ..Default::default() };
    let unverified = d.relay.store.query_events(&q).unwrap().events;
    assert_eq!(unverified.len(), 5, "each untrusted report is recorded: {unverified:#?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arf_complaint_by_message_id_and_ingest_api() {
    let (d, mx, _dir) = setup().await;
    let (_verp, mid) = relay_one(&d, &mx, "reader@example.com").await;
    let arf = format!(
        "From: feedback@fbl.example.com\r\nTo: abuse@school.test\r\nSubject: FW: Term dates\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"AA\"\r\n\r\n--AA\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n--AA\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: <reader@example.com>\r\n\r\n--AA\r\nContent-Type: message/rfc822\r\n\r\nFrom: crm@school.test\r\nTo: reader@example.com\r\nMessage-ID: {mid}\r\nSubject: Term dates\r\n\r\nSee you soon.\r\n\r\n--AA--\r\n"
    );
    // Through the admin API, as `rebound ingest` does.
    let resp = rebound::http_client::post(&format!("http://{}/v1/ingest", d.api_addr), &[("authorization", "Bearer test-token".into())], arf.into_bytes(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let h = history(&d, "reader@example.com");
    assert_eq!(h, ["queued", "delivered", "complained", "suppression_added"]);
    assert_eq!(d.relay.store.suppression("reader@example.com").unwrap().unwrap().reason, SuppressionReason::Complaint);
    // Without the token the API refuses.
    let resp = rebound::http_client::post(&format!("http://{}/v1/ingest", d.api_addr), &[], b"x".to_vec(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(resp.status, 401);
    d.stop().await;
}
