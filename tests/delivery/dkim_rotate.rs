//! DKIM key rotation end to end: the daemon signs with rb1; `rebound dkim rotate`
//! (the real binary) makes rb2 and prints its records; while they are not in DNS
//! (an in-process DNS server whose zone the test changes) the daemon keeps signing
//! with rb1, `dkim status` and `dns --check` show rb2 missing; once the test
//! publishes them the daemon switches and signs with rb2 (dkimpy verifies both
//! generations); `status` lists rb1 as kept, then (grace 0s) as retire-able with
//! its record line; a restart keeps rb2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::mx::Dns;
use crate::support::mx::unstuff;
use crate::support::prelude::*;
use rebound::config::{Config, DkimAlgorithm, Dur};
use rebound::model::time::ManualClock;

const VERIFY: &str = r#"
import dkim, json, sys
recs = json.loads(sys.argv[1])
def dns(name, timeout=5):
    v = recs.get(name.decode().rstrip('.').lower())
    return v.encode() if v else None
m = open(sys.argv[2], 'rb').read()
head = m.split(b'\r\n\r\n', 1)[0]
n = sum(1 for l in head.split(b'\r\n') if l.lower().startswith(b'dkim-signature:'))
res = []
for i in range(n):
    try:
        res.append(bool(dkim.DKIM(m).verify(idx=i, dnsfunc=dns)))
    except Exception as e:
        print('error', e, file=sys.stderr)
        res.append(False)
print(json.dumps(res))
"#;

