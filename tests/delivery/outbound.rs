//! Outbound delivery against a scripted SMTP server over real loopback TCP:
//! per-recipient replies, exact bytes on the wire, pipelining, connection reuse, STARTTLS;
//! and a whole-daemon run with a body line over 998 octets.

use crate::support::config::routed_to;
use crate::support::mx::{Mode, Script, ScriptedMx, tls_acceptor, tx, unstuff};
use rebound::config::TlsPolicy;
use rebound::delivery::outbound::{Deliverer, RcptOutcome};

fn codes(outcomes: &[RcptOutcome]) -> Vec<String> {
    outcomes.iter().map(|o| o.reply.diagnostic()).collect()
}

async fn mixed_recipients(pipelining: bool) {
    let mx = ScriptedMx::start(Script {
        pipelining,
        ..Script::default()
    })
    .await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let rcpts = [
        "ok@a.test",
        "unknown@a.test",
        "spam@a.test",
        "full@a.test",
        "grey@a.test",
        "denied509@a.test",
        "ok2@a.test",
    ];
    let out = d
        .deliver(
            "a.test",
            vec![tx(
                "sender@app.test",
                &rcpts,
                b"Subject: hi\r\n\r\nhello\r\n",
            )],
        )
        .await;
    assert_eq!(out.len(), 1);
    assert_eq!(
        codes(&out[0]),
        [
            "250 2.0.0 Ok: queued as M1",
            "550 5.1.1 User unknown",
            "550 5.7.1 Message rejected as spam",
            "452 4.2.2 Mailbox full",
            "451 4.7.1 Greylisted, try again later",
            "550 5.7.509 Access denied, sending domain does not pass DMARC",
            "250 2.0.0 Ok: queued as M1",
        ]
    );
    assert!(
        out[0]
            .iter()
            .all(|o| !o.reply.synthetic && o.remote_host.as_deref() == Some("127.0.0.1"))
    );
    assert_eq!(out[0][6].recipient.as_str(), "ok2@a.test");
    let rec = mx.record();
    assert_eq!(
        rec.commands
            .iter()
            .filter(|c| c.starts_with("RCPT TO:"))
            .count(),
        7
    );
    assert_eq!(rec.messages.len(), 1);
}

#[tokio::test]
async fn each_recipient_gets_its_own_reply_without_pipelining() {
    mixed_recipients(false).await;
}

#[tokio::test]
async fn each_recipient_gets_its_own_reply_with_pipelining() {
    mixed_recipients(true).await;
}

#[tokio::test]
async fn wire_bytes_are_crlf_only_dot_stuffed_and_terminated_once() {
    let mx = ScriptedMx::start(Script::default()).await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let body = b"Subject: x\n\n.leading dot\r\nbare\rcr\nline\n.\nMAIL FROM:<evil@x.test>\r\n.\r\r\nend\r\n";
    let out = d
        .deliver("a.test", vec![tx("", &["ok@a.test"], body)])
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    let rec = mx.record();
    assert!(
        rec.commands
            .iter()
            .any(|c| c.starts_with("MAIL FROM:<> SIZE=")),
        "{:?}",
        rec.commands
    );
    assert_eq!(rec.messages.len(), 1, "exactly one message");
    let wire = &rec.messages[0];
    let expected: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\nbare\r\ncr\r\nline\r\n..\r\nMAIL FROM:<evil@x.test>\r\n..\r\n\r\nend\r\n.\r\n";
    assert_eq!(
        String::from_utf8_lossy(wire),
        String::from_utf8_lossy(expected)
    );
    for (i, b) in wire.iter().enumerate() {
        if *b == b'\n' {
            assert_eq!(wire[i - 1], b'\r', "bare LF at {i}");
        }
        if *b == b'\r' {
            assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    assert_eq!(
        wire.windows(5).filter(|w| w == b"\r\n.\r\n").count()
            + usize::from(wire.starts_with(b".\r\n")),
        1
    );
}

#[tokio::test]
async fn all_refused_means_rset_not_data() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let out = d
        .deliver(
            "a.test",
            vec![tx(
                "s@app.test",
                &["unknown@a.test", "full@a.test"],
                b"x\r\n",
            )],
        )
        .await;
    assert_eq!(
        codes(&out[0]),
        ["550 5.1.1 User unknown", "452 4.2.2 Mailbox full"]
    );
    let rec = mx.record();
    assert!(!rec.commands.iter().any(|c| c == "DATA"));
    assert!(rec.commands.iter().any(|c| c == "RSET"));
    assert!(rec.messages.is_empty());
}

#[tokio::test]
async fn one_connection_carries_several_transactions_and_later_calls() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let txs = vec![
        tx("s@app.test", &["ok@a.test"], b"one\r\n"),
        tx("s@app.test", &["unknown@a.test"], b"two\r\n"),
        tx("s@app.test", &["ok@a.test"], b"three\r\n"),
    ];
    let out = d.deliver("a.test", txs).await;
    assert_eq!(
        out.iter().map(|o| o[0].reply.code).collect::<Vec<_>>(),
        [250, 550, 250]
    );
    let again = d
        .deliver(
            "a.test",
            vec![tx("s@app.test", &["ok@a.test"], b"four\r\n")],
        )
        .await;
    assert_eq!(again[0][0].reply.code, 250);
    let rec = mx.record();
    assert_eq!(rec.connections, 1, "the pooled connection was reused");
    assert_eq!(rec.messages.len(), 3);
    assert_eq!(
        rec.commands
            .iter()
            .filter(|c| c.starts_with("EHLO"))
            .count(),
        1
    );
}

