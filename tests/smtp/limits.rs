//! Session limits over real sockets: idle and whole-session timeouts, the
//! slow-trickle DATA deadline, the connection cap, graceful shutdown, and the
//! per-IP limits: connections, connection rate, AUTH failure delay and lockout.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::config::{HOST, listener_config};
use crate::support::listener::*;
use crate::support::smtp::*;
use rebound::config::Dur;

#[tokio::test]
async fn idle_client_gets_421() {
    let mut cfg = listener_config();
    cfg.smtp.idle_timeout = Dur(Duration::from_millis(300));
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    assert_eq!(
        c.reply().await,
        vec![format!("421 4.4.2 {HOST} Idle timeout, closing connection")]
    );
    assert!(c.closed().await);
}

#[tokio::test]
async fn busy_client_still_hits_the_session_limit() {
    let mut cfg = listener_config();
    cfg.smtp.session_timeout = Dur(Duration::from_millis(500));
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    loop {
        c.send("NOOP\r\n").await;
        let r = c.reply().await;
        if r[0] != "250 2.0.0 OK" {
            assert_eq!(
                r,
                vec![format!(
                    "421 4.4.2 {HOST} Session time limit exceeded, closing connection"
                )]
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c.closed().await);
}

#[tokio::test]
async fn slow_trickle_data_is_cut_off() {
    let mut cfg = listener_config();
    cfg.smtp.idle_timeout = Dur(Duration::from_millis(600));
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("app@example.com", &["user@example.org"]).await;
    assert!(c.cmd("DATA").await.starts_with("354 "));
    // Never idle for a whole idle_timeout, but far below the minimum data rate:
    // without the DATA deadline this session would last forever.
    let (rd, mut wr) = tokio::io::split(c.io);
    let trickle = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while wr.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut c = Client {
        io: tokio::io::BufReader::new(rd),
    };
    let reply = c.reply_only().await;
    trickle.abort();
    assert_eq!(
        reply,
        vec![format!(
            "421 4.4.2 {HOST} Message transfer too slow, closing connection"
        )]
    );
    assert_eq!(srv.intake.count(), 0);
}

#[tokio::test]
async fn connection_cap_refuses_extra_clients() {
    let mut cfg = listener_config();
    cfg.smtp.max_connections = 1;
    let srv = start(cfg).await;
    let mut first = Client::greeted(srv.addr).await;
    let mut second = Client::connect(srv.addr).await;
    assert_eq!(
        second.reply().await,
        vec![format!(
            "421 4.7.0 {HOST} Too many connections, try again later"
        )]
    );
    assert!(second.closed().await);
    assert_eq!(first.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(srv.stats.connections_refused.load(Ordering::Relaxed), 1);
    assert_eq!(srv.stats.sessions_active.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn shutdown_says_421_and_serve_returns() {
    let srv = start(listener_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("app@example.com", &["user@example.org"]).await;
    srv.shutdown.cancel();
    assert_eq!(
        c.reply().await,
        vec![format!(
            "421 4.3.0 {HOST} Service shutting down, closing connection"
        )]
    );
    assert!(c.closed().await);
    tokio::time::timeout(Duration::from_secs(20), srv.handle)
        .await
        .expect("serve returned")
        .expect("no panic");
    assert!(
        tokio::net::TcpStream::connect(srv.addr).await.is_err(),
        "listener closed"
    );
}

/// A client whose connection comes from `source` (a loopback alias such as 127.0.0.2).
async fn connect_from(source: &str, addr: std::net::SocketAddr) -> Client<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{source}:0").parse().unwrap())
        .expect("bind source");
    Client {
        io: tokio::io::BufReader::new(sock.connect(addr).await.expect("connect")),
    }
}

async fn greeted_from(source: &str, addr: std::net::SocketAddr) -> Client<tokio::net::TcpStream> {
    let mut c = connect_from(source, addr).await;
    let g = c.reply().await;
    assert!(g[0].starts_with("220 "), "greeting from {source}: {g:?}");
    c
}

/// Only 127.0.0.9 (standing in for the app) is in relay_networks.
fn per_ip_config() -> rebound::config::Config {
    let mut cfg = listener_config();
    cfg.smtp.relay_networks = vec!["127.0.0.9/32".parse().unwrap()];
    cfg
}

#[tokio::test]
async fn per_ip_connection_cap_leaves_a_second_source_served() {
    let mut cfg = per_ip_config();
    cfg.smtp.max_connections_per_ip = 2;
    let srv = start(cfg).await;
    let mut held = [
        greeted_from("127.0.0.2", srv.addr).await,
        greeted_from("127.0.0.2", srv.addr).await,
    ];
    let mut third = connect_from("127.0.0.2", srv.addr).await;
    assert_eq!(
        third.reply().await,
        vec![format!(
            "421 4.7.0 {HOST} Too many connections from your address (limit 2)"
        )]
    );
    assert!(third.closed().await);
    let mut other = greeted_from("127.0.0.3", srv.addr).await;
    assert_eq!(other.cmd("NOOP").await, "250 2.0.0 OK");
    let mut app: Vec<_> = Vec::new();
    for _ in 0..4 {
        app.push(greeted_from("127.0.0.9", srv.addr).await);
    }
    assert_eq!(
        app[3].cmd("NOOP").await,
        "250 2.0.0 OK",
        "relay_networks are exempt"
    );
    assert_eq!(held[0].cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(
        srv.stats.connections_refused_per_ip.load(Ordering::Relaxed),
        1
    );
    // A slot freed by QUIT is available again.
    held[0].cmd("QUIT").await;
    assert!(held[0].closed().await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = connect_from("127.0.0.2", srv.addr).await;
        let r = c.reply().await;
        if r[0].starts_with("220 ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slot never freed: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn per_ip_connection_rate_is_limited_per_window() {
    let mut cfg = per_ip_config();
    cfg.smtp.max_connection_rate_per_ip = 3;
    cfg.smtp.connection_rate_window = Dur(Duration::from_secs(2));
    let srv = start(cfg).await;
    for _ in 0..3 {
        let mut c = greeted_from("127.0.0.2", srv.addr).await;
        c.cmd("QUIT").await;
    }
    let mut fourth = connect_from("127.0.0.2", srv.addr).await;
    assert_eq!(
        fourth.reply().await,
        vec![format!(
            "421 4.7.0 {HOST} Too many connections per minute from your address"
        )]
    );
    assert!(fourth.closed().await);
    let mut other = greeted_from("127.0.0.3", srv.addr).await;
    assert_eq!(other.cmd("NOOP").await, "250 2.0.0 OK");
    for _ in 0..5 {
        greeted_from("127.0.0.9", srv.addr).await.cmd("QUIT").await;
    }
    // Once the window has passed the address is served again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut c = connect_from("127.0.0.2", srv.addr).await;
        if c.reply().await[0].starts_with("220 ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rate window never reset"
        );
    }
    assert!(srv.stats.connections_refused_per_ip.load(Ordering::Relaxed) >= 1);
}

/// EHLO, STARTTLS, EHLO again: a TLS client from `source` ready for AUTH.
async fn tls_from(
    source: &str,
    srv: &TestServer,
    cert: &rustls::pki_types::CertificateDer<'static>,
) -> Client<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut c = greeted_from(source, srv.addr).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(c.cmd("STARTTLS").await, "220 2.0.0 Ready to start TLS");
    let mut c = c.into_tls(cert).await;
    c.cmd("EHLO client.test").await;
    c
}

/// Sends `AUTH PLAIN` for app/`pass`; returns the reply and how long it took.
async fn auth_plain<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    c: &mut Client<S>,
    pass: &str,
) -> (String, Duration) {
    use base64::Engine;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0app\0{pass}"));
    let t = std::time::Instant::now();
    let r = c.cmd(&format!("AUTH PLAIN {creds}")).await;
    (r, t.elapsed())
}

#[tokio::test]
async fn auth_failures_are_delayed_and_lock_the_address_out() {
    let mut cfg = per_ip_config();
    cfg.smtp.relay_networks = vec![];
    cfg.smtp.auth_max_failures = 3;
    cfg.smtp.auth_failure_delay = Dur(Duration::from_millis(300));
    cfg.smtp.auth_lockout = Dur(Duration::from_secs(60));
    let (srv, cert) = start_tls(cfg).await;
    let mut c = tls_from("127.0.0.2", &srv, &cert).await;
    for _ in 0..2 {
        let (r, took) = auth_plain(&mut c, "wrong").await;
        assert_eq!(r, "535 5.7.8 Authentication credentials invalid");
        assert!(
            took >= Duration::from_millis(240),
            "failed AUTH answered after only {took:?}"
        );
    }
    drop(c);
    // The count spans sessions: the third failure, in a new session, locks the address out.
    let mut c = tls_from("127.0.0.2", &srv, &cert).await;
    assert_eq!(
        auth_plain(&mut c, "wrong").await.0,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        auth_plain(&mut c, "correct horse").await.0,
        "454 4.7.0 Too many failed authentication attempts, try again later"
    );
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        "454 4.7.0 Too many failed authentication attempts, try again later"
    );
    drop(c);
    let mut c = tls_from("127.0.0.2", &srv, &cert).await;
    assert_eq!(
        auth_plain(&mut c, "correct horse").await.0,
        "454 4.7.0 Too many failed authentication attempts, try again later"
    );
    // Another address is not affected.
    let mut other = tls_from("127.0.0.3", &srv, &cert).await;
    assert_eq!(
        auth_plain(&mut other, "correct horse").await.0,
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(srv.stats.auth_lockouts.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn auth_lockout_expires() {
    let mut cfg = per_ip_config();
    cfg.smtp.auth_max_failures = 1;
    cfg.smtp.auth_failure_delay = Dur(Duration::ZERO);
    cfg.smtp.auth_lockout = Dur(Duration::from_millis(500));
    let (srv, cert) = start_tls(cfg).await;
    let mut c = tls_from("127.0.0.2", &srv, &cert).await;
    assert_eq!(
        auth_plain(&mut c, "wrong").await.0,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        auth_plain(&mut c, "correct horse").await.0,
        "454 4.7.0 Too many failed authentication attempts, try again later"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        auth_plain(&mut c, "correct horse").await.0,
        "235 2.7.0 Authentication successful"
    );
}
