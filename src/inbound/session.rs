//! One SMTP session: the read loop (bounded buffers, pipelined batches answered
//! when the input is drained), the phases a session can be in (commands, an AUTH
//! exchange, DATA, a BDAT chunk), timeouts (idle, whole session, DATA rate),
//! shutdown (`421 4.3.0`), the greeting with its early-talker check, and STARTTLS.

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::body::BodyReceiver;
use super::tls::Stream;
use super::{SmtpServer, SmtpStats};
use crate::inbound::intake::{Intake, RecipientSpec, SessionInfo};
use crate::model::address::Address;
use crate::model::dsn_request::DsnRet;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest AUTH response line (RFC 4954 §4).
const MAX_AUTH_LINE: usize = 12 * 1024;
/// Replies are written out once this many bytes are pending, even mid-batch.
const OUT_HIGH_WATER: usize = 32 * 1024;
/// Bad commands tolerated before the session is closed.
const MAX_ERRORS: u32 = 20;
/// While receiving a message the client must average at least this many bytes per
/// second (after one idle_timeout of grace); slow-trickle clients are cut off.
const MIN_DATA_RATE: u64 = 1024;

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    Quit,
    Eof,
    Timeout,
    Shutdown,
    /// The client broke the protocol (early talker, too many errors or AUTH failures).
    Protocol,
    Tls(String),
    Io(std::io::Error),
}

/// What the session is reading next.
#[derive(Debug)]
pub enum Phase {
    Command,
    Auth(AuthStep),
    Data(Box<BodyReceiver>),
    /// Inside a BDAT chunk: `left` octets still to read.
    Bdat {
        left: usize,
        last: bool,
        refusal: Option<(u16, &'static str, String)>,
    },
}

/// The transaction opened by MAIL FROM.
#[derive(Debug)]
pub struct Envelope {
    pub sender: Option<Address>,
    pub smtputf8: bool,
    pub env_id: Option<String>,
    pub ret: Option<DsnRet>,
    pub recipients: Vec<RecipientSpec>,
    /// The body collected so far by BDAT chunks.
    pub chunked: Option<Box<BodyReceiver>>,
}

pub struct Session<I: Intake> {
    pub(super) server: Arc<SmtpServer<I>>,
    pub(super) stream: Stream,
    pub(super) peer: SocketAddr,
    pub(super) shutdown: CancellationToken,
    out: Vec<u8>,
    line: Vec<u8>,
    line_overflow: bool,
    pub(super) phase: Phase,
    pub(super) helo: Option<String>,
    pub(super) esmtp: bool,
    pub(super) auth_user: Option<String>,
    pub(super) auth_failures: u32,
    /// A failed AUTH was just answered: wait `auth_failure_delay` before sending it.
    pub(super) auth_pause: bool,
    pub(super) relay_by_network: bool,
    pub(super) envelope: Option<Envelope>,
    errors: u32,
    session_deadline: Instant,
    /// Start of the current message transfer and bytes read since.
    pub(super) data_clock: Option<(Instant, u64)>,
}

impl<I: Intake> std::fmt::Debug for Session<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("stream", &self.stream)
            .field("phase", &self.phase)
            .field("helo", &self.helo)
            .field("auth_user", &self.auth_user)
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}

impl<I: Intake> Session<I> {
    pub fn new(
        server: Arc<SmtpServer<I>>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> Self {
        let relay_by_network = server
            .cfg
            .smtp
            .relay_networks
            .iter()
            .any(|n| n.contains(&peer.ip()));
        let session_deadline = Instant::now() + server.cfg.smtp.session_timeout.0;
        Session {
            server,
            stream: Stream::Plain(stream),
            peer,
            shutdown,
            out: Vec::with_capacity(1024),
            line: Vec::new(),
            line_overflow: false,
            phase: Phase::Command,
            helo: None,
            esmtp: false,
            auth_user: None,
            auth_failures: 0,
            auth_pause: false,
            relay_by_network,
            envelope: None,
            errors: 0,
            session_deadline,
            data_clock: None,
        }
    }

    /// Runs the session to its end; never panics on input, logs how it ended.
    pub async fn run(mut self) {
        tracing::debug!(peer = %self.peer, "smtp: session start");
        let end = self.converse().await;
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.stream.shutdown()).await;
        match end {
            Err(End::Io(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "smtp: session ended by I/O error")
            }
            Err(End::Tls(e)) => {
                tracing::info!(peer = %self.peer, error = %e, "smtp: TLS handshake failed")
            }
            Err(end) => tracing::debug!(peer = %self.peer, ?end, "smtp: session end"),
            Ok(()) => {}
        }
    }

