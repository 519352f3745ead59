//! Unit tests of DSN composition: parse-back through our own bounce parser,
//! NOTIFY/RET handling, and hostile diagnostic text.

use super::*;
use crate::model::{Class, Reason, Status};

fn rcpt(addr: &str, notify: Option<DsnNotify>) -> RcptRecord {
    RcptRecord {
        address: addr.into(),
        orcpt: Some(format!("rfc822;{addr}")),
        notify,
        status: Status::Bounced,
        attempts: 1,
        last_diagnostic: None,
    }
}

fn record(ret: Option<DsnRet>) -> MessageRecord {
    MessageRecord {
        id: 0xAB_CDEF,
        received: Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap(),
        sender: "app@school.test".into(),
        message_id: Some("<orig.1@school.test>".into()),
        env_id: Some("ENV-42".into()),
        ret,
        client: "127.0.0.1".into(),
        auth_user: None,
        recipients: vec![
            rcpt("good@example.net", None),
            rcpt("unknown@example.net", None),
            rcpt(
                "quiet@example.net",
                Some(DsnNotify {
                    never: true,
                    ..DsnNotify::default()
                }),
            ),
        ],
        attempts: 1,
        next_attempt: None,
        resent_from: None,
        size: 0,
        is_dsn: false,
    }
}

fn event(kind: EventKind, rcpt: &str, diagnostic: &str, status: Option<&str>) -> Event {
    let mut e = Event::new(
        kind,
        Timestamp::parse_rfc3339("2026-11-22T10:05:00Z").unwrap(),
    );
    e.queue_id = Some("ABCDEF".into());
    e.recipient = Some(rcpt.into());
    e.reply_code = Some(550);
    e.enhanced_status = status.map(str::to_string);
    e.diagnostic = Some(diagnostic.into());
    e.remote_host = Some("mx.example.net".into());
    e
}

const ORIGINAL: &[u8] = b"Received: from app\r\nMessage-ID: <orig.1@school.test>\r\nSubject: notice\r\n\r\nSecret body line\r\n";

#[test]
fn notify_flags_follow_rfc3461() {
    assert!(wants_failure(None));
    assert!(wants_failure(Some(DsnNotify {
        failure: true,
        ..DsnNotify::default()
    })));
    assert!(!wants_failure(Some(DsnNotify {
        never: true,
        ..DsnNotify::default()
    })));
    assert!(!wants_failure(Some(DsnNotify {
        success: true,
        delay: true,
        ..DsnNotify::default()
    })));
}

#[test]
fn only_new_failures_that_asked_are_reported() {
    let rec = record(None);
    let events = vec![
        event(
            EventKind::Delivered,
            "good@example.net",
            "250 ok",
            Some("2.0.0"),
        ),
        event(
            EventKind::Bounced,
            "unknown@example.net",
            "550 5.1.1 User unknown",
            Some("5.1.1"),
        ),
        event(
            EventKind::SuppressionAdded,
            "unknown@example.net",
            "x",
            None,
        ),
        event(
            EventKind::Bounced,
            "quiet@example.net",
            "550 5.1.1 User unknown",
            Some("5.1.1"),
        ),
    ];
    let f = failures(&rec, &events);
    assert_eq!(
        f.iter()
            .map(|f| f.rcpt.address.as_str())
            .collect::<Vec<_>>(),
        ["unknown@example.net"]
    );
}

#[test]
fn dsn_parses_back_as_a_hard_failure_for_the_recipient() {
    let rec = record(None);
    let events = vec![event(
        EventKind::Bounced,
        "unknown@example.net",
        "550 5.1.1 User unknown",
        Some("5.1.1"),
    )];
    let raw = compose(
        "relay.test",
        &rec,
        &failures(&rec, &events),
        Some(ORIGINAL),
        1 << 20,
        Timestamp::now(),
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("multipart/report"), "{text}");
    assert!(
        text.contains("report-type") && text.contains("delivery-status"),
        "{text}"
    );
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("MAILER-DAEMON@relay.test"), "{text}");
    assert!(text.contains("Original-Envelope-Id: ENV-42"), "{text}");
    assert!(
        text.contains("Original-Recipient: rfc822;unknown@example.net"),
        "{text}"
    );
    assert!(
        text.contains("text/rfc822-headers") && !text.contains("Secret body line"),
        "RET default is headers only: {text}"
    );
    let report = crate::bounce::parse(&raw);
    assert_eq!(report.format, "dsn");
    assert_eq!(report.recipients.len(), 1, "{report:?}");
    let r = &report.recipients[0];
    assert_eq!(r.recipient.as_deref(), Some("unknown@example.net"));
    assert_eq!(
        (r.class, r.reason),
        (Class::Hard, Reason::UserUnknown),
        "{r:?}"
    );
    assert_eq!(r.status.map(|s| s.to_string()).as_deref(), Some("5.1.1"));
    assert_eq!(
        report
            .original_message_id
            .as_deref()
            .or(report.original.message_id.as_deref()),
        Some("<orig.1@school.test>")
    );
}

