//! SMTP listener over real sockets: command replies, MAIL/RCPT parameters and
//! limits, relay control, intake switches, pipelining and synchronization rules.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::config::{BOUNCE_DOMAIN, HOST, listener_config};
use crate::support::listener::*;
use crate::support::smtp::*;
use rebound::model::SuppressionReason;
use rebound::model::dsn_request::DsnRet;

const MSG: &str = "Subject: hi\r\n\r\nhello\r\n.\r\n";

#[tokio::test]
async fn plain_transaction_is_submitted_with_received_header() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("app@example.com", &["user@example.org"]).await;
    assert_eq!(
        c.cmd("DATA").await,
        "354 Start mail input; end with <CRLF>.<CRLF>"
    );
    c.send(MSG).await;
    assert_eq!(c.reply().await, vec!["250 2.0.0 Ok: queued as Q0001"]);
    assert_eq!(c.cmd("QUIT").await, format!("221 2.0.0 {HOST} Bye"));
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 1);
    let s = &subs[0];
    assert_eq!(s.sender.as_ref().unwrap().as_str(), "app@example.com");
    assert_eq!(s.recipients[0].address.as_str(), "user@example.org");
    assert_eq!(s.session.helo, "client.test");
    assert!(s.session.relay_allowed && !s.session.tls);
    let body = String::from_utf8(s.body.clone()).unwrap();
    assert!(
        body.starts_with(
            "Received: from client.test ([127.0.0.1])\r\n\tby relay.test (rebound) with ESMTP id "
        ),
        "{body}"
    );
    assert!(
        body.contains("\r\n\tfor <user@example.org>;\r\n\t"),
        "{body}"
    );
    assert!(body.ends_with("\r\nSubject: hi\r\n\r\nhello\r\n"), "{body}");
    assert_eq!(srv.stats.messages_accepted.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn ehlo_advertises_extensions_without_tls_or_auth() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.send("EHLO client.test\r\n").await;
    let r = c.reply().await;
    assert_eq!(
        r,
        vec![
            format!("250-{HOST} Hello client.test [127.0.0.1]"),
            "250-PIPELINING".into(),
            "250-SIZE 65536".into(),
            "250-8BITMIME".into(),
            "250-SMTPUTF8".into(),
            "250-ENHANCEDSTATUSCODES".into(),
            "250-CHUNKING".into(),
            "250 DSN".into(),
        ]
    );
    assert_eq!(
        c.cmd("HELO old.client").await,
        format!("250 {HOST} Hello old.client [127.0.0.1]")
    );
}

