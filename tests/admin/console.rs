//! The web console in a real browser against the real daemon: Debian's chromium,
//! driven by playwright-core (tests/console/walkthrough.mjs), signs in, finds a
//! bounced recipient in the undelivered report, resends it to a corrected
//! address and sees the row leave once delivered, removes a block and sees the
//! address mailed again, is refused an unblock of a complaint without the consent
//! confirmation, is refused a form without its CSRF token (403), checks that a
//! viewer cannot act, and opens a preview of a hostile HTML message whose script
//! and remote images must not run or load (a watcher port here counts any
//! request). Screenshots of each page go to target/console-screenshots/.
//!
//! Without chromium, node or `npm ci` in tests/console the test is skipped
//! (a failure under CI=true: see tests/support/skip.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::prelude::*;
use rebound::api::console::{ConsoleUser, Role, hash_password};
use rebound::config::{Dur, Secret};
use rebound::model::EventKind;

const CHROMIUM: &str = "/usr/bin/chromium";

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// What is missing to run the browser, if anything.
fn missing_tool() -> Option<(&'static str, &'static str)> {
    if !Path::new(CHROMIUM).exists() {
        return Some(("chromium", "apt-get install -y chromium chromium-driver"));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return Some(("node", "apt-get install -y nodejs npm"));
    }
    if !console_dir().join("node_modules/playwright-core").exists() {
        return Some(("playwright-core", "(cd tests/console && npm ci)"));
    }
    None
}

/// A port that counts every connection made to it (the hostile preview's script and
/// images would call it) and answers each with an empty 204.
async fn watcher() -> (u16, Arc<AtomicUsize>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let _ = s
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    (port, hits)
}

fn hostile_message(port: u16) -> String {
    format!(
        "Subject: Hostile preview\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><head><title>x</title><script>document.title='PWNED';fetch('http://127.0.0.1:{port}/script')</script></head>\
         <body onload=\"fetch('http://127.0.0.1:{port}/onload')\"><p id=\"hello\">Hello parents, term starts on 5 September.</p>\
         <img src=\"http://127.0.0.1:{port}/remote.png\" alt=\"remote\"><img src=x onerror=\"fetch('http://127.0.0.1:{port}/onerror')\">\
         <a href=\"javascript:fetch('http://127.0.0.1:{port}/js')\">click</a>\
         <style>body{{background:url(http://127.0.0.1:{port}/bg.png)}}</style>\
         <iframe src=\"http://127.0.0.1:{port}/frame\"></iframe></body></html>\r\n"
    )
}

async fn send(smtp: std::net::SocketAddr, to: &'static str, body: String) {
    let (ok, out) =
        tokio::task::spawn_blocking(move || python_send(smtp, "office@school.test", &[to], &body))
            .await
            .unwrap();
    assert!(ok, "{out}");
}