    async fn converse(&mut self) -> Result<(), End> {
        self.greet().await?;
        self.flush().await?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = self.read(&mut buf).await?;
            let mut input: &[u8] = &buf[..n];
            while !input.is_empty() {
                self.step(&mut input).await?;
                if self.out.len() >= OUT_HIGH_WATER {
                    self.flush().await?;
                }
            }
            self.flush().await?;
        }
    }

    /// The 220 greeting, unless the client talks first (`554 5.5.0`).
    async fn greet(&mut self) -> Result<(), End> {
        if let Stream::Plain(tcp) = &self.stream {
            let mut probe = [0u8; 1];
            let delay = self.server.greeting_delay;
            match tokio::time::timeout(delay, tcp.peek(&mut probe)).await {
                Ok(Ok(0)) => return Err(End::Eof),
                Ok(Ok(_)) => {
                    tracing::info!(peer = %self.peer, "smtp: client talked before the greeting");
                    self.reply(
                        554,
                        "5.5.0",
                        "Error: SMTP protocol synchronization (talked before greeting)",
                    );
                    return Err(End::Protocol);
                }
                Ok(Err(e)) => return Err(End::Io(e)),
                Err(_) => {}
            }
        }
        let host = self.server.cfg.server.hostname.clone();
        self.reply(220, "", format!("{host} ESMTP rebound"));
        Ok(())
    }

    /// Reads more input, bounded by the idle, session and DATA-rate deadlines and by shutdown.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, End> {
        let idle = self.server.cfg.smtp.idle_timeout.0;
        let mut deadline = (Instant::now() + idle).min(self.session_deadline);
        if let Some((start, bytes)) = self.data_clock {
            deadline = deadline.min(start + idle + Duration::from_secs(bytes / MIN_DATA_RATE));
        }
        let read = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => {
                let host = self.server.cfg.server.hostname.clone();
                self.reply(421, "4.3.0", format!("{host} Service shutting down, closing connection"));
                return Err(End::Shutdown);
            }
            r = tokio::time::timeout_at(deadline, self.stream.read(buf)) => r,
        };
        match read {
            Err(_) => {
                self.timed_out();
                Err(End::Timeout)
            }
            Ok(Ok(0)) => Err(End::Eof),
            Ok(Ok(n)) => {
                if let Some((_, bytes)) = self.data_clock.as_mut() {
                    *bytes += n as u64;
                }
                Ok(n)
            }
            Ok(Err(e)) => Err(End::Io(e)),
        }
    }

    fn timed_out(&mut self) {
        let host = self.server.cfg.server.hostname.clone();
        let text = if Instant::now() >= self.session_deadline {
            "Session time limit exceeded, closing connection"
        } else if self.data_clock.is_some() {
            "Message transfer too slow, closing connection"
        } else {
            "Idle timeout, closing connection"
        };
        tracing::info!(peer = %self.peer, reason = text, "smtp: timeout");
        self.reply(421, "4.4.2", format!("{host} {text}"));
    }

    /// Consumes some of `input` according to the current phase.
    async fn step(&mut self, input: &mut &[u8]) -> Result<(), End> {
        match &self.phase {
            Phase::Data(_) => self.data_bytes(input).await,
            Phase::Bdat { .. } => self.bdat_bytes(input).await,
            Phase::Command => {
                let Some(line) = self.take_line(input, MAX_COMMAND_LINE) else {
                    return Ok(());
                };
                let done = match line {
                    Some(line) => self.command(&line, input).await,
                    None => self.error(500, "5.5.2", "Line too long"),
                };
                self.auth_failure_pause().await?;
                done
            }
            Phase::Auth(_) => {
                let Some(line) = self.take_line(input, MAX_AUTH_LINE) else {
                    return Ok(());
                };
                let done = match line {
                    Some(line) => self.auth_response(&line),
                    None => self.error(500, "5.5.2", "Line too long"),
                };
                self.auth_failure_pause().await?;
                done
            }
        }
    }

    /// Takes one line (with its LF) from `input`. `None`: need more input;
    /// `Some(None)`: the line was longer than `max` (its bytes were discarded as they came).
    fn take_line(&mut self, input: &mut &[u8], max: usize) -> Option<Option<Vec<u8>>> {
        match memchr::memchr(b'\n', input) {
            Some(pos) => {
                let (head, rest) = input.split_at(pos + 1);
                *input = rest;
                if self.line_overflow || self.line.len() + head.len() > max {
                    self.line.clear();
                    self.line_overflow = false;
                    return Some(None);
                }
                self.line.extend_from_slice(head);
                Some(Some(std::mem::take(&mut self.line)))
            }
            None => {
                if self.line_overflow || self.line.len() + input.len() > max {
                    self.line_overflow = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(input);
                }
                *input = &[];
                None
            }
        }
    }

    /// Queues one reply line: `code enhanced text`. 4xx/5xx count as rejections.
    pub(super) fn reply(&mut self, code: u16, enhanced: &str, text: impl Display) {
        use std::io::Write;
        if code >= 400 {
            SmtpStats::bump(&self.server.stats.rejections);
            tracing::debug!(peer = %self.peer, code, enhanced, "smtp: rejection");
        }
        let _ = if enhanced.is_empty() {
            write!(self.out, "{code} {text}\r\n")
        } else {
            write!(self.out, "{code} {enhanced} {text}\r\n")
        };
    }

    /// Queues a multi-line reply.
    pub(super) fn reply_lines(&mut self, code: u16, lines: &[String]) {
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
        }
    }

    /// A reply to a bad command; too many of them end the session.
    pub(super) fn error(
        &mut self,
        code: u16,
        enhanced: &str,
        text: impl Display,
    ) -> Result<(), End> {
        self.reply(code, enhanced, text);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.reply(421, "4.7.0", "Too many errors, closing connection");
            return Err(End::Protocol);
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let idle = self.server.cfg.smtp.idle_timeout.0;
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(idle, write).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(End::Io(e)),
            Err(_) => Err(End::Timeout),
        }
    }

    /// STARTTLS: reply 220, drop anything pipelined after it, handshake, forget the session state.
    pub(super) async fn start_tls(&mut self, input: &mut &[u8]) -> Result<(), End> {
        let Some(acceptor) = self.server.tls.clone() else {
            return self.error(502, "5.5.1", "STARTTLS not available");
        };
        if self.stream.is_tls() {
            return self.error(503, "5.5.1", "Already running TLS");
        }
        self.reply(220, "2.0.0", "Ready to start TLS");
        self.flush().await?;
        if !input.is_empty() || !self.line.is_empty() {
            tracing::warn!(peer = %self.peer, bytes = input.len(), "smtp: discarding input pipelined after STARTTLS");
        }
        *input = &[];
        self.line.clear();
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(End::Protocol);
        };
        let idle = self.server.cfg.smtp.idle_timeout.0;
        match tokio::time::timeout(idle, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => self.stream = Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => return Err(End::Tls(e.to_string())),
            Err(_) => return Err(End::Tls("handshake timed out".into())),
        }
        self.helo = None;
        self.esmtp = false;
        self.auth_user = None;
        self.envelope = None;
        self.data_clock = None;
        Ok(())
    }

    pub(super) fn relay_allowed(&self) -> bool {
        self.relay_by_network || self.auth_user.is_some()
    }

    pub(super) fn info(&self) -> SessionInfo {
        SessionInfo {
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.stream.is_tls(),
            auth_user: self.auth_user.clone(),
            relay_allowed: self.relay_allowed(),
        }
    }
}

/// Where an AUTH exchange stands while waiting for the client's next line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    PlainResponse,
    LoginUser,
    LoginPassword { user: String },
}
