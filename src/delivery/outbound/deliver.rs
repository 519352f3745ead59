//! The [`Deliverer`]: routes a domain to candidate hosts, takes a pooled
//! connection or opens one (trying the next MX/address on failure), runs the
//! transactions in order on it, and parks it for reuse. Concurrency is capped
//! globally with a semaphore and per destination by its [`Gate`] (limits, pacing
//! and the pause after a throttling reply: [`crate::delivery::outbound::shaping`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsConnector;

use crate::config::DeliveryConfig;
use crate::delivery::outbound::client::{Connection, Endpoint, Settings, open};
use crate::delivery::outbound::mta_sts::{MtaSts, Requirement};
use crate::delivery::outbound::mx::{AddrError, Dns};
use crate::delivery::outbound::pool::{Pool, reap};
use crate::delivery::outbound::reply::synthetic;
use crate::delivery::outbound::route::{BadHop, Route, Router};
use crate::delivery::outbound::shaping::{Gate, Paused, Shaper, Slot, is_throttle};
use crate::delivery::outbound::{RcptOutcome, Transaction};
use crate::model::Reply;
use crate::store::mta_sts::PolicyCache;

/// Most addresses tried to get one connection.
pub const MAX_ADDRESSES_TRIED: usize = 6;
/// Most fresh connections opened by one `deliver` after transport failures.
pub const MAX_CONNECTIONS_PER_CALL: usize = 3;

/// Why a [`Deliverer`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Route(#[from] BadHop),
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
    #[error("cannot set up outbound TLS: {0}")]
    Tls(String),
}

/// A host that may take the mail.
#[derive(Debug, Clone)]
struct Candidate {
    host: String,
    port: u16,
    /// Relayhost: authenticate.
    via_relayhost: bool,
    /// The implicit MX of a domain: no address means the domain has no mail host (permanent).
    implicit: bool,
    /// What the domain's MTA-STS policy asks of a connection to this host.
    sts: Option<Arc<Requirement>>,
}

impl Candidate {
    fn key(&self) -> String {
        let validated = self.sts.as_ref().is_some_and(|r| r.enforce);
        format!(
            "{}:{}{}{}",
            self.host,
            self.port,
            if self.via_relayhost { "+auth" } else { "" },
            if validated { "+sts" } else { "" }
        )
    }
}

/// Delivers transactions to remote SMTP servers. Cheap to share: `Arc<Deliverer>`.
pub struct Deliverer {
    settings: Settings,
    router: Router,
    dns: Dns,
    connector: TlsConnector,
    /// MTA-STS for MX-routed domains (`None`: `delivery.mta_sts = "off"`).
    mta_sts: Option<MtaSts>,
    credentials: Option<(String, String)>,
    mx_port: u16,
    pool: Arc<Pool>,
    reaper_started: AtomicBool,
    global: Arc<Semaphore>,
    shaper: Arc<Shaper>,
}

