//! Per-IP bookkeeping for the SMTP listener, after Postfix's anvil: how many
//! connections each address has open, how many it opened in the current rate
//! window, and its AUTH failures with a lockout once there are too many
//! (the fail2ban-style blocking Stalwart does in-process).
//!
//! Memory is bounded: at most `max_tracked` addresses are kept; when full, entries
//! with nothing left to remember go first, then the least recently seen idle one.
//! Every method takes `now`, so tests drive time without sleeping.
//! Addresses in `smtp.relay_networks` (the app) are exempt from the connection
//! limits, so an outside host cannot get the app refused; AUTH lockout applies to all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::SmtpConfig;

/// Addresses tracked at most (about 64 bytes each).
pub const MAX_TRACKED: usize = 50_000;

/// Why a connection is refused; the text goes after `421 4.7.0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Too many connections from your address (limit {limit})")]
    TooManyConnections { limit: u32 },
    #[error("Too many connections per minute from your address")]
    TooFast { limit: u32 },
}

/// The limits, from [`SmtpConfig`]; zero turns a limit off.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: u32,
    pub max_rate: u32,
    pub rate_window: Duration,
    pub auth_max_failures: u32,
    pub auth_lockout: Duration,
    pub max_tracked: usize,
    pub exempt: Vec<IpNet>,
}

impl Limits {
    pub fn from_config(cfg: &SmtpConfig) -> Self {
        Limits {
            max_connections: cfg.max_connections_per_ip,
            max_rate: cfg.max_connection_rate_per_ip,
            rate_window: cfg.connection_rate_window.0,
            auth_max_failures: cfg.auth_max_failures,
            auth_lockout: cfg.auth_lockout.0,
            max_tracked: MAX_TRACKED,
            exempt: cfg.relay_networks.clone(),
        }
    }
}

/// What is remembered about one address.
#[derive(Debug, Clone)]
struct Entry {
    active: u32,
    window_start: Instant,
    window_count: u32,
    /// A refusal was already logged in this window.
    refusal_logged: bool,
    failures: u32,
    first_failure: Instant,
    locked_until: Option<Instant>,
    last_seen: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            active: 0,
            window_start: now,
            window_count: 0,
            refusal_logged: false,
            failures: 0,
            first_failure: now,
            locked_until: None,
            last_seen: now,
        }
    }

    /// Nothing here still matters at `now`.
    fn stale(&self, now: Instant, l: &Limits) -> bool {
        self.active == 0
            && now >= self.window_start + l.rate_window
            && !self.locked(now)
            && (self.failures == 0 || now >= self.first_failure + l.auth_lockout)
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

/// The outcome of a refused connection, for the caller's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub why: Refusal,
    /// First refusal of this address in the current window (log it; stay quiet after).
    pub first: bool,
}

/// The shared per-IP table.
#[derive(Debug)]
pub struct Anvil {
    limits: Limits,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

impl Anvil {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Anvil {
            limits,
            table: Mutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.limits.exempt.iter().any(|n| n.contains(&ip))
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.table().len()
    }