/// dkimpy's verdict per signature, the keys taken from `records` (name -> TXT value).
fn verify(records: &serde_json::Map<String, serde_json::Value>, message: &[u8]) -> Vec<bool> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(VERIFY)
        .arg(serde_json::Value::Object(records.clone()).to_string())
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `s=` of each DKIM-Signature, in order.
fn selectors(m: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(m);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    head.split("\r\n")
        .filter(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
        .map(|l| {
            l.split(';')
                .filter_map(|t| t.trim().strip_prefix("s="))
                .next()
                .unwrap_or_else(|| panic!("no s= in {l}"))
                .trim()
                .to_string()
        })
        .collect()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `rebound --config CONFIG ARGS`, off the runtime (the DNS server keeps answering).
async fn rebound(config: &Path, args: &[&str]) -> Out {
    let (config, args): (PathBuf, Vec<String>) = (
        config.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rebound"))
            .arg("--config")
            .arg(&config)
            .args(&args)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    })
    .await
    .unwrap()
}

/// The config file the commands read: the daemon's data_dir and [dkim], `grace`.
fn config_file(dir: &Path, cfg: &Config, grace: &str) -> PathBuf {
    let text = format!(
        "[server]\nhostname = \"relay.test\"\ndata_dir = \"{}\"\n[bounces]\ndomain = \"bounces.relay.test\"\n[delivery]\nnameservers = [\"{}\"]\n[dkim]\ndomains = [\"school.test\"]\nalgorithms = [\"rsa-sha256\", \"ed25519-sha256\"]\nrotation_check = \"200ms\"\nrotation_grace = \"{grace}\"\n",
        cfg.server.data_dir.display(),
        cfg.delivery.nameservers[0]
    );
    let path = dir.join(format!("rebound-{grace}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits (up to 20 s) until the daemon's rotation watcher has run two more checks.
async fn two_more_checks() {
    let checks = rebound::delivery::outbound::dkim::rotation_checks();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rebound::delivery::outbound::dkim::rotation_checks() < checks + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no rotation check ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one message from school.test and returns the copy the MX received.
async fn send_one(d: &rebound::daemon::Running, mx: &ScriptedMx, subject: &str) -> Vec<u8> {
    let before = mx.record().messages.len();
    let body = format!(
        "From: News <news@school.test>\r\nTo: a@dest.test\r\nSubject: {subject}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nHello from {subject}.\r\n"
    );
    let (ok, text) = python_send(d.smtp_addrs[0], "news@school.test", &["a@dest.test"], &body);
    assert!(ok, "{text}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while mx.record().messages.len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "{subject}: nothing arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unstuff(&mx.record().messages[before])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_switches_once_the_new_records_resolve_and_the_switch_survives_a_restart() {
    let _counters = crate::support::counters::dkim().await;
    if !crate::support::skip::dkimpy_ready("DKIM rotation with dkimpy") {
        return;
    }
    let dns = Dns::start(Vec::new()).await;
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    route_all(&mut cfg, mx.addr);
    cfg.delivery.nameservers = vec![dns.addr];
    cfg.dkim.domains = vec!["school.test".into()];
    cfg.dkim.algorithms = vec![DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256];
    cfg.dkim.rotation_check = Dur(Duration::from_millis(200));
    let conf = config_file(dir.path(), &cfg, "7d");
    let d = start_daemon(cfg.clone()).await;
    let signer = rebound::delivery::outbound::dkim::prepare(&d.daemon.cfg)
        .unwrap()
        .unwrap();
    let mut keys: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for r in signer.records() {
        dns.publish(&r.zone_line).await;
        keys.insert(r.name.clone(), r.value.clone().into());
    }
    drop(signer);

    // Rotate: rb2's records printed, nothing published yet.
    let rotated = rebound(&conf, &["dkim", "rotate", "school.test"]).await;
    assert_eq!(rotated.code, 0, "{}{}", rotated.stdout, rotated.stderr);
    let lines: Vec<&str> = rotated
        .stdout
        .lines()
        .filter(|l| !l.starts_with(';'))
        .collect();
    assert_eq!(lines.len(), 2, "{}", rotated.stdout);
    assert!(
        lines[0].starts_with("rb2._domainkey.school.test. IN TXT \"v=DKIM1; k=rsa; p=MII"),
        "{}",
        rotated.stdout
    );
    assert!(
        lines[1].starts_with("rb2-ed25519._domainkey.school.test. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{}",
        rotated.stdout
    );
    let key_dir = dir.path().join("data/dkim/school.test");
    use std::os::unix::fs::PermissionsExt;
    for f in ["rb2.rsa.key", "rb2.ed25519.key", "rotation.json"] {
        assert_eq!(
            std::fs::metadata(key_dir.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600,
            "{f}"
        );
    }
    // Asked again while pending: the same records, no third selector.
    let again = rebound(&conf, &["dkim", "rotate", "school.test"]).await;
    assert!(
        again.code == 0 && again.stdout.contains("already pending"),
        "{}",
        again.stdout
    );
    assert_eq!(
        again
            .stdout
            .lines()
            .filter(|l| !l.starts_with(';'))
            .collect::<Vec<_>>(),
        lines
    );
    for l in &lines {
        let (name, rest) = l.split_once(". IN TXT ").unwrap();
        keys.insert(
            name.to_string(),
            rest.split('"')
                .skip(1)
                .step_by(2)
                .collect::<String>()
                .into(),
        );
    }

    // The daemon has looked rb2 up (twice, so once after seeing the rotation) and not found it.
    two_more_checks().await;
    let before = send_one(&d, &mx, "before").await;
    assert_eq!(selectors(&before), ["rb1", "rb1-ed25519"]);
    assert_eq!(verify(&keys, &before), [true, true]);
    let status = rebound(&conf, &["dkim", "status"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    for want in [
        "school.test: signing with selector rb1",
        "  ✓ rb1._domainkey.school.test (current)",
        "school.test: rotation to rb2 pending since ",
        "  ✗ rb2._domainkey.school.test (pending): nothing found",
        "    publish: rb2-ed25519._domainkey.school.test. IN TXT",
    ] {
        assert!(
            status.stdout.lines().any(|l| l.starts_with(want)),
            "no {want:?} in\n{}",
            status.stdout
        );
    }
    let check = rebound(&conf, &["dns", "--check"]).await;
    assert_eq!(
        check.code, 1,
        "a pending record missing fails the check:\n{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("✗ DKIM rb2._domainkey.school.test: ")),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("✓ DKIM rb1._domainkey.school.test")),
        "{}",
        check.stdout
    );
    let printed = rebound(&conf, &["dns"]).await.stdout;
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with(lines[0]) && l.contains("; pending rotation to rb2")),
        "{printed}"
    );

    // Only the RSA record published: still rb1 (every record must resolve).
    dns.publish(lines[0]).await;
    two_more_checks().await;
    assert_eq!(
        selectors(&send_one(&d, &mx, "half").await),
        ["rb1", "rb1-ed25519"]
    );

    // Both published: the daemon switches (state file first), then signs with rb2.
    dns.publish(lines[1]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = rebound::delivery::outbound::dkim::rotation::load(
            &dir.path().join("data/dkim"),
            "school.test",
        )
        .unwrap()
        .unwrap();
        if state.current == "rb2" {
            assert!(state.pending.is_none());
            assert_eq!(
                state
                    .retired
                    .iter()
                    .map(|r| r.selector.as_str())
                    .collect::<Vec<_>>(),
                ["rb1"]
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never switched: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The swap follows the write; give the watcher's pass a moment to finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let m = send_one(&d, &mx, "after").await;
        if selectors(&m)[0] == "rb2" || std::time::Instant::now() > deadline {
            break m;
        }
    };
    assert_eq!(selectors(&after), ["rb2", "rb2-ed25519"]);
    assert_eq!(verify(&keys, &after), [true, true]);
    let mut tampered = after.clone();
    let at = tampered.windows(5).position(|w| w == b"Hello").unwrap();
    tampered[at] = b'J';
    assert_eq!(verify(&keys, &tampered), [false, false]);

    // rb1 is kept through the grace period, then retire-able with the line to remove.
    let status = rebound(&conf, &["dkim", "status", "school.test"])
        .await
        .stdout;
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("school.test: signing with selector rb2 since ")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("school.test: rb1 replaced ")
                && l.contains("keep its records until")),
        "{status}"
    );
    let rb1_line = status
        .lines()
        .find(|l| l.starts_with("    rb1._domainkey.school.test. IN TXT \"v=DKIM1; k=rsa;"))
        .unwrap_or_else(|| panic!("{status}"));
    let printed = rebound(&conf, &["dns"]).await.stdout;
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with(rb1_line.trim()) && l.contains("; replaced ")),
        "{printed}"
    );
    let no_grace = config_file(dir.path(), &cfg, "0s");
    let status = rebound(&no_grace, &["dkim", "status"]).await.stdout;
    assert!(status.lines().any(|l| l.starts_with("school.test: rb1 replaced ") && l.contains("retire-able since")), "{status}");
    assert!(status.lines().any(|l| l == rb1_line), "{status}");
    let check = rebound(&no_grace, &["dns", "--check"]).await;
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("✓ DKIM rb2._domainkey.school.test")),
        "{}",
        check.stdout
    );
    assert!(
        !check
            .stdout
            .lines()
            .any(|l| l.contains("rb1._domainkey") && !l.starts_with(';')),
        "a retire-able record is not checked:\n{}",
        check.stdout
    );

    // A restart reads the state back: rb2.
    d.stop().await;
    let d = start_daemon(cfg).await;
    let restarted = send_one(&d, &mx, "restarted").await;
    assert_eq!(selectors(&restarted), ["rb2", "rb2-ed25519"]);
    assert_eq!(verify(&keys, &restarted), [true, true]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_refuses_a_domain_that_is_not_signed() {
    let _counters = crate::support::counters::dkim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.delivery.nameservers = vec!["127.0.0.1:9".parse().unwrap()];
    let conf = config_file(dir.path(), &cfg, "7d");
    let out = rebound(&conf, &["dkim", "rotate", "other.test"]).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("other.test is not in dkim.domains (school.test)"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("data/dkim/other.test").exists());
}

/// The switch is dated by the daemon's clock (a `ManualClock` years ahead here), and the
/// watcher stops with the daemon: no rotation check runs after `stop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_is_dated_by_the_daemon_clock_and_the_watcher_stops_with_it() {
    let _counters = crate::support::counters::dkim().await;
    let dns = Dns::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.delivery.nameservers = vec![dns.addr];
    cfg.dkim.domains = vec!["school.test".into()];
    cfg.dkim.algorithms = vec![DkimAlgorithm::Ed25519Sha256];
    cfg.dkim.rotation_check = Dur(Duration::from_millis(100));
    let conf = config_file(dir.path(), &cfg, "7d");
    let later = rebound::model::time::Timestamp(1_924_992_000_000); // 2031-01-01
    let d = start_on_clock(cfg, ManualClock::new(later)).await;
    let rotated = rebound(&conf, &["dkim", "rotate", "school.test"]).await;
    assert_eq!(rotated.code, 0, "{}{}", rotated.stdout, rotated.stderr);
    for l in rotated.stdout.lines().filter(|l| !l.starts_with(';')) {
        dns.publish(l).await;
    }
    let key_dir = dir.path().join("data/dkim");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let state = loop {
        let s = rebound::delivery::outbound::dkim::rotation::load(&key_dir, "school.test")
            .unwrap()
            .unwrap();
        if s.current == "rb2" {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never switched: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state.retired.len(), 1, "{state:?}");
    assert_eq!(state.retired[0].switched, later, "{state:?}");

    // A further rotation left unpublished keeps the watcher checking while the daemon runs...
    let again = rebound(&conf, &["dkim", "rotate", "school.test"]).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    two_more_checks().await;
    // ...and not once it has stopped.
    d.stop().await;
    let after_stop = rebound::delivery::outbound::dkim::rotation_checks();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rebound::delivery::outbound::dkim::rotation_checks(),
        after_stop,
        "a rotation check ran after the daemon stopped"
    );
}