fn queue_id_of(d: &rebound::daemon::Running, rcpt: &str) -> String {
    let q = rebound::store::events::EventQuery {
        recipient: Some(rcpt.into()),
        statuses: vec!["queued".into()],
        limit: 1,
        ..Default::default()
    };
    d.daemon.store.query_events(&q).unwrap().events[0]
        .queue_id
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    if let Some((what, install)) = missing_tool() {
        crate::support::skip::skip("the console browser test", what, install);
        return;
    }
    let mx = ScriptedMx::start(Script::default()).await;
    let (watch_port, hits) = watcher().await;
    let dir = tempfile::tempdir().unwrap();
    let viewer_pass = "viewer pass phrase";
    let hash = tokio::task::spawn_blocking(move || hash_password(viewer_pass).unwrap())
        .await
        .unwrap();
    let d = start_routed(dir.path(), mx.addr, |c| {
        c.api.users = vec![ConsoleUser {
            name: "Vera".into(),
            password_hash: Secret(hash),
            role: Role::Viewer,
        }];
        c.delivery.retry = vec![Dur(Duration::from_secs(3600))];
        c.delivery.max_age = Dur(Duration::from_secs(72 * 3600));
    })
    .await;
    let smtp = d.smtp_addrs[0];
    send(
        smtp,
        "unknown@parents.test",
        "Subject: Term dates\r\n\r\nSchool starts on 5 September.\r\n".into(),
    )
    .await;
    send(
        smtp,
        "grey@parents.test",
        "Subject: Waiting\r\n\r\nThis one is greylisted.\r\n".into(),
    )
    .await;
    send(smtp, "hostile@parents.test", hostile_message(watch_port)).await;
    wait_for(
        &d,
        "unknown@parents.test",
        &[EventKind::Bounced],
        Duration::from_secs(20),
    )
    .await;
    wait_for(
        &d,
        "grey@parents.test",
        &[EventKind::Deferred],
        Duration::from_secs(20),
    )
    .await;
    wait_for(
        &d,
        "hostile@parents.test",
        &[EventKind::Delivered],
        Duration::from_secs(20),
    )
    .await;
    let (code, body) = api_request(
        d.api_addr,
        "PUT",
        "/v1/suppressions/complainer@parents.test",
        Some("test-token"),
        r#"{"reason":"complaint","diagnostic":"abuse report"}"#,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let env = [
        ("BASE", format!("http://{}", d.api_addr)),
        ("TOKEN", "test-token".to_string()),
        ("VIEWER_NAME", "Vera".into()),
        ("VIEWER_PASS", viewer_pass.into()),
        ("BOUNCED", "unknown@parents.test".into()),
        ("CORRECTED", "parent@parents.test".into()),
        ("COMPLAINED", "complainer@parents.test".into()),
        ("HOSTILE_ID", queue_id_of(&d, "hostile@parents.test")),
        ("GREY_ID", queue_id_of(&d, "grey@parents.test")),
        ("WATCH_PORT", watch_port.to_string()),
        ("SMTP_PORT", smtp.port().to_string()),
        ("SHOTS", shots.display().to_string()),
        ("CHROMIUM", CHROMIUM.to_string()),
    ];
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("walkthrough.mjs")
        .current_dir(console_dir())
        .kill_on_drop(true);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output())
        .await
        .expect("the walkthrough finishes within 4 minutes")
        .expect("node runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "the browser walkthrough failed:\n{text}"
    );
    assert!(text.contains("walkthrough: all checks passed"), "{text}");
    check_the_daemon_side(&d, &mx, &hits).await;
    d.stop().await;
}

/// What the walkthrough did, seen from the daemon: the MX got the corrected address and the
/// unblocked one again, the watcher port was never called, the audit log names who acted.
async fn check_the_daemon_side(d: &rebound::daemon::Running, mx: &ScriptedMx, hits: &AtomicUsize) {
    let rcpts: Vec<String> = mx
        .record()
        .commands
        .iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("RCPT TO:"))
        .cloned()
        .collect();
    assert!(
        rcpts.iter().any(|c| c.contains("<parent@parents.test>")),
        "the resend reached the MX: {rcpts:?}"
    );
    assert!(
        rcpts
            .iter()
            .filter(|c| c.contains("<unknown@parents.test>"))
            .count()
            >= 2,
        "the unblocked address was mailed again: {rcpts:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the hostile preview made a request to the watcher"
    );
    assert!(
        d.daemon
            .store
            .suppression("complainer@parents.test")
            .unwrap()
            .is_none(),
        "removed with consent in the end"
    );
    let audit = std::fs::read_to_string(d.daemon.cfg.server.data_dir.join("console-audit.log"))
        .expect("the audit log exists");
    let entries: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |user: &str, action: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["user"] == user
                && e["action"] == action
                && e["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with(outcome))
        })
    };
    assert!(has("api-token", "resend", "done"), "{audit}");
    assert!(has("api-token", "unblock", "done"), "{audit}");
    assert!(
        has("api-token", "unblock", "refused"),
        "the complaint unblock without consent is recorded as refused: {audit}"
    );
    assert!(has("api-token", "unblock_with_consent", "done"), "{audit}");
    assert!(has("api-token", "retry", "done"), "{audit}");
    assert!(has("Vera", "sign_in", "done"), "{audit}");
    let removed = crate::support::daemon::history(d, "complainer@parents.test");
    assert_eq!(
        removed
            .iter()
            .filter(|k| *k == "suppression_removed")
            .count(),
        1,
        "{removed:?}"
    );
}

