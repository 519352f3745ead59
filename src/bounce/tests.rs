//! Unit tests for the bounce parser as a whole: DSN, ARF, auto-reply, ordinary mail, hostile input.

use super::*;

const DSN: &[u8] = b"From: MAILER-DAEMON@mx.example.org\nTo: app@example.com\nSubject: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n\
I'm sorry.\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n\
Final-Recipient: rfc822; user@example.net\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.example.net\n\
Diagnostic-Code: smtp; 550 5.1.1 <user@example.net>: Recipient address rejected: User unknown\n\n\
--B\nContent-Type: message/rfc822\n\nFrom: app@example.com\nTo: user@example.net\nSubject: hi\nMessage-ID: <m1@example.com>\n\
X-Rebound-Id: q123\n\nbody\n--B--\n";

#[test]
fn standard_dsn() {
    let r = parse(DSN);
    assert_eq!(r.format, "dsn");
    assert_eq!(r.reporting_mta.as_deref(), Some("mx.example.org"));
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@example.com>"));
    assert_eq!(
        r.original.rebound_headers,
        vec![("X-Rebound-Id".to_string(), "q123".to_string())]
    );
    let rc = &r.recipients[0];
    assert_eq!(rc.recipient.as_deref(), Some("user@example.net"));
    assert_eq!(
        (rc.class, rc.reason, rc.reply_code),
        (Class::Hard, Reason::UserUnknown, Some(550))
    );
    assert_eq!(rc.remote_mta.as_deref(), Some("mx.example.net"));
}

#[test]
fn ordinary_mail_is_none() {
    let r = parse(b"From: a@example.com\nTo: b@example.net\nSubject: lunch?\n\nAt noon.\n");
    assert_eq!(r.recipients.len(), 1);
    assert_eq!(r.recipients[0].class, Class::Unclassified);
    assert_eq!(r.recipients[0].recipient, None);
}

#[test]
fn vacation_reply() {
    let r = parse(b"From: Bob <bob@example.net>\nTo: a@example.com\nAuto-Submitted: auto-replied\nSubject: Out of Office: hello\n\nAway.\n");
    assert_eq!(r.format, "autoreply");
    assert_eq!(
        (r.recipients[0].class, r.recipients[0].reason),
        (Class::Autoreply, Reason::Vacation)
    );
    assert_eq!(
        r.recipients[0].recipient.as_deref(),
        Some("bob@example.net")
    );
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut deep = Vec::new();
    for i in 0..300 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").as_bytes(),
        );
    }
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n\n\n".to_vec(),
        vec![0xff; 5000],
        deep,
        b"Content-Type: multipart/report; boundary=\"x\"\n\n--x\nContent-Type: message/delivery-status\n\n--x".to_vec(),
        b"Subject: a\rFrom: MAILER-DAEMON@x\r\rThis is the qmail-send program\r".to_vec(),
        format!("Subject: {}\n\n", "x".repeat(200_000)).into_bytes(),
    ];
    // The unguarded entry: a panic in rebound's own code fails this test (only the mail-parser
    // call inside is guarded).
    for raw in &inputs {
        let r = parse_unguarded(raw);
        assert!(!r.recipients.is_empty());
    }
}

#[test]
fn giant_reports_are_capped() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@x.test\nSubject: Undelivered\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x.test\n\n",
    );
    for i in 0..3000 {
        raw.push_str(&format!(
            "Final-Recipient: rfc822; u{i}@example.net\nAction: failed\nStatus: 5.1.1\n\n"
        ));
    }
    raw.push_str("--B--\n");
    let r = parse(raw.as_bytes());
    assert_eq!(r.recipients.len(), MAX_RECIPIENTS);
    assert!(r.recipients.iter().all(|x| x.class == Class::Hard));
}

#[test]
fn a_refusal_at_the_greeting_is_a_block() {
    let raw = b"From: Mail Delivery System <Mailer-Daemon@relay.test>\nTo: app@a.test\n\
Subject: Mail delivery failed: returning message to sender\nX-Failed-Recipients: who@far.test\n\n\
This message was created automatically by mail delivery software.\n\n\
A message that you sent could not be delivered to one or more of its\n\
recipients. This is a permanent error. The following address(es) failed:\n\n\
  who@far.test\n    host mx.far.test [192.0.2.9]\n    SMTP error from remote mail server after EHLO daemon.test:\n    550 Go away\n\n\
------ This is a copy of the message, including all the headers. ------\n\nTo: who@far.test\nSubject: x\n\nbody\n";
    let r = parse(raw);
    let rc = &r.recipients[0];
    assert_eq!(rc.smtp_command, Some("HELO"));
    assert_eq!((rc.reason, rc.rule), (Reason::Blocked, "stage.helo"));
}

