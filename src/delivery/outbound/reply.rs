//! Replies on the client side: a bounded reader that keeps surplus bytes for
//! pipelining (unlike mail-send's `read()`), re-parses enhanced codes from the
//! text (3-digit parts intact), and the synthetic replies that stand for local
//! failures (connection lost, timeout, protocol error, TLS, DNS).

use std::time::Duration;

use memchr::memchr;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::model::{EnhancedCode, Reply};

/// Most lines accepted in one multi-line reply.
pub const MAX_REPLY_LINES: usize = 100;
/// Most bytes accepted in one reply (all lines together).
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Reply text kept for diagnostics; the rest is cut.
const MAX_TEXT_CHARS: usize = 2000;

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("connection closed by the server")]
    Closed,
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error("reply longer than {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES} bytes")]
    TooLong,
    #[error("malformed reply line {0:?}")]
    Malformed(String),
}

impl ReadError {
    /// The synthetic reply describing this failure while waiting for the reply to `step`.
    pub fn to_reply(&self, step: &str) -> Reply {
        match self {
            ReadError::Timeout(_) => synthetic(
                451,
                (4, 4, 2),
                format!("timeout waiting for the reply to {step}: {self}"),
            ),
            ReadError::Closed | ReadError::Io(_) => connection_lost(step, self),
            ReadError::TooLong | ReadError::Malformed(_) => synthetic(
                451,
                (4, 5, 0),
                format!("protocol error in the reply to {step}: {self}"),
            ),
        }
    }
}

/// Accumulates bytes from the server and cuts them into replies.
#[derive(Debug, Default)]
pub struct ReplyReader {
    /// Bytes received and not yet consumed by a reply (pipelined replies wait here).
    buf: Vec<u8>,
}

