//! MTA-STS (RFC 8461) end to end on loopback: an in-process DNS server holds the
//! `_mta-sts` TXT records, MX and A records; a local HTTPS server with a
//! certificate from a test CA serves the policy; scripted MX servers (some with
//! CA-signed certificates, one self-signed, one without STARTTLS) record every
//! connection. In `enforce` an unlisted MX is never connected to and the
//! recipient is deferred naming the policy; `testing` delivers and counts; the
//! policy cached in sled outlives a daemon restart with the policy server gone;
//! `check-config` refuses an unusable `delivery.mta_sts_ca_file`, naming it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_server::proto::rr::rdata::TXT;
use hickory_server::proto::rr::{Name, RData, Record};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::support::config::delivery as config;
use crate::support::mx::{Script, ScriptedMx, a, dns_server, mx, tls_acceptor, tx};
use rebound::config::{DeliveryConfig, MtaStsMode};
use rebound::delivery::outbound::Deliverer;
use rebound::model::EventKind;

const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.secure.test\r\nmx: *.pool.secure.test\r\nmax_age: 86400\r\n";

/// A CA whose certificate is written to a PEM file (`delivery.mta_sts_ca_file`).
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: tempfile::NamedTempFile,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pem.path(), issuer.pem()).unwrap();
        TestCa { issuer, pem }
    }

    /// A server config with a certificate for `names` signed by this CA.
    fn server(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let chain = vec![cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Arc::new(cfg)
    }

    fn acceptor(&self, names: &[&str]) -> TlsAcceptor {
        TlsAcceptor::from(self.server(names))
    }
}

/// An HTTPS server answering every request with `response`; counts requests.
struct PolicyServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl PolicyServer {
    async fn start(ca: &TestCa, response: String) -> PolicyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(ca.server(&["mta-sts.secure.test"]));
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (acceptor, response, seen) = (acceptor.clone(), response.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if head.starts_with(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n") {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        PolicyServer {
            addr,
            requests,
            task,
        }
    }

    async fn serving(ca: &TestCa, policy: &str) -> PolicyServer {
        Self::start(
            ca,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{policy}",
                policy.len()
            ),
        )
        .await
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn txt(name: &str, value: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        60,
        RData::TXT(TXT::new(vec![value.to_string()])),
    )
}

/// The zone of `secure.test`: the policy host, the TXT record, and `extra` (MX and A records).
fn zone(id: &str, extra: Vec<Record>) -> Vec<Record> {
    let mut r = vec![
        a("mta-sts.secure.test.", "127.0.0.1"),
        txt("_mta-sts.secure.test.", &format!("v=STSv1; id={id}")),
    ];
    r.extend(extra);
    r
}

async fn delivery_config(
    ca: &TestCa,
    policy: &PolicyServer,
    records: Vec<Record>,
    mx_port: u16,
    mode: MtaStsMode,
) -> DeliveryConfig {
    let mut cfg = config();
    cfg.nameservers = vec![dns_server(records).await];
    cfg.mx_port = mx_port;
    cfg.mta_sts = mode;
    cfg.mta_sts_ca_file = Some(ca.pem.path().to_path_buf());
    cfg.mta_sts_port = policy.addr.port();
    cfg
}

/// The counter value for `mode` and `reason` in the metrics this process has counted.
fn failures(mode: &str, reason: &str) -> u64 {
    rebound::delivery::outbound::mta_sts::failure_counts()
        .into_iter()
        .find(|(m, r, _)| *m == mode && *r == reason)
        .map(|(_, _, v)| v)
        .unwrap()
}

/// A free port on 127.0.0.1 that is also free on `others` (MX servers share `mx_port`).
async fn mx_servers(scripts: Vec<(&str, Script)>) -> (u16, Vec<ScriptedMx>) {
    'retry: loop {
        let first = ScriptedMx::start(scripts[0].1.clone()).await;
        let port = first.addr.port();
        let mut out = vec![first];
        for (ip, script) in &scripts[1..] {
            let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            if std::net::TcpListener::bind(addr).is_err() {
                continue 'retry;
            }
            out.push(ScriptedMx::start_on(addr, script.clone()).await);
        }
        return (port, out);
    }
}

