//! Shared test rig: a real Relay on a temp dir, the admin API served on
//! 127.0.0.1:0, a raw HTTP/1.1 client, and helpers that queue messages and
//! apply delivery outcomes through the same code paths the daemon uses.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rebound::config::{Config, Secret};
use rebound::daemon::Daemon;
use rebound::inbound::accept::QueueIntake;
use rebound::inbound::intake::{Intake, RecipientSpec, SessionInfo, Submission};
use rebound::model::address::Address;
use rebound::model::time::{ManualClock, Timestamp};
use rebound::model::{EnhancedCode, Reply};
use rebound::records::disposition::{Outcome, apply_attempt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token-0123456789";
pub const T0: Timestamp = Timestamp(1_795_000_000_000);

pub struct Rig {
    pub daemon: Arc<Daemon>,
    pub clock: ManualClock,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A relay with the API served; `token` = None leaves it to be generated in data_dir.
pub async fn rig_with(token: Option<&str>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg.api.token = token.map(|t| Secret(t.to_string()));
    let clock = ManualClock::new(T0);
    let daemon = Daemon::open(Arc::new(cfg), Arc::new(clock.clone())).unwrap();
    daemon.ready.store(true, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(rebound::api::serve(
        daemon.clone(),
        listener,
        shutdown.clone(),
    ));
    Rig {
        daemon,
        clock,
        addr,
        dir,
        shutdown,
    }
}

pub async fn rig() -> Rig {
    rig_with(Some(TOKEN)).await
}

/// A response: status, lower-cased headers, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One raw HTTP/1.1 request; `headers` are sent as given (Host included by the caller when wanted).
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Resp {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

impl Rig {
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// An authenticated request with a correct Host.
    pub async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Resp {
        let host = self.host();
        let auth = format!("Bearer {TOKEN}");
        let mut h = vec![("Host", host.as_str()), ("Authorization", auth.as_str())];
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        if !bytes.is_empty() {
            h.push(("Content-Type", "application/json"));
        }
        raw(self.addr, method, path, &h, bytes.as_bytes()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    /// Queues a message through the SMTP intake path; returns its queue id.
    pub async fn submit(&self, rcpts: &[&str]) -> String {
        let sub = Submission {
            session: SessionInfo {
                peer: "127.0.0.1:40000".parse().unwrap(),
                helo: "app".into(),
                tls: false,
                auth_user: None,
                relay_allowed: true,
            },
            sender: Some(Address::parse("app@example.org").unwrap()),
            recipients: rcpts
                .iter()
                .map(|r| RecipientSpec {
                    address: Address::parse(r).unwrap(),
                    orcpt: None,
                    notify: None,
                })
                .collect(),
            env_id: None,
            ret: None,
            body: format!(
                "From: app@example.org\r\nTo: {}\r\nSubject: notice\r\n\r\nhello\r\n",
                rcpts.join(", ")
            )
            .into_bytes(),
        };
        QueueIntake {
            daemon: self.daemon.clone(),
        }
        .submit(sub)
        .await
        .unwrap()
        .queue_id
    }

    /// Applies one attempt: `(recipient index, code, enhanced, text)` per recipient.
    pub async fn attempt(&self, id: &str, replies: &[(usize, u16, &str, &str)]) {
        let n = u64::from_str_radix(id, 16).unwrap();
        let mut rec = self.daemon.store.message(n).unwrap().unwrap();
        let outcomes: Vec<Outcome> = replies
            .iter()
            .map(|(i, c, e, t)| Outcome {
                index: *i,
                reply: Reply::remote(*c, EnhancedCode::parse(e), *t),
                remote_host: Some("mx.example.net".into()),
            })
            .collect();
        let (ws, events) =
            apply_attempt(&self.daemon, &mut rec, &outcomes, self.daemon.now()).unwrap();
        self.daemon.commit(ws, &events).await.unwrap();
    }
}