#[tokio::test]
async fn drop_mid_data_is_temporary_and_connection_not_reused() {
    let mx = ScriptedMx::start(Script::default()).await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let txs = vec![
        tx(
            "s@app.test",
            &["dropdata@a.test", "unknown@a.test"],
            b"line one\r\nline two\r\n",
        ),
        tx("s@app.test", &["ok@a.test"], b"next\r\n"),
    ];
    let out = d.deliver("a.test", txs).await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.map(|e| e.to_string())),
        (451, Some("4.4.2".to_string()))
    );
    assert!(r.synthetic && r.text.contains("end of data"), "{}", r.text);
    assert_eq!(out[0][1].reply.diagnostic(), "550 5.1.1 User unknown");
    assert_eq!(out[1][0].reply.code, 250);
    assert_eq!(mx.record().connections, 2);
}

#[tokio::test]
async fn starttls_is_used_when_offered_and_ehlo_repeated() {
    let mx = ScriptedMx::start(Script {
        tls: Some(tls_acceptor()),
        starttls_inject: true,
        pipelining: true,
        ..Script::default()
    })
    .await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let out = d
        .deliver(
            "a.test",
            vec![tx(
                "s@app.test",
                &["ok@a.test", "unknown@a.test"],
                b"secret\r\n",
            )],
        )
        .await;
    assert_eq!(
        codes(&out[0]),
        ["250 2.0.0 Ok: queued as M1", "550 5.1.1 User unknown"]
    );
    let rec = mx.record();
    assert_eq!(rec.tls_sessions, 1);
    let cmds: Vec<&str> = rec
        .commands
        .iter()
        .map(|c| c.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        &cmds[..4],
        ["EHLO", "STARTTLS", "EHLO", "MAIL"],
        "injected bytes were not taken as the EHLO reply"
    );
}

#[tokio::test]
async fn tls_disabled_never_starttls() {
    let mx = ScriptedMx::start(Script {
        tls: Some(tls_acceptor()),
        ..Script::default()
    })
    .await;
    let mut cfg = routed_to(mx.addr);
    cfg.tls = TlsPolicy::Disabled;
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver("a.test", vec![tx("s@app.test", &["ok@a.test"], b"x\r\n")])
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    assert!(!mx.record().commands.iter().any(|c| c == "STARTTLS"));
}

#[tokio::test]
async fn tls_required_without_starttls_defers_with_4_7_5() {
    let mx = ScriptedMx::start(Script::default()).await;
    let mut cfg = routed_to(mx.addr);
    cfg.tls = TlsPolicy::Required;
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver("a.test", vec![tx("s@app.test", &["ok@a.test"], b"x\r\n")])
        .await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.unwrap().to_string(), r.synthetic),
        (451, "4.7.5".to_string(), true)
    );
    assert!(
        !mx.record().commands.iter().any(|c| c.starts_with("MAIL")),
        "nothing sent in clear"
    );
}

