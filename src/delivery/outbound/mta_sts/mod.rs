//! MTA-STS (RFC 8461) for delivery by MX: the `_mta-sts.DOMAIN` TXT record
//! says a policy exists and names its id; the policy is fetched over validated
//! HTTPS ([`fetch`]), parsed ([`policy`]), and cached in sled
//! ([`crate::store::mta_sts`]) until its `max_age` passes or the id changes; a
//! failed fetch keeps an unexpired cached policy (§5.1). The mode in effect is
//! the lower of `delivery.mta_sts` and the policy's own: `enforce` drops MX
//! hosts the policy does not list and asks for STARTTLS with a validated
//! certificate ([`tls`]) to the others; `testing` changes nothing but logs and
//! counts what would have failed.

pub mod fetch;
pub mod policy;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

use crate::config::{DeliveryConfig, MtaStsMode};
use crate::delivery::outbound::reply::synthetic;
use crate::model::Reply;
use crate::store::mta_sts::{CachedPolicy, PolicyCache};
use policy::{Policy, PolicyMode};
use tls::{RootsError, ValidatingTls};

/// After a failed fetch, the domain's policy is not fetched again for this long (an
/// unexpired cached policy, if any, is used meanwhile).
pub const FETCH_BACKOFF: Duration = Duration::from_secs(300);
/// Most policies kept in memory when no database is attached.
const MAX_IN_MEMORY: usize = 10_000;

/// Why MTA-STS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("MTA-STS: cannot set up the DNS resolver: {0}")]
    Resolver(String),
    #[error("MTA-STS: {0}")]
    Roots(#[from] RootsError),
}

/// What a policy asks of the connection to one MX host it lists.
#[derive(Debug)]
pub struct Requirement {
    /// `MTA-STS policy for DOMAIN (id ID)`, as diagnostics name it.
    pub policy: String,
    /// Enforced: STARTTLS with a validated certificate, or no delivery. Else only reported.
    pub enforce: bool,
    pub tls: ValidatingTls,
}

/// What a policy found wrong (the `reason` label of the failure counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The MX host is not among the policy's `mx` patterns.
    MxNotListed,
    /// The MX host does not offer STARTTLS.
    StarttlsMissing,
    /// STARTTLS failed, or the certificate is not valid for the MX name.
    TlsFailed,
}

impl Failure {
    pub const ALL: [Failure; 3] = [
        Failure::MxNotListed,
        Failure::StarttlsMissing,
        Failure::TlsFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::MxNotListed => "mx_not_listed",
            Failure::StarttlsMissing => "starttls_missing",
            Failure::TlsFailed => "tls_failed",
        }
    }
}

/// Failures by mode (0 enforce, 1 testing) and [`Failure`].
static FAILURES: [[AtomicU64; 3]; 2] = [
    [const { AtomicU64::new(0) }; 3],
    [const { AtomicU64::new(0) }; 3],
];
/// Policy fetches that gave a policy / that failed.
static FETCHED: AtomicU64 = AtomicU64::new(0);
static FETCH_FAILED: AtomicU64 = AtomicU64::new(0);

/// `(mode, reason, count)` of every policy failure since start (for `/metrics`).
pub fn failure_counts() -> Vec<(&'static str, &'static str, u64)> {
    let mut out = Vec::new();
    for (m, mode) in ["enforce", "testing"].into_iter().enumerate() {
        for (r, reason) in Failure::ALL.iter().enumerate() {
            out.push((
                mode,
                reason.as_str(),
                FAILURES[m][r].load(Ordering::Relaxed),
            ));
        }
    }
    out
}

/// `(fetched, failed)` policy fetches since start.
pub fn fetch_counts() -> (u64, u64) {
    (
        FETCHED.load(Ordering::Relaxed),
        FETCH_FAILED.load(Ordering::Relaxed),
    )
}