fn cookie_of(resp: &Resp, name: &str) -> String {
    resp.headers_named("set-cookie")
        .find(|v| v.starts_with(name))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("{name} is set: {resp:?}"))
        .to_string()
}

/// Signs in to the console with the token through the sign-in form; the session cookie pair.
async fn console_session(addr: std::net::SocketAddr, token: &str) -> String {
    let page = raw(addr, "GET", "/ui/login", &[("Host", "localhost")], b"").await;
    let login = cookie_of(&page, "rebound_login");
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF field");
    let body = format!("csrf={csrf}&name=&password={token}&next=%2Fui%2F");
    let resp = raw(
        addr,
        "POST",
        "/ui/login",
        &[
            ("Host", "localhost"),
            ("Cookie", &login),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 303, "signed in: {resp:?}");
    cookie_of(&resp, "rebound_session")
}

async fn cli(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(args)
        .env_remove("REBOUND_CONFIG")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `rebound report undelivered` (table and --json), `GET /v1/reports/undelivered` and the
/// console's `/ui/undelivered` (page and CSV) list a bounced recipient; once it is resent to
/// a corrected address and the scripted MX accepts that, the row is gone from all of them,
/// each saying one row was resolved by a delivered resend. Needs no browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_resolved_by_a_delivered_resend_leaves_the_cli_api_and_console_reports() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |c| {
        c.delivery.max_age = Dur(Duration::from_secs(72 * 3600))
    })
    .await;
    send(
        d.smtp_addrs[0],
        "unknown@parents.test",
        "Subject: Term dates\r\n\r\nSchool starts on 5 September.\r\n".into(),
    )
    .await;
    send(
        d.smtp_addrs[0],
        "unknown@other.test",
        "Subject: Term dates\r\n\r\nNot resent.\r\n".into(),
    )
    .await;
    for r in ["unknown@parents.test", "unknown@other.test"] {
        let h = wait_for(&d, r, &[EventKind::Bounced], Duration::from_secs(20)).await;
        assert!(h.iter().any(|k| k == "bounced"), "{r}: {h:?}");
    }
    let id = queue_id_of(&d, "unknown@parents.test");
    let cfg = dir.path().join("cli.toml");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nurl = \"http://{}\"\ntoken = \"test-token\"\n",
            d.api_addr
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    let session = console_session(d.api_addr, "test-token").await;

    // What each of the three says: (rows naming the address, the resolved count).
    let look = |addr: &'static str| {
        let (cfg, session, api) = (cfg.clone(), session.clone(), d.api_addr);
        async move {
            let (code, body) = api_request(
                api,
                "GET",
                "/v1/reports/undelivered",
                Some("test-token"),
                "",
            )
            .await;
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let api_rows = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["recipient"] == addr)
                .count();
            let (code, out, err) =
                cli(&["report", "undelivered", "--json", "--config", &cfg]).await;
            assert_eq!(code, 0, "{err}");
            let lines: Vec<serde_json::Value> = out
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let cli_rows = lines.iter().filter(|l| l["recipient"] == addr).count();
            let cli_resolved = lines.last().unwrap()["resolved"].as_u64();
            let (code, table, err) = cli(&["report", "undelivered", "--config", &cfg]).await;
            assert_eq!(code, 0, "{err}");
            let table_rows = table.lines().filter(|l| l.starts_with(addr)).count();
            let page = raw(
                api,
                "GET",
                "/ui/undelivered",
                &[("Host", "localhost"), ("Cookie", &session)],
                b"",
            )
            .await;
            assert_eq!(page.status, 200, "{}", page.body);
            let page = page.body;
            let page_rows = page.matches(&format!(">{addr}</a></td>")).count();
            let csv = raw(
                api,
                "GET",
                "/ui/undelivered.csv",
                &[("Host", "localhost"), ("Cookie", &session)],
                b"",
            )
            .await;
            assert_eq!(csv.status, 200, "{}", csv.body);
            let csv_rows = csv
                .body
                .lines()
                .filter(|l| l.contains(&format!(",{addr},")))
                .count();
            let resolved = (
                v["resolved"].as_u64(),
                cli_resolved,
                table.contains("(1 resolved by a delivered resend"),
                page.contains("(1 resolved by a delivered resend not shown)"),
            );
            (
                [api_rows, cli_rows, table_rows, page_rows, csv_rows],
                resolved,
                v["total"].as_u64(),
            )
        }
    };
    let (before, resolved, total) = look("unknown@parents.test").await;
    assert_eq!(
        before, [1; 5],
        "API, CLI --json, CLI table, console page, CSV list the bounce before the resend"
    );
    assert_eq!(resolved, (Some(0), Some(0), false, false));
    assert_eq!(total, Some(2));

    let (code, body) = api_request(
        d.api_addr,
        "POST",
        &format!("/v1/messages/{id}/resend"),
        Some("test-token"),
        r#"{"to":"parent@parents.test"}"#,
    )
    .await;
    assert!(code == 200 || code == 201, "{code} {body}");
    let h = wait_for(
        &d,
        "parent@parents.test",
        &[EventKind::Delivered],
        Duration::from_secs(20),
    )
    .await;
    assert!(
        h.iter().any(|k| k == "delivered"),
        "the resend was delivered: {h:?}"
    );
    assert!(
        mx.record()
            .commands
            .iter()
            .any(|c| c.contains("<parent@parents.test>")),
        "the corrected address reached the MX"
    );

    let (after, resolved, total) = look("unknown@parents.test").await;
    assert_eq!(
        after, [0; 5],
        "API, CLI --json, CLI table, console page, CSV no longer list it"
    );
    assert_eq!(
        resolved,
        (Some(1), Some(1), true, true),
        "each says one row was resolved by a delivered resend"
    );
    assert_eq!(total, Some(1));
    let (other, _, _) = look("unknown@other.test").await;
    assert_eq!(
        other, [1; 5],
        "the bounce that was not resent is still listed everywhere"
    );
    assert_eq!(
        history(&d, "unknown@parents.test")
            .iter()
            .filter(|k| *k == "bounced")
            .count(),
        1,
        "the original keeps its bounced status in the log"
    );
    d.stop().await;
}

