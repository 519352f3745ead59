//! The one SMTP client of the integration tests ([`Client`]: raw lines over TCP or TLS,
//! every reply returned as read; [`Blocking`] drives the same client from a thread without a
//! runtime), [`stuffed`] for DATA, and Python's smtplib ([`python_send`]) as the client
//! nobody here wrote.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Guard against hangs only; never asserted on.
const READ_GUARD: Duration = Duration::from_secs(20);

/// A line-oriented SMTP client over any stream.
pub struct Client<S> {
    pub io: BufReader<S>,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Self {
        Client::try_connect(addr).await.expect("connect")
    }

    pub async fn try_connect(addr: SocketAddr) -> std::io::Result<Self> {
        let tcp = tokio::time::timeout(READ_GUARD, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect guard"))??;
        Ok(Client {
            io: BufReader::new(tcp),
        })
    }

    /// Connects and reads the greeting.
    pub async fn greeted(addr: SocketAddr) -> Self {
        let mut c = Client::connect(addr).await;
        let g = c.reply().await;
        assert!(g[0].starts_with("220 "), "greeting: {g:?}");
        c
    }

    /// STARTTLS already answered 220: performs the handshake trusting `cert`.
    pub async fn into_tls(
        self,
        cert: &rustls::pki_types::CertificateDer<'static>,
    ) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = connector
            .connect(name, self.io.into_inner())
            .await
            .expect("tls handshake");
        Client {
            io: BufReader::new(tls),
        }
    }
}

impl<S: AsyncRead + Unpin> Client<S> {
    /// Reads one (possibly multi-line) reply: EOF is `UnexpectedEof`, the guard `TimedOut`.
    pub async fn read_reply(&mut self) -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(READ_GUARD, self.io.read_line(&mut line))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("reply guard after {lines:?}"),
                    )
                })??;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("closed after {lines:?}"),
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Ok(lines);
            }
        }
    }

    /// Reads one reply on a read-only half.
    pub async fn reply_only(&mut self) -> Vec<String> {
        self.read_reply()
            .await
            .expect("connection closed while waiting for a reply")
    }

    /// True once the server has closed the connection (after any pending replies are read).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(
            READ_GUARD,
            tokio::io::AsyncReadExt::read_to_end(&mut self.io, &mut rest),
        )
        .await
        {
            Ok(Ok(_)) | Ok(Err(_)) => true,
            Err(_) => false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.get_mut().write_all(bytes).await?;
        self.io.get_mut().flush().await
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.write(bytes.as_ref()).await.expect("write");
    }

    /// Reads one (possibly multi-line) reply; panics on EOF.
    pub async fn reply(&mut self) -> Vec<String> {
        self.reply_only().await
    }

    /// Reads one reply, or `None` at EOF / connection reset (a hang still panics).
    pub async fn try_reply(&mut self) -> Option<Vec<String>> {
        match self.read_reply().await {
            Ok(r) => Some(r),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => panic!("{e}"),
            Err(_) => None,
        }
    }

    /// Sends a command and returns the last line of its reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        self.reply().await.pop().unwrap_or_default()
    }

    /// Sends a command; its whole reply, the lines joined with `\n`.
    pub async fn try_cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        Ok(self.read_reply().await?.join("\n"))
    }

    /// EHLO + MAIL + RCPT, asserting each is accepted.
    pub async fn envelope(&mut self, from: &str, to: &[&str]) {
        let r = self.cmd("EHLO client.test").await;
        assert!(r.starts_with("250 "), "{r}");
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(r.starts_with("250 "), "{r}");
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>")).await;
            assert!(r.starts_with("250 "), "{r}");
        }
    }

    /// MAIL, RCPTs, DATA and the already-stuffed `data` (terminator included).
    /// Returns every reply in order (lines joined with `\n`); stops at the first refusal
    /// of MAIL, and sends no data unless DATA got 354.
    pub async fn transaction(
        &mut self,
        from: &str,
        rcpts: &[&str],
        data: &[u8],
    ) -> std::io::Result<Vec<String>> {
        let mut out = vec![self.try_cmd(&format!("MAIL FROM:<{from}>")).await?];
        if !out[0].starts_with('2') {
            return Ok(out);
        }
        for r in rcpts {
            out.push(self.try_cmd(&format!("RCPT TO:<{r}>")).await?);
        }
        let d = self.try_cmd("DATA").await?;
        let go = d.starts_with("354");
        out.push(d);
        if go {
            self.write(data).await?;
            out.push(self.read_reply().await?.join("\n"));
        }
        Ok(out)
    }
}

/// [`Client`] driven from a plain thread (no runtime there): each call runs on the client's
/// own current-thread runtime. Replies are the lines joined with `\n`.
pub struct Blocking {
    rt: tokio::runtime::Runtime,
    c: Client<TcpStream>,
}

impl Blocking {
    /// Connects and reads the greeting (returned as the second value).
    pub fn connect(addr: SocketAddr) -> std::io::Result<(Blocking, String)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (c, greeting) = rt.block_on(async {
            let mut c = Client::try_connect(addr).await?;
            let g = c.read_reply().await?.join("\n");
            Ok::<_, std::io::Error>((c, g))
        })?;
        Ok((Blocking { rt, c }, greeting))
    }

    /// Connects, reads the greeting and says EHLO.
    pub fn greeted(addr: SocketAddr) -> std::io::Result<Blocking> {
        let (mut s, _) = Blocking::connect(addr)?;
        s.cmd("EHLO client.test")?;
        Ok(s)
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.rt.block_on(self.c.write(bytes))
    }

    pub fn reply(&mut self) -> std::io::Result<String> {
        Ok(self.rt.block_on(self.c.read_reply())?.join("\n"))
    }

    pub fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.rt.block_on(self.c.try_cmd(line))
    }

    /// [`Client::transaction`].
    pub fn transaction(
        &mut self,
        from: &str,
        rcpts: &[&str],
        data: &[u8],
    ) -> std::io::Result<Vec<String>> {
        self.rt.block_on(self.c.transaction(from, rcpts, data))
    }
}

/// Dot-stuffs `text` for DATA and appends the terminator (text lines end in CRLF).
pub fn stuffed(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.split_inclusive("\r\n") {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Sends one message with Python's smtplib; returns smtplib's exit status and output.
pub fn python_send(addr: SocketAddr, from: &str, to: &[&str], body: &str) -> (bool, String) {
    let script = format!(
        "import smtplib,sys\ns=smtplib.SMTP('{}',{},timeout=20)\ns.ehlo('app.test')\nr=s.sendmail({:?},{:?},{:?})\nprint('refused',r)\ns.quit()\n",
        addr.ip(),
        addr.port(),
        from,
        to,
        body
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Like [`python_send`], from source address `src` (e.g. 127.0.0.2: loopback, but outside
/// a `relay_networks` of 127.0.0.1/32, so the daemon sees an outside host).
pub fn python_send_from(
    src: &str,
    addr: SocketAddr,
    from: &str,
    to: &[&str],
    body: &str,
) -> (bool, String) {
    use std::io::Write;
    // The body goes through stdin: a report of megabytes does not fit in an argument.
    let script = format!(
        "import smtplib,sys\nbody=sys.stdin.buffer.read()\ns=smtplib.SMTP('{}',{},timeout=60,source_address=('{}',0))\ns.ehlo('outside.test')\nr=s.sendmail({:?},{:?},body)\nprint('refused',r)\ns.quit()\n",
        addr.ip(),
        addr.port(),
        src,
        from,
        to,
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = body.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("python3 runs");
    let _ = writer.join();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
