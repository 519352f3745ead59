//! Whole-daemon DKIM signing, checked by an independent verifier (Python's
//! dkimpy): every copy the scripted MX receives carries an rsa-sha256 and an
//! ed25519-sha256 signature that verify against the TXT records built from our
//! public keys — a two-recipient message (each copy, with its own
//! List-Unsubscribe), a long-line HTML body (re-encoded before signing) and an
//! 8-bit body; one changed body byte makes them fail; mail from an unlisted
//! domain goes out unsigned. The copies of one message share one body hash.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::mx::unstuff;
use crate::support::prelude::*;
use rebound::config::DkimAlgorithm;

const VERIFY: &str = r#"
import dkim, json, sys
recs = json.loads(sys.argv[1])
def dns(name, timeout=5):
    v = recs.get(name.decode().rstrip('.').lower())
    return v.encode() if v else None
for path in sys.argv[2:]:
    m = open(path, 'rb').read()
    head = m.split(b'\r\n\r\n', 1)[0]
    n = sum(1 for l in head.split(b'\r\n') if l.lower().startswith(b'dkim-signature:'))
    res = []
    first = bool(dkim.verify(m, dnsfunc=dns)) if n else None
    for i in range(n):
        try:
            res.append(bool(dkim.DKIM(m).verify(idx=i, dnsfunc=dns)))
        except Exception as e:
            print('error', e, file=sys.stderr)
            res.append(False)
    if n and first != res[0]:
        res.append('mismatch')
    print(json.dumps(res))
"#;

