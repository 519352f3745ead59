//! DATA and BDAT over real sockets: SMTP smuggling variants, size and line
//! limits with the session staying usable, loop detection, newline
//! normalisation, and CHUNKING.

use crate::support::config::{BOUNCE_DOMAIN, HOST, listener_config};
use crate::support::listener::*;
use crate::support::smtp::*;

async fn data_session(srv: &TestServer) -> Client<tokio::net::TcpStream> {
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("app@example.com", &["user@example.org"]).await;
    assert!(c.cmd("DATA").await.starts_with("354 "));
    c
}

#[tokio::test]
async fn smuggling_variants_stay_inside_one_message() {
    let variants: [&[u8]; 9] = [
        b"\n.\n",
        b"\n.\r\n",
        b"\r.\r",
        b"\r\n.\n",
        b"\n.\r",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n.\r\r\n",
        b"\r\n\x00.\r\n",
    ];
    for v in variants {
        let srv = start(listener_config()).await;
        let mut c = data_session(&srv).await;
        let mut payload = b"Subject: first\r\n\r\nhello".to_vec();
        payload.extend_from_slice(v);
        payload.extend_from_slice(b"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n");
        c.send(&payload).await;
        let r = c.reply().await;
        assert!(r[0].starts_with("250 2.0.0 Ok: queued as "), "{v:?}: {r:?}");
        assert_eq!(
            c.cmd("QUIT").await,
            format!("221 2.0.0 {HOST} Bye"),
            "{v:?}"
        );
        let subs = srv.intake.take();
        assert_eq!(subs.len(), 1, "{v:?}");
        let body = String::from_utf8_lossy(&subs[0].body).into_owned();
        assert!(
            body.contains("MAIL FROM:<smuggler@evil.test>") && body.contains("Subject: smuggled"),
            "{v:?}: {body:?}"
        );
        assert_eq!(subs[0].recipients.len(), 1);
        assert_eq!(subs[0].recipients[0].address.as_str(), "user@example.org");
    }
}