#[tokio::test]
async fn enforce_never_connects_to_an_unlisted_mx_and_defers_naming_the_policy() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let policy = PolicyServer::serving(&ca, POLICY).await;
    let (port, servers) = mx_servers(vec![(
        "127.0.0.1",
        Script {
            tls: Some(ca.acceptor(&["evil.secure.test"])),
            ..Script::default()
        },
    )])
    .await;
    let records = zone(
        "20261203a",
        vec![
            mx("secure.test.", 10, "evil.secure.test."),
            a("evil.secure.test.", "127.0.0.1"),
        ],
    );
    let before = failures("enforce", "mx_not_listed");
    let d = Deliverer::new(
        &delivery_config(&ca, &policy, records, port, MtaStsMode::Enforce).await,
        "relay.test",
    )
    .unwrap();
    let out = d
        .deliver(
            "secure.test",
            vec![tx(
                "s@app.test",
                &["a@secure.test", "b@secure.test"],
                b"hi\r\n",
            )],
        )
        .await;
    for o in &out[0] {
        assert_eq!(
            o.reply.diagnostic(),
            "451 4.7.5 MTA-STS policy for secure.test (id 20261203a) does not list evil.secure.test"
        );
        assert!(o.reply.synthetic);
    }
    assert_eq!(
        servers[0].record().connections,
        0,
        "an MX the policy does not list is never connected to"
    );
    assert_eq!(policy.requests(), 1);
    assert!(failures("enforce", "mx_not_listed") > before);
}

#[tokio::test]
async fn enforce_skips_unlisted_hosts_and_delivers_to_a_listed_one_with_a_valid_certificate() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let policy = PolicyServer::serving(&ca, POLICY).await;
    let (port, servers) = mx_servers(vec![
        (
            "127.0.0.1",
            Script {
                tls: Some(ca.acceptor(&["a.pool.secure.test"])),
                ..Script::default()
            },
        ),
        (
            "127.0.0.2",
            Script {
                tls: Some(ca.acceptor(&["evil.secure.test"])),
                ..Script::default()
            },
        ),
    ])
    .await;
    let records = zone(
        "one",
        vec![
            mx("secure.test.", 5, "evil.secure.test."),
            mx("secure.test.", 10, "a.pool.secure.test."),
            a("evil.secure.test.", "127.0.0.2"),
            a("a.pool.secure.test.", "127.0.0.1"),
        ],
    );
    let d = Deliverer::new(
        &delivery_config(&ca, &policy, records, port, MtaStsMode::Enforce).await,
        "relay.test",
    )
    .unwrap();
    let out = d
        .deliver(
            "secure.test",
            vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
        )
        .await;
    assert_eq!(
        out[0][0].reply.code,
        250,
        "{}",
        out[0][0].reply.diagnostic()
    );
    assert_eq!(out[0][0].remote_host.as_deref(), Some("a.pool.secure.test"));
    let good = servers[0].record();
    assert_eq!((good.tls_sessions, good.messages.len()), (1, 1));
    assert_eq!(servers[1].record().connections, 0);
    // A second delivery uses the cached policy: no second fetch while the TXT id is the same.
    let out = d
        .deliver(
            "secure.test",
            vec![tx("s@app.test", &["b@secure.test"], b"again\r\n")],
        )
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    assert_eq!(policy.requests(), 1);
    assert_eq!(servers[1].record().connections, 0);
}

