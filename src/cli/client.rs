//! The CLI's HTTP/1.1 client for the admin API (hyper-util's legacy client):
//! base URL and token from the config, JSON in and out, and errors that say
//! whether the daemon could not be reached or refused the request.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::Config;

/// Longest wait for one API call.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection (exit 1).
    #[error("cannot reach rebound at {url}: is `rebound serve` running? ({detail})")]
    Unreachable { url: String, detail: String },
    /// The daemon answered with an error.
    #[error("{message} (HTTP {status}, {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Local problem before any request (exit 1): no token, bad URL.
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// 2 for bad usage or input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Api {
                status: 400 | 404 | 409 | 413 | 415 | 422,
                ..
            } => 2,
            _ => 1,
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::Setup(format!("the daemon sent something that is not JSON: {e}"))
        })
    }
}

/// A configured client.
pub struct ApiClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// The base URL only; never the token.
impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `api.url`, else `http://<api.listen>` (an unspecified listen address means loopback).
pub fn base_url(cfg: &Config) -> String {
    if let Some(u) = &cfg.api.url {
        return u.trim_end_matches('/').to_string();
    }
    url_for(cfg.api.listen)
}

/// `http://<addr>`, an unspecified address meaning loopback.
pub fn url_for(mut a: std::net::SocketAddr) -> String {
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        });
    }
    format!("http://{a}")
}

/// `api.token`, else the daemon's `data_dir/api.token` (never created here).
pub fn token(cfg: &Config) -> Result<String, ClientError> {
    if let Some(t) = &cfg.api.token {
        return Ok(t.expose().to_string());
    }
    let path = cfg.server.data_dir.join("api.token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(ClientError::Setup(format!("{} is empty", path.display()))),
        Err(e) => Err(ClientError::Setup(format!(
            "no API token: api.token is not set and {} cannot be read ({e}); run as the daemon's user or set api.token",
            path.display()
        ))),
    }
}

impl ApiClient {
    pub fn new(cfg: &Config) -> Result<ApiClient, ClientError> {
        let base = base_url(cfg);
        if !base.starts_with("http://") {
            return Err(ClientError::Setup(format!(
                "api.url {base:?}: only http:// URLs are supported"
            )));
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(ApiClient {
            base,
            token: token(cfg)?,
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; `body` is `(content type, bytes)`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/json");
        let bytes = match body {
            Some((ct, b)) => {
                req = req.header("content-type", ct);
                b
            }
            None => Vec::new(),
        };
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| ClientError::Setup(format!("bad request for {url}: {e}")))?;
        let unreachable = |detail: String| ClientError::Unreachable {
            url: self.base.clone(),
            detail,
        };
        let resp = tokio::time::timeout(TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        if (200..300).contains(&status) {
            return Ok(Answer {
                status,
                content_type,
                body,
            });
        }
        Err(api_error(status, &body))
    }

    pub async fn get(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.send(Method::GET, path, None).await?.json()
    }

    /// Sends a JSON body (or none) and returns the JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send(method, path, body).await?.json()
    }
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or("error").to_string();
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    ClientError::Api {
        status,
        code,
        message,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `?k=v&...` from the pairs whose value is set.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}
