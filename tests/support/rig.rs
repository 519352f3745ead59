//! The API rig: a real `Daemon` on a temp dir and a [`ManualClock`] (no delivery loop),
//! the admin API served on 127.0.0.1:0, and helpers that queue messages and apply delivery
//! outcomes through the same code paths the daemon uses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rebound::config::{Config, Secret};

use super::config::{TOKEN, test_config};
use super::http::{Resp, raw};
use rebound::daemon::Daemon;
use rebound::inbound::accept::QueueIntake;
use rebound::inbound::intake::{Intake, RecipientSpec, SessionInfo, Submission};
use rebound::model::address::Address;
use rebound::model::time::{ManualClock, Timestamp};
use rebound::model::{EnhancedCode, Reply};
use rebound::records::disposition::{Outcome, apply_attempt};
use tokio_util::sync::CancellationToken;

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

/// A daemon with the API served; `token` = None leaves it to be generated in data_dir.
pub async fn rig_with(token: Option<&str>) -> Rig {
    rig_tuned(token, |_| {}).await
}

/// [`rig_with`], the config changed by `tune` before the daemon opens.
pub async fn rig_tuned(token: Option<&str>, tune: impl FnOnce(&mut Config)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg.api.token = token.map(|t| Secret(t.to_string()));
    tune(&mut cfg);
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
