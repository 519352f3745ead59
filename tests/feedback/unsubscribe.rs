//! Whole-daemon one-click unsubscribe (RFC 8058): each delivered transaction
//! carries its own signed `List-Unsubscribe` link and mailto address; POSTing the
//! link (with Python's urllib) or mailing the address marks that recipient
//! `unsubscribed` and suppresses it; GET only shows a confirmation form; a
//! tampered or unknown token changes nothing.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::prelude::*;
use rebound::daemon::Running;
use rebound::model::{EventKind, SuppressionReason};
use rebound::store::events::EventQuery;

const FINAL: &[EventKind] = &[
    EventKind::Delivered,
    EventKind::Bounced,
    EventKind::Failed,
    EventKind::Expired,
    EventKind::Dropped,
];

/// One HTTP request with Python's urllib; returns (status, body).
fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let script = format!(
        "import urllib.request,urllib.error,sys\n\
         d={body:?}\n\
         req=urllib.request.Request({url:?},data=None if d=='' else d.encode(),method={method:?})\n\
         if d: req.add_header('Content-Type','application/x-www-form-urlencoded')\n\
         try:\n  r=urllib.request.urlopen(req,timeout=10); print(r.status); print(r.read().decode())\n\
         except urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode())\n",
        body = body.unwrap_or("")
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (
        code.trim().parse().unwrap_or_else(|_| {
            panic!("no status: {text} {}", String::from_utf8_lossy(&out.stderr))
        }),
        rest.to_string(),
    )
}

/// The (unfolded) header value `name` of the message the MX received for `rcpt`.
fn header_for(mx: &ScriptedMx, rcpt: &str, name: &str) -> Option<String> {
    let rec = mx.record();
    let mut n = 0;
    let mut current = false;
    for c in &rec.commands {
        if c.starts_with("MAIL FROM:") {
            current = false;
        } else if c.starts_with("RCPT TO:") && c.contains(&format!("<{rcpt}>")) {
            current = true;
        } else if c == "DATA" {
            if current {
                return rebound::model::headers::header_value(rec.messages.get(n)?, name);
            }
            n += 1;
        }
    }
    None
}

fn between<'a>(s: &'a str, start: &str, end: char) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {s}"))
        + start.len();
    s[i..].split(end).next().unwrap()
}

fn events_of(d: &Running, status: &str) -> usize {
    let q = EventQuery {
        statuses: vec![status.into()],
        limit: 100,
        ..Default::default()
    };
    d.daemon.store.query_events(&q).unwrap().events.len()
}