impl Requirement {
    pub fn mode(&self) -> &'static str {
        if self.enforce { "enforce" } else { "testing" }
    }

    /// Counts and logs `failure` at `host`; returns the reply for the recipients (used
    /// only when enforced): 451 4.7.5 for an unlisted MX or failed TLS, 451 4.7.4 when
    /// STARTTLS is not offered (RFC 3463: security features not supported).
    pub fn failure(&self, failure: Failure, host: &str, detail: &str) -> Reply {
        let m = usize::from(!self.enforce);
        let r = Failure::ALL.iter().position(|f| *f == failure).unwrap_or(0);
        FAILURES[m][r].fetch_add(1, Ordering::Relaxed);
        let reply = match failure {
            Failure::MxNotListed => synthetic(
                451,
                (4, 7, 5),
                format!("{} does not list {host}", self.policy),
            ),
            Failure::StarttlsMissing => synthetic(
                451,
                (4, 7, 4),
                format!(
                    "{} requires STARTTLS, which {host} does not offer",
                    self.policy
                ),
            ),
            Failure::TlsFailed => synthetic(
                451,
                (4, 7, 5),
                format!(
                    "{} requires validated TLS: TLS with {host} failed: {detail}",
                    self.policy
                ),
            ),
        };
        if self.enforce {
            tracing::warn!(host, reason = failure.as_str(), diagnostic = %reply.text, "MTA-STS policy refused a host");
        } else {
            tracing::info!(host, reason = failure.as_str(), diagnostic = %reply.text, "MTA-STS (testing): would have refused a host");
        }
        reply
    }
}