/// A DSN for one recipient with `status` and a Postfix-style diagnostic ending in `tail`.
fn dsn_with(status: &str, tail: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: message/delivery-status\n\n\
Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; user@example.net\nAction: failed\nStatus: {status}\n\
Diagnostic-Code: smtp; 550 {status} <user@example.net>... User Unknown{tail}\n\n--B--\n"
    )
    .into_bytes()
}

#[test]
fn user_unknown_under_another_cause_code_is_not_hard_unless_refused_at_rcpt() {
    let r = parse(&dsn_with("5.2.1", ""));
    let rc = &r.recipients[0];
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (Class::Soft, Reason::Suspend, "code.x.2.1.disabled")
    );
    let r = parse(&dsn_with("5.2.1", " (in reply to RCPT TO command)"));
    let rc = &r.recipients[0];
    assert_eq!(rc.smtp_command, Some("RCPT"));
    assert_eq!((rc.class, rc.reason), (Class::Hard, Reason::UserUnknown));
    let r = parse(&dsn_with("5.2.1", "; no such user here"));
    assert_eq!(
        (r.recipients[0].class, r.recipients[0].reason),
        (Class::Hard, Reason::UserUnknown),
        "X.2.1 with words stating the mailbox does not exist"
    );
    let r = parse(&dsn_with("5.1.1", ""));
    assert_eq!(r.recipients[0].reason, Reason::UserUnknown);
    let r = parse(&dsn_with("5.7.1", ""));
    assert_eq!(
        (r.recipients[0].class, r.recipients[0].reason),
        (Class::Block, Reason::Filtered)
    );
}

#[test]
fn sentences_only_one_stage_produces_give_the_stage() {
    for (text, stage) in [
        (
            "192.0.2.7 does not like recipient. Remote host said: 550 User unknown",
            "RCPT",
        ),
        ("Connected to 192.0.2.7 but sender was rejected.", "MAIL"),
        ("Connected to 192.0.2.7 but my name was rejected.", "HELO"),
        ("192.0.2.7 failed after I sent the message.", "DATA"),
        (
            "host mx[192.0.2.9] said: 550 5.1.1 <a@b.test>: User unknown in local recipient table",
            "RCPT",
        ),
    ] {
        assert_eq!(recognisers::smtp_command(text), Some(stage), "{text}");
    }
}

#[test]
fn qmail_giving_up_on_a_host_after_a_refusal_is_not_an_expiry() {
    let raw = b"From: MAILER-DAEMON@q.test\nSubject: failure notice\n\nHi. This is the qmail-send program at q.test.\n\
        I'm afraid I wasn't able to deliver your message to the following addresses.\n\
        This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
        <a@x.test>:\n192.0.2.7 does not like recipient.\nRemote host said: 550 <a@x.test>... User unknown\nGiving up on 192.0.2.7.\n\n\
        <b@y.test>:\n192.0.2.8 does not like recipient.\nRemote host said: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\nGiving up on 192.0.2.8.\n\n\
        --- Below this line is a copy of the message.\n\nTo: a@x.test\n";
    let r = parse(raw).recipients;
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].reason, Reason::UserUnknown, "{:?}", r[0]);
    assert_eq!(r[0].class, Class::Hard);
    assert_eq!(r[1].reason, Reason::NoRelaying, "{:?}", r[1]);
}

#[test]
fn a_transcript_naming_smtp_rcpt_gives_the_stage() {
    assert_eq!(
        recognisers::smtp_command("SMTP:RCPT host 192.0.2.8: 553 5.3.0 No such user"),
        Some("RCPT")
    );
}

#[test]
fn a_delay_notice_with_only_a_code_class_is_expired_soft() {
    let raw = b"From: MAILER-DAEMON@mx.example.org\nSubject: Delayed Mail (still being retried)\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nStill trying.\n\n\
--B\nContent-Type: message/delivery-status\n\n\
Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; user@example.net\nAction: delayed\nStatus: 4.4.0\n\n--B--\n";
    let rc = &parse(raw).recipients[0];
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (Class::Soft, Reason::Expired, "action.delayed")
    );
}

#[test]
fn a_plain_text_delay_warning_is_delayed_not_failed() {
    let raw = b"From: Mail Delivery System <mailer-daemon@mx.example.org>\nTo: app@example.com\n\
Subject: Delivery delayed\n\nThis message was created automatically by mail delivery system.\n\n\
THIS IS A WARNING MESSAGE ONLY.\n\nYOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n\
----- The following addresses had fatal errors -----\n\
[Status: Error, Address: <user@example.net>, ResponseCode 421, , Host not reachable.]\n\n\
Message will be retried for 4 more day(s)\n";
    let rc = &parse(raw).recipients[0];
    assert_eq!(rc.recipient.as_deref(), Some("user@example.net"));
    assert_eq!(rc.action.as_deref(), Some("delayed"));
    assert_eq!(rc.reply_code, Some(421));
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (Class::Soft, Reason::Expired, "action.delayed")
    );
}