#[tokio::test]
async fn smuggling_followed_by_a_real_pipelined_transaction() {
    let srv = start(listener_config()).await;
    let mut c = data_session(&srv).await;
    c.send("Subject: a\r\n\r\nx\n.\nMAIL FROM:<smuggler@evil.test>\r\n.\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<second@example.org>\r\nDATA\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    assert!(c.reply().await[0].starts_with("250 2.1.0 "));
    assert!(c.reply().await[0].starts_with("250 2.1.5 "));
    assert!(c.reply().await[0].starts_with("354 "));
    c.send("Subject: b\r\n\r\ny\r\n.\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 2);
    assert!(
        String::from_utf8_lossy(&subs[0].body)
            .contains("x\r\n.\r\nMAIL FROM:<smuggler@evil.test>\r\n")
    );
    assert_eq!(subs[1].recipients[0].address.as_str(), "second@example.org");
}

#[tokio::test]
async fn bare_newlines_are_normalised_and_dots_unstuffed() {
    let srv = start(listener_config()).await;
    let mut c = data_session(&srv).await;
    c.send("Subject: n\r\n\r\nunix\nmac\rdos\r\n..leading dot\r\n.\r\n")
        .await;
    assert!(c.reply().await[0].starts_with("250 "));
    let body = srv.intake.take().remove(0).body;
    assert!(
        body.ends_with(b"\r\nSubject: n\r\n\r\nunix\r\nmac\r\ndos\r\n.leading dot\r\n"),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn oversized_message_is_refused_after_the_dot_and_session_continues() {
    let srv = start(listener_config()).await;
    let mut c = data_session(&srv).await;
    let line = format!("{}\r\n", "x".repeat(98));
    let mut big = "Subject: big\r\n\r\n".to_string();
    for _ in 0..700 {
        big.push_str(&line);
    }
    big.push_str(".\r\n");
    c.send(&big).await;
    assert_eq!(
        c.reply().await,
        vec!["552 5.3.4 Message size exceeds fixed maximum message size (65536 octets)"]
    );
    assert_eq!(srv.intake.count(), 0);
    c.envelope_again("app@example.com", "user@example.org")
        .await;
    c.send("Subject: small\r\n\r\nok\r\n.\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(srv.intake.count(), 1);
}

#[tokio::test]
async fn a_long_body_line_is_accepted_but_a_long_header_line_is_refused() {
    let srv = start(listener_config()).await;
    let mut c = data_session(&srv).await;
    c.send(format!(
        "Subject: long\r\n\r\n{}\r\n.\r\n",
        "y".repeat(5000)
    ))
    .await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(srv.intake.count(), 1);
    c.envelope_again("app@example.com", "user@example.org")
        .await;
    c.send(format!("Subject: {}\r\n\r\nbody\r\n.\r\n", "y".repeat(990)))
        .await;
    assert_eq!(
        c.reply().await,
        vec!["500 5.5.2 Line too long (a header line exceeds 998 octets), message not accepted"]
    );
    c.envelope_again("app@example.com", "user@example.org")
        .await;
    c.send(format!("Subject: {}\r\n\r\nbody\r\n.\r\n", "y".repeat(989)))
        .await;
    assert!(c.reply().await[0].starts_with("250 "));
    assert_eq!(srv.intake.count(), 2);
}

#[tokio::test]
async fn too_many_received_headers_is_a_loop() {
    let srv = start(listener_config()).await;
    let mut c = data_session(&srv).await;
    let mut msg = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n".repeat(50);
    msg.push_str("Subject: loop\r\n\r\nbody\r\n.\r\n");
    c.send(&msg).await;
    assert!(
        c.reply().await[0].starts_with("250 "),
        "50 hops are fine (ours makes 51 in the stored copy)"
    );
    c.envelope_again("app@example.com", "user@example.org")
        .await;
    let mut msg = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n".repeat(51);
    msg.push_str("Subject: loop\r\n\r\nbody\r\n.\r\n");
    c.send(&msg).await;
    assert_eq!(
        c.reply().await,
        vec!["554 5.4.6 Too many Received headers: mail loop detected"]
    );
    assert_eq!(srv.intake.count(), 1);
}

#[tokio::test]
async fn bdat_chunks_pipelined() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("app@example.com", &["user@example.org"]).await;
    let one = "Subject: chunked\r\n\r\n";
    let two = "line one\r\n.not stuffed\r\n";
    c.send(format!(
        "BDAT {}\r\n{one}BDAT {} LAST\r\n{two}",
        one.len(),
        two.len()
    ))
    .await;
    assert_eq!(
        c.reply().await,
        vec![format!("250 2.0.0 {} octets received", one.len())]
    );
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    let body = srv.intake.take().remove(0).body;
    assert!(body.ends_with(b"\r\nSubject: chunked\r\n\r\nline one\r\n.not stuffed\r\n"));
}

#[tokio::test]
async fn bdat_refusals_consume_the_chunk() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    c.send("BDAT 6 LAST\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await, vec!["503 5.5.1 Need MAIL command"]);
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    c.cmd("MAIL FROM:<app@example.com>").await;
    c.cmd("RCPT TO:<user@example.org>").await;
    let big = "z".repeat(70_000);
    c.send(format!("BDAT {} LAST\r\n{big}", big.len())).await;
    assert_eq!(
        c.reply().await,
        vec!["552 5.3.4 Message size exceeds fixed maximum message size (65536 octets)"]
    );
    assert_eq!(
        c.cmd("RCPT TO:<user@example.org>").await,
        "503 5.5.1 Need MAIL command before RCPT"
    );
    c.cmd("MAIL FROM:<app@example.com>").await;
    c.cmd("RCPT TO:<user@example.org>").await;
    c.send("BDAT 3\r\nabc").await;
    assert_eq!(c.reply().await, vec!["250 2.0.0 3 octets received"]);
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 DATA not allowed after BDAT");
    c.send("BDAT 0 LAST\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 1);
    assert!(subs[0].body.ends_with(b"\r\nabc"));
}

trait Again {
    async fn envelope_again(&mut self, from: &str, to: &str);
}

impl Again for Client<tokio::net::TcpStream> {
    /// MAIL + RCPT + DATA in an already greeted session.
    async fn envelope_again(&mut self, from: &str, to: &str) {
        assert!(
            self.cmd(&format!("MAIL FROM:<{from}>"))
                .await
                .starts_with("250 ")
        );
        assert!(
            self.cmd(&format!("RCPT TO:<{to}>"))
                .await
                .starts_with("250 ")
        );
        assert!(self.cmd("DATA").await.starts_with("354 "));
    }
}

/// Returned mail (every recipient at the bounce domain) has its own, smaller size limit;
/// the same body to an ordinary recipient is within `max_message_size`.
#[tokio::test]
async fn returned_mail_has_its_own_size_limit() {
    let mut cfg = listener_config();
    cfg.bounces.max_report_size = rebound::config::Size(4000);
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    let body = format!(
        "Subject: report\r\n\r\n{}.\r\n",
        format!("{}\r\n", "y".repeat(98)).repeat(50)
    );
    c.envelope("", &[&format!("b+tag@{BOUNCE_DOMAIN}")]).await;
    assert!(c.cmd("DATA").await.starts_with("354 "));
    c.send(&body).await;
    assert_eq!(
        c.reply().await,
        vec!["552 5.3.4 Message size exceeds fixed maximum message size (4000 octets)"]
    );
    assert_eq!(srv.intake.count(), 0);
    c.envelope_again("app@example.com", "user@example.org")
        .await;
    c.send(&body).await;
    assert!(c.reply().await[0].starts_with("250 "));
    assert_eq!(srv.intake.count(), 1);
}