async fn daemon(mx: SocketAddr, dir: &std::path::Path) -> Running {
    start_routed(dir, mx, |cfg| {
        cfg.unsubscribe.enabled = true;
        cfg.unsubscribe.listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.unsubscribe.base_url = Some("https://unsub.relay.test/".into());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_post_and_mailto_unsubscribe_the_right_recipient() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(mx.addr, dir.path()).await;
    let (smtp, web) = (
        d.smtp_addrs[0],
        d.unsubscribe_addr.expect("unsubscribe listener"),
    );
    let rcpts = ["reader@example.net", "reader2@example.net"];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "news@school.test",
            &rcpts,
            "Subject: news\r\n\r\nHello.\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    for r in rcpts {
        assert_eq!(
            wait_for(&d, r, FINAL, Duration::from_secs(20)).await,
            ["queued", "delivered"]
        );
    }

    // Each transaction has its own headers: an HTTPS link first, then the mailto.
    let h1 = header_for(&mx, "reader@example.net", "list-unsubscribe")
        .expect("List-Unsubscribe arrives");
    let h2 = header_for(&mx, "reader2@example.net", "list-unsubscribe")
        .expect("List-Unsubscribe arrives");
    assert_eq!(
        header_for(&mx, "reader@example.net", "list-unsubscribe-post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        h1.starts_with("<https://unsub.relay.test/u/") && h1.contains("<mailto:unsubscribe+"),
        "{h1}"
    );
    assert_ne!(h1, h2, "per-recipient tokens");
    let token = between(&h1, "https://unsub.relay.test/u/", '>').to_string();
    let url = format!("http://{web}/u/{token}");

    // GET shows a form that POSTs and changes nothing (link scanners).
    let (code, page) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || http("GET", &url, None)
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("method=\"post\"")
            && page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{page}"
    );
    assert!(
        !page.contains("reader@example.net"),
        "the page masks the address: {page}"
    );

    // A tampered token is refused and changes nothing.
    let mut bad = token.clone().into_bytes();
    bad[5] = if bad[5] == b'a' { b'b' } else { b'a' };
    let bad_url = format!("http://{web}/u/{}", String::from_utf8(bad).unwrap());
    let (code, _) = tokio::task::spawn_blocking(move || {
        http("POST", &bad_url, Some("List-Unsubscribe=One-Click"))
    })
    .await
    .unwrap();
    assert_eq!(code, 400);
    assert_eq!(history(&d, "reader@example.net"), ["queued", "delivered"]);
    assert!(
        d.daemon
            .store
            .suppression("reader@example.net")
            .unwrap()
            .is_none()
    );

    // The one-click POST unsubscribes reader (only), idempotently.
    for expected in [200, 200] {
        let url = url.clone();
        let (code, body) = tokio::task::spawn_blocking(move || {
            http("POST", &url, Some("List-Unsubscribe=One-Click"))
        })
        .await
        .unwrap();
        assert_eq!(code, expected, "{body}");
    }
    assert_eq!(
        history(&d, "reader@example.net"),
        ["queued", "delivered", "unsubscribed", "suppression_added"]
    );
    assert_eq!(
        d.daemon
            .store
            .suppression("reader@example.net")
            .unwrap()
            .map(|s| s.reason),
        Some(SuppressionReason::Unsubscribe)
    );
    assert_eq!(history(&d, "reader2@example.net"), ["queued", "delivered"]);

    // Mail to the mailto address of reader2 does the same for reader2.
    let mailto = between(&h2, "<mailto:", '>').to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "reader2@example.net",
            &[&mailto],
            "Subject: unsubscribe\r\n\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let h = wait_for(
        &d,
        "reader2@example.net",
        &[EventKind::Unsubscribed],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        h,
        ["queued", "delivered", "unsubscribed", "suppression_added"]
    );
    assert_eq!(
        d.daemon
            .store
            .suppression("reader2@example.net")
            .unwrap()
            .map(|s| s.reason),
        Some(SuppressionReason::Unsubscribe)
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_change_nothing() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(mx.addr, dir.path()).await;
    let (smtp, web) = (
        d.smtp_addrs[0],
        d.unsubscribe_addr.expect("unsubscribe listener"),
    );
    for (method, path, body, want) in [
        (
            "POST",
            "/u/abcdefgh",
            Some("List-Unsubscribe=One-Click"),
            400,
        ),
        ("GET", "/u/abcdefgh", None, 400),
        ("POST", "/u/zz!!", Some("List-Unsubscribe=One-Click"), 400),
        ("GET", "/elsewhere", None, 404),
    ] {
        let url = format!("http://{web}{path}");
        let (code, page) = tokio::task::spawn_blocking(move || http(method, &url, body))
            .await
            .unwrap();
        assert_eq!(code, want, "{method} {path}: {page}");
    }
    // A forged mailto token: accepted at SMTP (any client may mail the bounce domain),
    // kept in the security log, nothing else (and nothing in the communications log).
    let forged = ["unsubscribe+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@bounces.relay.test"];
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "someone@example.org",
            &forged,
            "Subject: x\r\n\r\nx\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(security_log(&d).len(), 1);
    assert_eq!(events_of(&d, "unverified"), 0);
    assert_eq!(events_of(&d, "unsubscribed"), 0);
    assert_eq!(d.daemon.store.suppression_count(), 0);
    d.stop().await;
}
