//! `rebound dns`, the real binary: print mode lists the DKIM (RSA and Ed25519), SPF,
//! DMARC, bounce MX and PTR lines for the config; `--check` against an in-process DNS
//! server serving exactly those records gives ✓ and exit 0, and ✗ with exit 1 when the
//! RSA DKIM record is missing or carries another key. DMARC and PTR never fail it.

use std::net::SocketAddr;
use std::path::Path;

use crate::support::mx::{dns_server, mx};
use hickory_server::proto::rr::rdata::TXT;
use hickory_server::proto::rr::{Name, RData, Record};

struct Run {
    code: i32,
    stdout: String,
}

/// Runs `rebound --config CONFIG dns ARGS` off the runtime (the DNS server keeps serving).
async fn rebound_dns(config: &Path, args: &[&str]) -> Run {
    let (config, args): (std::path::PathBuf, Vec<String>) = (
        config.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rebound"))
            .arg("--config")
            .arg(&config)
            .arg("dns")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty() || out.status.code() != Some(0),
            "stderr: {stderr}"
        );
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
        }
    })
    .await
    .unwrap()
}

fn write_config(dir: &Path, nameserver: Option<SocketAddr>) -> std::path::PathBuf {
    let ns = nameserver
        .map(|a| format!("[delivery]\nnameservers = [\"{a}\"]\n"))
        .unwrap_or_default();
    let text = format!(
        "[server]\nhostname = \"relay.example.test\"\ndata_dir = \"{}\"\n[bounces]\ndomain = \"bounces.example.test\"\n[dkim]\ndomains = [\"example.test\"]\nalgorithms = [\"rsa-sha256\", \"ed25519-sha256\"]\n{ns}",
        dir.join("data").display()
    );
    let path = dir.join("rebound.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The DNS records of print mode's zone lines (`NAME. IN TXT "a" "b"`, `NAME. IN MX 10 HOST.`).
fn records_of(zone: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for line in zone.lines().filter(|l| !l.starts_with(';')) {
        let line = line.split(" ; ").next().unwrap();
        let (name, rest) = line
            .split_once(" IN ")
            .unwrap_or_else(|| panic!("a zone line: {line}"));
        if let Some(host) = rest.strip_prefix("MX 10 ") {
            out.push(mx(name, 10, host));
        } else {
            let strings: Vec<String> = rest
                .strip_prefix("TXT ")
                .unwrap()
                .split('"')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect();
            out.push(txt(name, strings));
        }
    }
    out
}

fn txt(name: &str, strings: Vec<String>) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        60,
        RData::TXT(TXT::new(strings)),
    )
}

fn owner(r: &Record) -> String {
    r.name.to_ascii()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_the_records_and_checks_them_against_dns() {
    let dir = tempfile::tempdir().unwrap();
    let offline = write_config(dir.path(), None);
    let printed = rebound_dns(&offline, &["--egress", "192.0.2.7"]).await;
    assert_eq!(printed.code, 0, "{}", printed.stdout);
    let out = &printed.stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("rb1._domainkey.example.test. IN TXT \"v=DKIM1; k=rsa; p=MII")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l
            .starts_with("rb1-ed25519._domainkey.example.test. IN TXT \"v=DKIM1; k=ed25519; p=")),
        "{out}"
    );
    for line in [
        "example.test. IN TXT \"v=spf1 ip4:192.0.2.7 -all\"",
        "bounces.example.test. IN TXT \"v=spf1 ip4:192.0.2.7 -all\"",
        "_dmarc.example.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@example.test\"",
        "bounces.example.test. IN MX 10 relay.example.test.",
        "; PTR: 192.0.2.7 should reverse-resolve to relay.example.test.",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    // Without egress addresses, SPF falls back to `a mx` and says to replace it.
    let fallback = rebound_dns(&offline, &[]).await.stdout;
    assert!(
        fallback.contains(
            "example.test. IN TXT \"v=spf1 a mx ~all\" ; replace with your egress addresses\n"
        ),
        "{fallback}"
    );
    // The RSA key is longer than one TXT string: split, the halves joined back by resolvers.
    let records = records_of(out);
    let rsa = records
        .iter()
        .find(|r| owner(r) == "rb1._domainkey.example.test.")
        .unwrap();
    let RData::TXT(t) = &rsa.data else {
        unreachable!()
    };
    assert!(t.txt_data.len() >= 2 && t.txt_data[0].len() == 255, "{t:?}");

    // Every record published: ✓ throughout, exit 0 (the PTR, not served here, is advisory).
    let ns = dns_server(records.clone()).await;
    let cfg = write_config(dir.path(), Some(ns));
    let good = rebound_dns(&cfg, &["--check", "--egress", "192.0.2.7"]).await;
    assert_eq!(good.code, 0, "{}", good.stdout);
    for what in [
        "DKIM rb1._domainkey.example.test",
        "DKIM rb1-ed25519._domainkey.example.test",
        "SPF example.test",
        "SPF bounces.example.test",
        "MX bounces.example.test",
        "DMARC _dmarc.example.test",
    ] {
        assert!(
            good.stdout
                .lines()
                .any(|l| l.starts_with(&format!("✓ {what}"))),
            "no ✓ for {what}:\n{}",
            good.stdout
        );
    }
    assert!(
        !good
            .stdout
            .lines()
            .any(|l| l.starts_with('✗') && !l.contains("(advisory)")),
        "{}",
        good.stdout
    );

    // The RSA DKIM record missing: ✗, exit 1.
    let without: Vec<Record> = records
        .iter()
        .filter(|r| owner(r) != "rb1._domainkey.example.test.")
        .cloned()
        .collect();
    let ns = dns_server(without).await;
    let cfg = write_config(dir.path(), Some(ns));
    let missing = rebound_dns(&cfg, &["--check", "--egress", "192.0.2.7"]).await;
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert!(
        missing
            .stdout
            .lines()
            .any(|l| l.starts_with("✗ DKIM rb1._domainkey.example.test: ")),
        "{}",
        missing.stdout
    );
    assert!(
        missing
            .stdout
            .lines()
            .any(|l| l.starts_with("✓ SPF example.test")),
        "{}",
        missing.stdout
    );

    // The RSA DKIM record with another key: ✗ showing what was found, exit 1.
    let other_key = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAotherkey";
    let mut swapped: Vec<Record> = records
        .iter()
        .filter(|r| owner(r) != "rb1._domainkey.example.test.")
        .cloned()
        .collect();
    swapped.push(txt(
        "rb1._domainkey.example.test.",
        vec![other_key.to_string()],
    ));
    let ns = dns_server(swapped).await;
    let cfg = write_config(dir.path(), Some(ns));
    let wrong = rebound_dns(&cfg, &["--check", "--egress", "192.0.2.7"]).await;
    assert_eq!(wrong.code, 1, "{}", wrong.stdout);
    let line = wrong
        .stdout
        .lines()
        .find(|l| l.starts_with("✗ DKIM rb1._domainkey.example.test"))
        .unwrap_or_else(|| panic!("{}", wrong.stdout));
    assert!(line.contains(other_key), "{line}");
}
