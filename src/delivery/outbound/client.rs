//! Opening an SMTP connection to one next-hop address with mail-send's low-level
//! client: connect, greeting (with our own bounded, timed reader), EHLO (HELO on
//! 5xx), STARTTLS per policy then EHLO again, AUTH PLAIN/LOGIN to a relayhost
//! (only over TLS). The result is a [`Connection`] ready for transactions.
//! A host an MTA-STS policy lists carries a [`Requirement`]: enforced, it gets
//! STARTTLS with a validated certificate or nothing; in testing, what the
//! session would have failed is reported and delivery goes on as configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_send::{Credentials, SmtpClient};
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_PIPELINING, EXT_SMTP_UTF8, EXT_START_TLS,
    EhloResponse,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::TlsPolicy;
use crate::delivery::outbound::mta_sts::{Failure, Requirement};
use crate::delivery::outbound::reply::{
    ReplyReader, connect_failed, connection_lost, synthetic, timed_out, tls_failed,
};
use crate::model::{EnhancedCode, Reply};

/// A byte stream to a server, plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What every connection needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// EHLO name.
    pub hostname: String,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub tls: TlsPolicy,
}

/// One address of a next hop to connect to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host name (or IP) used for SNI and shown as `remote_host`.
    pub host: String,
    pub addr: SocketAddr,
    /// Relayhost credentials (user, password), sent only over TLS.
    pub credentials: Option<(String, String)>,
    /// What an MTA-STS policy asks of this connection.
    pub sts: Option<Arc<Requirement>>,
}

/// An open, greeted (and possibly TLS-protected and authenticated) SMTP connection.
pub struct Connection {
    pub(crate) io: Box<dyn Io>,
    pub(crate) reader: ReplyReader,
    /// The server offered PIPELINING (RFC 2920).
    pub(crate) pipelining: bool,
    /// SIZE the server announced (0 = none).
    pub(crate) size: usize,
    /// The server offered 8BITMIME (RFC 6152).
    pub(crate) eight_bit_mime: bool,
    /// The server offered SMTPUTF8 (RFC 6531).
    pub(crate) smtputf8: bool,
    /// Shown as `remote_host` in outcomes.
    pub(crate) host: String,
    pub(crate) tls: bool,
}

