//! The next hops of outbound mail: a scripted MX ([`ScriptedMx`]: real TCP on loopback,
//! optional STARTTLS with an rcgen self-signed certificate, hostile behaviours, replies
//! chosen by the recipient's local part) that records the exact bytes it receives, and an
//! in-process authoritative DNS server for `test.` ([`Dns`], hickory-server) whose records
//! a test may add while it runs.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use rebound::delivery::outbound::Transaction;
use rebound::model::address::Address;

/// What the scripted server saw.
#[derive(Debug, Default, Clone)]
pub struct Record {
    pub connections: usize,
    /// Command lines in arrival order (CRLF stripped), across connections.
    pub commands: Vec<String>,
    /// Raw bytes after each 354 up to and including the terminator line.
    pub messages: Vec<Vec<u8>>,
    /// STARTTLS handshakes completed.
    pub tls_sessions: usize,
}

impl Record {
    /// The messages the MX received whose transaction had `MAIL FROM:<>` and this recipient.
    pub fn dsns_to(&self, rcpt: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (mut null_sender, mut to_rcpt, mut n) = (false, false, 0);
        for c in &self.commands {
            let up = c.to_ascii_uppercase();
            if up.starts_with("MAIL FROM:") {
                null_sender = c.starts_with("MAIL FROM:<>");
                to_rcpt = false;
            } else if up.starts_with("RCPT TO:") && c.contains(&format!("<{rcpt}>")) {
                to_rcpt = true;
            } else if up == "DATA" {
                if null_sender
                    && to_rcpt
                    && let Some(m) = self.messages.get(n)
                {
                    out.push(m.clone());
                }
                n += 1;
            }
        }
        out
    }
}

/// Connection-level behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Accepts and never sends the greeting.
    Silent,
    /// Sends this greeting line (e.g. `"421 4.3.2 busy"`).
    Greeting(&'static str),
    /// Closes the connection instead of answering this command verb ("EHLO", "MAIL", "RCPT", "DATA", "DOT", "RSET").
    ResetAt(&'static str),
}

/// How the server behaves.
#[derive(Clone, Default)]
pub struct Script {
    pub mode: Mode,
    pub pipelining: bool,
    /// Offer STARTTLS with this acceptor.
    pub tls: Option<TlsAcceptor>,
    /// After "220 ready" to STARTTLS, also send an injected reply in the same write.
    pub starttls_inject: bool,
    /// After "220 ready" to STARTTLS, send plaintext garbage instead of a handshake and close.
    pub starttls_garbage: bool,
    /// Offer SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
}

/// A running scripted server.
pub struct ScriptedMx {
    pub addr: SocketAddr,
    pub record: Arc<Mutex<Record>>,
}

impl ScriptedMx {
    pub async fn start(script: Script) -> ScriptedMx {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script).await
    }

    pub async fn start_on(bind: SocketAddr, script: Script) -> ScriptedMx {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = record.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                rec.lock().unwrap().connections += 1;
                tokio::spawn(serve(sock, script.clone(), rec.clone()));
            }
        });
        ScriptedMx { addr, record }
    }

    pub fn record(&self) -> Record {
        self.record.lock().unwrap().clone()
    }
}

