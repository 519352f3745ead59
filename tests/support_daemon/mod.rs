//! Test harness for whole-daemon tests: a config on a temp dir with every
//! listener on port 0, the daemon started in-process, mail submitted with
//! Python's smtplib (a client nobody here wrote), and helpers that read the
//! communications log.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rebound::config::{Config, Dur};
use rebound::daemon::{Running, start};
use rebound::model::EventKind;
use rebound::model::time::SystemClock;
use rebound::store::events::EventQuery;

/// A config for tests: loopback port 0 everywhere, second-scale retries.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.server.hostname = "relay.test".into();
    c.server.data_dir = dir.join("data");
    c.server.shutdown_timeout = Dur(Duration::from_secs(5));
    c.smtp.listen = vec!["127.0.0.1:0".parse().unwrap()];
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c.api.token = Some(rebound::config::Secret("test-token".into()));
    c.bounces.domain = "bounces.relay.test".into();
    c.bounces.secret = Some(rebound::config::Secret("verp-test-key".into()));
    c.delivery.retry = vec![Dur(Duration::from_millis(700))];
    c.delivery.max_age = Dur(Duration::from_secs(30));
    c.delivery.command_timeout = Dur(Duration::from_secs(3));
    c.delivery.data_timeout = Dur(Duration::from_secs(5));
    c.smtp.min_free_space = rebound::config::Size(0);
    c
}

pub fn route_all(c: &mut Config, to: SocketAddr) {
    c.delivery.routes.insert("*".into(), to.to_string());
}

/// Every domain routed to a closed port, retries an hour apart within 72 h:
/// a message stays deferred and waiting while the test looks at it.
pub fn hourly_retries_to_nowhere(dir: &std::path::Path) -> Config {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = test_config(dir);
    route_all(&mut c, closed);
    c.delivery.retry = vec![Dur(Duration::from_secs(3600))];
    c.delivery.max_age = Dur(Duration::from_secs(72 * 3600));
    c
}

pub async fn start_daemon(cfg: Config) -> Running {
    start(cfg, Arc::new(SystemClock))
        .await
        .expect("daemon starts")
}

/// `test_config` on `dir` with every domain routed to `to`, changed by `adjust`, then started.
pub async fn start_routed(
    dir: &std::path::Path,
    to: SocketAddr,
    adjust: impl FnOnce(&mut Config),
) -> Running {
    let mut cfg = test_config(dir);
    route_all(&mut cfg, to);
    adjust(&mut cfg);
    start_daemon(cfg).await
}

/// Sends one message with Python's smtplib; returns smtplib's exit status and output.
pub fn python_send(addr: SocketAddr, from: &str, to: &[&str], body: &str) -> (bool, String) {
    let script = format!(
        "import smtplib,sys\ns=smtplib.SMTP('{}',{},timeout=20)\ns.ehlo('app.test')\nr=s.sendmail({:?},{:?},{:?})\nprint('refused',r)\ns.quit()\n",
        addr.ip(),
        addr.port(),
        from,
        to,
        body
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Like [`python_send`], from source address `src` (e.g. 127.0.0.2: loopback, but outside
/// a `relay_networks` of 127.0.0.1/32, so the daemon sees an outside host).
pub fn python_send_from(
    src: &str,
    addr: SocketAddr,
    from: &str,
    to: &[&str],
    body: &str,
) -> (bool, String) {
    use std::io::Write;
    // The body goes through stdin: a report of megabytes does not fit in an argument.
    let script = format!(
        "import smtplib,sys\nbody=sys.stdin.buffer.read()\ns=smtplib.SMTP('{}',{},timeout=60,source_address=('{}',0))\ns.ehlo('outside.test')\nr=s.sendmail({:?},{:?},body)\nprint('refused',r)\ns.quit()\n",
        addr.ip(),
        addr.port(),
        src,
        from,
        to,
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = body.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("python3 runs");
    let _ = writer.join();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The security log (untrusted returned reports), newest first.
pub fn security_log(r: &Running) -> Vec<rebound::model::Event> {
    r.daemon.store.unverified(None, 10_000).unwrap().0
}

/// The event kinds of one recipient, oldest first.
pub fn history(r: &Running, rcpt: &str) -> Vec<String> {
    let q = EventQuery {
        recipient: Some(rcpt.into()),
        limit: 1000,
        ascending: true,
        ..Default::default()
    };
    r.daemon
        .store
        .query_events(&q)
        .unwrap()
        .events
        .iter()
        .map(|e| e.status.as_str().to_string())
        .collect()
}

/// Waits (bounded) until `rcpt` has an event of one of `kinds`; returns its history.
pub async fn wait_for(
    r: &Running,
    rcpt: &str,
    kinds: &[EventKind],
    within: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let h = history(r, rcpt);
        if h.iter().any(|k| kinds.iter().any(|w| w.as_str() == k))
            || tokio::time::Instant::now() > deadline
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One HTTP/1.1 request to the admin API over a raw socket: `(status, body)`.
/// `token` adds the bearer header; a non-empty `body` is sent as JSON.
pub async fn api_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split(' ').nth(1).unwrap().parse().unwrap();
    (
        code,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}