/// The MTA-STS checker of a [`crate::delivery::outbound::Deliverer`].
pub struct MtaSts {
    mode: MtaStsMode,
    resolver: TokioResolver,
    tls: ValidatingTls,
    port: u16,
    timeout: Duration,
    cache: OnceLock<PolicyCache>,
    memory: Mutex<HashMap<String, CachedPolicy>>,
    /// Unix seconds of each domain's last failed fetch.
    failed: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for MtaSts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtaSts")
            .field("mode", &self.mode)
            .field("port", &self.port)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The system clock in Unix seconds (before a cache with the daemon's clock is attached).
fn unix_now() -> u64 {
    u64::try_from(crate::model::time::Timestamp::now().millis() / 1000).unwrap_or(0)
}

impl MtaSts {
    /// `None` when `delivery.mta_sts = "off"`, or in `testing` when no trust roots exist.
    pub fn new(cfg: &DeliveryConfig) -> Result<Option<MtaSts>, SetupError> {
        if cfg.mta_sts == MtaStsMode::Off {
            return Ok(None);
        }
        let tls = match tls::roots(cfg.mta_sts_ca_file.as_deref()).and_then(ValidatingTls::new) {
            Ok(t) => t,
            Err(e @ RootsError::Verifier(_)) if cfg.mta_sts == MtaStsMode::Testing => {
                tracing::warn!(error = %e, "MTA-STS testing is off: no trusted CA certificates");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let resolver = crate::delivery::outbound::resolver(&cfg.nameservers, cfg.command_timeout.0)
            .map_err(|e| SetupError::Resolver(e.to_string()))?;
        Ok(Some(MtaSts {
            mode: cfg.mta_sts,
            resolver,
            tls,
            port: cfg.mta_sts_port,
            timeout: cfg.command_timeout.0,
            cache: OnceLock::new(),
            memory: Mutex::default(),
            failed: Mutex::default(),
        }))
    }

    /// Unix seconds now: the attached cache's clock (the daemon's), else the system's.
    fn now(&self) -> u64 {
        self.cache.get().map_or_else(unix_now, PolicyCache::now)
    }

    /// Keeps policies in `cache` (the database) from now on, on its clock; expired entries are dropped.
    pub fn attach(&self, cache: PolicyCache) {
        if let Err(e) = cache.purge_expired(cache.now()) {
            tracing::warn!(error = %e, "cannot purge expired MTA-STS policies");
        }
        let _ = self.cache.set(cache);
    }

    /// The MX hosts of `domain` to try, in order, each with what its connection must meet.
    /// `Err` (enforce only): no host is listed by the policy; the reply for every recipient.
    pub async fn apply(
        &self,
        domain: &str,
        hosts: Vec<String>,
    ) -> Result<Vec<(String, Option<Arc<Requirement>>)>, Reply> {
        let unchecked = |hosts: Vec<String>| hosts.into_iter().map(|h| (h, None)).collect();
        let Some(cached) = self.policy(domain).await else {
            return Ok(unchecked(hosts));
        };
        let policy_mode = match cached.policy.mode {
            PolicyMode::None => MtaStsMode::Off,
            PolicyMode::Testing => MtaStsMode::Testing,
            PolicyMode::Enforce => MtaStsMode::Enforce,
        };
        let effective = self.mode.min(policy_mode);
        if effective == MtaStsMode::Off {
            return Ok(unchecked(hosts));
        }
        let req = Arc::new(Requirement {
            policy: format!(
                "MTA-STS policy for {} (id {})",
                normalised(domain),
                cached.id
            ),
            enforce: effective == MtaStsMode::Enforce,
            tls: self.tls.clone(),
        });
        let unlisted: Vec<&str> = hosts
            .iter()
            .filter(|h| !cached.policy.allows(h))
            .map(String::as_str)
            .collect();
        if !unlisted.is_empty() {
            let reply = req.failure(Failure::MxNotListed, &unlisted.join(", "), "");
            if req.enforce && unlisted.len() == hosts.len() {
                return Err(reply);
            }
        }
        Ok(hosts
            .into_iter()
            .filter_map(|h| match (cached.policy.allows(&h), req.enforce) {
                (true, _) => Some((h, Some(req.clone()))),
                (false, true) => None,
                (false, false) => Some((h, None)),
            })
            .collect())
    }

    /// The policy in force for `domain`, fetching it when the TXT id is new or the cached
    /// one expired; `None`: the domain has no (usable) policy.
    async fn policy(&self, domain: &str) -> Option<CachedPolicy> {
        let domain = normalised(domain);
        if domain.starts_with('[') || domain.is_empty() {
            return None;
        }
        let now = self.now();
        let cached = self.cached(&domain).filter(|c| c.is_fresh(now));
        let id = match self.txt_id(&domain).await {
            Ok(Some(id)) => id,
            Ok(None) => return cached,
            Err(e) => {
                tracing::debug!(domain, error = %e, "MTA-STS TXT lookup failed; using the cached policy if any");
                return cached;
            }
        };
        if cached.as_ref().is_some_and(|c| c.id == id) || self.backing_off(&domain) {
            return cached;
        }
        match self.fetch(&domain).await {
            Ok(policy) => {
                FETCHED.fetch_add(1, Ordering::Relaxed);
                let entry = CachedPolicy {
                    id,
                    expires: now.saturating_add(policy.max_age),
                    fetched: now,
                    policy,
                };
                tracing::info!(domain, id = %entry.id, mode = entry.policy.mode.as_str(), max_age = entry.policy.max_age, "MTA-STS policy fetched");
                self.remember(&domain, &entry);
                Some(entry)
            }
            Err(e) => {
                FETCH_FAILED.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(domain, error = %e, cached = cached.is_some(), "MTA-STS policy fetch failed");
                self.failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(domain.clone(), now);
                cached
            }
        }
    }

    fn cached(&self, domain: &str) -> Option<CachedPolicy> {
        if let Some(cache) = self.cache.get() {
            match cache.get(domain) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(domain, error = %e, "cannot read the MTA-STS policy cache")
                }
            }
        }
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
            .cloned()
    }

    fn remember(&self, domain: &str, entry: &CachedPolicy) {
        if let Some(cache) = self.cache.get()
            && let Err(e) = cache.put(domain, entry)
        {
            tracing::warn!(domain, error = %e, "cannot store the MTA-STS policy");
        }
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if memory.len() >= MAX_IN_MEMORY {
            memory.clear();
        }
        memory.insert(domain.to_string(), entry.clone());
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(domain);
    }

    fn backing_off(&self, domain: &str) -> bool {
        let now = self.now();
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.retain(|_, at| now >= *at && now - *at < FETCH_BACKOFF.as_secs());
        failed.contains_key(domain)
    }

    /// The id of the domain's one valid `v=STSv1` TXT record; `Ok(None)`: none.
    async fn txt_id(&self, domain: &str) -> Result<Option<String>, String> {
        match self
            .resolver
            .txt_lookup(format!("_mta-sts.{domain}."))
            .await
        {
            Ok(lookup) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                Ok(policy::record_id(records.iter().map(String::as_str)))
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// GETs and parses `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.
    async fn fetch(&self, domain: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        let ips = self
            .resolver
            .lookup_ip(format!("{host}."))
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        let addrs: Vec<SocketAddr> = ips
            .iter()
            .take(3)
            .map(|ip| SocketAddr::new(ip, self.port))
            .collect();
        let body = fetch::fetch(&host, &addrs, self.tls.config.clone(), self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        policy::parse_policy(&body)
            .map_err(|e| format!("https://{host}{}: {e}", fetch::POLICY_PATH))
    }
}

fn normalised(domain: &str) -> String {
    crate::model::address::normalise_domain(domain.trim_end_matches('.'))
}