#[tokio::test]
async fn enforce_sends_nothing_to_a_listed_mx_without_starttls_or_with_a_bad_certificate() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let policy = PolicyServer::serving(&ca, POLICY).await;
    let (port, servers) = mx_servers(vec![
        ("127.0.0.1", Script::default()),
        (
            "127.0.0.2",
            Script {
                tls: Some(tls_acceptor()),
                ..Script::default()
            },
        ),
        (
            "127.0.0.3",
            Script {
                tls: Some(ca.acceptor(&["someone-else.test"])),
                ..Script::default()
            },
        ),
    ])
    .await;
    let cases = [
        (
            "mx1.secure.test.",
            "127.0.0.1",
            "451 4.7.4",
            "requires STARTTLS, which mx1.secure.test does not offer",
        ),
        (
            "mx1.secure.test.",
            "127.0.0.2",
            "451 4.7.5",
            "requires validated TLS: TLS with mx1.secure.test failed",
        ),
        (
            "b.pool.secure.test.",
            "127.0.0.3",
            "451 4.7.5",
            "requires validated TLS: TLS with b.pool.secure.test failed",
        ),
    ];
    for (i, (host, ip, code, text)) in cases.into_iter().enumerate() {
        let records = zone("two", vec![mx("secure.test.", 10, host), a(host, ip)]);
        let d = Deliverer::new(
            &delivery_config(&ca, &policy, records, port, MtaStsMode::Enforce).await,
            "relay.test",
        )
        .unwrap();
        let out = d
            .deliver(
                "secure.test",
                vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
            )
            .await;
        let diag = out[0][0].reply.diagnostic();
        assert!(
            diag.starts_with(code)
                && diag.contains("MTA-STS policy for secure.test (id two)")
                && diag.contains(text),
            "{ip}: {diag}"
        );
        let seen = servers[i].record();
        assert_eq!(seen.connections, 1, "{ip}: no plain-text retry");
        assert!(
            seen.messages.is_empty() && !seen.commands.iter().any(|c| c.starts_with("MAIL")),
            "{ip}: {:?}",
            seen.commands
        );
    }
}

#[tokio::test]
async fn testing_delivers_as_before_and_counts_what_would_have_failed() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let policy = PolicyServer::serving(&ca, POLICY).await;
    let (port, servers) = mx_servers(vec![(
        "127.0.0.1",
        Script {
            tls: Some(tls_acceptor()),
            ..Script::default()
        },
    )])
    .await;
    let records = zone(
        "t1",
        vec![
            mx("secure.test.", 10, "evil.secure.test."),
            mx("secure.test.", 20, "mx1.secure.test."),
            a("evil.secure.test.", "127.0.0.1"),
            a("mx1.secure.test.", "127.0.0.1"),
        ],
    );
    let (unlisted, tls) = (
        failures("testing", "mx_not_listed"),
        failures("testing", "tls_failed"),
    );
    let d = Deliverer::new(
        &delivery_config(&ca, &policy, records.clone(), port, MtaStsMode::Testing).await,
        "relay.test",
    )
    .unwrap();
    let out = d
        .deliver(
            "secure.test",
            vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
        )
        .await;
    assert_eq!(
        out[0][0].reply.code,
        250,
        "{}",
        out[0][0].reply.diagnostic()
    );
    assert_eq!(out[0][0].remote_host.as_deref(), Some("evil.secure.test"));
    assert_eq!(servers[0].record().messages.len(), 1);
    assert!(failures("testing", "mx_not_listed") > unlisted);
    // A policy in mode testing is not enforced even with delivery.mta_sts = "enforce"; a
    // listed host whose certificate is self-signed is counted, and still gets the mail.
    let testing_policy =
        PolicyServer::serving(&ca, &POLICY.replace("mode: enforce", "mode: testing")).await;
    let records = zone(
        "t2",
        vec![
            mx("secure.test.", 10, "mx1.secure.test."),
            a("mx1.secure.test.", "127.0.0.1"),
        ],
    );
    let d = Deliverer::new(
        &delivery_config(&ca, &testing_policy, records, port, MtaStsMode::Enforce).await,
        "relay.test",
    )
    .unwrap();
    let out = d
        .deliver(
            "secure.test",
            vec![tx("s@app.test", &["b@secure.test"], b"hi\r\n")],
        )
        .await;
    assert_eq!(
        out[0][0].reply.code,
        250,
        "{}",
        out[0][0].reply.diagnostic()
    );
    assert_eq!(servers[0].record().messages.len(), 2);
    assert!(failures("testing", "tls_failed") > tls);
}