/// Submits raw bytes with smtplib (bytes, so an 8-bit body passes unchanged).
fn send_bytes(addr: SocketAddr, from: &str, to: &[&str], msg: &[u8]) {
    let hex: String = msg.iter().map(|b| format!("{b:02x}")).collect();
    let script = format!(
        "import smtplib\ns=smtplib.SMTP('{}',{},timeout=20)\ns.ehlo('app.test')\nr=s.sendmail({from:?},{to:?},bytes.fromhex('{hex}'))\nprint('refused',r)\ns.quit()\n",
        addr.ip(),
        addr.port()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// dkimpy's verdict per signature of each message.
fn verify(records: &serde_json::Value, messages: &[Vec<u8>]) -> Vec<Vec<serde_json::Value>> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(VERIFY).arg(records.to_string());
    for (i, m) in messages.iter().enumerate() {
        let p = dir.path().join(format!("m{i}.eml"));
        std::fs::write(&p, m).unwrap();
        cmd.arg(p);
    }
    let out = cmd.output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn header_block(m: &[u8]) -> String {
    let text = String::from_utf8_lossy(m);
    text.split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
}

fn message(from: &str, to: &str, subject: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@mail.school.example>\r\nMIME-Version: 1.0\r\n{extra}\r\n").into_bytes();
    m.extend_from_slice(body);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_verifies_with_rsa_and_ed25519_and_tampering_fails() {
    let _counters = crate::support::counters::dkim().await;
    if !crate::support::skip::dkimpy_ready("DKIM verification with dkimpy") {
        return;
    }
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| {
        cfg.dkim.domains = vec!["school.example".into()];
        cfg.dkim.algorithms = vec![DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256];
        cfg.unsubscribe.enabled = true;
        cfg.unsubscribe.listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.unsubscribe.base_url = Some("https://unsub.relay.test/".into());
    })
    .await;
    let smtp = d.smtp_addrs[0];
    let unsigned_before = rebound::delivery::outbound::dkim::unsigned_total();
    let reused_before = rebound::delivery::outbound::dkim::body_hash_counts().1;

    let plain = message(
        "\"News\" <news@mail.school.example>",
        "a@dest.test, b@dest.test",
        "two",
        "Content-Type: text/plain\r\n",
        b"Hello both.\r\n.leading dot\r\n",
    );
    send_bytes(
        smtp,
        "news@mail.school.example",
        &["a@dest.test", "b@dest.test"],
        &plain,
    );
    let long_line = format!(
        "<html><body><p>{}</p></body></html>\r\n",
        "wide ".repeat(700)
    );
    let html = message(
        "news@school.example",
        "c@dest.test",
        "html",
        "Content-Type: text/html; charset=utf-8\r\n",
        long_line.as_bytes(),
    );
    send_bytes(smtp, "news@school.example", &["c@dest.test"], &html);
    let eight = message(
        "news@school.example",
        "d@dest.test",
        "eight",
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        "Grüße aus der Schule, café.\r\n".as_bytes(),
    );
    send_bytes(smtp, "news@school.example", &["d@dest.test"], &eight);
    let other = message(
        "x@elsewhere.test",
        "e@dest.test",
        "other",
        "",
        b"not ours\r\n",
    );
    send_bytes(smtp, "x@elsewhere.test", &["e@dest.test"], &other);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while mx.record().messages.len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} copies arrived",
            mx.record().messages.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let copies: Vec<Vec<u8>> = mx.record().messages.iter().map(|m| unstuff(m)).collect();
    let signer = rebound::delivery::outbound::dkim::prepare(&d.daemon.cfg)
        .unwrap()
        .expect("signing is on");
    let records: serde_json::Map<String, serde_json::Value> = signer
        .records()
        .iter()
        .map(|r| (r.name.clone(), r.value.clone().into()))
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    let records = serde_json::Value::Object(records);

    let subject =
        |m: &Vec<u8>| rebound::model::headers::header_value(m, "Subject").unwrap_or_default();
    let ours: Vec<Vec<u8>> = copies
        .iter()
        .filter(|m| subject(m) != "other")
        .cloned()
        .collect();
    assert_eq!(ours.len(), 4);
    for (m, verdict) in ours.iter().zip(verify(&records, &ours)) {
        let head = header_block(m);
        assert_eq!(verdict, vec![serde_json::Value::Bool(true); 2], "{head}");
        assert!(
            head.contains("a=rsa-sha256") && head.contains("a=ed25519-sha256"),
            "{head}"
        );
        assert!(
            head.contains("d=school.example") && head.contains("c=relaxed/relaxed"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("list-unsubscribe:"),
            "copy has no List-Unsubscribe: {head}"
        );
        let h_tag: String = head
            .split(" h=")
            .nth(1)
            .unwrap_or_else(|| panic!("no h= in {head}"))
            .split(';')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let h_names: Vec<String> = h_tag
            .to_ascii_lowercase()
            .split(':')
            .map(str::to_string)
            .collect();
        assert!(h_names.iter().any(|h| h == "list-unsubscribe"), "{h_tag}");
        for name in ["from", "subject", "date"] {
            // Each signature's h= names it twice: the one present and one absent (over-signed).
            assert_eq!(
                head.to_ascii_lowercase()
                    .split("\r\n")
                    .filter(|l| l.starts_with(&format!("{name}:")))
                    .count(),
                1,
                "{head}"
            );
            let per_sig = h_names.iter().filter(|h| *h == name).count();
            assert_eq!(per_sig, 2, "{name} in {h_tag}");
        }
        assert!(
            m.split(|b| *b == b'\n').all(|l| l.len() <= 1000),
            "a line over 998 octets went out"
        );
    }
    let twos: Vec<&Vec<u8>> = ours.iter().filter(|m| subject(m) == "two").collect();
    assert_eq!(twos.len(), 2);
    assert_ne!(
        header_block(twos[0]),
        header_block(twos[1]),
        "the two copies should differ (own token and link)"
    );
    assert!(
        rebound::delivery::outbound::dkim::body_hash_counts().1 > reused_before,
        "the second copy reused the first one's body hash"
    );
    let html_copy = ours.iter().find(|m| subject(m) == "html").unwrap();
    assert!(
        header_block(html_copy)
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: quoted-printable"),
        "long line not re-encoded"
    );
    assert!(
        ours.iter()
            .any(|m| subject(m) == "eight" && String::from_utf8_lossy(m).contains("Grüße")),
        "8-bit body changed"
    );

    let other_copy = copies.iter().find(|m| subject(m) == "other").unwrap();
    assert!(
        !header_block(other_copy)
            .to_ascii_lowercase()
            .contains("dkim-signature"),
        "unlisted domain signed"
    );
    assert!(rebound::delivery::outbound::dkim::unsigned_total() > unsigned_before);

    let mut tampered = twos[0].clone();
    let at = tampered.windows(5).position(|w| w == b"Hello").unwrap();
    tampered[at] = b'J';
    assert_eq!(
        verify(&records, &[tampered]),
        vec![vec![serde_json::Value::Bool(false); 2]]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_be_read_stops_the_start() {
    let _counters = crate::support::counters::dkim().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("data/dkim/school.example/rb1.rsa.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let mut cfg = test_config(dir.path());
    cfg.dkim.domains = vec!["school.example".into()];
    let err = rebound::daemon::start(cfg, std::sync::Arc::new(rebound::model::time::SystemClock))
        .await
        .err()
        .expect("start refused");
    assert!(err.to_string().contains("rb1.rsa.key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_reused_across_restarts() {
    let _counters = crate::support::counters::dkim().await;
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let adjust = |cfg: &mut rebound::config::Config| {
        cfg.dkim.domains = vec!["school.example".into()];
        cfg.dkim.algorithms = vec![DkimAlgorithm::Ed25519Sha256];
    };
    let first = rebound::delivery::outbound::dkim::Signer::from_config(&{
        let mut c = test_config(dir.path());
        adjust(&mut c);
        c
    })
    .unwrap()
    .unwrap();
    let d = start_routed(dir.path(), mx.addr, adjust).await;
    let again = rebound::delivery::outbound::dkim::prepare(&d.daemon.cfg)
        .unwrap()
        .unwrap();
    assert_eq!(first.records(), again.records());
    let key = &again.records()[0].key_file;
    assert_eq!(
        key,
        &dir.path().join("data/dkim/school.example/rb1.ed25519.key")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_opts_out_sends_unsigned() {
    let _counters = crate::support::counters::dkim().await;
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| {
        cfg.dkim.domains = vec!["school.example".into()];
        cfg.dkim.algorithms = vec![DkimAlgorithm::Ed25519Sha256];
        cfg.dkim.skip_routes = vec!["*".into()];
    })
    .await;
    send_bytes(
        d.smtp_addrs[0],
        "news@school.example",
        &["a@dest.test"],
        &message("news@school.example", "a@dest.test", "skip", "", b"hi\r\n"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while mx.record().messages.is_empty() {
        assert!(std::time::Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let head = header_block(&unstuff(&mx.record().messages[0]));
    assert!(
        !head.to_ascii_lowercase().contains("dkim-signature"),
        "{head}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsns_rebound_writes_are_not_signed() {
    let _counters = crate::support::counters::dkim().await;
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |cfg| {
        // The DSN's From (MAILER-DAEMON@relay.test) is a listed domain: only is_dsn keeps it unsigned.
        cfg.dkim.domains = vec!["relay.test".into()];
        cfg.dkim.algorithms = vec![DkimAlgorithm::Ed25519Sha256];
        cfg.bounces.notify_sender = true;
    })
    .await;
    send_bytes(
        d.smtp_addrs[0],
        "app@relay.test",
        &["unknown@dest.test"],
        &message(
            "app@relay.test",
            "unknown@dest.test",
            "refused",
            "",
            b"hi\r\n",
        ),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while mx.record().messages.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no DSN arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let head = header_block(&unstuff(&mx.record().messages[0]));
    assert!(
        head.contains("MAILER-DAEMON@relay.test"),
        "not the DSN: {head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("dkim-signature"),
        "{head}"
    );
    d.stop().await;
}
