//! Polite sending: per-destination connection limits, message pacing and the
//! back-off after a throttling reply.
//!
//! A destination is a `[delivery.shaping."NAME"]` entry that matches the recipient
//! domain or its first MX host (the longest matching suffix wins, so one entry for
//! `google.com` covers gmail.com and every Google-hosted domain), else the recipient
//! domain itself. Each destination has a [`Gate`]:
//!
//! - at most `limit` deliveries run at once (starting at `connections`);
//! - with `messages_per_minute`, transactions start evenly spaced;
//! - a throttling reply (421, or a 4xx saying "rate limit", "too many connections",
//!   "try again later"...) halves `limit` (at most once per back-off period, never
//!   below one) and pauses new deliveries for the back-off period: recipients due
//!   meanwhile are deferred without a connection, each on its own retry schedule;
//! - every [`RECOVER_EVERY`] accepted transactions raise `limit` by one again, up to
//!   `connections` (additive increase, multiplicative decrease).
//!
//! Throttling is recognised here from the reply alone: the outbound client never sees
//! the classifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::DeliveryConfig;
use crate::model::Reply;
use crate::model::address::normalise_domain;

/// Accepted transactions after which a lowered limit rises by one.
pub const RECOVER_EVERY: u32 = 10;
/// Idle destinations without a rule are forgotten beyond this many gates.
const MAX_IDLE_GATES: usize = 1024;

/// The limits of one destination, resolved from the config.
#[derive(Debug, Clone, PartialEq)]
struct Limits {
    connections: usize,
    interval: Option<Duration>,
    backoff: Duration,
}

/// Every destination's gate; cheap to share.
#[derive(Debug)]
pub struct Shaper {
    /// (suffix, limits), longest suffix first.
    rules: Vec<(String, Limits)>,
    default: Limits,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

impl Shaper {
    pub fn new(cfg: &DeliveryConfig) -> Shaper {
        let base = cfg.per_domain_concurrency.max(1);
        let limits = |s: &crate::config::Shaping| Limits {
            connections: s.connections.unwrap_or(base).max(1),
            interval: s
                .messages_per_minute
                .map(|m| Duration::from_secs(60) / m.max(1)),
            backoff: s.backoff.map_or(cfg.throttle_backoff.0, |d| d.0),
        };
        let mut rules: Vec<(String, Limits)> = cfg
            .shaping
            .iter()
            .map(|(k, s)| (normalise_domain(k), limits(s)))
            .collect();
        rules.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        let default = Limits {
            connections: base,
            interval: None,
            backoff: cfg.throttle_backoff.0,
        };
        Shaper {
            rules,
            default,
            gates: Mutex::default(),
        }
    }

    /// The gate for recipients of `domain` whose first next hop is `host`.
    pub fn gate(&self, domain: &str, host: Option<&str>) -> Arc<Gate> {
        let domain = normalise_domain(domain);
        let rule = self
            .rule_for(&domain)
            .or_else(|| host.and_then(|h| self.rule_for(&normalise_domain(h))));
        let (name, limits, ruled) = match rule {
            Some((name, limits)) => (name.to_string(), limits.clone(), true),
            None => (domain, self.default.clone(), false),
        };
        let mut gates = self.lock();
        if gates.len() > MAX_IDLE_GATES {
            gates.retain(|_, g| Arc::strong_count(g) > 1 || !g.is_idle());
        }
        gates
            .entry(name.clone())
            .or_insert_with(|| Arc::new(Gate::new(name, limits, ruled)))
            .clone()
    }

    fn rule_for(&self, name: &str) -> Option<(&str, &Limits)> {
        self.rules
            .iter()
            .find(|(suffix, _)| suffix_match(name, suffix))
            .map(|(s, l)| (s.as_str(), l))
    }