/// The settings only; never the relayhost credentials.
impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("settings", &self.settings)
            .field("mx_port", &self.mx_port)
            .field("mta_sts", &self.mta_sts)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    pub fn new(cfg: &DeliveryConfig, hostname: &str) -> Result<Deliverer, OutboundError> {
        // Harmless if a provider is already installed; avoids a panic if two ever are linked.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let connector =
            mail_send::smtp::tls::build_tls_connector(true).map_err(OutboundError::Tls)?;
        let dns = Dns::new(&cfg.nameservers, cfg.command_timeout.0)
            .map_err(|e| OutboundError::Resolver(e.to_string()))?;
        let credentials = match (&cfg.relayhost_user, &cfg.relayhost_password) {
            (Some(u), Some(p)) => Some((u.clone(), p.expose().to_string())),
            _ => None,
        };
        let concurrency = cfg.concurrency.max(1);
        Ok(Deliverer {
            settings: Settings {
                hostname: hostname.to_string(),
                command_timeout: cfg.command_timeout.0,
                data_timeout: cfg.data_timeout.0,
                tls: cfg.tls,
            },
            router: Router::new(cfg)?,
            dns,
            connector,
            mta_sts: MtaSts::new(cfg).map_err(|e| OutboundError::Tls(e.to_string()))?,
            credentials,
            mx_port: cfg.mx_port,
            pool: Arc::new(Pool::new(concurrency)),
            reaper_started: AtomicBool::new(false),
            global: Arc::new(Semaphore::new(concurrency)),
            shaper: Arc::new(Shaper::new(cfg)),
        })
    }

    /// The per-destination gates (for `/metrics`).
    pub fn shaper(&self) -> Arc<Shaper> {
        self.shaper.clone()
    }

    /// Delivers every transaction for recipients of `domain`, reusing one connection for
    /// several transactions where possible. Returns, for each transaction in order, one
    /// outcome per recipient in order. Never panics; bounded by the configured timeouts.
    pub async fn deliver(&self, domain: &str, txs: Vec<Transaction>) -> Vec<Vec<RcptOutcome>> {
        if txs.is_empty() {
            return Vec::new();
        }
        self.start_reaper();
        let candidates = match self.candidates(domain).await {
            Ok(c) => c,
            Err(reply) => return same_reply_for_all(&txs, &reply),
        };
        let gate = self
            .shaper
            .gate(domain, candidates.first().map(|c| c.host.as_str()));
        let _permits = match self.permits(&gate).await {
            Ok(p) => p,
            Err(paused) => return same_reply_for_all(&txs, &held_back(&paused)),
        };
        let mut run = Run::default();
        let mut out = Vec::with_capacity(txs.len());
        for tx in &txs {
            out.push(self.deliver_one(&mut run, &gate, &candidates, tx).await);
        }
        if let Some((key, conn)) = run.current
            && let Some(conn) = self.pool.put(key, conn)
        {
            conn.quit(self.settings.command_timeout).await;
        }
        out
    }

    /// Runs one transaction of a `deliver` call on the connection in hand, or on a new one;
    /// once the call has given up, the reply that gave up stands for every recipient.
    async fn deliver_one(
        &self,
        run: &mut Run,
        gate: &Gate,
        candidates: &[Candidate],
        tx: &Transaction,
    ) -> Vec<RcptOutcome> {
        if run.given_up.is_none()
            && let Err(paused) = gate.pace().await
        {
            run.given_up = Some((held_back(&paused), None));
        }
        if let Some((reply, host)) = &run.given_up {
            return outcomes(
                tx,
                &vec![reply.clone(); tx.recipients.len()],
                host.as_deref(),
            );
        }
        let (key, mut conn) = match run.current.take() {
            Some(c) => c,
            None => match self.connection(candidates).await {
                Ok(c) => {
                    run.opened += 1;
                    tracing::debug!(host = %c.1.host, tls = c.1.is_tls(), "connected");
                    c
                }
                Err(failure) => {
                    observe(gate, std::slice::from_ref(&failure.0));
                    let out = outcomes(
                        tx,
                        &vec![failure.0.clone(); tx.recipients.len()],
                        failure.1.as_deref(),
                    );
                    run.given_up = Some(failure);
                    return out;
                }
            },
        };
        let result = conn.run(tx, &self.settings).await;
        observe(gate, &result.replies);
        let out = outcomes(tx, &result.replies, Some(&conn.host));
        if result.reusable {
            run.current = Some((key, conn));
        } else if run.opened >= MAX_CONNECTIONS_PER_CALL {
            let text =
                "not attempted: earlier transactions to this destination kept failing; will retry";
            run.given_up = Some((synthetic(451, (4, 4, 2), text), None));
        }
        out
    }

    fn start_reaper(&self) {
        if !self.reaper_started.swap(true, Ordering::AcqRel) {
            tokio::spawn(reap(
                Arc::downgrade(&self.pool),
                self.settings.command_timeout,
            ));
        }
    }

    /// Keeps MTA-STS policies in `cache` (the database), so they outlive a restart.
    pub fn use_policy_cache(&self, cache: PolicyCache) {
        if let Some(sts) = &self.mta_sts {
            sts.attach(cache);
        }
    }

    /// A place at the destination first (so waiting for a busy destination holds no global
    /// slot), then a global one; `Err` while the destination is paused.
    async fn permits(
        &self,
        gate: &Arc<Gate>,
    ) -> Result<(Slot, Option<OwnedSemaphorePermit>), Paused> {
        let slot = gate.acquire().await?;
        let global = self.global.clone().acquire_owned().await.ok();
        Ok((slot, global))
    }

    /// The hosts to try for `domain`, best first; `Err` is the reply for every recipient.
    async fn candidates(&self, domain: &str) -> Result<Vec<Candidate>, Reply> {
        match self.router.route(domain) {
            Route::Static(hop) => Ok(vec![Candidate {
                host: hop.host,
                port: hop.port,
                via_relayhost: false,
                implicit: false,
                sts: None,
            }]),
            Route::Relay(hop) => Ok(vec![Candidate {
                host: hop.host,
                port: hop.port,
                via_relayhost: self.credentials.is_some(),
                implicit: false,
                sts: None,
            }]),
            Route::Mx => {
                let hosts = self.dns.mx_hosts(domain).await?;
                let implicit =
                    hosts.len() == 1 && hosts[0].eq_ignore_ascii_case(domain.trim_end_matches('.'));
                let hosts = match &self.mta_sts {
                    Some(sts) => sts.apply(domain, hosts).await?,
                    None => hosts.into_iter().map(|h| (h, None)).collect(),
                };
                Ok(hosts
                    .into_iter()
                    .map(|(host, sts)| Candidate {
                        host,
                        port: self.mx_port,
                        via_relayhost: false,
                        implicit,
                        sts,
                    })
                    .collect())
            }
        }
    }

    /// A pooled connection to one of the candidates, else a new one: next address / next host
    /// on failure, at most [`MAX_ADDRESSES_TRIED`] addresses. `Err`: the last failure and host.
    async fn connection(
        &self,
        candidates: &[Candidate],
    ) -> Result<(String, Connection), (Reply, Option<String>)> {
        for c in candidates {
            if let Some(conn) = self.pool.take(&c.key()) {
                return Ok((c.key(), conn));
            }
        }
        let mut last: Option<(Reply, Option<String>)> = None;
        let mut tried = 0;
        for c in candidates {
            let addrs = match self.dns.addresses(&c.host).await {
                Ok(a) => a,
                Err(AddrError::NotFound(h)) if c.implicit => {
                    return Err((
                        synthetic(
                            550,
                            (5, 1, 2),
                            format!("host unknown: {h} has no MX and no address records"),
                        ),
                        None,
                    ));
                }
                Err(e) => {
                    last = Some((synthetic(451, (4, 4, 3), e.to_string()), None));
                    continue;
                }
            };
            for ip in addrs {
                if tried >= MAX_ADDRESSES_TRIED {
                    break;
                }
                tried += 1;
                let target = Endpoint {
                    host: c.host.clone(),
                    addr: (ip, c.port).into(),
                    credentials: if c.via_relayhost {
                        self.credentials.clone()
                    } else {
                        None
                    },
                    sts: c.sts.clone(),
                };
                match self.open_target(&target).await {
                    Ok(conn) => return Ok((c.key(), conn)),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| (synthetic(451, (4, 4, 1), "no usable mail host"), None)))
    }

    /// Opens `target`; after a failed opportunistic STARTTLS, once more in plain text.
    async fn open_target(&self, target: &Endpoint) -> Result<Connection, (Reply, Option<String>)> {
        let host = |connected: bool| connected.then(|| target.host.clone());
        match open(target, &self.settings, &self.connector, true).await {
            Ok(conn) => Ok(conn),
            Err(e) if e.retry_plain => {
                tracing::info!(host = %target.host, reason = %e.reply.text, "STARTTLS failed; retrying in plain text");
                open(target, &self.settings, &self.connector, false)
                    .await
                    .map_err(|e| (e.reply, host(e.connected)))
            }
            Err(e) => Err((e.reply, host(e.connected))),
        }
    }
}

