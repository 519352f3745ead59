//! Open-relay tests against the whole daemon: from a client outside
//! `smtp.relay_networks` (set empty) and without AUTH, every classic relay-test
//! address form is refused and nothing reaches the remote MX, while mail to the
//! bounce domain is still accepted. For an allowed client the odd forms are
//! refused or taken literally, never routed to the hidden host. nmap's
//! `smtp-open-relay` script runs too (a missing nmap is SKIPPED, and fails the
//! test with `CI=true`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::prelude::*;
use crate::support::smtp::{Blocking as Smtp, stuffed};

/// Sender forms (the daemon calls itself relay.test).
const FROMS: [&str; 4] = [
    "relaytest@example.net",
    "",
    "relaytest@relay.test",
    "relaytest@[127.0.0.1]",
];

/// Recipient forms; the hidden target is always relaytest@example.net.
const RCPTS: [&str; 17] = [
    "<relaytest@example.net>",
    "<relaytest%example.net@relay.test>",
    "<relaytest%example.net@[127.0.0.1]>",
    "<\"relaytest@example.net\">",
    "<\"relaytest%example.net\">",
    "<relaytest@example.net@relay.test>",
    "<\"relaytest@example.net\"@relay.test>",
    "<relaytest@example.net@[127.0.0.1]>",
    "<@relay.test:relaytest@example.net>",
    "<@[127.0.0.1]:relaytest@example.net>",
    "<example.net!relaytest>",
    "<example.net!relaytest@relay.test>",
    "<example.net!relaytest@[127.0.0.1]>",
    "<relaytest@[203.0.113.9]>",
    "<relaytest@example.net.>",
    "<relaytest@example.net>@relay.test",
    "relaytest@example.net",
];

/// Every (from, rcpt) pair; returns the pairs whose RCPT got a 2xx.
fn probe(addr: SocketAddr) -> Vec<(String, String, String)> {
    let mut accepted = Vec::new();
    for from in FROMS {
        for rcpt in RCPTS {
            // A fresh session per pair: the daemon rightly hangs up after repeated refusals.
            let mut s = Smtp::greeted(addr).unwrap();
            let mail = s.cmd(&format!("MAIL FROM:<{from}>")).unwrap();
            if !mail.starts_with('2') {
                continue;
            }
            let r = s.cmd(&format!("RCPT TO:{rcpt}")).unwrap();
            if r.starts_with('2') {
                accepted.push((from.to_string(), rcpt.to_string(), r));
            }
        }
    }
    accepted
}

fn bounce_accepted(addr: SocketAddr) -> Vec<String> {
    let mut s = Smtp::greeted(addr).unwrap();
    let dsn = stuffed(
        "From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail\r\n\r\nThis is a returned message.\r\n",
    );
    s.transaction("", &["b+whatever@bounces.relay.test"], &dsn)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_relay_networks_every_form_is_refused() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| cfg.smtp.relay_networks = vec![]).await;
    let addr = d.smtp_addrs[0];
    let accepted = tokio::task::spawn_blocking(move || probe(addr))
        .await
        .unwrap();
    assert_eq!(
        accepted,
        Vec::<(String, String, String)>::new(),
        "relay forms accepted from a non-relay client"
    );
    let bounce = tokio::task::spawn_blocking(move || bounce_accepted(addr))
        .await
        .unwrap();
    assert!(
        bounce.len() == 4 && bounce[1].starts_with("250") && bounce[3].starts_with("250"),
        "mail to the bounce domain: {bounce:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mx.record().connections, 0, "something was relayed");
    nmap_open_relay(addr).await;
    d.stop().await;
}

/// nmap's smtp-open-relay script, when nmap is installed (skipped loudly otherwise; a failure
/// with `CI=true`).
async fn nmap_open_relay(addr: SocketAddr) {
    let port = addr.port().to_string();
    let args = [
        "-Pn",
        "-sV",
        "--version-intensity",
        "0",
        "-p",
        &port,
        "--script",
        "smtp-open-relay",
        "--script-args",
        "smtp-open-relay.domain=relay.test",
        "127.0.0.1",
    ];
    match tokio::process::Command::new("nmap")
        .args(args)
        .output()
        .await
    {
        Err(e) => crate::support::skip::skip(
            "nmap smtp-open-relay",
            &format!("a runnable nmap ({e})"),
            "apt-get install nmap (see .ci/run)",
        ),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(
                text.contains("smtp-open-relay"),
                "the script did not run: {text}"
            );
            assert!(!text.contains("Server is an open relay"), "{text}");
            let script: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
            eprintln!("nmap smtp-open-relay: {}", script.join(" / "));
        }
    }
}

/// An allowed client sends each odd form; returns (rcpt, reply) for the accepted ones.
fn allowed_odd_forms(addr: SocketAddr) -> Vec<(String, String)> {
    let mut s = Smtp::greeted(addr).unwrap();
    let mut accepted = Vec::new();
    for rcpt in &RCPTS[1..] {
        let _ = s.cmd("RSET").unwrap();
        assert!(
            s.cmd("MAIL FROM:<app@school.test>")
                .unwrap()
                .starts_with("250")
        );
        let r = s.cmd(&format!("RCPT TO:{rcpt}")).unwrap();
        if r.starts_with('2') {
            let d = s.cmd("DATA").unwrap();
            assert!(d.starts_with("354"), "{d}");
            s.send(&stuffed("Subject: odd form\r\n\r\nx\r\n")).unwrap();
            let end = s.reply().unwrap();
            assert!(end.starts_with("250"), "{end}");
            accepted.push((rcpt.to_string(), r));
        }
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_forms_are_never_routed_to_the_hidden_host() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    let addr = d.smtp_addrs[0];
    let accepted = tokio::task::spawn_blocking(move || allowed_odd_forms(addr))
        .await
        .unwrap();
    eprintln!("odd forms accepted literally from an allowed client: {accepted:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rec = mx.record();
    assert_eq!(
        rec.messages.len(),
        accepted.len(),
        "every accepted odd form is delivered as one message: {:?}",
        rec.commands
    );
    let hidden: Vec<&String> = rec
        .commands
        .iter()
        .filter(|c| {
            c.starts_with("RCPT") && c.to_ascii_lowercase().contains("<relaytest@example.net>")
        })
        .collect();
    assert!(
        hidden.is_empty(),
        "an odd form was rewritten to the hidden host: {hidden:?}"
    );
    d.stop().await;
}
