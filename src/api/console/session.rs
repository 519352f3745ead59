//! Signed-in sessions, kept in memory (a restart signs everyone out): a random
//! 32-byte id in the `rebound_session` cookie (`HttpOnly; SameSite=Strict;
//! Path=/ui`, `Secure` over TLS), the user and role, the session's CSRF token, and
//! a one-shot notice shown on the next page. A session ends after
//! [`IDLE`] without a request, or [`MAX_AGE`] after sign-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Role;

/// The session cookie's name.
pub const COOKIE: &str = "rebound_session";
/// A session unused this long is signed out.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once; signing in beyond it ends the least recently used.
pub const MAX_SESSIONS: usize = 10_000;

/// A notice for the next page: (is it an error, text).
pub type Notice = (bool, String);

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub started: Instant,
    pub last_seen: Instant,
    pub notice: Option<Notice>,
}

/// What a request learns about its session.
#[derive(Debug, Clone)]
pub struct Who {
    /// The session id (from the cookie), to set a notice.
    pub id: String,
    pub user: String,
    pub role: Role,
    pub csrf: String,
    /// The notice left by the previous request, taken.
    pub notice: Option<Notice>,
}

/// Every session, keyed by the SHA-256 of its id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// How many sessions there are (`None` while the map is busy); never their ids or tokens.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.map.try_lock().map(|m| m.len()).ok();
        f.debug_struct("Sessions").field("open", &open).finish()
    }
}

fn key(id: &str) -> [u8; 32] {
    let d = crate::model::constant_time::sha256(id.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

impl Sessions {
    /// Starts a session; returns its id (the cookie value).
    pub fn start(&self, user: &str, role: Role, now: Instant) -> String {
        let id = super::csrf::new_token();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        let s = Session {
            user: user.to_string(),
            role,
            csrf: super::csrf::new_token(),
            started: now,
            last_seen: now,
            notice: None,
        };
        map.insert(key(&id), s);
        id
    }

    /// The live session `id` names (touched, its notice taken), or `None`.
    pub fn get(&self, id: &str, now: Instant) -> Option<Who> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let k = key(id);
        let s = map.get_mut(&k)?;
        if !alive(s, now) {
            map.remove(&k);
            return None;
        }
        s.last_seen = now;
        Some(Who {
            id: id.to_string(),
            user: s.user.clone(),
            role: s.role,
            csrf: s.csrf.clone(),
            notice: s.notice.take(),
        })
    }

    /// Leaves a notice for the session's next page.
    pub fn notify(&self, id: &str, notice: Notice) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get_mut(&key(id)) {
            s.notice = Some(notice);
        }
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(id));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.last_seen) < IDLE
        && now.saturating_duration_since(s.started) < MAX_AGE
}

/// The `Set-Cookie` value for a cookie `name=value` on `path`; `max_age` 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
    max_age: Option<u64>,
) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}