    /// Every destination that has a rule, has been throttled or is busy now, by name.
    pub fn snapshot(&self) -> Vec<GateStats> {
        let mut out: Vec<GateStats> = self
            .lock()
            .values()
            .map(|g| g.stats())
            .filter(|s| s.ruled || s.throttled > 0 || s.active > 0)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Gate>>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `name` is `suffix` or ends with `.suffix`.
fn suffix_match(name: &str, suffix: &str) -> bool {
    name == suffix
        || name
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.'))
}

/// What `/metrics` shows of one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct GateStats {
    pub name: String,
    /// A `[delivery.shaping]` entry defines it.
    pub ruled: bool,
    pub active: usize,
    pub limit: usize,
    pub connections: usize,
    pub throttled: u64,
    /// Recipients deferred without a connection while paused.
    pub held_back: u64,
    pub paused_for: Duration,
}

/// New deliveries to a destination are paused until `until`; the reply that caused it.
#[derive(Debug, Clone)]
pub struct Paused {
    pub destination: String,
    pub remaining: Duration,
    pub cause: String,
}

#[derive(Debug)]
struct GateState {
    active: usize,
    limit: usize,
    paused_until: Option<Instant>,
    last_cut: Option<Instant>,
    cause: String,
    successes: u32,
    next_start: Instant,
    throttled: u64,
    held_back: u64,
}

/// One destination's concurrency limit, pacing and pause.
#[derive(Debug)]
pub struct Gate {
    name: String,
    limits: Limits,
    ruled: bool,
    state: Mutex<GateState>,
    freed: Notify,
}

/// A running delivery to a destination; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    gate: Arc<Gate>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.lock().active -= 1;
        self.gate.freed.notify_one();
    }
}

impl Gate {
    fn new(name: String, limits: Limits, ruled: bool) -> Gate {
        let state = GateState {
            active: 0,
            limit: limits.connections,
            paused_until: None,
            last_cut: None,
            cause: String::new(),
            successes: 0,
            next_start: Instant::now(),
            throttled: 0,
            held_back: 0,
        };
        Gate {
            name,
            limits,
            ruled,
            state: Mutex::new(state),
            freed: Notify::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A place among the destination's running deliveries, waiting while all are taken;
    /// `Err` at once while the destination is paused.
    pub async fn acquire(self: &Arc<Self>) -> Result<Slot, Paused> {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(p) = self.paused(&mut st, Instant::now()) {
                    return Err(p);
                }
                if st.active < st.limit {
                    st.active += 1;
                    return Ok(Slot { gate: self.clone() });
                }
            }
            notified.await;
        }
    }