impl Connection {
    /// True when the session runs over TLS (STARTTLS succeeded).
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

/// Why no connection came out of a target; the next address may do better.
#[derive(Debug)]
pub struct OpenError {
    /// What happened, as the reply every recipient gets if no other address works.
    pub reply: Reply,
    /// STARTTLS failed under the opportunistic policy: the same address may be tried in plain text.
    pub retry_plain: bool,
    /// A TCP connection was made (so the host deserves to be named as `remote_host`).
    pub connected: bool,
}

fn next(reply: Reply) -> OpenError {
    OpenError {
        reply,
        retry_plain: false,
        connected: true,
    }
}

/// Connects to `target` and runs the handshake. `use_tls = false` skips STARTTLS
/// (the plain-text retry after a failed opportunistic handshake).
pub async fn open(
    target: &Endpoint,
    s: &Settings,
    connector: &TlsConnector,
    use_tls: bool,
) -> Result<Connection, OpenError> {
    let label = target.host.as_str();
    let mut client = connect_and_greet(target, s).await?;
    let caps = hello(&mut client, s).await?;
    if let Some(req) = target.sts.as_ref().filter(|r| r.enforce) {
        return open_validated(client, &caps, s, req, target).await;
    }
    let wants_tls = use_tls && s.tls != TlsPolicy::Disabled;
    if wants_tls && caps.has_capability(EXT_START_TLS) {
        return open_with_starttls(client, s, connector, target).await;
    }
    if let Some(req) = target.sts.as_ref().filter(|_| wants_tls) {
        req.failure(Failure::StarttlsMissing, label, "");
    }
    if s.tls == TlsPolicy::Required {
        return Err(next(tls_failed(
            label,
            "the server does not offer STARTTLS and delivery.tls = \"required\"",
        )));
    }
    finish(client, &caps, false, target).await
}

/// Connects to `target` and reads its greeting, which must be positive.
async fn connect_and_greet(
    target: &Endpoint,
    s: &Settings,
) -> Result<SmtpClient<TcpStream>, OpenError> {
    let t = s.command_timeout;
    let label = target.host.as_str();
    let mut client = SmtpClient::connect(target.addr, t).await.map_err(|e| {
        let why = match e {
            mail_send::Error::Timeout => format!("no answer within {t:?}"),
            e => e.to_string(),
        };
        OpenError {
            reply: connect_failed(&format!("{label} ({})", target.addr), why),
            retry_plain: false,
            connected: false,
        }
    })?;
    let mut reader = ReplyReader::default();
    let greeting = reader
        .read(&mut client.stream, t)
        .await
        .map_err(|e| next(e.to_reply("the greeting")))?;
    if !greeting.is_positive() {
        return Err(next(greeting));
    }
    Ok(client)
}

/// STARTTLS where it is offered and no MTA-STS policy is enforced; a failure is reported to
/// a policy in testing mode, which does not refuse the connection for it.
async fn open_with_starttls(
    client: SmtpClient<TcpStream>,
    s: &Settings,
    connector: &TlsConnector,
    target: &Endpoint,
) -> Result<Connection, OpenError> {
    let label = target.host.as_str();
    let mut tls_client = start_tls(client, s, connector, label)
        .await
        .inspect_err(|e| {
            if let Some(req) = &target.sts {
                req.failure(Failure::TlsFailed, label, &e.reply.text);
            }
        })?;
    if let Some(req) = &target.sts
        && let Err(why) = req.tls.check(
            sni(label),
            tls_client
                .tls_connection()
                .peer_certificates()
                .unwrap_or_default(),
        )
    {
        req.failure(Failure::TlsFailed, label, &why);
    }
    let caps = hello(&mut tls_client, s).await?;
    finish(tls_client, &caps, true, target).await
}

/// An MTA-STS host under an enforced policy: STARTTLS with the validating connector, or
/// an error that allows no plain-text retry (RFC 8461 §4.2).
async fn open_validated(
    client: SmtpClient<TcpStream>,
    caps: &EhloResponse<String>,
    s: &Settings,
    req: &Requirement,
    target: &Endpoint,
) -> Result<Connection, OpenError> {
    let label = target.host.as_str();
    let refuse = |failure: Failure, detail: String| OpenError {
        reply: req.failure(failure, label, &detail),
        retry_plain: false,
        connected: true,
    };
    if !caps.has_capability(EXT_START_TLS) {
        return Err(refuse(Failure::StarttlsMissing, String::new()));
    }
    let mut tls_client = client
        .start_tls(&req.tls.connector, sni(label))
        .await
        .map_err(|e| {
            let why = match e {
                mail_send::Error::UnexpectedReply(r) => {
                    format!("STARTTLS refused: {} {}", r.code, r.message)
                }
                e => e.to_string(),
            };
            refuse(Failure::TlsFailed, why)
        })?;
    let caps = hello(&mut tls_client, s).await?;
    finish(tls_client, &caps, true, target).await
}

/// The TLS server name of a host (IP literals lose their brackets).
fn sni(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// STARTTLS through mail-send. Anything the server sent after its 220 in plain text
/// is dropped by mail-send's reader or breaks the handshake: it is never taken as a reply.
async fn start_tls(
    client: SmtpClient<TcpStream>,
    s: &Settings,
    connector: &TlsConnector,
    host: &str,
) -> Result<SmtpClient<tokio_rustls::client::TlsStream<TcpStream>>, OpenError> {
    let sni = host.trim_start_matches('[').trim_end_matches(']');
    client.start_tls(connector, sni).await.map_err(|e| {
        let reply = match e {
            mail_send::Error::UnexpectedReply(r) => {
                tls_failed(host, format!("STARTTLS refused: {} {}", r.code, r.message))
            }
            e => tls_failed(host, e),
        };
        OpenError {
            reply,
            retry_plain: s.tls != TlsPolicy::Required,
            connected: true,
        }
    })
}

/// EHLO, or HELO when EHLO gets a 5xx.
async fn hello<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    s: &Settings,
) -> Result<EhloResponse<String>, OpenError> {
    client.timeout = s.command_timeout;
    match client.ehlo(&s.hostname).await {
        Ok(caps) => Ok(caps),
        Err(mail_send::Error::UnexpectedReply(r)) if r.code >= 500 => {
            let r = client
                .cmd(format!("HELO {}\r\n", s.hostname))
                .await
                .map_err(|e| next(from_mail_send(e, "HELO", s.command_timeout)))?;
            if (200..300).contains(&r.code) {
                Ok(EhloResponse::new(String::new()))
            } else {
                Err(next(from_response(&r)))
            }
        }
        Err(e) => Err(next(from_mail_send(e, "EHLO", s.command_timeout))),
    }
}

/// AUTH when credentials are set (over TLS only), then hands the stream over.
async fn finish<T: Io + 'static>(
    mut client: SmtpClient<T>,
    caps: &EhloResponse<String>,
    tls: bool,
    target: &Endpoint,
) -> Result<Connection, OpenError> {
    if let Some((user, password)) = &target.credentials {
        if !tls {
            return Err(next(tls_failed(
                &target.host,
                "no STARTTLS: relayhost credentials are never sent in clear",
            )));
        }
        let mut offered = caps.clone();
        offered.auth_mechanisms &= AUTH_PLAIN | AUTH_LOGIN;
        let creds = Credentials::new(user.as_str(), password.as_str());
        if let Err(e) = client.authenticate(&creds, &offered).await {
            let why = match e {
                mail_send::Error::AuthenticationFailed(r)
                | mail_send::Error::UnexpectedReply(r) => format!("{} {}", r.code, r.message),
                e => e.to_string(),
            };
            return Err(next(synthetic(
                451,
                (4, 7, 8),
                format!("authentication to {} failed: {why}", target.host),
            )));
        }
    }
    Ok(Connection {
        io: Box::new(client.stream),
        reader: ReplyReader::default(),
        pipelining: caps.has_capability(EXT_PIPELINING),
        size: caps.size,
        eight_bit_mime: caps.has_capability(EXT_8BIT_MIME),
        smtputf8: caps.has_capability(EXT_SMTP_UTF8),
        host: target.host.clone(),
        tls,
    })
}

/// A server reply as mail-send parsed it (3-digit enhanced parts saturated at 255 lose their detail).
fn from_response(r: &smtp_proto::Response<String>) -> Reply {
    let [c, s, d] = r.esc;
    let enhanced = match (c, s, d) {
        (0, _, _) => None,
        (c, s, d) => EnhancedCode::parse(&format!("{c}.{}.{}", s, if d == 255 { 0 } else { d })),
    };
    Reply::remote(r.code, enhanced, r.message.replace(['\r', '\n'], " "))
}

/// A mail-send error during `step` as a reply.
fn from_mail_send(e: mail_send::Error, step: &str, t: Duration) -> Reply {
    match e {
        mail_send::Error::UnexpectedReply(r) => from_response(&r),
        mail_send::Error::Timeout => timed_out(step, t),
        mail_send::Error::Io(e) => connection_lost(step, e),
        mail_send::Error::UnparseableReply => synthetic(
            451,
            (4, 5, 0),
            format!(
                "protocol error during {step}: unparseable or oversized reply, or connection closed"
            ),
        ),
        e => synthetic(451, (4, 5, 0), format!("protocol error during {step}: {e}")),
    }
}
