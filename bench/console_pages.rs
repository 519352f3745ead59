//! Web console page times at a large store (issue #20: every page under 200 ms at
//! 1 M events). Fills a fresh store with N events (default 1,000,000) over the last
//! 29 days: N/2 recipients each queued then delivered, 2 % bounced instead; 5,000
//! messages waiting (deferred); 20,000 suppressions. Then serves the real admin
//! router on loopback, signs in with the token like a browser (sign-in form,
//! cookie, CSRF field) and times each page over HTTP, 10 requests each.
//!
//! `cargo run --release --example console_pages -- [N] [DIR]`: with DIR the store is kept
//! there and filled only when it is empty, so the pages can be timed again without the fill.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebound::config::{Config, Secret};
use rebound::model::time::{SystemClock, Timestamp};
use rebound::model::{Event, EventKind, Status, Suppression, SuppressionReason};
use rebound::store::WriteSet;
use rebound::store::queue::{MessageRecord, RcptRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAITING: u64 = 5_000;
const SUPPRESSED: usize = 20_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let kept = std::env::args().nth(2).map(std::path::PathBuf::from);
    let mut cfg = Config::default();
    cfg.server.data_dir = kept.clone().unwrap_or_else(|| dir.path().join("data"));
    cfg.api.token = Some(Secret("bench-token".into()));
    cfg.api.listen = "127.0.0.1:0".parse().unwrap();
    std::fs::create_dir_all(&cfg.server.data_dir).unwrap();
    let daemon =
        rebound::daemon::Daemon::open(Arc::new(cfg), Arc::new(SystemClock)).expect("relay");
    let fill = Instant::now();
    if kept.is_some() && daemon.store.event_count() > 0 {
        println!(
            "reusing the store in {} ({} events)",
            daemon.cfg.server.data_dir.display(),
            daemon.store.event_count()
        );
    } else {
        tokio::task::block_in_place(|| fill_store(&daemon, n));
    }
    println!(
        "filled {n} events, {WAITING} waiting messages, {SUPPRESSED} suppressions in {:.0} s; {} MB on disk",
        fill.elapsed().as_secs_f64(),
        daemon.store.size_on_disk() / 1_000_000
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = rebound::api::router(daemon.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cookie = sign_in(addr).await;
    let bounced = "user50@example1.net";
    let pages = [
        ("dashboard", "/ui/".to_string()),
        ("undelivered (30 days)", "/ui/undelivered".into()),
        (
            "undelivered, search",
            format!("/ui/undelivered?q={bounced}"),
        ),
        ("undelivered.csv", "/ui/undelivered.csv".into()),
        ("comms log (all, 30 days)", "/ui/log".into()),
        (
            "comms log, one recipient",
            format!("/ui/log?recipient={bounced}"),
        ),
        ("comms log, bounced", "/ui/log?status=bounced".into()),
        (
            "comms log, oldest first",
            "/ui/log?sort=oldest&since=all".into(),
        ),
        ("comms log, by status", "/ui/log?sort=status".into()),
        (
            "comms log, status Z-A, all",
            "/ui/log?sort=status&order=desc&since=all".into(),
        ),
        (
            "comms log, by recipient (wide)",
            "/ui/log?sort=recipient".into(),
        ),
        (
            "comms log, 1 rcpt by diag",
            format!("/ui/log?recipient={bounced}&sort=diagnostic"),
        ),
        ("message", "/ui/messages/32".into()),
        ("suppressions", "/ui/suppressions".into()),
        ("suppressions, search", "/ui/suppressions?q=user19".into()),
        ("queue", "/ui/queue".into()),
    ];
    println!(
        "{:28} {:>6} {:>9} {:>9} {:>9}",
        "page", "status", "KB", "median", "max"
    );
    for (name, path) in pages {
        let mut times = Vec::new();
        let (mut code, mut len) = (0, 0);
        for _ in 0..10 {
            let t = Instant::now();
            (code, len) = get(addr, &path, &cookie).await;
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{name:28} {code:>6} {:>9.1} {:>7.1}ms {:>7.1}ms",
            len as f64 / 1000.0,
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The store's contents (see the module doc), written in batches straight through the store.
fn fill_store(daemon: &rebound::daemon::Daemon, n: usize) {
    let store = &daemon.store;
    let now = daemon.now();
    let t0 = now.minus(Duration::from_secs(29 * 86_400));
    let recipients = (n / 2).max(1);
    let step = (29 * 86_400_000 / recipients as i64).max(1);
    let mut ws = WriteSet::new();
    for i in 0..recipients {
        let last = if i % 50 == 0 {
            EventKind::Bounced
        } else {
            EventKind::Delivered
        };
        for (k, kind) in [EventKind::Queued, last].into_iter().enumerate() {
            let mut e = Event::new(kind, Timestamp(t0.millis() + i as i64 * step + k as i64));
            e.recipient = Some(format!("user{i}@example{}.net", i % 7));
            e.queue_id = Some(format!("{:X}", i + 1));
            e.diagnostic = Some(if kind == EventKind::Bounced {
                "550 5.1.1 <x>: Recipient address rejected: User unknown".into()
            } else {
                "250 2.0.0 Ok: queued as ABC".into()
            });
            store.stamp_event(&mut e).unwrap();
            store.index_current(&mut ws, &e).unwrap();
            ws.put_event(&e, false);
            // index_current reads the previous entry from the store: apply before the next one.
            store.apply(&std::mem::take(&mut ws)).unwrap();
        }
    }
    for id in 1..=WAITING {
        let rec = MessageRecord {
            id,
            received: now.minus(Duration::from_secs(3600)),
            sender: "office@school.test".into(),
            message_id: Some(format!("<m{id}@school.test>")),
            env_id: None,
            ret: None,
            client: "127.0.0.1".into(),
            auth_user: None,
            recipients: vec![RcptRecord {
                address: format!("wait{id}@example.net"),
                orcpt: None,
                notify: None,
                status: Status::Deferred,
                attempts: 2,
                last_diagnostic: Some("451 4.7.1 Greylisted".into()),
            }],
            attempts: 2,
            next_attempt: Some(now.plus(Duration::from_secs(600 + id))),
            resent_from: None,
            size: 2000,
            is_dsn: false,
        };
        ws.put_message(&rec, None).expect("record encodes");
        ws.insert(rebound::store::TreeId::Bodies, id.to_be_bytes().to_vec(), b"Subject: Term dates\r\nContent-Type: text/html\r\n\r\n<p>School starts on 5 September.</p>\r\n".to_vec());
    }
    for i in 0..SUPPRESSED {
        let reason = SuppressionReason::ALL[i % 4];
        ws.put_suppression(&Suppression {
            address: format!("user{i}@example{}.net", i % 7),
            reason,
            time: now,
            diagnostic: Some("550 5.1.1 User unknown".into()),
            event_id: None,
        });
    }
    store.apply(&ws).unwrap();
}

/// One request over a fresh connection: (status, body bytes).
async fn request(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}Host: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

async fn get(addr: SocketAddr, path: &str, cookie: &str) -> (u16, usize) {
    let (code, text) = request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nCookie: {cookie}\r\n"),
        "",
    )
    .await;
    (
        code,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.len())
            .unwrap_or(0),
    )
}

/// Signs in with the token as the sign-in form does; the session cookie pair.
async fn sign_in(addr: SocketAddr) -> String {
    let (_, page) = request(addr, "GET /ui/login HTTP/1.1\r\n", "").await;
    let login = cookie_of(&page, "rebound_login");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF field")
        .to_string();
    let body = format!("csrf={csrf}&name=&password=bench-token&next=%2Fui%2F");
    let (code, resp) = request(addr, &format!("POST /ui/login HTTP/1.1\r\nCookie: {login}\r\nContent-Type: application/x-www-form-urlencoded\r\n"), &body).await;
    assert_eq!(code, 303, "signed in: {resp}");
    cookie_of(&resp, "rebound_session")
}

fn cookie_of(resp: &str, name: &str) -> String {
    resp.lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
                .filter(|v| v.starts_with(name))
        })
        .and_then(|v| v.split(';').next())
        .expect("the cookie is set")
        .to_string()
}