#[tokio::test]
async fn small_verbs_and_errors() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>").await,
        "503 5.5.1 Send EHLO/HELO first"
    );
    assert_eq!(c.cmd("EHLO client.test").await.get(..4), Some("250 "));
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(
        c.cmd("VRFY root").await,
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
    );
    assert_eq!(c.cmd("EXPN staff").await, "502 5.5.1 EXPN not supported");
    assert!(c.cmd("HELP").await.starts_with("214 2.0.0 "));
    assert_eq!(c.cmd("FROB").await, "500 5.5.1 Unknown command");
    assert_eq!(
        c.cmd("RCPT TO:<a@example.com>").await,
        "503 5.5.1 Need MAIL command before RCPT"
    );
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 Need MAIL command");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>").await,
        "250 2.1.0 Sender <a@example.com> OK"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>").await,
        "503 5.5.1 Nested MAIL command"
    );
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 Need RCPT command");
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 OK");
    assert_eq!(
        c.cmd("RCPT TO:<a@example.com>").await,
        "503 5.5.1 Need MAIL command before RCPT"
    );
    assert_eq!(
        c.cmd("MAIL FROM:a@example.com").await,
        "501 5.5.2 Syntax: MAIL FROM:<reverse-path> [parameters]"
    );
    assert_eq!(
        c.cmd("DATA now").await,
        "501 5.5.4 Syntax error: DATA takes no arguments"
    );
    assert_eq!(
        c.cmd("ETRN example.com").await,
        "502 5.5.1 Command not implemented"
    );
    assert_eq!(c.cmd("QUIT").await, format!("221 2.0.0 {HOST} Bye"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn mail_parameters_and_size_limits() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    let too_big = "552 5.3.4 Message size exceeds fixed maximum message size (65536 octets)";
    assert_eq!(c.cmd("MAIL FROM:<a@example.com> SIZE=65537").await, too_big);
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=5000000000000000")
            .await,
        too_big
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=99999999999999999999999999")
            .await,
        too_big
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=50000000000000000000000")
            .await,
        too_big
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=18446744073709617152")
            .await,
        too_big,
        "2^64 + 65536 must not wrap"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=12ab").await,
        "501 5.5.4 Invalid SIZE parameter"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=").await,
        "501 5.5.4 Invalid SIZE parameter"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> FOO=BAR").await,
        "555 5.5.4 Unsupported parameter FOO=BAR"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com> BODY=BINARYMIME").await,
        "555 5.5.4 Unsupported MAIL parameter"
    );
    let r = c
        .cmd("MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=env+2D1")
        .await;
    assert_eq!(r, "250 2.1.0 Sender <a@example.com> OK");
    let r = c
        .cmd("RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org")
        .await;
    assert_eq!(r, "250 2.1.5 Recipient <b@example.org> OK");
    assert_eq!(
        c.cmd("RCPT TO:<c@example.org> NOTIFY=NEVER,SUCCESS").await,
        "501 5.5.4 NOTIFY=NEVER cannot be combined"
    );
    assert_eq!(
        c.cmd("RCPT TO:<c@example.org> ORCPT=rfc822;x+0D+0Ay@example.org")
            .await,
        "501 5.5.4 Invalid ORCPT parameter"
    );
    c.cmd("DATA").await;
    c.send(MSG).await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    let subs = srv.intake.take();
    assert_eq!(subs[0].ret, Some(DsnRet::Headers));
    assert_eq!(subs[0].env_id.as_deref(), Some("env-1"));
    let rcpt = &subs[0].recipients[0];
    assert_eq!(rcpt.orcpt.as_deref(), Some("rfc822;b@example.org"));
    let n = rcpt.notify.unwrap();
    assert!(n.success && n.failure && !n.delay && !n.never);
}

#[tokio::test]
async fn address_forms_used_for_open_relay_are_refused() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    c.cmd("MAIL FROM:<a@example.com>").await;
    for bad in [
        "victim%target.example@example.org",
        "@hop.example:victim@target.example",
        "victim@target.example@example.org",
        "target.example!victim@example.org",
        "\"victim@target.example\"@example.org",
        "noatsign",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{bad}>")).await;
        assert!(
            r.starts_with("553 5.1.3 ") || r.starts_with("501 5.1.3 "),
            "{bad}: {r}"
        );
    }
    assert_eq!(
        c.cmd("RCPT TO:<>").await,
        "501 5.1.3 Empty recipient address"
    );
    assert_eq!(
        c.cmd("RCPT TO:<jörg@example.org>").await,
        "553 5.6.7 Non-ASCII address requires SMTPUTF8"
    );
    assert_eq!(srv.intake.count(), 0);
    c.cmd("RSET").await;
    assert_eq!(
        c.cmd("MAIL FROM:<jörg@example.org> SMTPUTF8").await,
        "250 2.1.0 Sender <jörg@example.org> OK"
    );
    assert_eq!(
        c.cmd("RCPT TO:<jörg@bücher.example>").await,
        "250 2.1.5 Recipient <jörg@bücher.example> OK"
    );
    c.cmd("DATA").await;
    c.send(MSG).await;
    assert!(c.reply().await[0].starts_with("250 "));
    let body = String::from_utf8(srv.intake.take()[0].body.clone()).unwrap();
    assert!(body.contains(" with UTF8SMTP id "), "{body}");
}