    /// Waits for this destination's next start time (`messages_per_minute`); `Err` if it
    /// was paused meanwhile.
    pub async fn pace(&self) -> Result<(), Paused> {
        let Some(interval) = self.limits.interval else {
            return self.check();
        };
        let at = {
            let mut st = self.lock();
            let at = st.next_start.max(Instant::now());
            st.next_start = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
        self.check()
    }

    /// `Err` while paused (counting one recipient held back).
    pub fn check(&self) -> Result<(), Paused> {
        let mut st = self.lock();
        match self.paused(&mut st, Instant::now()) {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    fn paused(&self, st: &mut GateState, now: Instant) -> Option<Paused> {
        let until = st.paused_until.filter(|u| *u > now)?;
        st.held_back += 1;
        Some(Paused {
            destination: self.name.clone(),
            remaining: until - now,
            cause: st.cause.clone(),
        })
    }

    /// The destination answered with a throttling reply: pause, and lower the limit once
    /// per back-off period.
    pub fn throttled(&self, reply: &Reply) {
        let now = Instant::now();
        let backoff = self.limits.backoff;
        let mut st = self.lock();
        st.paused_until = Some(now + backoff);
        st.cause = format!(
            "{} {}",
            reply.code,
            reply.text.chars().take(200).collect::<String>()
        );
        st.throttled += 1;
        st.successes = 0;
        if st.last_cut.is_none_or(|t| now >= t + backoff) {
            st.last_cut = Some(now);
            st.limit = (st.limit / 2).max(1);
            tracing::warn!(destination = %self.name, limit = st.limit, pause_s = backoff.as_secs(), reply = %st.cause, "destination is throttling: fewer connections, new ones paused");
        }
        drop(st);
        self.freed.notify_waiters();
    }

    /// A transaction was accepted: after [`RECOVER_EVERY`] of them (after the pause) the
    /// limit rises by one.
    pub fn succeeded(&self) {
        let mut st = self.lock();
        // Transactions finishing during the pause were started before the throttle.
        if st.limit >= self.limits.connections
            || st.paused_until.is_some_and(|u| u > Instant::now())
        {
            return;
        }
        st.successes += 1;
        if st.successes >= RECOVER_EVERY {
            st.successes = 0;
            st.limit += 1;
            drop(st);
            self.freed.notify_one();
        }
    }

    fn is_idle(&self) -> bool {
        let st = self.lock();
        st.active == 0
            && st.limit == self.limits.connections
            && st.paused_until.is_none_or(|u| u <= Instant::now())
    }

    fn stats(&self) -> GateStats {
        let st = self.lock();
        let now = Instant::now();
        GateStats {
            name: self.name.clone(),
            ruled: self.ruled,
            active: st.active,
            limit: st.limit,
            connections: self.limits.connections,
            throttled: st.throttled,
            held_back: st.held_back,
            paused_for: st
                .paused_until
                .map_or(Duration::ZERO, |u| u.saturating_duration_since(now)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Words with which receiving servers ask a sender to slow down.
const THROTTLE_WORDS: &[&str] = &[
    "rate limit",
    "ratelimit",
    "rate-limit",
    "too many connections",
    "too many concurrent",
    "too many sessions",
    "too many messages",
    "try again later",
    "try later",
    "throttl",
    "unexpected volume",
    "slow down",
    "sending rate",
    "at a rate",
];

/// True for a server's reply that asks the sender to slow down: a 421 (the server closes
/// the session), RFC 7372's 4.7.28-style rate codes, or a 4xx whose text says so.
/// Greylisting ("try again later" from a new-sender filter) is not throttling.
pub fn is_throttle(reply: &Reply) -> bool {
    if reply.synthetic || !(400..500).contains(&reply.code) {
        return false;
    }
    let text = reply.text.to_ascii_lowercase();
    if text.contains("greylist") || text.contains("graylist") || text.contains("grey-list") {
        return false;
    }
    if reply.code == 421 {
        return true;
    }
    let rate_code = reply
        .enhanced
        .is_some_and(|e| e.subject == 7 && e.detail == 28);
    rate_code || THROTTLE_WORDS.iter().any(|w| text.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Shaping;
    use crate::model::EnhancedCode;

    fn cfg(rules: &[(&str, Shaping)]) -> DeliveryConfig {
        let mut c = DeliveryConfig {
            per_domain_concurrency: 4,
            ..DeliveryConfig::default()
        };
        c.shaping = rules
            .iter()
            .map(|(k, s)| (k.to_string(), s.clone()))
            .collect();
        c
    }

    fn reply(code: u16, e: Option<(u8, u16, u16)>, text: &str) -> Reply {
        Reply::remote(code, e.map(|(c, s, d)| EnhancedCode::new(c, s, d)), text)
    }

    #[test]
    fn throttling_replies_are_told_from_other_soft_failures() {
        assert!(is_throttle(&reply(
            421,
            Some((4, 7, 0)),
            "Try again later, closing connection"
        )));
        assert!(is_throttle(&reply(
            421,
            Some((4, 7, 28)),
            "Our system has detected an unusual rate of unsolicited mail"
        )));
        assert!(is_throttle(&reply(451, Some((4, 7, 28)), "rate limited")));
        assert!(is_throttle(&reply(
            450,
            Some((4, 2, 1)),
            "The user you are trying to contact is receiving mail at a rate that prevents additional messages"
        )));
        assert!(is_throttle(&reply(
            452,
            None,
            "Too many connections from your IP"
        )));
        assert!(!is_throttle(&reply(
            451,
            Some((4, 7, 1)),
            "Greylisted, please try again later"
        )));
        assert!(!is_throttle(&reply(452, Some((4, 2, 2)), "Mailbox full")));
        assert!(
            !is_throttle(&reply(550, Some((5, 7, 28)), "rate limited")),
            "a 5xx is a refusal, not a request to slow down"
        );
        let mut synthetic = reply(421, None, "connection timed out");
        synthetic.synthetic = true;
        assert!(!is_throttle(&synthetic));
    }

    #[test]
    fn the_longest_matching_rule_names_the_destination_by_domain_or_mx_host() {
        let one = Shaping {
            connections: Some(2),
            ..Shaping::default()
        };
        let s = Shaper::new(&cfg(&[
            ("google.com", one.clone()),
            ("mail.google.com", one.clone()),
            ("outlook.com", one),
        ]));
        assert_eq!(
            s.gate("gmail.com", Some("gmail-smtp-in.l.google.com"))
                .name(),
            "google.com"
        );
        assert_eq!(
            s.gate("x.example", Some("aspmx.mail.google.com")).name(),
            "mail.google.com"
        );
        assert_eq!(s.gate("OUTLOOK.com", None).name(), "outlook.com");
        assert_eq!(
            s.gate("notgoogle.com", Some("mx.notgoogle.com")).name(),
            "notgoogle.com"
        );
        assert!(Arc::ptr_eq(
            &s.gate("gmail.com", Some("alt1.gmail-smtp-in.l.google.com")),
            &s.gate("googlemail.com", Some("gmail-smtp-in.l.google.com"))
        ));
    }

    #[tokio::test]
    async fn a_throttle_halves_the_limit_once_pauses_and_successes_restore_it() {
        let s = Shaper::new(&cfg(&[]));
        let gate = s.gate("example.com", None);
        let slots: Vec<Slot> = futures_util::future::join_all((0..4).map(|_| gate.acquire()))
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let throttle = reply(421, Some((4, 7, 28)), "slow down");
        gate.throttled(&throttle);
        gate.throttled(&throttle); // a second in-flight copy hears the same: one cut only
        let st = gate.stats();
        assert_eq!((st.limit, st.throttled, st.active), (2, 2, 4));
        let paused = gate.acquire().await.expect_err("paused");
        assert_eq!(paused.destination, "example.com");
        assert!(paused.cause.contains("421 slow down"), "{paused:?}");
        assert!(gate.check().is_err());
        drop(slots);
        gate.lock().paused_until = None; // the back-off has passed
        for _ in 0..RECOVER_EVERY {
            gate.succeeded();
        }
        assert_eq!(gate.stats().limit, 3);
        for _ in 0..RECOVER_EVERY * 5 {
            gate.succeeded();
        }
        assert_eq!(
            gate.stats().limit,
            4,
            "never above the configured connections"
        );
        assert_eq!(gate.stats().held_back, 2);
    }

    #[tokio::test]
    async fn a_full_gate_waits_for_a_free_place() {
        let s = Shaper::new(&cfg(&[(
            "example.com",
            Shaping {
                connections: Some(1),
                ..Shaping::default()
            },
        )]));
        let gate = s.gate("example.com", None);
        let first = gate.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.acquire().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second delivery waits while the only place is taken"
        );
        drop(first);
        waiting.await.unwrap().unwrap();
        assert_eq!(gate.stats().active, 0);
    }

    #[tokio::test]
    async fn messages_per_minute_spaces_the_starts() {
        let s = Shaper::new(&cfg(&[(
            "example.com",
            Shaping {
                messages_per_minute: Some(600),
                ..Shaping::default()
            },
        )]));
        let gate = s.gate("example.com", None);
        let first = gate.lock().next_start.max(Instant::now());
        for _ in 0..3 {
            gate.pace().await.unwrap();
        }
        let next = gate.lock().next_start;
        assert!(
            next >= first + Duration::from_millis(300),
            "three starts book three 100 ms intervals"
        );
        assert!(
            Instant::now() >= first + Duration::from_millis(200),
            "the third start waited for its turn"
        );
    }
}