#[test]
fn a_final_report_quoting_a_temporary_network_failure_is_expired() {
    let raw = b"From: Mail Delivery System <mailer-daemon@mx.example.org>\nTo: app@example.com\n\
Subject: Undelivered Mail Returned to Sender\n\n\
A message that you sent could not be delivered to one or more of its recipients. This is a permanent error.\n\n\
user@example.net Error, ERROR_CODE :421, ERROR_CODE :, Host not reachable.\n";
    let rc = &parse(raw).recipients[0];
    assert_eq!(
        (rc.action.as_deref(), rc.reply_code),
        (Some("failed"), Some(421))
    );
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (Class::Soft, Reason::Expired, "action.failed-after-retries")
    );
}

#[test]
fn a_relay_quoting_the_remote_reply_is_read_by_that_reply() {
    let raw = String::from_utf8(dsn_with("5.0.0", "")).unwrap().replace(
        "550 5.0.0 <user@example.net>... User Unknown",
        "5.3.0 - Other mail system problem 550-'5.7.1 <user@example.net>... Relaying denied' (delivery attempts: 0)",
    );
    let rc = &parse(raw.as_bytes()).recipients[0];
    assert_eq!(rc.reply_code, Some(550));
    assert_eq!(rc.status.map(|s| s.to_string()).as_deref(), Some("5.7.1"));
    assert_eq!(rc.reason, Reason::NoRelaying);
}

#[test]
fn a_failure_with_a_status_but_no_known_reason_is_on_hold() {
    let raw = String::from_utf8(dsn_with("5.0.0", "")).unwrap().replace(
        "550 5.0.0 <user@example.net>... User Unknown",
        "Gateway said no",
    );
    let rc = &parse(raw.as_bytes()).recipients[0];
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (Class::Soft, Reason::OnHold, "unexplained")
    );
}

#[test]
fn a_remote_user_unknown_with_no_address_code_and_no_stage_is_not_proof() {
    let rc = &parse(&dsn_with("5.0.0", "")).recipients[0];
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (
            Class::Block,
            Reason::Filtered,
            "text.userunknown.unconfirmed"
        )
    );
    // The same words answering RCPT, or under 5.1.1, are proof.
    let rc = &parse(&dsn_with("5.0.0", " (in reply to RCPT TO command)")).recipients[0];
    assert_eq!((rc.class, rc.reason), (Class::Hard, Reason::UserUnknown));
    let rc = &parse(&dsn_with("5.1.1", "")).recipients[0];
    assert_eq!((rc.class, rc.reason), (Class::Hard, Reason::UserUnknown));
    // So is the reporting MTA's own word that the address was not found.
    let raw = String::from_utf8(dsn_with("5.0.0", "")).unwrap().replace(
        "--B\nContent-Type: message/delivery-status",
        "--B\nContent-Type: text/plain\n\n** Address not found **\n\nYour message wasn't delivered to user@example.net \
         because the address couldn't be found.\n\n--B\nContent-Type: message/delivery-status",
    );
    let rc = &parse(raw.as_bytes()).recipients[0];
    assert_eq!((rc.class, rc.reason), (Class::Hard, Reason::UserUnknown));
}

#[test]
fn bare_user_unknown_words_in_an_unrecognised_notice_are_not_proof() {
    let raw = b"From: postmaster@odd.example.org\nSubject: Returned mail\n\n\
        ---The following addresses had delivery errors---\nuser@example.net [User unknown]\n";
    let rc = &parse(raw).recipients[0];
    assert_eq!(rc.recipient.as_deref(), Some("user@example.net"));
    assert_eq!((rc.class, rc.reason), (Class::Block, Reason::Filtered));
}

#[test]
fn a_section_naming_the_smtp_command_gives_the_stage() {
    assert_eq!(
        recognisers::smtp_command(
            "-------server message\n550 a@b.example... No such user\n-------SMTP command\nDATA\n"
        ),
        Some("DATA")
    );
}

#[test]
fn a_dns_failure_under_a_temporary_status_is_a_network_error() {
    let raw = String::from_utf8(dsn_with("4.0.0", "")).unwrap().replace(
        "550 4.0.0 <user@example.net>... User Unknown",
        "DNS Error: DNS type 'mx' lookup of example.nxd responded with code NXDOMAIN Domain name not found",
    );
    let rc = &parse(raw.as_bytes()).recipients[0];
    assert_eq!(
        (rc.class, rc.reason, rc.rule),
        (
            Class::Soft,
            Reason::NetworkError,
            "text.hostunknown.temporary"
        )
    );
    let raw = raw.replace("Status: 4.0.0", "Status: 5.0.0");
    assert_eq!(
        parse(raw.as_bytes()).recipients[0].reason,
        Reason::HostUnknown
    );
}

#[test]
fn a_reply_code_followed_by_a_colon_is_read() {
    assert_eq!(fields::find_failure_code("550: : User unknown"), Some(550));
}