impl ReplyReader {
    /// Forgets anything buffered (used around STARTTLS: nothing sent before the
    /// handshake may be taken as a reply after it).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// True when bytes beyond the last reply are waiting.
    pub fn has_surplus(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads one complete reply, waiting at most `timeout`.
    pub async fn read<S: AsyncRead + Unpin + ?Sized>(
        &mut self,
        stream: &mut S,
        timeout: Duration,
    ) -> Result<Reply, ReadError> {
        match tokio::time::timeout(timeout, self.read_unbounded(stream)).await {
            Ok(r) => r,
            Err(_) => Err(ReadError::Timeout(timeout)),
        }
    }

    async fn read_unbounded<S: AsyncRead + Unpin + ?Sized>(
        &mut self,
        stream: &mut S,
    ) -> Result<Reply, ReadError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(reply) = self.take_reply()? {
                return Ok(reply);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Cuts one reply from the front of the buffer if it is complete.
    fn take_reply(&mut self) -> Result<Option<Reply>, ReadError> {
        let mut pos = 0;
        let mut code = None;
        let mut lines: Vec<String> = Vec::new();
        while let Some(nl) = memchr(b'\n', &self.buf[pos..]) {
            let raw = &self.buf[pos..pos + nl];
            pos += nl + 1;
            if lines.len() >= MAX_REPLY_LINES || pos > MAX_REPLY_BYTES {
                return Err(ReadError::TooLong);
            }
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let (line_code, last, text) = parse_line(raw)?;
            if *code.get_or_insert(line_code) != line_code {
                return Err(ReadError::Malformed(printable(raw)));
            }
            lines.push(text);
            if last {
                self.buf.drain(..pos);
                return Ok(Some(build_reply(line_code, &lines)));
            }
        }
        if self.buf.len() > MAX_REPLY_BYTES {
            return Err(ReadError::TooLong);
        }
        Ok(None)
    }
}

/// Splits `250-text` / `250 text` / `250` into (code, is last line, text).
fn parse_line(raw: &[u8]) -> Result<(u16, bool, String), ReadError> {
    let bad = || ReadError::Malformed(printable(raw));
    let digits = raw.get(..3).ok_or_else(bad)?;
    if !digits.iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&digits[0])
        || digits[1] > b'5'
    {
        return Err(bad());
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match raw.get(3) {
        None => Ok((code, true, String::new())),
        Some(b' ') => Ok((code, true, printable(&raw[4..]))),
        Some(b'-') => Ok((code, false, printable(&raw[4..]))),
        Some(_) => Err(bad()),
    }
}

/// Lossy UTF-8 with control characters replaced by spaces.
fn printable(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Joins the lines and takes the enhanced code off their front when its class matches the reply code.
fn build_reply(code: u16, lines: &[String]) -> Reply {
    let first = lines.first().map(String::as_str).unwrap_or("");
    let prefix = first.split_whitespace().next().unwrap_or("");
    let enhanced = EnhancedCode::parse(prefix).filter(|e| u16::from(e.class) == code / 100);
    let parts: Vec<&str> = lines
        .iter()
        .map(|l| match enhanced {
            Some(_) => l.trim_start().strip_prefix(prefix).unwrap_or(l).trim(),
            None => l.trim(),
        })
        .filter(|l| !l.is_empty())
        .collect();
    let mut text = parts.join(" ");
    if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
        text.truncate(cut);
    }
    Reply::remote(code, enhanced, text)
}

/// A reply made up by rebound.
pub fn synthetic(
    code: u16,
    (class, subject, detail): (u8, u16, u16),
    text: impl Into<String>,
) -> Reply {
    Reply::local(code, EnhancedCode::new(class, subject, detail), text)
}

/// `451 4.4.2`: the connection broke while waiting for or sending `step`.
pub fn connection_lost(step: &str, why: impl std::fmt::Display) -> Reply {
    synthetic(
        451,
        (4, 4, 2),
        format!("connection lost during {step}: {why}"),
    )
}

/// `451 4.4.2`: a write or handshake did not complete in time.
pub fn timed_out(step: &str, after: Duration) -> Reply {
    synthetic(
        451,
        (4, 4, 2),
        format!("timeout after {after:?} during {step}"),
    )
}

/// `451 4.4.1`: no connection could be made.
pub fn connect_failed(host: &str, why: impl std::fmt::Display) -> Reply {
    synthetic(451, (4, 4, 1), format!("cannot connect to {host}: {why}"))
}

/// `451 4.7.5`: TLS was required or attempted and failed.
pub fn tls_failed(host: &str, why: impl std::fmt::Display) -> Reply {
    synthetic(451, (4, 7, 5), format!("TLS with {host} failed: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Vec<Result<Reply, String>> {
        let mut reader = ReplyReader::default();
        let mut stream = input;
        let mut out = Vec::new();
        loop {
            match reader.read(&mut stream, Duration::from_secs(1)).await {
                Ok(r) => out.push(Ok(r)),
                Err(ReadError::Closed) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn pipelined_replies_are_kept_and_enhanced_codes_survive() {
        let out = read_all(b"250 2.1.0 Ok\r\n550-5.7.509 Access denied\r\n550 5.7.509 see url\r\n452 4.2.2 full\r\n").await;
        let out: Vec<Reply> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].diagnostic(), "250 2.1.0 Ok");
        assert_eq!(out[1].diagnostic(), "550 5.7.509 Access denied see url");
        assert_eq!(out[2].enhanced, EnhancedCode::parse("4.2.2"));
        assert!(!out[1].synthetic);
    }

    #[tokio::test]
    async fn bad_input_is_an_error_not_a_reply() {
        assert!(
            read_all(b"99x hello\r\n").await[0]
                .as_ref()
                .unwrap_err()
                .contains("malformed")
        );
        assert!(read_all(b"250-a\r\n251 b\r\n").await[0].is_err());
        let endless = b"250-xxxxxxxx\r\n".repeat(200);
        assert!(
            read_all(&endless).await[0]
                .as_ref()
                .unwrap_err()
                .contains("longer")
        );
        let long = vec![b'2'; MAX_REPLY_BYTES + 10];
        assert!(
            read_all(&long).await[0]
                .as_ref()
                .unwrap_err()
                .contains("longer")
        );
    }

    #[tokio::test]
    async fn enhanced_code_of_another_class_stays_text() {
        let out = read_all(b"250 5.1.1 odd\r\n").await;
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.enhanced, None);
        assert_eq!(r.text, "5.1.1 odd");
    }
}
