//! Session limits over real sockets: idle and whole-session timeouts, the
//! slow-trickle DATA deadline, the connection cap, and graceful shutdown.

mod support_smtp;

use std::sync::atomic::Ordering;
use std::time::Duration;

use rebound::config::Dur;
use support_smtp::*;

#[tokio::test]
async fn idle_client_gets_421() {
    let mut cfg = base_config();
    cfg.smtp.idle_timeout = Dur(Duration::from_millis(300));
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    assert_eq!(c.reply().await, vec![format!("421 4.4.2 {HOST} Idle timeout, closing connection")]);
    assert!(c.closed().await);
}

#[tokio::test]
async fn busy_client_still_hits_the_session_limit() {
    let mut cfg = base_config();
    cfg.smtp.session_timeout = Dur(Duration::from_millis(500));
    let srv = start(cfg).await;
    let mut c = Client::greeted(srv.addr).await;
    loop {
        c.send("NOOP\r\n").await;
        let r = c.reply().await;
        if r[0] != "250 2.0.0 OK" {
            assert_eq!(r, vec![format!("421 4.4.2 {HOST} Session time limit exceeded, closing connection")]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c.closed().await);
}

#[tokio::test]
async fn slow_trickle_data_is_cut_off() {
    let mut cfg = base_config();
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
    let mut c = Client { io: tokio::io::BufReader::new(rd) };
    let reply = c.reply_only().await;
    trickle.abort();
    assert_eq!(reply, vec![format!("421 4.4.2 {HOST} Message transfer too slow, closing connection")]);
    assert_eq!(srv.intake.count(), 0);
}

#[tokio::test]
async fn connection_cap_refuses_extra_clients() {
    let mut cfg = base_config();
    cfg.smtp.max_connections = 1;
    let srv = start(cfg).await;
    let mut first = Client::greeted(srv.addr).await;
    let mut second = Client::connect(srv.addr).await;
    assert_eq!(second.reply().await, vec![format!("421 4.7.0 {HOST} Too many connections, try again later")]);
    assert!(second.closed().await);
    assert_eq!(first.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(srv.stats.connections_refused.load(Ordering::Relaxed), 1);
    assert_eq!(srv.stats.sessions_active.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn shutdown_says_421_and_serve_returns() {
    let srv = start(base_config()).await;
    let mut c = Client::greeted(srv.addr).await;
    c.envelope("app@example.com", &["user@example.org"]).await;
    srv.shutdown.cancel();
    assert_eq!(c.reply().await, vec![format!("421 4.3.0 {HOST} Service shutting down, closing connection")]);
    assert!(c.closed().await);
    tokio::time::timeout(Duration::from_secs(20), srv.handle).await.expect("serve returned").expect("no panic");
    assert!(tokio::net::TcpStream::connect(srv.addr).await.is_err(), "listener closed");
}
