//! STARTTLS and AUTH over real sockets with an rcgen self-signed certificate:
//! advertisement rules, session reset after TLS, the STARTTLS injection
//! (CVE-2011-0411) defence, AUTH PLAIN/LOGIN and their failure modes.

use crate::support::config::listener_config;
use crate::support::listener::*;
use crate::support::smtp::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn no_relay() -> rebound::config::Config {
    let mut cfg = listener_config();
    cfg.smtp.relay_networks = vec![];
    cfg
}

#[tokio::test]
async fn starttls_then_auth_plain_allows_relay() {
    let (srv, cert) = start_tls(no_relay()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.send("EHLO client.test\r\n").await;
    let ehlo = c.reply().await;
    assert!(
        ehlo.contains(&"250-STARTTLS".to_string()) || ehlo.last().unwrap() == "250 STARTTLS",
        "{ehlo:?}"
    );
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    assert_eq!(
        c.cmd("AUTH PLAIN AGFwcABjb3JyZWN0IGhvcnNl").await,
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(
        c.cmd("STARTTLS extra").await,
        "501 5.5.4 Syntax error: STARTTLS takes no arguments"
    );
    assert_eq!(c.cmd("STARTTLS").await, "220 2.0.0 Ready to start TLS");
    let mut c = c.into_tls(&cert).await;
    assert_eq!(
        c.cmd("MAIL FROM:<app@example.com>").await,
        "503 5.5.1 Send EHLO/HELO first"
    );
    c.send("EHLO client.test\r\n").await;
    let ehlo = c.reply().await;
    assert_eq!(ehlo.last().unwrap(), "250 AUTH PLAIN LOGIN", "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert_eq!(c.cmd("STARTTLS").await, "503 5.5.1 Already running TLS");
    c.cmd("MAIL FROM:<app@example.com>").await;
    assert_eq!(
        c.cmd("RCPT TO:<user@example.org>").await,
        "550 5.7.1 Relaying denied"
    );
    c.cmd("RSET").await;
    let creds = STANDARD.encode(b"\0app\0correct horse");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {creds}")).await,
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {creds}")).await,
        "503 5.5.1 Already authenticated"
    );
    c.cmd("MAIL FROM:<app@example.com>").await;
    assert_eq!(
        c.cmd("RCPT TO:<user@example.org>").await,
        "250 2.1.5 Recipient <user@example.org> OK"
    );
    assert!(c.cmd("DATA").await.starts_with("354 "));
    c.send("Subject: tls\r\n\r\nsecret\r\n.\r\n").await;
    assert!(c.reply().await[0].starts_with("250 2.0.0 Ok: queued as "));
    let sub = srv.intake.take().remove(0);
    assert!(sub.session.tls && sub.session.relay_allowed);
    assert_eq!(sub.session.auth_user.as_deref(), Some("app"));
    assert!(String::from_utf8_lossy(&sub.body).contains(" with ESMTPSA id "));
}

#[tokio::test]
async fn auth_login_and_failure_modes() {
    let (srv, cert) = start_tls(no_relay()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    c.cmd("STARTTLS").await;
    let mut c = c.into_tls(&cert).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(
        c.cmd("AUTH CRAM-MD5").await,
        "504 5.5.4 Unrecognized authentication mechanism"
    );
    assert_eq!(c.cmd("AUTH PLAIN").await, "334 ");
    assert_eq!(c.cmd("*").await, "501 5.7.0 Authentication cancelled");
    assert_eq!(
        c.cmd("AUTH PLAIN !!!notbase64").await,
        "501 5.5.2 Cannot decode base64 response"
    );
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd(&STANDARD.encode("app")).await, "334 UGFzc3dvcmQ6");
    assert_eq!(
        c.cmd(&STANDARD.encode("wrong")).await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd(&STANDARD.encode("app")).await, "334 UGFzc3dvcmQ6");
    assert_eq!(
        c.cmd(&STANDARD.encode("correct horse")).await,
        "235 2.7.0 Authentication successful"
    );
    drop(c);

    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    c.cmd("STARTTLS").await;
    let mut c = c.into_tls(&cert).await;
    c.cmd("EHLO client.test").await;
    let bad = STANDARD.encode(b"\0app\0nope");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {bad}")).await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {bad}")).await,
        "535 5.7.8 Authentication credentials invalid"
    );
    c.send(format!("AUTH PLAIN {bad}\r\n")).await;
    assert_eq!(
        c.reply().await,
        vec!["535 5.7.8 Authentication credentials invalid"]
    );
    assert_eq!(
        c.reply().await,
        vec!["421 4.7.0 Too many authentication failures, closing connection"]
    );
    assert!(c.try_reply().await.is_none());
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_discarded() {
    let (srv, cert) = start_tls(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.cmd("EHLO client.test").await;
    c.send("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@evil.test>\r\n")
        .await;
    assert_eq!(c.reply().await, vec!["220 2.0.0 Ready to start TLS"]);
    let mut c = c.into_tls(&cert).await;
    // The first reply inside TLS answers our NOOP, not the injected RSET/MAIL.
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(
        c.cmd("RCPT TO:<user@example.org>").await,
        "503 5.5.1 Need MAIL command before RCPT"
    );
    drop(srv);
}

#[tokio::test]
async fn starttls_without_certificate_is_not_offered() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.send("EHLO client.test\r\n").await;
    assert!(!c.reply().await.iter().any(|l| l.contains("STARTTLS")));
    assert_eq!(c.cmd("STARTTLS").await, "502 5.5.1 STARTTLS not available");
}

#[tokio::test]
async fn missing_certificate_file_is_named_in_the_error() {
    let mut cfg = listener_config();
    cfg.smtp.tls_cert = Some("/nonexistent/rebound-cert.pem".into());
    cfg.smtp.tls_key = Some("/nonexistent/rebound-key.pem".into());
    let intake = std::sync::Arc::new(MemIntake::default());
    let err = match rebound::inbound::SmtpServer::new(std::sync::Arc::new(cfg), intake) {
        Ok(_) => panic!("a missing certificate must be an error"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("/nonexistent/rebound-cert.pem"), "{err}");
}
