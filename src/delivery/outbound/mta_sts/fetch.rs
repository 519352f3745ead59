//! Fetching a policy (RFC 8461 §3.3): one bounded HTTP/1.1 GET of
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` over tokio-rustls with a
//! validated certificate. Redirects are not followed, the status must be 200,
//! the media type `text/plain`, and at most [`MAX_RESPONSE_BYTES`] are read
//! (Content-Length, chunked or until close); the whole exchange has a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::delivery::outbound::mta_sts::policy::MAX_POLICY_BYTES;

/// Most bytes read of a response, headers included.
pub const MAX_RESPONSE_BYTES: usize = MAX_POLICY_BYTES + 16 * 1024;

/// Why no policy body came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("HTTP status {0}{note}", note = redirect_note(*.0))]
    Status(u16),
    #[error("Content-Type {0:?} is not text/plain")]
    ContentType(String),
}

fn redirect_note(status: u16) -> &'static str {
    if (300..400).contains(&status) {
        " (redirects are not followed, RFC 8461 §3.3)"
    } else {
        ""
    }
}

/// The path of the policy file.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// GETs the policy of `host` (`mta-sts.DOMAIN`) from the first of `addrs` that answers,
/// all within `deadline`. Returns the body.
pub async fn fetch(
    host: &str,
    addrs: &[SocketAddr],
    tls: Arc<rustls::ClientConfig>,
    deadline: Duration,
) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(deadline, fetch_any(host, addrs, tls))
        .await
        .map_err(|_| FetchError::Timeout(deadline))?
}

async fn fetch_any(
    host: &str,
    addrs: &[SocketAddr],
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, FetchError> {
    let mut last = FetchError::Connect(host.to_string(), "no address".into());
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return get(host, tcp, tls).await,
            Err(e) => last = FetchError::Connect(format!("{host} ({addr})"), e.to_string()),
        }
    }
    Err(last)
}

async fn get(
    host: &str,
    tcp: TcpStream,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, FetchError> {
    let tls_err = |e: String| FetchError::Tls(host.to_string(), e);
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_err(e.to_string()))?;
    let mut stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_err(e.to_string()))?;
    let request = format!(
        "GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rebound/{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| tls_err(e.to_string()))?;
    let mut raw = Vec::with_capacity(4096);
    let mut buf = [0u8; 8192];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            // A peer that closes without close_notify: what was read so far is judged below.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(tls_err(e.to_string())),
        };
        if n == 0 {
            break;
        }
        if raw.len() + n > MAX_RESPONSE_BYTES {
            return Err(FetchError::TooLarge);
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(result) = complete(&raw) {
            return result;
        }
    }
    parse_response(&raw, true)
}

/// `Some` once `raw` holds a whole response (known length or chunked); else read on.
fn complete(raw: &[u8]) -> Option<Result<Vec<u8>, FetchError>> {
    match parse_response(raw, false) {
        Err(FetchError::Malformed("truncated")) => None,
        r => Some(r),
    }
}

/// The body of an HTTP/1.1 response in `raw`, after checking status and Content-Type.
/// `closed`: the peer closed the connection, so a body without a length ends here.
/// A response cut short is `Malformed("truncated")`.
pub fn parse_response(raw: &[u8], closed: bool) -> Result<Vec<u8>, FetchError> {
    let truncated = FetchError::Malformed("truncated");
    let end = memchr::memmem::find(raw, b"\r\n\r\n").ok_or(truncated.clone())?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|_| FetchError::Malformed("the header is not text"))?;
    let mut lines = head.split("\r\n");
    let status = status_code(lines.next().unwrap_or(""))?;
    let headers: Vec<(String, &str)> = lines
        .map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
                .ok_or(FetchError::Malformed("a header line has no colon"))
        })
        .collect::<Result<_, _>>()?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let media = header("content-type").unwrap_or("");
    if !media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("text/plain")
    {
        return Err(FetchError::ContentType(media.to_string()));
    }
    let body = &raw[end + 4..];
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return dechunk(body);
    }
    match header("content-length") {
        Some(v) => {
            let len: usize = v
                .parse()
                .map_err(|_| FetchError::Malformed("bad Content-Length"))?;
            if len > MAX_POLICY_BYTES {
                return Err(FetchError::TooLarge);
            }
            match body.len() {
                n if n < len => Err(truncated),
                _ => Ok(body[..len].to_vec()),
            }
        }
        None if closed => Ok(body.to_vec()),
        None => Err(truncated),
    }
}

/// `HTTP/1.x NNN reason`.
fn status_code(line: &str) -> Result<u16, FetchError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(FetchError::Malformed("bad status line"));
    }
    code.parse()
        .map_err(|_| FetchError::Malformed("bad status line"))
}

/// Decodes a chunked body (RFC 9112 §7.1), ignoring extensions and trailers.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, FetchError> {
    let truncated = FetchError::Malformed("truncated");
    let mut out = Vec::new();
    loop {
        let eol = memchr::memmem::find(rest, b"\r\n").ok_or(truncated.clone())?;
        let size_text = std::str::from_utf8(&rest[..eol])
            .map_err(|_| FetchError::Malformed("bad chunk size"))?;
        let hex = size_text.split(';').next().unwrap_or("").trim();
        if hex.is_empty() || hex.len() > 8 {
            return Err(FetchError::Malformed("bad chunk size"));
        }
        let size =
            usize::from_str_radix(hex, 16).map_err(|_| FetchError::Malformed("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if out.len() + size > MAX_POLICY_BYTES {
            return Err(FetchError::TooLarge);
        }
        if rest.len() < size + 2 {
            return Err(truncated);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(FetchError::Malformed("a chunk does not end in CRLF"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.a.test\r\nmax_age: 86400\r\n";

    #[test]
    fn content_length_chunked_and_until_close() {
        let r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{POLICY}",
            POLICY.len()
        );
        assert_eq!(
            parse_response(r.as_bytes(), false).unwrap(),
            POLICY.as_bytes()
        );
        let chunked = "HTTP/1.1 200 OK\r\ncontent-type: TEXT/PLAIN\r\nTransfer-Encoding: chunked\r\n\r\n10;ext=1\r\nversion: STSv1\r\n\r\n5\r\nmode:\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked.as_bytes(), false).unwrap(),
            b"version: STSv1\r\nmode:"
        );
        let close = format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{POLICY}");
        assert_eq!(
            parse_response(close.as_bytes(), false),
            Err(FetchError::Malformed("truncated"))
        );
        assert_eq!(
            parse_response(close.as_bytes(), true).unwrap(),
            POLICY.as_bytes()
        );
    }

    #[test]
    fn redirects_errors_and_wrong_types_are_refused() {
        let redirect =
            "HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.test/\r\nContent-Length: 0\r\n\r\n";
        let err = parse_response(redirect.as_bytes(), true).unwrap_err();
        assert_eq!(err, FetchError::Status(301));
        assert!(
            err.to_string().contains("redirects are not followed"),
            "{err}"
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", true),
            Err(FetchError::Status(404))
        );
        let html = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(
            parse_response(html.as_bytes(), true),
            Err(FetchError::ContentType("text/html".into()))
        );
        let untyped = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(
            parse_response(untyped.as_bytes(), true),
            Err(FetchError::ContentType(String::new()))
        );
        let big = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(
            parse_response(big.as_bytes(), false),
            Err(FetchError::TooLarge)
        );
        for bad in [
            "SMTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(
                matches!(
                    parse_response(bad.as_bytes(), true),
                    Err(FetchError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let bad_chunk = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(
            parse_response(bad_chunk.as_bytes(), true),
            Err(FetchError::Malformed("bad chunk size"))
        );
        let huge_chunk = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n";
        assert_eq!(
            parse_response(huge_chunk.as_bytes(), true),
            Err(FetchError::TooLarge)
        );
    }
}