#[tokio::test]
async fn no_usable_policy_means_delivery_as_without_mta_sts() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let (port, servers) = mx_servers(vec![("127.0.0.1", Script::default())]).await;
    let responses = [
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://elsewhere.test/mta-sts.txt\r\nContent-Length: 0\r\n\r\n".to_string(),
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{POLICY}", POLICY.len()),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nversion: v2\n".to_string(),
    ];
    for (i, response) in responses.into_iter().enumerate() {
        let server = PolicyServer::start(&ca, response).await;
        let records = zone(
            "x",
            vec![
                mx("secure.test.", 10, "evil.secure.test."),
                a("evil.secure.test.", "127.0.0.1"),
            ],
        );
        let d = Deliverer::new(
            &delivery_config(&ca, &server, records, port, MtaStsMode::Enforce).await,
            "relay.test",
        )
        .unwrap();
        let out = d
            .deliver(
                "secure.test",
                vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
            )
            .await;
        assert_eq!(
            out[0][0].reply.code,
            250,
            "response {i}: {}",
            out[0][0].reply.diagnostic()
        );
        assert_eq!(
            server.requests(),
            1,
            "response {i}: fetched once, redirect not followed"
        );
    }
    // A policy server whose certificate is not from a trusted CA gives no policy either.
    let untrusted = TestCa::new();
    let server = PolicyServer::serving(&untrusted, POLICY).await;
    let records = zone(
        "y",
        vec![
            mx("secure.test.", 10, "evil.secure.test."),
            a("evil.secure.test.", "127.0.0.1"),
        ],
    );
    let d = Deliverer::new(
        &delivery_config(&ca, &server, records, port, MtaStsMode::Enforce).await,
        "relay.test",
    )
    .unwrap();
    let out = d
        .deliver(
            "secure.test",
            vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
        )
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    assert_eq!(
        server.requests(),
        0,
        "the TLS handshake failed before any request"
    );
    assert_eq!(servers[0].record().messages.len(), 4);
}

#[tokio::test]
async fn the_policy_is_fetched_again_when_the_txt_id_changes_or_it_has_expired() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let policy = PolicyServer::serving(&ca, POLICY).await;
    let (port, _servers) = mx_servers(vec![(
        "127.0.0.1",
        Script {
            tls: Some(ca.acceptor(&["mx1.secure.test"])),
            ..Script::default()
        },
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = rebound::store::Store::open(dir.path()).unwrap();
    let hosts = || {
        vec![
            mx("secure.test.", 10, "mx1.secure.test."),
            a("mx1.secure.test.", "127.0.0.1"),
        ]
    };
    // Each Deliverer has its own DNS (so its own TXT id) and shares the sled cache.
    for (id, fetches) in [("a1", 1), ("a1", 1), ("b2", 2), ("b2", 2)] {
        let d = Deliverer::new(
            &delivery_config(&ca, &policy, zone(id, hosts()), port, MtaStsMode::Enforce).await,
            "relay.test",
        )
        .unwrap();
        d.use_policy_cache(store.mta_sts_cache().unwrap());
        let out = d
            .deliver(
                "secure.test",
                vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
            )
            .await;
        assert_eq!(
            out[0][0].reply.code,
            250,
            "{id}: {}",
            out[0][0].reply.diagnostic()
        );
        assert_eq!(policy.requests(), fetches, "id {id}");
    }
    let cached = store
        .mta_sts_cache()
        .unwrap()
        .get("secure.test")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            cached.id.as_str(),
            cached.policy.max_age,
            cached.expires - cached.fetched
        ),
        ("b2", 86400, 86400)
    );
    // max_age 0: the policy holds for the delivery that fetched it and is never reused.
    let brief = PolicyServer::serving(&ca, &POLICY.replace("max_age: 86400", "max_age: 0")).await;
    let d = Deliverer::new(
        &delivery_config(&ca, &brief, zone("c3", hosts()), port, MtaStsMode::Enforce).await,
        "relay.test",
    )
    .unwrap();
    for _ in 0..2 {
        let out = d
            .deliver(
                "secure.test",
                vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
            )
            .await;
        assert_eq!(out[0][0].reply.code, 250);
    }
    assert_eq!(brief.requests(), 2);
}