/// Feeds a destination's replies to its gate: a throttling one pauses it, an accepted
/// transaction lets a lowered limit recover.
fn observe(gate: &Gate, replies: &[Reply]) {
    if let Some(r) = replies.iter().find(|r| is_throttle(r)) {
        gate.throttled(r);
    } else if replies.iter().any(|r| (200..300).contains(&r.code)) {
        gate.succeeded();
    }
}

/// The reply of a recipient not attempted because its destination is paused.
fn held_back(p: &Paused) -> Reply {
    let text = format!(
        "not attempted: {} asked us to slow down ({}); new connections to it resume in {}s; will retry",
        p.destination,
        p.cause,
        p.remaining.as_secs().max(1)
    );
    synthetic(451, (4, 4, 5), text)
}

/// Pairs each recipient of `tx` with its reply.
/// Where one `deliver` call stands between its transactions.
#[derive(Default)]
struct Run {
    /// The connection the next transaction reuses, and its pool key.
    current: Option<(String, Connection)>,
    /// Connections opened so far.
    opened: usize,
    /// Set once the call stops trying: the reply for every recipient left, and the host.
    given_up: Option<(Reply, Option<String>)>,
}

/// The same reply for every recipient of every transaction (nothing was attempted).
fn same_reply_for_all(txs: &[Transaction], reply: &Reply) -> Vec<Vec<RcptOutcome>> {
    txs.iter()
        .map(|tx| outcomes(tx, &vec![reply.clone(); tx.recipients.len()], None))
        .collect()
}

fn outcomes(tx: &Transaction, replies: &[Reply], host: Option<&str>) -> Vec<RcptOutcome> {
    tx.recipients
        .iter()
        .zip(replies)
        .map(|(rcpt, reply)| RcptOutcome {
            recipient: rcpt.clone(),
            reply: reply.clone(),
            remote_host: host.map(str::to_string),
        })
        .collect()
}