#[tokio::test]
async fn starttls_then_garbage_falls_back_to_plain_when_opportunistic_but_defers_when_required() {
    let script = Script {
        tls: Some(tls_acceptor()),
        starttls_garbage: true,
        ..Script::default()
    };
    let mx = ScriptedMx::start(script.clone()).await;
    let out = Deliverer::new(&routed_to(mx.addr), "relay.test")
        .unwrap()
        .deliver("a.test", vec![tx("s@app.test", &["ok@a.test"], b"x\r\n")])
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    assert_eq!(mx.record().connections, 2);

    let mx = ScriptedMx::start(script).await;
    let mut cfg = routed_to(mx.addr);
    cfg.tls = TlsPolicy::Required;
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver("a.test", vec![tx("s@app.test", &["ok@a.test"], b"x\r\n")])
        .await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.unwrap().to_string()),
        (451, "4.7.5".to_string())
    );
    assert!(!mx.record().commands.iter().any(|c| c.starts_with("MAIL")));
}

#[tokio::test]
async fn greeting_4xx_is_reported_per_recipient_with_the_host() {
    let mx = ScriptedMx::start(Script {
        mode: Mode::Greeting("421 4.3.2 too busy"),
        ..Script::default()
    })
    .await;
    let out = Deliverer::new(&routed_to(mx.addr), "relay.test")
        .unwrap()
        .deliver(
            "a.test",
            vec![tx("s@app.test", &["ok@a.test", "b@a.test"], b"x\r\n")],
        )
        .await;
    assert_eq!(codes(&out[0]), ["421 4.3.2 too busy", "421 4.3.2 too busy"]);
    assert_eq!(out[0][0].remote_host.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn relayhost_authenticates_only_after_starttls() {
    let mx = ScriptedMx::start(Script {
        tls: Some(tls_acceptor()),
        ..Script::default()
    })
    .await;
    let mut cfg = crate::support::config::delivery();
    cfg.relayhost = Some(mx.addr.to_string());
    cfg.relayhost_user = Some("relayuser".into());
    cfg.relayhost_password = Some(rebound::config::Secret("relaypass".into()));
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver(
            "far.test",
            vec![tx("s@app.test", &["ok@far.test"], b"x\r\n")],
        )
        .await;
    assert_eq!(out[0][0].reply.code, 250, "{:?}", out[0][0].reply);
    let cmds: Vec<String> = mx
        .record()
        .commands
        .iter()
        .map(|c| c.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(&cmds[..5], ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL"]);

    let plain = ScriptedMx::start(Script::default()).await;
    cfg.relayhost = Some(plain.addr.to_string());
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver(
            "far.test",
            vec![tx("s@app.test", &["ok@far.test"], b"x\r\n")],
        )
        .await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.unwrap().to_string()),
        (451, "4.7.5".to_string())
    );
    assert!(
        !plain
            .record()
            .commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "no credentials in clear"
    );
}

#[tokio::test]
async fn relayhost_auth_failure_defers() {
    let mx = ScriptedMx::start(Script {
        tls: Some(tls_acceptor()),
        ..Script::default()
    })
    .await;
    let mut cfg = crate::support::config::delivery();
    cfg.relayhost = Some(mx.addr.to_string());
    cfg.relayhost_user = Some("relayuser".into());
    cfg.relayhost_password = Some(rebound::config::Secret("wrong".into()));
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver(
            "far.test",
            vec![tx("s@app.test", &["ok@far.test"], b"x\r\n")],
        )
        .await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.unwrap().to_string(), r.synthetic),
        (451, "4.7.8".to_string(), true)
    );
    assert!(r.text.contains("535"), "{}", r.text);
}