/// The whole daemon: a policy fetched in the first run is still enforced after a restart
/// when the policy server is gone and the domain's MX has changed to an unlisted host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_policy_outlives_a_daemon_restart() {
    let _counters = crate::support::counters::mta_sts().await;
    let ca = TestCa::new();
    let policy = PolicyServer::serving(&ca, POLICY).await;
    let (port, servers) = mx_servers(vec![
        (
            "127.0.0.1",
            Script {
                tls: Some(ca.acceptor(&["mx1.secure.test"])),
                ..Script::default()
            },
        ),
        (
            "127.0.0.2",
            Script {
                tls: Some(ca.acceptor(&["evil.secure.test"])),
                ..Script::default()
            },
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = |records: Vec<Record>| {
        let (ca_file, dir) = (ca.pem.path().to_path_buf(), dir.path().to_path_buf());
        let policy_port = policy.addr.port();
        async move {
            let mut cfg = crate::support::config::test_config(&dir);
            cfg.delivery.nameservers = vec![dns_server(records).await];
            cfg.delivery.mx_port = port;
            cfg.delivery.mta_sts = MtaStsMode::Enforce;
            cfg.delivery.mta_sts_ca_file = Some(ca_file);
            cfg.delivery.mta_sts_port = policy_port;
            cfg.delivery.retry = vec![rebound::config::Dur(Duration::from_secs(3600))];
            crate::support::daemon::start_daemon(cfg).await
        }
    };
    let first = run(zone(
        "r1",
        vec![
            mx("secure.test.", 10, "mx1.secure.test."),
            a("mx1.secure.test.", "127.0.0.1"),
        ],
    ))
    .await;
    let (ok, text) = crate::support::smtp::python_send(
        first.smtp_addrs[0],
        "s@app.test",
        &["one@secure.test"],
        "Subject: 1\r\n\r\none\r\n",
    );
    assert!(ok, "{text}");
    let h = crate::support::daemon::wait_for(
        &first,
        "one@secure.test",
        &[EventKind::Delivered, EventKind::Deferred],
        Duration::from_secs(20),
    )
    .await;
    assert!(h.contains(&"delivered".to_string()), "{h:?}");
    assert_eq!(policy.requests(), 1);
    first.stop().await;
    policy.task.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(policy.addr).await.is_err(),
        "the policy server is down"
    );

    let second = run(zone(
        "r2",
        vec![
            mx("secure.test.", 10, "evil.secure.test."),
            a("evil.secure.test.", "127.0.0.2"),
        ],
    ))
    .await;
    let (ok, text) = crate::support::smtp::python_send(
        second.smtp_addrs[0],
        "s@app.test",
        &["two@secure.test"],
        "Subject: 2\r\n\r\ntwo\r\n",
    );
    assert!(ok, "{text}");
    let h = crate::support::daemon::wait_for(
        &second,
        "two@secure.test",
        &[EventKind::Delivered, EventKind::Deferred],
        Duration::from_secs(20),
    )
    .await;
    assert!(h.contains(&"deferred".to_string()), "{h:?}");
    let q = rebound::store::events::EventQuery {
        recipient: Some("two@secure.test".into()),
        limit: 100,
        ascending: true,
        ..Default::default()
    };
    let events = second.daemon.store.query_events(&q).unwrap().events;
    let deferred = events
        .iter()
        .find(|e| e.status == EventKind::Deferred)
        .unwrap();
    assert_eq!(
        deferred.diagnostic.as_deref(),
        Some("451 4.7.5 MTA-STS policy for secure.test (id r1) does not list evil.secure.test")
    );
    assert_eq!(servers[1].record().connections, 0);
    assert_eq!(servers[0].record().messages.len(), 1);
    second.stop().await;
}

/// `rebound check-config` with `delivery.mta_sts_ca_file` = `ca` (the real binary).
fn check_config(dir: &std::path::Path, ca: &std::path::Path, mode: &str) -> (i32, String) {
    let conf = dir.join("rebound.toml");
    let text = format!(
        "[server]\nhostname = \"relay.test\"\ndata_dir = \"{}\"\n[bounces]\ndomain = \"bounces.relay.test\"\n[delivery]\nmta_sts = \"{mode}\"\nmta_sts_ca_file = \"{}\"\n",
        dir.join("data").display(),
        ca.display()
    );
    std::fs::write(&conf, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rebound"))
        .arg("--config")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_config_reads_the_mta_sts_ca_file_and_names_it_when_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (code, out) = check_config(dir.path(), ca.pem.path(), "enforce");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": OK"), "{out}");
    let missing = dir.path().join("nowhere.pem");
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    let bad_block = dir.path().join("bad.pem");
    std::fs::write(
        &bad_block,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let key_only = dir.path().join("key.pem");
    std::fs::write(&key_only, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    for (file, why) in [
        (&missing, "No such file"),
        (&not_pem, "no PEM certificate"),
        (&bad_block, "certificate 1"),
        (&key_only, "no PEM certificate"),
    ] {
        let (code, out) = check_config(dir.path(), file, "testing");
        assert_eq!(code, 2, "{}: {out}", file.display());
        assert!(
            out.contains(&format!("delivery.mta_sts_ca_file {}: ", file.display()))
                && out.contains(why),
            "{}: {out}",
            file.display()
        );
    }
    // With MTA-STS off the file is not used, so not read.
    assert_eq!(check_config(dir.path(), &missing, "off").0, 0);
}

/// max_age is counted on the daemon's clock (a ManualClock here, years from now), not the
/// system's: the policy is stamped with that clock's time, reused until max_age has passed
/// on it, and fetched again after.
#[tokio::test]
async fn max_age_runs_on_the_injected_clock() {
    let _counters = crate::support::counters::mta_sts().await;
    use rebound::model::time::{ManualClock, Timestamp};
    let ca = TestCa::new();
    let policy =
        PolicyServer::serving(&ca, &POLICY.replace("max_age: 86400", "max_age: 3600")).await;
    let (port, servers) = mx_servers(vec![(
        "127.0.0.1",
        Script {
            tls: Some(ca.acceptor(&["mx1.secure.test"])),
            ..Script::default()
        },
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = rebound::store::Store::open(dir.path()).unwrap();
    let start = Timestamp::parse_rfc3339("2031-06-01T00:00:00Z").unwrap();
    let clock = ManualClock::new(start);
    let records = zone(
        "k1",
        vec![
            mx("secure.test.", 10, "mx1.secure.test."),
            a("mx1.secure.test.", "127.0.0.1"),
        ],
    );
    let d = Deliverer::new(
        &delivery_config(&ca, &policy, records, port, MtaStsMode::Enforce).await,
        "relay.test",
    )
    .unwrap();
    d.use_policy_cache(
        store
            .mta_sts_cache()
            .unwrap()
            .with_clock(std::sync::Arc::new(clock.clone())),
    );
    let send = || {
        d.deliver(
            "secure.test",
            vec![tx("s@app.test", &["a@secure.test"], b"hi\r\n")],
        )
    };
    assert_eq!(send().await[0][0].reply.code, 250);
    let cached = store
        .mta_sts_cache()
        .unwrap()
        .get("secure.test")
        .unwrap()
        .unwrap();
    let start_secs = (start.millis() / 1000) as u64;
    assert_eq!(
        (cached.fetched, cached.expires),
        (start_secs, start_secs + 3600),
        "stamped with the injected clock"
    );
    clock.advance(Duration::from_secs(3599));
    assert_eq!(send().await[0][0].reply.code, 250);
    assert_eq!(policy.requests(), 1, "still fresh on the injected clock");
    clock.advance(Duration::from_secs(1));
    assert_eq!(send().await[0][0].reply.code, 250);
    assert_eq!(
        policy.requests(),
        2,
        "expired on the injected clock: fetched again"
    );
    assert_eq!(
        store
            .mta_sts_cache()
            .unwrap()
            .get("secure.test")
            .unwrap()
            .unwrap()
            .fetched,
        start_secs + 3600
    );
    assert_eq!(servers[0].record().messages.len(), 3);
}
