//! Idle SMTP connections kept for the next transaction to the same next hop,
//! keyed by hop label; expired ones are handed back for QUIT by a reaper task.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use crate::delivery::outbound::client::Connection;

/// How long an idle connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most idle connections kept per next hop.
pub const MAX_IDLE_PER_HOP: usize = 4;

/// The idle connections.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<(Connection, Instant)>>>,
    /// Most idle connections in all (the global concurrency cap).
    max_total: usize,
}

impl Pool {
    pub fn new(max_total: usize) -> Pool {
        Pool {
            idle: Mutex::default(),
            max_total,
        }
    }

    /// The most recently parked, unexpired connection to `key`.
    pub fn take(&self, key: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        match list.pop() {
            Some((conn, since)) if since.elapsed() < IDLE_TIMEOUT => Some(conn),
            Some(stale) => {
                list.push(stale); // the newest is stale, so all are: left for the reaper's QUIT
                None
            }
            None => None,
        }
    }

    /// Parks `conn`; gives it back when the pool is full (the caller closes it).
    pub fn put(&self, key: String, conn: Connection) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = idle.values().map(Vec::len).sum();
        let list = idle.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_HOP || total >= self.max_total {
            return Some(conn);
        }
        list.push((conn, Instant::now()));
        None
    }

    /// Removes and returns every expired connection.
    pub fn expired(&self) -> Vec<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for list in idle.values_mut() {
            let (old, fresh): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|(_, since)| since.elapsed() >= IDLE_TIMEOUT);
            *list = fresh;
            out.extend(old.into_iter().map(|(c, _)| c));
        }
        idle.retain(|_, list| !list.is_empty());
        out
    }
}

/// Closes expired connections with QUIT until the pool is dropped.
pub async fn reap(pool: Weak<Pool>, quit_timeout: Duration) {
    loop {
        tokio::time::sleep(IDLE_TIMEOUT / 3).await;
        let Some(pool) = pool.upgrade() else { return };
        let expired = pool.expired();
        drop(pool);
        for conn in expired {
            conn.quit(quit_timeout).await;
        }
    }
}
