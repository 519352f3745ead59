//! The built `rebound` binary: check-config on good and bad files, and admin
//! commands against an API served in this process.

use std::path::{Path, PathBuf};

use crate::support::config::TOKEN;
use crate::support::rig::rig;
use tokio::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn rebound(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(args)
        .env_remove("REBOUND_CONFIG")
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn check_config_prints_masked_settings_or_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.toml",
        "[api]\ntoken = \"very-secret-token\"\n[delivery]\nmax_age = \"36h\"\n",
    );
    let r = rebound(&["check-config", "--config", good.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("max_age = \"36h\""), "{}", r.stdout);
    assert!(
        !r.stdout.contains("very-secret-token"),
        "secrets are masked: {}",
        r.stdout
    );
    let bad = write(
        dir.path(),
        "bad.toml",
        "[smtp]\nmax_recipients = 5\nno_such_key = 1\n",
    );
    let r = rebound(&["check-config", "--config", bad.to_str().unwrap()]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("bad.toml")
            && r.stderr.contains("line 3")
            && r.stderr.contains("no_such_key"),
        "{}",
        r.stderr
    );
    let missing = rebound(&["check-config", "--config", "/nonexistent/rebound.toml"]).await;
    assert_eq!(missing.code, 2);
    assert_eq!(rebound(&["queue", "frobnicate"]).await.code, 2, "bad usage");
}

#[tokio::test]
async fn admin_commands_talk_to_the_daemon() {
    let r = rig().await;
    let cfg = write(
        r.dir.path(),
        "cli.toml",
        &format!("[api]\nurl = \"http://{}\"\ntoken = \"{TOKEN}\"\n", r.addr),
    );
    let c = cfg.to_str().unwrap();
    let id = r.submit(&["first@example.net", "second@example.net"]).await;
    r.attempt(
        &id,
        &[
            (0, 550, "5.1.1", "no such user"),
            (1, 451, "4.3.0", "later"),
        ],
    )
    .await;

    let q = rebound(&["queue", "list", "--config", c]).await;
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert!(
        q.stdout.starts_with("QUEUE ID")
            && q.stdout.contains(&id)
            && q.stdout.contains("second@example.net (deferred)"),
        "{}",
        q.stdout
    );
    let ev = rebound(&[
        "events",
        "--json",
        "--recipient",
        "first@example.net",
        "--config",
        c,
    ])
    .await;
    assert_eq!(ev.code, 0, "{}", ev.stderr);
    let lines: Vec<serde_json::Value> = ev
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["status"], "suppression_added",
        "newest first: {}",
        ev.stdout
    );
    assert!(lines.iter().any(|e| e["status"] == "bounced"));

    let rep = rebound(&["report", "undelivered", "--days", "30", "--config", c]).await;
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    assert!(
        rep.stdout.contains("bounced") && rep.stdout.contains("2 undelivered"),
        "{}",
        rep.stdout
    );

    let add = rebound(&[
        "suppressions",
        "add",
        "angry@example.com",
        "--reason",
        "complaint",
        "--config",
        c,
    ])
    .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    let rm = rebound(&["suppressions", "remove", "angry@example.com", "--config", c]).await;
    assert_eq!(rm.code, 2);
    assert!(rm.stderr.contains("consent"), "{}", rm.stderr);
    let forced = rebound(&[
        "suppressions",
        "remove",
        "angry@example.com",
        "--force",
        "--config",
        c,
    ])
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        r.daemon
            .store
            .suppression("angry@example.com")
            .unwrap()
            .is_none()
    );

    let resend = rebound(&["resend", &id, "--config", c]).await;
    assert_eq!(resend.code, 2, "first@ is suppressed");
    assert!(resend.stderr.contains("suppressed"), "{}", resend.stderr);
    let fixed = rebound(&[
        "resend",
        &id,
        "--to",
        "first@example.org",
        "--json",
        "--config",
        c,
    ])
    .await;
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    let v: serde_json::Value = serde_json::from_str(fixed.stdout.trim()).unwrap();
    assert_eq!(v["resent_from"], id.as_str());

    let nf = rebound(&["queue", "show", "ABCDEF", "--config", c]).await;
    assert_eq!(nf.code, 2);
    assert!(nf.stderr.contains("no message"), "{}", nf.stderr);
}

#[tokio::test]
async fn unreachable_daemon_is_exit_1_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!("[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"t\"\n"),
    );
    let r = rebound(&["suppressions", "list", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(&format!("cannot reach rebound at http://127.0.0.1:{port}"))
            && r.stderr.contains("rebound serve"),
        "{}",
        r.stderr
    );
}