#[tokio::test]
async fn relay_refused_from_foreign_network_but_bounce_domain_accepted() {
    let mut cfg = listener_config();
    cfg.smtp.relay_networks = vec!["192.0.2.0/24".parse().unwrap()];
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO remote.test").await;
    assert_eq!(c.cmd("MAIL FROM:<>").await, "250 2.1.0 Sender <> OK");
    assert_eq!(
        c.cmd("RCPT TO:<someone@example.org>").await,
        "550 5.7.1 Relaying denied"
    );
    let r = c.cmd(&format!("RCPT TO:<b+tag@{BOUNCE_DOMAIN}>")).await;
    assert_eq!(r, format!("250 2.1.5 Recipient <b+tag@{BOUNCE_DOMAIN}> OK"));
    let r = c.cmd(&format!("RCPT TO:<b+other@{BOUNCE_DOMAIN}>")).await;
    assert_eq!(
        r,
        "550 5.5.3 Null sender (bounce) mail must have exactly one recipient"
    );
    c.cmd("DATA").await;
    c.send("Subject: Delivery Status Notification\r\n\r\nfailed\r\n.\r\n")
        .await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 1);
    assert!(subs[0].sender.is_none());
    assert!(!subs[0].session.relay_allowed);
}

#[tokio::test]
async fn suppressed_recipient_limit_and_intake_failures() {
    let srv = start(listener_config()).await;
    srv.intake
        .suppress("gone@example.org", SuppressionReason::HardBounce);
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    srv.intake.storage_full.store(true, Ordering::SeqCst);
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>").await,
        "452 4.3.1 Insufficient system storage, try again later"
    );
    srv.intake.storage_full.store(false, Ordering::SeqCst);
    c.cmd("MAIL FROM:<a@example.com>").await;
    assert_eq!(
        c.cmd("RCPT TO:<Gone@Example.org>").await,
        "550 5.1.1 <Gone@Example.org>: recipient is suppressed (hard_bounce)"
    );
    for i in 0..5 {
        assert!(
            c.cmd(&format!("RCPT TO:<u{i}@example.org>"))
                .await
                .starts_with("250 ")
        );
    }
    assert_eq!(
        c.cmd("RCPT TO:<u5@example.org>").await,
        "452 4.5.3 Too many recipients"
    );
    srv.intake.fail_writes.store(true, Ordering::SeqCst);
    c.cmd("DATA").await;
    c.send(MSG).await;
    assert_eq!(
        c.reply().await,
        vec!["451 4.3.0 Local error in processing, message not accepted, try again later"]
    );
    assert_eq!(srv.intake.count(), 0);
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
}

#[tokio::test]
async fn pipelined_batch_is_answered_in_order() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<bad%x@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n").await;
    assert_eq!(c.reply().await, vec!["250 2.1.0 Sender <a@example.com> OK"]);
    assert_eq!(
        c.reply().await,
        vec!["250 2.1.5 Recipient <b@example.org> OK"]
    );
    assert!(c.reply().await[0].starts_with("553 5.1.3 "));
    assert_eq!(
        c.reply().await,
        vec!["250 2.1.5 Recipient <c@example.org> OK"]
    );
    assert!(c.reply().await[0].starts_with("354 "));
    c.send("Subject: one\r\n\r\nx\r\n.\r\nRSET\r\nMAIL FROM:<d@example.com>\r\nRCPT TO:<e@example.org>\r\nDATA\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(c.reply().await, vec!["250 2.0.0 OK"]);
    assert!(c.reply().await[0].starts_with("250 2.1.0"));
    assert!(c.reply().await[0].starts_with("250 2.1.5"));
    assert!(c.reply().await[0].starts_with("354 "));
    c.send("Subject: two\r\n\r\ny\r\n.\r\nQUIT\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    assert!(c.reply().await[0].starts_with("221 "));
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].recipients.len(), 2);
}

