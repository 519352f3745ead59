//! The admin API's connection bounds over real TCP on 127.0.0.1: the connection
//! cap (excess connections get `/healthz` only, then nothing), the header read
//! timeout (also for a connection that sends nothing), and the body read timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::config::TOKEN;
use crate::support::http::raw;
use crate::support::rig::{Rig, rig_tuned};
use rebound::config::{Config, Dur};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Guard against hangs only.
const GUARD: Duration = Duration::from_secs(20);

/// The API rig with `tune` applied to its config.
async fn start(tune: impl FnOnce(&mut Config)) -> Rig {
    rig_tuned(Some(TOKEN), tune).await
}

async fn get(addr: SocketAddr, path: &str) -> u16 {
    let host = addr.to_string();
    let auth = format!("Bearer {TOKEN}");
    tokio::time::timeout(
        GUARD,
        raw(
            addr,
            "GET",
            path,
            &[("Host", &host), ("Authorization", &auth)],
            b"",
        ),
    )
    .await
    .expect("response in time")
    .status
}

/// Reads until the server closes; the bytes read and how long it took.
async fn until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(GUARD, s.read_to_end(&mut buf))
        .await
        .expect("server closed the connection");
    (buf, t.elapsed())
}

#[tokio::test]
async fn connections_over_the_cap_get_healthz_only() {
    let api = start(|c| {
        c.api.max_connections = 2;
        c.api.header_timeout = Dur(Duration::from_secs(30));
    })
    .await;
    assert_eq!(get(api.addr, "/v1/queue").await, 200);
    let mut idle = vec![
        TcpStream::connect(api.addr).await.unwrap(),
        TcpStream::connect(api.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::time::timeout(
        GUARD,
        raw(
            api.addr,
            "GET",
            "/v1/queue",
            &[
                ("Host", &api.addr.to_string()),
                ("Authorization", &format!("Bearer {TOKEN}")),
            ],
            b"",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (503, "too_many_connections")
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        get(api.addr, "/healthz").await,
        200,
        "/healthz still answers at the cap"
    );
    // Freeing a slot lets a full connection in again.
    idle.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(api.addr, "/v1/queue").await != 200 {
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(idle);
}

#[tokio::test]
async fn a_connection_without_complete_headers_is_closed() {
    let api = start(|c| c.api.header_timeout = Dur(Duration::from_millis(300))).await;
    let mut partial = TcpStream::connect(api.addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(api.addr).await.unwrap();
    let (_, took) = until_closed(&mut partial).await;
    assert!(
        took >= Duration::from_millis(200),
        "closed after only {took:?}"
    );
    let (bytes, _) = until_closed(&mut silent).await;
    assert!(
        bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    // A keep-alive connection left idle after its request is closed too.
    let mut kept = TcpStream::connect(api.addr).await.unwrap();
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", api.addr).as_bytes())
        .await
        .unwrap();
    let (bytes, _) = until_closed(&mut kept).await;
    assert!(
        bytes.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(get(api.addr, "/healthz").await, 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let api = start(|c| c.api.body_timeout = Dur(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(api.addr).await.unwrap();
    let head = format!(
        "POST /v1/suppressions/import HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nuser@example.org\n",
        api.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (bytes, took) = until_closed(&mut s).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(
        took >= Duration::from_millis(200),
        "answered after only {took:?}"
    );
    assert_eq!(get(api.addr, "/healthz").await, 200);
}