#[tokio::test]
async fn completed_transactions_follow_each_other_without_rset() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let txs = vec![
        tx("s@app.test", &["ok@a.test"], b"one\r\n"),
        tx("s@app.test", &["ok@a.test"], b"two\r\n"),
        tx("s@app.test", &["ok@a.test"], b"three\r\n"),
    ];
    let out = d.deliver("a.test", txs).await;
    assert_eq!(
        out.iter().map(|o| o[0].reply.code).collect::<Vec<_>>(),
        [250, 250, 250]
    );
    let rec = mx.record();
    assert_eq!(rec.connections, 1);
    assert_eq!(rec.messages.len(), 3);
    let verbs: Vec<String> = rec
        .commands
        .iter()
        .map(|c| {
            c.split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
        })
        .collect();
    assert_eq!(verbs.iter().filter(|v| *v == "MAIL").count(), 3);
    assert!(
        !verbs.iter().any(|v| v == "RSET"),
        "no RSET between completed transactions: {verbs:?}"
    );
}

#[tokio::test]
async fn an_8bit_body_is_announced_with_body_8bitmime_and_a_7bit_one_is_not() {
    let mx = ScriptedMx::start(Script::default()).await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let bodies: [&[u8]; 2] = [
        "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes(),
        b"Subject: cafe\r\n\r\nplain\r\n",
    ];
    for body in bodies {
        let out = d
            .deliver("a.test", vec![tx("sender@app.test", &["ok@a.test"], body)])
            .await;
        assert_eq!(out[0][0].reply.code, 250);
    }
    let mails: Vec<String> = mx
        .record()
        .commands
        .into_iter()
        .filter(|c| c.starts_with("MAIL FROM:"))
        .collect();
    assert_eq!(mails.len(), 2);
    assert!(mails[0].ends_with(" BODY=8BITMIME"), "{}", mails[0]);
    assert!(!mails[1].contains("BODY="), "{}", mails[1]);
}

#[tokio::test]
async fn an_internationalised_address_needs_smtputf8_at_the_next_hop() {
    let body = b"Subject: hi\r\n\r\nhello\r\n";
    let plain = ScriptedMx::start(Script::default()).await;
    let d = Deliverer::new(&routed_to(plain.addr), "relay.test").unwrap();
    let out = d
        .deliver(
            "a.test",
            vec![tx("sender@app.test", &["j\u{f6}rg@a.test"], body)],
        )
        .await;
    let reply = &out[0][0].reply;
    assert_eq!(
        (reply.code, reply.enhanced.map(|e| e.to_string())),
        (553, Some("5.6.7".to_string()))
    );
    assert!(
        !plain
            .record()
            .commands
            .iter()
            .any(|c| c.starts_with("MAIL")),
        "nothing is sent to a server that cannot take it"
    );
    // an internationalised domain alone goes as its A-label, without SMTPUTF8
    let out = d_plain_idn(plain.addr, body).await;
    assert_eq!(out.code, 250, "{out:?}");
    let cmds = plain.record().commands;
    assert!(
        cmds.iter().any(|c| c == "RCPT TO:<ok@xn--bcher-kva.test>"),
        "{cmds:?}"
    );
    assert!(
        cmds.iter().any(
            |c| c.starts_with("MAIL FROM:<app@xn--mnchen-3ya.test>") && !c.contains("SMTPUTF8")
        ),
        "{cmds:?}"
    );

    let utf8 = ScriptedMx::start(Script {
        smtputf8: true,
        ..Script::default()
    })
    .await;
    let d = Deliverer::new(&routed_to(utf8.addr), "relay.test").unwrap();
    let out = d
        .deliver(
            "a.test",
            vec![tx("sender@app.test", &["j\u{f6}rg@a.test"], body)],
        )
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    let mail = utf8
        .record()
        .commands
        .into_iter()
        .find(|c| c.starts_with("MAIL FROM:"))
        .unwrap();
    assert!(mail.ends_with(" SMTPUTF8"), "{mail}");
}

/// One message from an internationalised sender domain to an internationalised recipient domain.
async fn d_plain_idn(addr: std::net::SocketAddr, body: &[u8]) -> rebound::model::Reply {
    let d = Deliverer::new(&routed_to(addr), "relay.test").unwrap();
    let out = d
        .deliver(
            "b\u{fc}cher.test",
            vec![tx("app@m\u{fc}nchen.test", &["ok@b\u{fc}cher.test"], body)],
        )
        .await;
    out[0][0].reply.clone()
}

