//! Fuzzes a whole inbound SMTP session: the real listener (on 127.0.0.1, as
//! `Session` takes a `TcpStream`) with an in-memory intake; each input is sent
//! after the greeting, the write side is closed, and the replies are read to
//! EOF. The session must never panic or hang, every reply line must be a
//! well-formed SMTP line, and nothing is queued without a 250 for it.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rebound::model::address::Address;
use rebound::config::{Config, Dur};
use rebound::inbound::intake::{Intake, IntakeError, RcptDecision, Receipt, Submission};
use rebound::inbound::SmtpServer;

#[derive(Default)]
struct Counting {
    queued: AtomicU64,
}

impl Intake for Counting {
    fn accepting(&self) -> Result<(), IntakeError> {
        Ok(())
    }

    fn check_recipient(&self, rcpt: &Address) -> RcptDecision {
        if rcpt.domain_key() == "bounces.relay.test" { RcptDecision::BounceIntake } else { RcptDecision::Relay }
    }

    async fn submit(&self, _sub: Submission) -> Result<Receipt, IntakeError> {
        let n = self.queued.fetch_add(1, Ordering::SeqCst);
        Ok(Receipt { queue_id: format!("F{n}") })
    }
}

struct Server {
    addr: SocketAddr,
    intake: Arc<Counting>,
    stats: Arc<rebound::inbound::SmtpStats>,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn active(&self) -> u64 {
        self.stats.sessions_active.load(Ordering::SeqCst)
    }
}

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let mut cfg = Config::default();
        cfg.server.hostname = "mx.fuzz.test".into();
        cfg.bounces.domain = "bounces.relay.test".into();
        cfg.smtp.max_message_size = rebound::config::Size(64 * 1024);
        cfg.smtp.idle_timeout = Dur(Duration::from_secs(2));
        let intake = Arc::new(Counting::default());
        let smtp = Arc::new(SmtpServer::new(Arc::new(cfg), intake.clone()).expect("server"));
        let stats = smtp.stats();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(smtp.serve(vec![listener], tokio_util::sync::CancellationToken::new()));
        Server { addr, intake, stats, _rt: rt }
    })
}

fn well_formed(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b.get(3), None | Some(b' ') | Some(b'-'))
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    let Ok(mut c) = TcpStream::connect(s.addr) else { return };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut greeting = [0u8; 512];
    // libFuzzer's timers interrupt syscalls: EINTR is retried, not a failure.
    let n = loop {
        match c.read(&mut greeting) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("no greeting: {e} (active sessions: {})", s.active()),
        }
    };
    assert!(greeting[..n].starts_with(b"220 "), "{:?} (active sessions: {})", String::from_utf8_lossy(&greeting[..n]), s.active());
    let before = s.intake.queued.load(Ordering::SeqCst);
    let _ = c.write_all(data);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    if let Err(e) = c.read_to_end(&mut out) {
        assert!(e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut, "session hung");
    }
    let text = String::from_utf8_lossy(&out);
    for line in text.split_terminator("\r\n") {
        assert!(well_formed(line), "malformed reply line {line:?}");
    }
    let acked = text.split_terminator("\r\n").filter(|l| l.starts_with("250 2.0.0 Ok: queued as ")).count() as u64;
    let queued = s.intake.queued.load(Ordering::SeqCst) - before;
    assert!(queued <= acked, "{queued} queued but {acked} acknowledged");
});
