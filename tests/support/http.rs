//! The one HTTP/1.1 client of the integration tests: a request written by hand on a raw
//! socket (so tests control every header), the response read to EOF and parsed (chunked
//! bodies decoded). [`raw`] is the async entry point, [`raw_blocking`] the same request from
//! a thread without a runtime; [`api_request`], [`api_get`] and [`api_status`] are the
//! admin-API shorthands over them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::TOKEN;

/// Guard against hangs only; never asserted on.
const IO_GUARD: Duration = Duration::from_secs(20);

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

    /// The first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header `name` (lower case), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// The request bytes: `Connection: close` and `Content-Length` first, then `headers` as
/// given (Host included by the caller when wanted), then the body.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One raw HTTP/1.1 request on a new connection.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(method, path, headers, body))
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(IO_GUARD, s.read_to_end(&mut buf))
        .await
        .expect("response guard")
        .unwrap();
    parse(&buf).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf)))
}

/// [`raw`] from a thread without a runtime; `Err` names what went wrong.
pub fn raw_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, IO_GUARD).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_GUARD))
        .map_err(|e| e.to_string())?;
    s.write_all(&request(method, path, headers, body))
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    parse(&buf)
}

fn parse(buf: &[u8]) -> Result<Resp, String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
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
    Ok(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
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

/// One request to the admin API: `(status, body)`. `token` adds the bearer header; the body
/// is sent as JSON.
pub async fn api_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h = vec![("Host", "localhost"), ("Content-Type", "application/json")];
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    let r = raw(addr, method, path, &h, body.as_bytes()).await;
    (r.status, r.body)
}

/// `GET path` on the admin API with the bearer token, from a thread: status and body.
pub fn api_status(api: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let host = api.to_string();
    let auth = format!("Bearer {TOKEN}");
    let r = raw_blocking(
        api,
        "GET",
        path,
        &[("Host", &host), ("Authorization", &auth)],
        b"",
    )?;
    Ok((r.status, r.body))
}

/// `GET path` on the admin API with the bearer token, from a thread: the body on 200.
pub fn api_get(api: SocketAddr, path: &str) -> Result<String, String> {
    match api_status(api, path)? {
        (200, body) => Ok(body),
        (code, body) => Err(format!("{code}: {body}")),
    }
}