/// An event's value in a sort column as the log orders it (see `rebound::admin::log`).
fn sort_value(sort: &str, e: &serde_json::Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    match sort {
        "status" => s("status"),
        "recipient" => s("recipient").to_lowercase(),
        "message" => format!(
            "{:016x}",
            u64::from_str_radix(&s("queue_id"), 16).unwrap_or(0)
        ),
        "diagnostic" => s("diagnostic").chars().take(40).collect(),
        _ => s("id"),
    }
}

/// Pages through `GET /v1/events` 7 at a time in `sort`/`order`: every event.
async fn api_pages(api: std::net::SocketAddr, sort: &str, order: &str) -> Vec<serde_json::Value> {
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut path = format!("/v1/events?limit=7&sort={sort}&order={order}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (code, body) = api_request(api, "GET", &path, Some(TOKEN), "").await;
        assert_eq!(code, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 7, "{path}: a page holds at most its limit");
        out.extend(items.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Sends three messages of eight recipients each through SMTP (delivered, bounced,
/// deferred and refused as spam, across 24 domains) and waits for each outcome.
async fn a_mixed_log(d: &rebound::daemon::Running) {
    let mut all = Vec::new();
    for m in 0..3 {
        let rcpts: Vec<String> = (0..8)
            .map(|i| match i % 4 {
                0 => format!("unknown@u{m}{i}.test"),
                1 => format!("full@f{m}{i}.test"),
                2 => format!("spam@s{m}{i}.test"),
                _ => format!("p{i}@d{m}.test"),
            })
            .collect();
        let (smtp, to) = (d.smtp_addrs[0], rcpts.clone());
        let (ok, out) = tokio::task::spawn_blocking(move || {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            python_send(
                smtp,
                "office@school.test",
                &to,
                "Subject: Sorted\r\n\r\nHello.\r\n",
            )
        })
        .await
        .unwrap();
        assert!(ok, "{out}");
        all.extend(rcpts);
    }
    for r in &all {
        let kinds = [
            EventKind::Bounced,
            EventKind::Deferred,
            EventKind::Delivered,
        ];
        let h = wait_for(d, r, &kinds, Duration::from_secs(30)).await;
        assert!(h.iter().any(|k| k != "queued"), "{r}: {h:?}");
    }
}

/// The comms log through the real daemon's API, sorted by each column in both directions and
/// paged 7 at a time by cursor: every event exactly once, in the column's order (ties newest
/// first), the same set as the plain newest-first log; then the console page sorted by
/// recipient, Z to A, followed through its "More" links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pages_through_every_sort_order_without_a_gap_or_a_repeat() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |c| {
        c.delivery.retry = vec![Dur(Duration::from_secs(3600))];
    })
    .await;
    a_mixed_log(&d).await;
    let (code, body) =
        api_request(d.api_addr, "GET", "/v1/events?limit=1000", Some(TOKEN), "").await;
    assert_eq!(code, 200, "{body}");
    let whole: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut want_ids: Vec<String> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    want_ids.sort();
    assert!(
        want_ids.len() >= 48,
        "queued and an outcome per recipient: {}",
        want_ids.len()
    );
    for sort in ["time", "status", "recipient", "message", "diagnostic"] {
        for order in ["asc", "desc"] {
            let got = api_pages(d.api_addr, sort, order).await;
            let mut ids: Vec<String> = got
                .iter()
                .map(|e| e["id"].as_str().unwrap().into())
                .collect();
            let shown: Vec<(String, String)> = got
                .iter()
                .map(|e| (sort_value(sort, e), e["id"].as_str().unwrap().to_string()))
                .collect();
            let mut sorted = shown.clone();
            sorted.sort_by(|a, b| {
                let v = if order == "asc" {
                    a.0.cmp(&b.0)
                } else {
                    b.0.cmp(&a.0)
                };
                v.then(b.1.cmp(&a.1))
            });
            assert_eq!(shown, sorted, "{sort} {order}: in order across the pages");
            ids.sort();
            assert_eq!(
                ids, want_ids,
                "{sort} {order}: every event once, none missing"
            );
        }
    }
    let (code, body) =
        api_request(d.api_addr, "GET", "/v1/events?sort=colour", Some(TOKEN), "").await;
    assert_eq!(code, 400, "an unknown column: {body}");
    console_sorted_by_recipient(&d, want_ids.len()).await;
    d.stop().await;
}

/// `/ui/log?since=all&sort=recipient&order=desc` followed through "More": the rows' recipients
/// Z to A, each event once, `total` in all; the header shows the direction.
async fn console_sorted_by_recipient(d: &rebound::daemon::Running, total: usize) {
    let session = console_session(d.api_addr, TOKEN).await;
    let mut path = "/ui/log?since=all&sort=recipient&order=desc".to_string();
    let (mut rcpts, mut ids) = (Vec::new(), std::collections::HashSet::new());
    loop {
        let page = raw(
            d.api_addr,
            "GET",
            &path,
            &[("Host", "localhost"), ("Cookie", &session)],
            b"",
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("aria-sort=\"descending\""),
            "the header shows the order"
        );
        for row in page.body.split("<tr><td>").skip(1) {
            let r = row
                .split("?recipient=")
                .nth(1)
                .and_then(|s| s.split("\">").nth(1))
                .and_then(|s| s.split("</a>").next())
                .unwrap_or("");
            rcpts.push(r.to_lowercase());
            let id = row
                .split("<dt>Event id</dt><dd>")
                .nth(1)
                .and_then(|s| s.split('<').next());
            assert!(
                ids.insert(id.expect("an event id").to_string()),
                "no event twice"
            );
        }
        match page
            .body
            .split("rel=\"next\" href=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            Some(next) => path = next.replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(ids.len(), total, "every event on some page");
    let mut z_to_a = rcpts.clone();
    z_to_a.sort_by(|a, b| b.cmp(a));
    assert_eq!(rcpts, z_to_a, "recipients Z to A across the pages");
}
