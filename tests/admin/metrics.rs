//! `/metrics` over HTTP: Prometheus text that moves when mail flows, and only
//! with the bearer token.

use std::time::Duration;

use crate::support::prelude::*;
use rebound::model::EventKind;

async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    api_request(addr, "GET", path, token, "").await
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} missing in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_mail_flows() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    assert_eq!(
        get(d.api_addr, "/metrics", None).await.0,
        401,
        "metrics need the token"
    );
    let (code, before) = get(d.api_addr, "/metrics", Some("test-token")).await;
    assert_eq!(code, 200);
    assert_eq!(
        value(&before, "rebound_recipients_total{status=\"delivered\"}"),
        0.0
    );
    let smtp = d.smtp_addrs[0];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "crm@school.test",
            &["a@example.net", "unknown@example.net"],
            "Subject: m\r\n\r\nm\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    wait_for(
        &d,
        "unknown@example.net",
        &[EventKind::Bounced],
        Duration::from_secs(10),
    )
    .await;
    wait_for(
        &d,
        "a@example.net",
        &[EventKind::Delivered],
        Duration::from_secs(10),
    )
    .await;
    let (_, after) = get(d.api_addr, "/metrics", Some("test-token")).await;
    assert_eq!(value(&after, "rebound_messages_received_total"), 2.0);
    assert_eq!(
        value(&after, "rebound_recipients_total{status=\"delivered\"}"),
        1.0
    );
    assert_eq!(
        value(&after, "rebound_recipients_total{status=\"bounced\"}"),
        1.0
    );
    assert_eq!(value(&after, "rebound_suppressed_addresses"), 1.0);
    assert!(value(&after, "rebound_delivery_attempt_duration_seconds_count") >= 1.0);
    assert!(value(&after, "rebound_smtp_sessions_total") >= 1.0);
    assert!(value(&after, "rebound_flushes_total") >= 1.0);
    assert!(after.contains("# TYPE rebound_delivery_attempt_duration_seconds histogram"));
    for name in [
        "rebound_dkim_body_hashes_total",
        "rebound_dkim_body_hash_reused_total",
        "rebound_dkim_rotation_checks_total",
    ] {
        assert!(
            after.contains(&format!("# TYPE {name} counter\n{name} ")),
            "{name} missing"
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_serves_the_api_to_its_owner_without_a_token() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    let sock = dir.path().join("api.sock");
    cfg.api.socket = Some(sock.clone());
    let d = start_daemon(cfg).await;
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut s = tokio::net::UnixStream::connect(&sock).await.unwrap();
    s.write_all(b"GET /v1/suppressions HTTP/1.1\r\nHost: anything\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"items\""), "{out}");
    // The TCP listener still wants the token.
    assert_eq!(get(d.api_addr, "/v1/suppressions", None).await.0, 401);
    d.stop().await;
    assert!(!sock.exists(), "socket removed on shutdown");
}