async fn serve(sock: TcpStream, script: Script, rec: Arc<Mutex<Record>>) {
    match script.mode {
        Mode::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Mode::Greeting(line) => {
            let mut sock = sock;
            let _ = sock.write_all(format!("{line}\r\n").as_bytes()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        _ => {}
    }
    let mut sock = sock;
    if sock
        .write_all(b"220 scripted.test ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    if let Some(plain) = converse(sock, &script, &rec, false).await
        && let Some(acceptor) = &script.tls
        && let Ok(tls) = acceptor.accept(plain).await
    {
        rec.lock().unwrap().tls_sessions += 1;
        converse(tls, &script, &rec, true).await;
    }
}

/// Runs commands until QUIT/EOF (None) or STARTTLS (Some(stream) to upgrade).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    script: &Script,
    rec: &Mutex<Record>,
    in_tls: bool,
) -> Option<S> {
    let mut io = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if io.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        rec.lock().unwrap().commands.push(text.clone());
        let verb = text
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(script.mode, Mode::ResetAt(v) if v == verb) {
            return None;
        }
        let reply: Vec<u8> = match verb.as_str() {
            "EHLO" => ehlo_reply(script, in_tls).into_bytes(),
            "HELO" => b"250 scripted.test\r\n".to_vec(),
            "STARTTLS" if script.tls.is_some() && !in_tls => return starttls(io, script).await,
            "MAIL" => b"250 2.1.0 Ok\r\n".to_vec(),
            "RCPT" => {
                let seen = rec
                    .lock()
                    .unwrap()
                    .commands
                    .iter()
                    .filter(|c| c.eq_ignore_ascii_case(&text))
                    .count();
                rcpt_reply(&text, seen)
            }
            "DATA" => data(&mut io, script, rec).await?,
            "RSET" | "NOOP" => b"250 2.0.0 Ok\r\n".to_vec(),
            "AUTH" if text == format!("AUTH PLAIN {}", auth_plain("relayuser", "relaypass")) => {
                b"235 2.7.0 Authentication successful\r\n".to_vec()
            }
            "AUTH" => b"535 5.7.8 Authentication credentials invalid\r\n".to_vec(),
            "QUIT" => {
                let _ = io.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
                return None;
            }
            _ => b"502 5.5.2 Command not recognized\r\n".to_vec(),
        };
        if io.get_mut().write_all(&reply).await.is_err() {
            return None;
        }
    }
}

fn ehlo_reply(script: &Script, in_tls: bool) -> String {
    let mut r = String::from("250-scripted.test\r\n250-SIZE 10000000\r\n250-8BITMIME\r\n");
    if script.pipelining {
        r.push_str("250-PIPELINING\r\n");
    }
    if script.smtputf8 {
        r.push_str("250-SMTPUTF8\r\n");
    }
    if script.tls.is_some() && !in_tls {
        r.push_str("250-STARTTLS\r\n");
    }
    r.push_str("250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n");
    r
}

/// The reply to `RCPT TO:<local@domain>`, chosen by the local part; `seen` counts
/// this exact command so far (including this one), for recipients that recover.
fn rcpt_reply(cmd: &str, seen: usize) -> Vec<u8> {
    let addr = cmd
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or("");
    let local = addr.split('@').next().unwrap_or("");
    match local {
        "unknown" => b"550 5.1.1 User unknown\r\n".to_vec(),
        "spam" => b"550 5.7.1 Message rejected as spam\r\n".to_vec(),
        "full" => b"452 4.2.2 Mailbox full\r\n".to_vec(),
        "fulltwice" if seen <= 2 => b"452 4.2.2 Mailbox full\r\n".to_vec(),
        "greyonce" if seen <= 1 => b"451 4.7.1 Greylisted, try again later\r\n".to_vec(),
        "grey" => b"451 4.7.1 Greylisted, try again later\r\n".to_vec(),
        "denied509" => {
            b"550-5.7.509 Access denied, sending domain\r\n550 5.7.509 does not pass DMARC\r\n"
                .to_vec()
        }
        "endless" => b"250-still going\r\n".repeat(20_000),
        "oversized" => {
            let mut r = b"250 ".to_vec();
            r.extend(std::iter::repeat_n(b'x', 100_000));
            r.extend_from_slice(b"\r\n");
            r
        }
        "badcode" => b"2x0 what is this\r\n".to_vec(),
        "garbage" => b"\x00\xff\xfe\x1b[31m binary junk\r\n".to_vec(),
        _ => b"250 2.1.5 Ok\r\n".to_vec(),
    }
}

/// 354, then the body up to CRLF.CRLF, recorded raw. `None`: drop the connection
/// (ResetAt("DOT") or a recipient named `dropdata` in the last RCPTs).
async fn data<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    script: &Script,
    rec: &Mutex<Record>,
) -> Option<Vec<u8>> {
    io.get_mut()
        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        .await
        .ok()?;
    let drop_mid = rec
        .lock()
        .unwrap()
        .commands
        .iter()
        .rev()
        .take_while(|c| !c.to_ascii_uppercase().starts_with("MAIL"))
        .any(|c| c.contains("<dropdata@"));
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if io.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        let terminated = line == b".\r\n" && (raw.is_empty() || raw.ends_with(b"\r\n"));
        raw.extend_from_slice(&line);
        if drop_mid {
            return None;
        }
        if terminated {
            break;
        }
    }
    let n = {
        let mut r = rec.lock().unwrap();
        r.messages.push(raw);
        r.messages.len()
    };
    if script.mode == Mode::ResetAt("DOT") {
        return None;
    }
    Some(format!("250 2.0.0 Ok: queued as M{n}\r\n").into_bytes())
}

/// 220 to STARTTLS, then hand the stream back for the handshake (or misbehave).
async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    io: BufReader<S>,
    script: &Script,
) -> Option<S> {
    let mut stream = io.into_inner();
    if script.starttls_garbage {
        let _ = stream
            .write_all(b"220 2.0.0 Ready to start TLS\r\nthis is not a TLS handshake at all\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        return None;
    }
    let msg: &[u8] = if script.starttls_inject {
        b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 PIPELINING\r\n"
    } else {
        b"220 2.0.0 Ready to start TLS\r\n"
    };
    stream.write_all(msg).await.ok()?;
    Some(stream)
}

/// A TLS acceptor with a fresh self-signed certificate.
pub fn tls_acceptor() -> TlsAcceptor {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "mx.test".to_string()])
            .unwrap();
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A transaction from `from` to `rcpts` with `body`, for the outbound client alone.
pub fn tx(from: &str, rcpts: &[&str], body: &[u8]) -> Transaction {
    Transaction {
        mail_from: from.to_string(),
        recipients: rcpts.iter().map(|r| Address::parse(r).unwrap()).collect(),
        body: Arc::new(body.to_vec()),
    }
}

