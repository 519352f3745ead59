//! Harness for the hardening tests: the real `rebound` binary as a child
//! process (config file written here, addresses read from its stderr, SIGKILL
//! or SIGTERM), a blocking raw SMTP client that reports every reply, and a
//! minimal HTTP GET for the admin API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "test-token";
/// Guard against hangs only; never asserted on.
const IO_GUARD: Duration = Duration::from_secs(20);

/// What goes into the config file of a child daemon.
pub struct ProcConfig {
    pub data_dir: PathBuf,
    /// Where every domain is routed (`delivery.routes."*"`).
    pub route: SocketAddr,
    /// Extra `key = value` lines for `[smtp]`.
    pub smtp_extra: String,
    /// Extra `key = value` lines for `[delivery]`.
    pub delivery_extra: String,
}

impl ProcConfig {
    pub fn new(data_dir: &Path, route: SocketAddr) -> ProcConfig {
        ProcConfig {
            data_dir: data_dir.to_path_buf(),
            route,
            smtp_extra: String::new(),
            delivery_extra: String::new(),
        }
    }

    /// Writes the TOML file next to the data dir and returns its path.
    pub fn write(&self, path: &Path) -> PathBuf {
        let text = format!(
            "[server]\nhostname = \"relay.test\"\ndata_dir = {:?}\nshutdown_timeout = \"5s\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nmin_free_space = 0\nmax_connections = 200\n{}\n\
             [api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
             [bounces]\ndomain = \"bounces.relay.test\"\nsecret = \"verp-test-key\"\n\
             [delivery]\nretry = [\"500ms\"]\nmax_age = \"1h\"\ncommand_timeout = \"3s\"\ndata_timeout = \"5s\"\n{}\n\
             [delivery.routes]\n\"*\" = \"{}\"\n",
            self.data_dir.display().to_string(),
            self.smtp_extra,
            self.delivery_extra,
            self.route
        );
        std::fs::write(path, text).expect("config written");
        path.to_path_buf()
    }
}

/// A `rebound serve` child process.
pub struct Daemon {
    child: Child,
    pub smtp: SocketAddr,
    pub api: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `rebound serve --config CONFIG` and waits until both listeners are up.
    /// `Err` carries the stderr seen so far (e.g. a sled open failure).
    pub fn spawn(config: &Path, envs: &[(&str, &Path)]) -> Result<Daemon, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rebound"));
        cmd.args(["serve", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("REBOUND_CONFIG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || read_log(stderr, sink, tx));
        let mut smtp = None;
        let mut api = None;
        while smtp.is_none() || api.is_none() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(("smtp", a)) => smtp = Some(a),
                Ok((_, a)) => api = Some(a),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(log.lock().unwrap().clone());
                }
            }
        }
        Ok(Daemon {
            child,
            smtp: smtp.unwrap(),
            api: api.unwrap(),
            log,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL; returns the log.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM and wait; returns whether it exited 0, and the log.
    pub fn term(mut self) -> (bool, String) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        std::thread::sleep(Duration::from_millis(50));
        (ok, self.log.lock().unwrap().clone())
    }

    /// SIGTERM and wait at most `limit`: `Some((exited 0, log))`, or `None` (then SIGKILL) when
    /// it was still running.
    pub fn term_within(mut self, limit: Duration) -> Option<(bool, String)> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Some((status.success(), self.log.lock().unwrap().clone()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `Some(exited 0)` once the process has exited by itself.
    pub fn exited(&mut self) -> Option<bool> {
        self.child.try_wait().ok().flatten().map(|s| s.success())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(
    stderr: std::process::ChildStderr,
    log: Arc<Mutex<String>>,
    tx: mpsc::Sender<(&'static str, SocketAddr)>,
) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        for (what, marker) in [("smtp", "smtp listening on "), ("api", "api listening on ")] {
            if let Some(rest) = line.split(marker).nth(1)
                && let Some(addr) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.trim_end_matches(',').parse().ok())
            {
                let _ = tx.send((what, addr));
            }
        }
        let mut l = log.lock().unwrap();
        l.push_str(&line);
        l.push('\n');
    }
}

/// A blocking SMTP client speaking raw bytes.
pub struct Smtp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Smtp {
    /// Connects and reads the greeting (returned as the second value).
    pub fn connect(addr: SocketAddr) -> std::io::Result<(Smtp, String)> {
        let w = TcpStream::connect_timeout(&addr, IO_GUARD)?;
        w.set_read_timeout(Some(IO_GUARD))?;
        w.set_write_timeout(Some(IO_GUARD))?;
        let mut s = Smtp {
            r: BufReader::new(w.try_clone()?),
            w,
        };
        let greeting = s.reply()?;
        Ok((s, greeting))
    }

    /// Connects, reads the greeting and says EHLO.
    pub fn greeted(addr: SocketAddr) -> std::io::Result<Smtp> {
        let (mut s, _) = Smtp::connect(addr)?;
        s.cmd("EHLO client.test")?;
        Ok(s)
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes)
    }

    /// One (possibly multi-line) reply; the lines joined with `\n`.
    pub fn reply(&mut self) -> std::io::Result<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("closed after {lines:?}"),
                ));
            }
            let line = line.trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                return Ok(lines.join("\n"));
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// MAIL, RCPTs, DATA and the already-stuffed `data` (terminator included).
    /// Returns every reply in order; stops at the first refusal before DATA.
    pub fn transaction(
        &mut self,
        from: &str,
        rcpts: &[&str],
        data: &[u8],
    ) -> std::io::Result<Vec<String>> {
        let mut out = vec![self.cmd(&format!("MAIL FROM:<{from}>"))?];
        if !out[0].starts_with('2') {
            return Ok(out);
        }
        for r in rcpts {
            out.push(self.cmd(&format!("RCPT TO:<{r}>"))?);
        }
        let d = self.cmd("DATA")?;
        let go = d.starts_with("354");
        out.push(d);
        if go {
            self.send(data)?;
            out.push(self.reply()?);
        }
        Ok(out)
    }

    /// True when the peer closed the connection (EOF or reset) within the read guard.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 256];
        loop {
            match self.r.read(&mut b) {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
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

/// `GET path` on the admin API with the bearer token; the response body on 200.
pub fn api_get(api: SocketAddr, path: &str) -> Result<String, String> {
    match api_status(api, path)? {
        (200, body) => Ok(body),
        (code, body) => Err(format!("{code}: {body}")),
    }
}

/// `GET path` on the admin API with the bearer token; status code and body.
pub fn api_status(api: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&api, IO_GUARD).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_GUARD))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or("no header end")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((code, body.to_string()))
}

/// Runs a `rebound` CLI command with `--config`; returns (exit code, stdout, stderr).
pub fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("REBOUND_CONFIG")
        .output()
        .expect("rebound runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A config file for the CLI pointing at a running daemon's API.
pub fn cli_config(dir: &Path, api: SocketAddr) -> PathBuf {
    let p = dir.join("cli.toml");
    std::fs::write(
        &p,
        format!("[api]\nurl = \"http://{api}\"\ntoken = \"{TOKEN}\"\n"),
    )
    .expect("cli config written");
    p
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

/// A port with nothing listening on it.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}