#[tokio::test]
async fn body_sent_before_354_is_a_synchronization_error() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("a@example.com", &["b@example.org"]).await;
    c.send("DATA\r\nSubject: eager\r\n\r\nx\r\n.\r\n").await;
    assert_eq!(
        c.reply().await,
        vec!["554 5.5.0 Error: SMTP protocol synchronization (DATA must end a pipelined group)"]
    );
    assert!(c.closed().await);
    assert_eq!(srv.intake.count(), 0);
}

#[tokio::test]
async fn early_talker_is_refused() {
    let srv = start_with(listener_config(), Duration::from_secs(3)).await;
    let mut c = Client::connect(srv.addr).await;
    c.send("EHLO impatient.test\r\n").await;
    assert_eq!(
        c.reply().await,
        vec!["554 5.5.0 Error: SMTP protocol synchronization (talked before greeting)"]
    );
    assert!(c.closed().await);
}

#[tokio::test]
async fn long_command_line_and_many_noops_stay_bounded() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    let mut long = "NOOP ".to_string();
    long.push_str(&"x".repeat(507));
    long.push_str("\r\n");
    assert_eq!(long.len(), 514);
    c.send(&long).await;
    assert_eq!(c.reply().await, vec!["500 5.5.2 Line too long"]);
    let mut ok = "NOOP ".to_string();
    ok.push_str(&"x".repeat(505));
    ok.push_str("\r\n");
    assert_eq!(c.cmd(ok.trim_end()).await, "250 2.0.0 OK");
    // 10 MB without a newline, then a newline: one refusal, the session lives on.
    let chunk = vec![b'A'; 1024 * 1024];
    for _ in 0..10 {
        c.send(&chunk).await;
    }
    c.send("\r\n").await;
    assert_eq!(c.reply().await, vec!["500 5.5.2 Line too long"]);
    assert_eq!(c.cmd("QUIT").await, format!("221 2.0.0 {HOST} Bye"));
}

#[tokio::test]
async fn hundred_thousand_pipelined_noops_are_all_answered() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let srv = start(listener_config()).await;
    let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let (rd, mut wr) = tcp.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    rd.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("220 "), "{line}");
    let writer = tokio::spawn(async move {
        let batch = "NOOP\r\n".repeat(100_000) + "QUIT\r\n";
        wr.write_all(batch.as_bytes()).await.unwrap();
        wr
    });
    let mut oks = 0;
    loop {
        line.clear();
        if rd.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        if line == "250 2.0.0 OK\r\n" {
            oks += 1;
        } else {
            assert_eq!(line, format!("221 2.0.0 {HOST} Bye\r\n"));
        }
    }
    assert_eq!(oks, 100_000);
    drop(writer.await.unwrap());
}

/// RFC 5321 §4.5.1: `RCPT TO:<postmaster>` (no domain) is accepted from any client, as this
/// host's postmaster; another domain's postmaster is still relaying.
#[tokio::test]
async fn the_bare_postmaster_is_accepted_from_anyone() {
    let mut cfg = listener_config();
    cfg.smtp.relay_networks = vec!["192.0.2.0/24".parse().unwrap()];
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO remote.test").await;
    assert_eq!(
        c.cmd("MAIL FROM:<someone@example.org>").await,
        "250 2.1.0 Sender <someone@example.org> OK"
    );
    assert_eq!(
        c.cmd("RCPT TO:<PostMaster>").await,
        format!("250 2.1.5 Recipient <postmaster@{HOST}> OK")
    );
    assert_eq!(
        c.cmd("RCPT TO:<postmaster@example.org>").await,
        "550 5.7.1 Relaying denied"
    );
    c.cmd("DATA").await;
    c.send(MSG).await;
    assert!(c.reply().await[0].starts_with("250 "));
    let subs = srv.intake.take();
    assert_eq!(subs[0].recipients.len(), 1);
    assert_eq!(
        subs[0].recipients[0].address.as_str(),
        format!("postmaster@{HOST}")
    );
}
