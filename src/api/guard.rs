//! Request guards: the bearer token (compared in constant time, never taken
//! from the query string) and the `Host` check against DNS rebinding.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::config::Config;
use crate::daemon::state::{StateError, load_or_create_secret};

/// The API token: `api.token`, else the one kept in `data_dir/api.token` (created, mode 0600).
pub fn api_token(cfg: &Config) -> Result<String, StateError> {
    match &cfg.api.token {
        Some(t) => Ok(t.expose().to_string()),
        None => load_or_create_secret(&cfg.server.data_dir.join("api.token")),
    }
}

/// What the guards check against.
#[derive(Clone)]
pub struct Guard {
    token_digest: Arc<[u8]>,
    hosts: Arc<Vec<String>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Loads the token; when that fails every request is refused (and the error logged).
    pub fn new(cfg: &Config) -> Guard {
        let token = api_token(cfg).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot load the API token: every API request will be refused");
            crate::store::hex(&rand::random::<[u8; 32]>())
        });
        let mut hosts = vec![cfg.api.listen.to_string().to_ascii_lowercase()];
        if let Some(h) = cfg.api.url.as_deref().and_then(url_host) {
            hosts.push(h);
        }
        Guard {
            token_digest: Arc::from(crate::model::constant_time::sha256(token.as_bytes()).as_ref()),
            hosts: Arc::new(hosts),
        }
    }

    /// Constant-time check of a presented token (both sides hashed to equal length first).
    pub fn token_ok(&self, presented: &str) -> bool {
        crate::model::constant_time::eq(
            crate::model::constant_time::sha256(presented.as_bytes()).as_ref(),
            &self.token_digest,
        )
    }

    /// True for the configured address(es) and loopback names on any port.
    pub fn host_ok(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.hosts.contains(&host) {
            return true;
        }
        let name = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((v6, port)) if port.is_empty() || is_port(port) => format!("[{v6}]"),
                _ => return false,
            },
            None => match host.rsplit_once(':') {
                Some((n, port)) if is_port(port) => n.to_string(),
                Some(_) => return false,
                None => host.clone(),
            },
        };
        matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")
    }
}

fn is_port(p: &str) -> bool {
    p.strip_prefix(':')
        .is_some_and(|d| !d.is_empty() && d.len() <= 5 && d.bytes().all(|b| b.is_ascii_digit()))
        || (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `host[:port]` of an `http://` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Refuses requests whose `Host` is not ours (403).
pub async fn require_host(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if g.host_ok(&h) => next.run(req).await,
        Some(h) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!("Host {h:?} is not this API's address"),
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "a Host header is required",
        )
        .into_response(),
    }
}

/// Refuses requests without `Authorization: Bearer <token>` (401).
pub async fn require_token(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    match presented {
        Some(t) if g.token_ok(&t) => next.run(req).await,
        _ => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid Authorization: Bearer token is required",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_tokens() {
        let mut cfg = Config::default();
        cfg.api.token = Some(crate::config::Secret("s3cret".into()));
        cfg.api.url = Some("http://relay.internal:8025/".into());
        let g = Guard::new(&cfg);
        for ok in [
            "127.0.0.1:8025",
            "localhost",
            "LOCALHOST:1234",
            "[::1]:9",
            "127.0.0.1",
            "relay.internal:8025",
        ] {
            assert!(g.host_ok(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8025",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8025",
            "[::1]x",
            "localhost:abc",
            "",
        ] {
            assert!(!g.host_ok(bad), "{bad}");
        }
        assert!(g.token_ok("s3cret"));
        assert!(!g.token_ok("s3cre") && !g.token_ok("s3cretx") && !g.token_ok(""));
    }
}