/// A whole-daemon run for issue 15 item 8: a message with a 5,000-octet HTML line,
/// submitted over SMTP with Python's smtplib, reaches the MX with every wire line at
/// most 998 octets; Python's `email` package decodes the re-encoded part back to the
/// exact original line, and the other part arrives byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5000_octet_line_is_delivered_in_short_lines_and_decodes_byte_identical() {
    use std::time::Duration;
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = crate::support::daemon::start_routed(dir.path(), mx.addr, |_| {}).await;
    let html = long_html_line(5000);
    let plain = "The plain part stays as it is.\r\n";
    let msg = format!(
        "From: app@school.test\r\nTo: parent@example.net\r\nSubject: minified\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"=_b\"\r\n\r\n--=_b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{plain}--=_b\r\nContent-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{html}\r\n--=_b--\r\n"
    );
    let smtp = d.smtp_addrs[0];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        crate::support::smtp::python_send(smtp, "app@school.test", &["parent@example.net"], &msg)
    })
    .await
    .unwrap();
    assert!(ok, "smtplib failed: {out}");
    let h = crate::support::daemon::wait_for(
        &d,
        "parent@example.net",
        &[rebound::model::EventKind::Delivered],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(h, ["queued", "delivered"]);

    let wire = mx.record().messages.pop().expect("the MX got the message");
    let longest = wire
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
        .max()
        .unwrap();
    assert!(longest <= 998, "a wire line of {longest} octets");
    let message = unstuff(&wire);
    let text = String::from_utf8(message.clone()).unwrap();
    assert!(
        text.contains(&format!(
            "--=_b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{plain}--=_b\r\n"
        )),
        "plain part changed"
    );
    assert!(text.contains("Content-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"));
    // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), so neither part ends with one.
    let parts = python_decoded_parts(&message, dir.path());
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0], plain.trim_end().as_bytes());
    assert_eq!(html.len(), 5000);
    assert!(
        parts[1] == html.as_bytes(),
        "the decoded HTML differs from the original line"
    );

    // The same line as the whole body of a single-part message without any MIME header.
    let msg = format!(
        "From: app@school.test\r\nSubject: single\r\nContent-Type: text/html\r\n\r\n{html}\r\n"
    );
    let (ok, out) = tokio::task::spawn_blocking(move || {
        crate::support::smtp::python_send(smtp, "app@school.test", &["solo@example.net"], &msg)
    })
    .await
    .unwrap();
    assert!(ok, "smtplib failed: {out}");
    let h = crate::support::daemon::wait_for(
        &d,
        "solo@example.net",
        &[rebound::model::EventKind::Delivered],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(h, ["queued", "delivered"]);
    let wire = mx.record().messages.pop().unwrap();
    assert!(
        wire.split(|&b| b == b'\n').all(|l| l.len() <= 1000),
        "a wire line over 998 octets"
    );
    let message = unstuff(&wire);
    let text = String::from_utf8_lossy(&message);
    assert!(text.contains("Subject: single\r\nContent-Type: text/html\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"));
    let parts = python_decoded_parts(&message, dir.path());
    // Python gives a QP hard line break (a canonical CRLF) back as "\n".
    assert_eq!(parts.len(), 1);
    assert!(
        parts[0] == format!("{html}\n").as_bytes(),
        "the decoded body differs from the original line"
    );
    d.stop().await;
}

/// Minified HTML, `len` octets on one line, with `=` signs, runs of spaces and dots.
fn long_html_line(len: usize) -> String {
    let mut s = String::from("<html><body>");
    let mut i = 0;
    while s.len() < len - "</body></html>".len() {
        s.push_str(&format!(
            "<td class=\"c{i}\" style=\"a:b\">x = {i}  .y</td>"
        ));
        i += 1;
    }
    s.truncate(len - "</body></html>".len());
    s.push_str("</body></html>");
    s
}

/// Each leaf part decoded by Python's `email` package.
fn python_decoded_parts(message: &[u8], dir: &std::path::Path) -> Vec<Vec<u8>> {
    let path = dir.join("wire.eml");
    std::fs::write(&path, message).unwrap();
    let script = "import email,sys\nm=email.message_from_binary_file(open(sys.argv[1],'rb'))\nprint(' '.join(p.get_payload(decode=True).hex() for p in m.walk() if not p.is_multipart()))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}