    /// Counts a new connection from `ip`: a permit that releases the slot when dropped,
    /// or why it is refused (refused attempts count towards the rate too).
    pub fn connect(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Permit, Refused> {
        if self.exempt(ip) {
            return Ok(Permit { anvil: None, ip });
        }
        let l = &self.limits;
        let mut table = self.table();
        let e = entry(&mut table, ip, now, l);
        if now >= e.window_start + l.rate_window {
            e.window_start = now;
            e.window_count = 0;
            e.refusal_logged = false;
        }
        e.window_count = e.window_count.saturating_add(1);
        let why = if l.max_rate > 0 && e.window_count > l.max_rate {
            Some(Refusal::TooFast { limit: l.max_rate })
        } else if l.max_connections > 0 && e.active >= l.max_connections {
            Some(Refusal::TooManyConnections {
                limit: l.max_connections,
            })
        } else {
            None
        };
        if let Some(why) = why {
            let first = !std::mem::replace(&mut e.refusal_logged, true);
            return Err(Refused { why, first });
        }
        e.active += 1;
        Ok(Permit {
            anvil: Some(self.clone()),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        if let Some(e) = self.table().get_mut(&ip) {
            e.active = e.active.saturating_sub(1);
        }
    }

    /// `ip` may not try AUTH now.
    pub fn auth_locked(&self, ip: IpAddr, now: Instant) -> bool {
        self.table().get(&ip).is_some_and(|e| e.locked(now))
    }

    /// Records a failed AUTH; true when this failure starts a lockout (log that once).
    pub fn auth_failed(&self, ip: IpAddr, now: Instant) -> bool {
        let l = &self.limits;
        if l.auth_max_failures == 0 {
            return false;
        }
        let mut table = self.table();
        let e = entry(&mut table, ip, now, l);
        if e.failures == 0 || now >= e.first_failure + l.auth_lockout {
            e.failures = 0;
            e.first_failure = now;
        }
        e.failures += 1;
        if e.failures >= l.auth_max_failures && !e.locked(now) {
            e.locked_until = Some(now + l.auth_lockout);
            e.failures = 0;
            return true;
        }
        false
    }

    /// A successful AUTH forgets the address's failures.
    pub fn auth_succeeded(&self, ip: IpAddr) {
        if let Some(e) = self.table().get_mut(&ip) {
            e.failures = 0;
        }
    }
}

/// The entry for `ip`, made room for if the table is full.
fn entry<'a>(
    table: &'a mut HashMap<IpAddr, Entry>,
    ip: IpAddr,
    now: Instant,
    l: &Limits,
) -> &'a mut Entry {
    if !table.contains_key(&ip) && table.len() >= l.max_tracked {
        make_room(table, now, l);
    }
    let e = table.entry(ip).or_insert_with(|| Entry::new(now));
    e.last_seen = now;
    e
}

/// Drops every stale entry; if none was, the least recently seen one without open connections.
fn make_room(table: &mut HashMap<IpAddr, Entry>, now: Instant, l: &Limits) {
    table.retain(|_, e| !e.stale(now, l));
    if table.len() < l.max_tracked {
        return;
    }
    let oldest = table
        .iter()
        .filter(|(_, e)| e.active == 0)
        .min_by_key(|(_, e)| e.last_seen)
        .map(|(ip, _)| *ip);
    if let Some(ip) = oldest {
        table.remove(&ip);
    }
}

/// One admitted connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    anvil: Option<Arc<Anvil>>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(a) = &self.anvil {
            a.release(self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 2,
            max_rate: 5,
            rate_window: Duration::from_secs(60),
            auth_max_failures: 3,
            auth_lockout: Duration::from_secs(900),
            max_tracked: 4,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn concurrency_is_per_address_and_released_on_drop() {
        let a = Anvil::new(limits());
        let t = Instant::now();
        let p1 = a.connect(ip(1), t).unwrap();
        let _p2 = a.connect(ip(1), t).unwrap();
        let err = a.connect(ip(1), t).unwrap_err();
        assert_eq!(
            err,
            Refused {
                why: Refusal::TooManyConnections { limit: 2 },
                first: true
            }
        );
        assert!(
            !a.connect(ip(1), t).unwrap_err().first,
            "only the first refusal is logged"
        );
        assert!(a.connect(ip(2), t).is_ok(), "another address is served");
        drop(p1);
        assert!(a.connect(ip(1), t).is_ok());
    }

    #[test]
    fn rate_window_resets() {
        let a = Anvil::new(limits());
        let t = Instant::now();
        for _ in 0..5 {
            drop(a.connect(ip(1), t).unwrap());
        }
        assert_eq!(
            a.connect(ip(1), t).unwrap_err().why,
            Refusal::TooFast { limit: 5 }
        );
        assert!(a.connect(ip(1), t + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn relay_networks_are_exempt() {
        let a = Anvil::new(limits());
        let t = Instant::now();
        let held: Vec<_> = (0..50)
            .map(|_| a.connect("10.1.2.3".parse().unwrap(), t).unwrap())
            .collect();
        assert_eq!(held.len(), 50);
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn auth_lockout_starts_once_and_expires() {
        let a = Anvil::new(limits());
        let t = Instant::now();
        assert!(!a.auth_failed(ip(1), t));
        assert!(!a.auth_failed(ip(1), t));
        assert!(a.auth_failed(ip(1), t), "the third failure locks");
        assert!(a.auth_locked(ip(1), t));
        assert!(
            !a.auth_failed(ip(1), t),
            "no second lockout line while locked"
        );
        assert!(!a.auth_locked(ip(2), t));
        assert!(!a.auth_locked(ip(1), t + Duration::from_secs(901)));
    }

    #[test]
    fn success_forgets_failures() {
        let a = Anvil::new(limits());
        let t = Instant::now();
        a.auth_failed(ip(1), t);
        a.auth_failed(ip(1), t);
        a.auth_succeeded(ip(1));
        assert!(!a.auth_failed(ip(1), t));
        assert!(!a.auth_locked(ip(1), t));
    }

    #[test]
    fn table_stays_bounded() {
        let a = Anvil::new(limits());
        let t = Instant::now();
        let _held = a.connect(ip(1), t).unwrap();
        for n in 2..200 {
            let _ = a.connect(ip(n), t + Duration::from_millis(n as u64));
        }
        assert!(a.tracked() <= 4, "{}", a.tracked());
        let _second = a.connect(ip(1), t).unwrap();
        assert_eq!(
            a.connect(ip(1), t).unwrap_err().why,
            Refusal::TooManyConnections { limit: 2 },
            "open connections are never evicted"
        );
    }
}