#[test]
fn a_policy_rejection_parses_back_as_block_and_ret_full_returns_the_body() {
    let rec = record(Some(DsnRet::Full));
    let events = vec![event(
        EventKind::Failed,
        "unknown@example.net",
        "550 5.7.1 Message rejected as spam",
        Some("5.7.1"),
    )];
    let raw = compose(
        "relay.test",
        &rec,
        &failures(&rec, &events),
        Some(ORIGINAL),
        1 << 20,
        Timestamp::now(),
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("message/rfc822") && text.contains("Secret body line"),
        "{text}"
    );
    let r = &crate::bounce::parse(&raw).recipients[0];
    assert_eq!(r.class, Class::Block, "{r:?}");
    // Too big for the limit: headers only.
    let small = compose(
        "relay.test",
        &rec,
        &failures(&rec, &events),
        Some(ORIGINAL),
        10,
        Timestamp::now(),
    );
    assert!(!String::from_utf8_lossy(&small).contains("Secret body line"));
}

#[test]
fn hostile_diagnostics_cannot_inject_lines_or_exceed_998_octets() {
    let rec = record(None);
    let hostile = format!(
        "550 5.1.1 bad\r\nBcc: victim@example.org\r\n\r\n--boundary\n{}\u{7}é",
        "x".repeat(5000)
    );
    let mut ev = event(
        EventKind::Bounced,
        "unknown@example.net",
        &hostile,
        Some("5.1.1"),
    );
    ev.remote_host = Some("mx\r\nX-Injected: yes".into());
    let events = vec![ev];
    let raw = compose(
        "relay.test\r\nX-Host: 1",
        &rec,
        &failures(&rec, &events),
        Some(ORIGINAL),
        1 << 20,
        Timestamp::now(),
    );
    for line in raw.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "line of {} octets", line.len());
        for bad in [&b"Bcc:"[..], b"X-Injected:", b"X-Host:"] {
            assert!(
                !line.starts_with(bad),
                "injected line: {}",
                String::from_utf8_lossy(line)
            );
        }
    }
    assert_eq!(
        crate::bounce::parse(&raw).recipients[0]
            .recipient
            .as_deref(),
        Some("unknown@example.net")
    );
}

#[test]
fn only_a_remote_reply_is_an_smtp_diagnostic() {
    let rec = record(None);
    let remote = event(
        EventKind::Bounced,
        "unknown@example.net",
        "550 5.1.1 User unknown",
        Some("5.1.1"),
    );
    let mut local = event(
        EventKind::Expired,
        "good@example.net",
        "no MX for example.net: connection refused",
        None,
    );
    (local.reply_code, local.remote_host) = (None, None);
    let events = vec![remote, local];
    let text = status_fields("relay.test", &rec, &failures(&rec, &events));
    assert!(
        text.contains("Diagnostic-Code: smtp; 550 5.1.1 User unknown"),
        "{text}"
    );
    assert!(
        text.contains("Diagnostic-Code: x-rebound; no MX for example.net"),
        "{text}"
    );
    assert_eq!(text.matches("smtp;").count(), 1, "{text}");
}

#[test]
fn expiry_reports_4_4_7_and_cleaning_is_bounded() {
    let mut ev = event(
        EventKind::Expired,
        "unknown@example.net",
        "delivery time expired",
        None,
    );
    ev.reply_code = None;
    assert_eq!(status_code(&ev), "4.4.7");
    assert_eq!(clean("a\r\n\tb  é\u{0}c", 100), "a b ? c");
    assert_eq!(clean(&"y".repeat(50), 10).len(), 10);
}

#[test]
fn a_thousand_failures_make_one_report_with_bounded_lines() {
    let mut rec = record(None);
    rec.recipients = (0..1000)
        .map(|i| rcpt(&format!("u{i}@example.net"), None))
        .collect();
    rec.recipients[7].orcpt = Some("rfc822;x\r\nBcc: victim@example.org".into());
    let events: Vec<Event> = (0..1000)
        .map(|i| {
            event(
                EventKind::Bounced,
                &format!("u{i}@example.net"),
                "550 5.1.1 User unknown",
                Some("5.1.1"),
            )
        })
        .collect();
    let f = failures(&rec, &events);
    assert_eq!(f.len(), 1000);
    let raw = compose(
        "relay.test",
        &rec,
        &f,
        Some(ORIGINAL),
        1 << 20,
        Timestamp::now(),
    );
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("Final-Recipient: rfc822; u").count(), 1000);
    assert!(
        text.lines()
            .all(|l| l.len() <= 998 && !l.starts_with("Bcc:"))
    );
}
