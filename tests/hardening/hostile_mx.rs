//! Hostile remote MXs against the whole daemon: endless multi-line replies,
//! oversized replies, invalid codes, binary garbage, a 421 greeting, silence,
//! STARTTLS answered with garbage (TLS required), and connection resets at
//! every step. Each recipient must end its first attempt as a clean `deferred`
//! event with a diagnostic in the daemon's communications log, and the daemon
//! keeps serving.

use std::time::Duration;

use crate::support::mx::{Mode, Script, ScriptedMx, tls_acceptor};
use crate::support::prelude::*;
use crate::support::smtp::{Blocking as Smtp, stuffed};
use rebound::config::{Dur, TlsPolicy};
use rebound::model::{Event, EventKind};
use rebound::store::events::EventQuery;

fn events(d: &rebound::daemon::Running, rcpt: &str) -> Vec<Event> {
    let q = EventQuery {
        recipient: Some(rcpt.into()),
        limit: 100,
        ascending: true,
        ..Default::default()
    };
    d.daemon.store.query_events(&q).unwrap().events
}

/// (recipient, script of the MX its domain is routed to, words the diagnostic must contain)
fn cases() -> Vec<(&'static str, Script, &'static str)> {
    let reset = |step| Script {
        mode: Mode::ResetAt(step),
        ..Script::default()
    };
    vec![
        ("endless@lines.test", Script::default(), "longer than"),
        ("oversized@big.test", Script::default(), "longer than"),
        ("badcode@code.test", Script::default(), "malformed"),
        (
            "garbage@junk.test",
            Script {
                pipelining: true,
                ..Script::default()
            },
            "malformed",
        ),
        (
            "ok@greet421.test",
            Script {
                mode: Mode::Greeting("421 4.3.2 too busy"),
                ..Script::default()
            },
            "too busy",
        ),
        (
            "ok@silent.test",
            Script {
                mode: Mode::Silent,
                ..Script::default()
            },
            "greeting",
        ),
        ("ok@reset-ehlo.test", reset("EHLO"), "EHLO"),
        ("ok@reset-mail.test", reset("MAIL"), "MAIL FROM"),
        ("ok@reset-rcpt.test", reset("RCPT"), "RCPT TO"),
        ("ok@reset-data.test", reset("DATA"), "DATA"),
        ("ok@reset-dot.test", reset("DOT"), "end of data"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_become_clean_deferrals() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.delivery.retry = vec![Dur(Duration::from_secs(600))];
    let mut mxs = Vec::new();
    for (rcpt, script, _) in cases() {
        let mx = ScriptedMx::start(script).await;
        let domain = rcpt.split('@').nth(1).unwrap();
        cfg.delivery
            .routes
            .insert(domain.to_string(), mx.addr.to_string());
        mxs.push(mx);
    }
    let d = start_daemon(cfg).await;
    let addr = d.smtp_addrs[0];
    let rcpts: Vec<&'static str> = cases().iter().map(|c| c.0).collect();
    let replies = tokio::task::spawn_blocking(move || {
        let mut s = Smtp::greeted(addr).unwrap();
        rcpts
            .iter()
            .map(|r| {
                s.transaction(
                    "app@school.test",
                    &[r],
                    &stuffed("Subject: hostile\r\n\r\nx\r\n"),
                )
                .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(
        replies
            .iter()
            .all(|r| r.len() == 4 && r[3].starts_with("250")),
        "{replies:?}"
    );
    for (rcpt, _, words) in cases() {
        wait_for(
            &d,
            rcpt,
            &[
                EventKind::Deferred,
                EventKind::Delivered,
                EventKind::Failed,
                EventKind::Bounced,
            ],
            Duration::from_secs(20),
        )
        .await;
        let ev = events(&d, rcpt);
        let kinds: Vec<&str> = ev.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(kinds, ["queued", "deferred"], "{rcpt}: {ev:?}");
        let diag = ev[1].diagnostic.as_deref().unwrap_or("");
        assert!(
            !diag.is_empty() && diag.contains(words),
            "{rcpt}: diagnostic {diag:?} should mention {words:?}"
        );
        assert!(
            diag.len() <= 1000 && !diag.contains(['\r', '\n', '\0']),
            "{rcpt}: unsafe diagnostic {diag:?}"
        );
        assert!(
            ev[1].reply_code.is_some_and(|c| (400..500).contains(&c)),
            "{rcpt}: {:?}",
            ev[1]
        );
    }
    let after = tokio::task::spawn_blocking(move || {
        Smtp::greeted(addr)
            .map(|mut s| s.cmd("NOOP"))
            .ok()
            .and_then(Result::ok)
    })
    .await
    .unwrap();
    assert!(
        after.is_some_and(|r| r.starts_with("250")),
        "the daemon stopped serving"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_garbage_with_tls_required_defers_without_plaintext() {
    let mx = ScriptedMx::start(Script {
        tls: Some(tls_acceptor()),
        starttls_garbage: true,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| {
        cfg.delivery.retry = vec![Dur(Duration::from_secs(600))];
        cfg.delivery.tls = TlsPolicy::Required;
    })
    .await;
    let addr = d.smtp_addrs[0];
    let r = tokio::task::spawn_blocking(move || {
        Smtp::greeted(addr)
            .unwrap()
            .transaction(
                "app@school.test",
                &["ok@tls.test"],
                &stuffed("Subject: t\r\n\r\nsecret\r\n"),
            )
            .unwrap()
    })
    .await
    .unwrap();
    assert!(r[3].starts_with("250"), "{r:?}");
    wait_for(
        &d,
        "ok@tls.test",
        &[EventKind::Deferred, EventKind::Delivered],
        Duration::from_secs(20),
    )
    .await;
    let ev = events(&d, "ok@tls.test");
    assert_eq!(
        ev.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
        ["queued", "deferred"],
        "{ev:?}"
    );
    assert!(
        ev[1].diagnostic.as_deref().is_some_and(|t| !t.is_empty()),
        "{ev:?}"
    );
    assert!(
        !mx.record().commands.iter().any(|c| c.starts_with("MAIL")),
        "mail went out in clear text"
    );
    d.stop().await;
}