type Zone = hickory_server::store::in_memory::InMemoryZoneHandler<
    hickory_server::net::runtime::TokioRuntimeProvider,
>;

/// An authoritative DNS server for the zone `test.` on 127.0.0.1 (UDP and TCP, one port).
/// The SOA's TTL and negative-caching minimum are 1 s, so records published later are seen.
pub struct Dns {
    pub addr: SocketAddr,
    zone: Arc<Zone>,
}

impl Dns {
    /// Serves `records` (built with [`mx`], [`a`], [`txt`]...).
    pub async fn start(records: Vec<hickory_server::proto::rr::Record>) -> Dns {
        use hickory_server::proto::rr::rdata::SOA;
        use hickory_server::proto::rr::{Name, RData, Record as Rr};
        use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

        let origin = Name::from_ascii("test.").unwrap();
        let mut zone = Zone::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            Name::from_ascii("ns.test.").unwrap(),
            Name::from_ascii("admin.test.").unwrap(),
            1,
            3600,
            600,
            86400,
            1,
        );
        zone.upsert_mut(Rr::from_rdata(origin.clone(), 1, RData::SOA(soa)), 1);
        for r in records {
            zone.upsert_mut(r, 1);
        }
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(origin.into(), vec![zone.clone()]);
        let mut server = hickory_server::Server::new(catalog);
        // UDP and TCP on the same port: retry when the TCP side of a random UDP port is taken.
        let (udp, tcp, addr) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr).await {
                break (udp, tcp, addr);
            }
        };
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        tokio::spawn(async move {
            let _ = server.block_until_done().await;
        });
        Dns { addr, zone }
    }

    /// Publishes the TXT record of a zone line `NAME. IN TXT "a" "b" [; comment]` (TTL 1 s).
    pub async fn publish(&self, zone_line: &str) {
        use hickory_server::proto::rr::rdata::TXT;
        use hickory_server::proto::rr::{Name, RData, Record as Rr};
        let line = zone_line.split(" ; ").next().unwrap();
        let (name, rest) = line
            .split_once(" IN TXT ")
            .unwrap_or_else(|| panic!("a TXT zone line: {line}"));
        let strings: Vec<String> = rest
            .split('"')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        let rec = Rr::from_rdata(
            Name::from_ascii(name).unwrap(),
            1,
            RData::TXT(TXT::new(strings)),
        );
        assert!(self.zone.upsert(rec, 2).await, "{name} published");
    }
}

/// [`Dns::start`], when only the address is needed.
pub async fn dns_server(records: Vec<hickory_server::proto::rr::Record>) -> SocketAddr {
    Dns::start(records).await.addr
}

pub fn mx(name: &str, pref: u16, exchange: &str) -> hickory_server::proto::rr::Record {
    use hickory_server::proto::rr::rdata::MX;
    use hickory_server::proto::rr::{Name, RData, Record as Rr};
    let ex = if exchange == "." {
        Name::root()
    } else {
        Name::from_ascii(exchange).unwrap()
    };
    Rr::from_rdata(
        Name::from_ascii(name).unwrap(),
        60,
        RData::MX(MX::new(pref, ex)),
    )
}

pub fn a(name: &str, ip: &str) -> hickory_server::proto::rr::Record {
    use hickory_server::proto::rr::rdata::A;
    use hickory_server::proto::rr::{Name, RData, Record as Rr};
    let IpAddr::V4(v4) = ip.parse::<IpAddr>().unwrap() else {
        panic!("IPv4 only")
    };
    Rr::from_rdata(Name::from_ascii(name).unwrap(), 60, RData::A(A(v4)))
}

/// The AUTH PLAIN initial response for `user` / `pass`.
pub fn auth_plain(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

/// The `X-Seq:` numbers in the messages a scripted MX recorded.
pub fn seqs(messages: &[Vec<u8>]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| {
            let text = String::from_utf8_lossy(m);
            text.lines().find_map(|l| {
                l.strip_prefix("X-Seq: ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .collect()
}

/// A TXT record of `strings` at `name` (TTL 60 s).
pub fn txt(name: &str, strings: &[&str]) -> hickory_server::proto::rr::Record {
    use hickory_server::proto::rr::rdata::TXT;
    use hickory_server::proto::rr::{Name, RData, Record as Rr};
    Rr::from_rdata(
        Name::from_ascii(name).unwrap(),
        60,
        RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())),
    )
}

/// A message as the MX recorded it (dot-stuffed, up to and including the terminator line)
/// back to the bytes the sender meant; panics when the terminator is missing.
pub fn unstuff(wire: &[u8]) -> Vec<u8> {
    let body = wire.strip_suffix(b".\r\n").expect("terminated");
    body.split_inclusive(|&b| b == b'\n')
        .flat_map(|l| if l.starts_with(b"..") { &l[1..] } else { l })
        .copied()
        .collect()
}
