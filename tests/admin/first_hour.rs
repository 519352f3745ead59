//! The first hour with the built `rebound` binary (issue 16): admin commands find
//! the running daemon from any directory through its pointer; a second daemon on
//! the same data_dir is told who holds it; check-config and serve load the TLS
//! files before anything is created; `events --message` takes a Message-ID;
//! `ingest` prints a table; logs carry colour codes only on a terminal, and
//! never with `NO_COLOR`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::config::TOKEN;
use crate::support::rig::rig;
use rebound::inbound::accept::QueueIntake;
use rebound::inbound::intake::{Intake, RecipientSpec, SessionInfo, Submission};
use rebound::model::address::Address;

/// The binary with a test-only pointer location and no config from the environment.
fn rebound(runtime: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rebound"));
    c.env_remove("REBOUND_CONFIG")
        .env("REBOUND_RUNTIME_DIR", runtime);
    c
}

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A config for a daemon on ephemeral ports; `extra` is appended to `[smtp]`.
fn serve_config(dir: &Path, smtp_extra: &str) -> PathBuf {
    let data = dir.join("data");
    let toml = format!(
        "[server]\nhostname = \"relay.test\"\ndata_dir = {:?}\nshutdown_timeout = \"5s\"\n[smtp]\nlisten = [\"127.0.0.1:0\"]\n{smtp_extra}[api]\nlisten = \"127.0.0.1:0\"\n[bounces]\ndomain = \"bounces.relay.test\"\n",
        data.display().to_string()
    );
    let p = dir.join("rebound.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

fn wait_for_pointer(path: &Path, child: &mut Child, log: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(path)
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b)
        {
            return v;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "serve exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no pointer at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    child.wait().unwrap()
}

#[test]
fn admin_commands_find_the_daemon_from_any_directory_and_a_second_daemon_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (runtime, elsewhere) = (dir.path().join("runtime"), tempfile::tempdir().unwrap());
    let cfg = serve_config(dir.path(), "");
    let log = dir.path().join("serve.log");
    let mut daemon = rebound(&runtime)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pointer_path = runtime.join("daemon.json");
    let p = wait_for_pointer(&pointer_path, &mut daemon, &log);
    let data_dir = dir.path().join("data");
    assert_eq!(p["pid"], daemon.id());
    assert_eq!(
        p["data_dir"],
        std::fs::canonicalize(&data_dir)
            .unwrap()
            .display()
            .to_string()
    );
    assert_eq!(
        p["token_file"],
        std::fs::canonicalize(&data_dir)
            .unwrap()
            .join("api.token")
            .display()
            .to_string()
    );
    assert!(
        p["api_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{p}"
    );
    assert_eq!(
        std::fs::metadata(&pointer_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&runtime).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // No config anywhere, another working directory: the pointer leads to the daemon.
    let (code, out, err) = text(
        &rebound(&runtime)
            .arg("events")
            .current_dir(elsewhere.path())
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("TIME"), "{out}");

    // A second daemon on the same data_dir is told who holds it, before it touches the database.
    let (code, _, err) = text(
        &rebound(&runtime)
            .args(["serve", "--config"])
            .arg(&cfg)
            .output()
            .unwrap(),
    );
    assert_ne!(code, 0);
    let held = format!(
        "another rebound is running on {} (pid {})",
        data_dir.display(),
        daemon.id()
    );
    assert!(err.contains(&held), "{err}");
    assert!(
        !err.contains("sled") && !err.contains("WouldBlock"),
        "{err}"
    );

    // A clean shutdown removes the pointer; then the CLI says where it looked.
    assert!(
        terminate(&mut daemon).success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(!pointer_path.exists(), "the pointer goes with the daemon");
    let (code, _, err) = text(
        &rebound(&runtime)
            .arg("events")
            .current_dir(elsewhere.path())
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1, "{err}");
    let looked = format!(
        "no config given; looked for /etc/rebound/rebound.toml, $REBOUND_CONFIG, the running-daemon pointer at {}, and ./rebound-data/api.token relative to {}",
        pointer_path.display(),
        std::fs::canonicalize(elsewhere.path()).unwrap().display()
    );
    assert!(err.contains(&looked), "{err}");
    assert!(
        err.contains("rebound serve") && err.contains("--config"),
        "says what to do: {err}"
    );

    // stderr was a file: plain text, no ANSI colour codes.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("api listening"), "{logged}");
    assert!(
        !logged.contains("\x1b["),
        "ANSI escapes in a log file: {logged:?}"
    );
}

#[test]
fn a_stale_pointer_is_named_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let stale = serde_json::json!({"pid": i32::MAX, "api_url": "http://127.0.0.1:1", "data_dir": "/nonexistent", "token_file": "/nonexistent/api.token", "config": null});
    std::fs::write(runtime.join("daemon.json"), stale.to_string()).unwrap();
    let (code, _, err) = text(
        &rebound(&runtime)
            .args(["queue", "list"])
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "the running-daemon pointer at {} (stale: pid {} is not running)",
            runtime.join("daemon.json").display(),
            i32::MAX
        )),
        "{err}"
    );
}

/// Self-signed certificate and key PEM files; `other_key` is a key of another pair.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["relay.test".to_string()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_string()]).unwrap();
    let (cert, key, other_key) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("other-key.pem"),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    (cert, key, other_key)
}

fn tls_lines(cert: &Path, key: &Path) -> String {
    format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

#[test]
fn check_config_and_serve_load_the_tls_files_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    let (cert, key, other_key) = tls_files(dir.path());
    let check = |smtp: &str| {
        let cfg = serve_config(dir.path(), smtp);
        text(
            &rebound(&runtime)
                .args(["check-config", "--config"])
                .arg(&cfg)
                .output()
                .unwrap(),
        )
    };
    let (code, out, err) = check(&tls_lines(&cert, &key));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": OK"), "{out}");

    let missing = dir.path().join("missing-cert.pem");
    let (code, _, err) = check(&tls_lines(&missing, &key));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("cannot read certificate"),
        "{err}"
    );

    let (code, _, err) = check(&tls_lines(&key, &cert));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}: holds a private key, not a certificate (tls_cert and tls_key swapped?)",
            key.display()
        )),
        "{err}"
    );

    let (code, _, err) = check(&tls_lines(&cert, &other_key));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}: private key does not match the certificate in {}",
            other_key.display(),
            cert.display()
        )),
        "{err}"
    );

    // serve with the same (missing) certificate fails before the data directory exists.
    let cfg = serve_config(dir.path(), &tls_lines(&missing, &key));
    let (code, _, err) = text(
        &rebound(&runtime)
            .args(["serve", "--config"])
            .arg(&cfg)
            .output()
            .unwrap(),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(
        !dir.path().join("data").exists(),
        "serve created data_dir before loading the certificate"
    );
    assert!(!runtime.exists(), "nor the pointer");
}

#[tokio::test]
async fn events_take_a_message_id_and_ingest_prints_a_table() {
    let r = rig().await;
    let cfg = r.dir.path().join("cli.toml");
    std::fs::write(
        &cfg,
        format!("[api]\nurl = \"http://{}\"\ntoken = \"{TOKEN}\"\n", r.addr),
    )
    .unwrap();
    let sub = Submission {
        session: SessionInfo { peer: "127.0.0.1:40000".parse().unwrap(), helo: "app".into(), tls: false, auth_user: None, relay_allowed: true },
        sender: Some(Address::parse("app@example.org").unwrap()),
        recipients: vec![RecipientSpec { address: Address::parse("pupil@example.net").unwrap(), orcpt: None, notify: None }],
        env_id: None,
        ret: None,
        body: b"From: app@example.org\r\nTo: pupil@example.net\r\nMessage-ID: <term.7@school.test>\r\nSubject: notice\r\n\r\nhello\r\n".to_vec(),
    };
    let id = QueueIntake {
        daemon: r.daemon.clone(),
    }
    .submit(sub)
    .await
    .unwrap()
    .queue_id;
    r.submit(&["someone.else@example.net"]).await;
    let run = |args: Vec<String>| {
        let cfg = cfg.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rebound"))
                .args(&args)
                .arg("--config")
                .arg(&cfg)
                .env_remove("REBOUND_CONFIG")
                .output()
                .await
                .unwrap();
            text(&out)
        }
    };

    let (code, out, err) = run(vec![
        "--json".into(),
        "events".into(),
        "--message".into(),
        "<term.7@school.test>".into(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|e| e["queue_id"] == id.as_str() && e["recipient"] == "pupil@example.net"),
        "{out}"
    );
    let (code, _, err) = run(vec![
        "events".into(),
        "--message".into(),
        "<nobody@school.test>".into(),
    ])
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no message with Message-ID <nobody@school.test>"),
        "{err}"
    );

    let dsn = "From: MAILER-DAEMON@mx.example.net\r\nTo: app@example.org\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; pupil@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--BB--\r\n";
    let file = r.dir.path().join("forged.eml");
    std::fs::write(&file, dsn).unwrap();
    let (code, out, err) = run(vec!["ingest".into(), file.display().to_string()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("FILE  ") && out.lines().next().unwrap().contains("RECIPIENT"),
        "a table: {out}"
    );
    assert!(
        out.contains("1 report(s) not trusted: see `rebound events --unverified`"),
        "{out}"
    );
    let (code, out, err) = run(vec![
        "--json".into(),
        "ingest".into(),
        file.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["summary"]["unverified"], 1, "{out}");
}

#[tokio::test]
async fn returned_mail_alone_is_acknowledged_without_a_fake_queue_id() {
    let r = rig().await;
    let intake = QueueIntake {
        daemon: r.daemon.clone(),
    };
    let to = |a: &str| RecipientSpec {
        address: Address::parse(a).unwrap(),
        orcpt: None,
        notify: None,
    };
    let sub = |rcpts: Vec<RecipientSpec>| Submission {
        session: SessionInfo {
            peer: "192.0.2.7:40000".parse().unwrap(),
            helo: "mx.example.net".into(),
            tls: false,
            auth_user: None,
            relay_allowed: false,
        },
        sender: None,
        recipients: rcpts,
        env_id: None,
        ret: None,
        body: b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered\r\n\r\nsorry\r\n"
            .to_vec(),
    };
    let bounce_rcpt = format!("anything@{}", r.daemon.verp.domain());
    let receipt = intake.submit(sub(vec![to(&bounce_rcpt)])).await.unwrap();
    assert!(receipt.is_report(), "{receipt:?}");
    assert_eq!(receipt.reply_text(), "Ok: report received");
    let queued = intake
        .submit(sub(vec![to(&bounce_rcpt), to("pupil@example.net")]))
        .await
        .unwrap();
    assert_eq!(
        queued.reply_text(),
        format!("Ok: queued as {}", queued.queue_id)
    );
    assert!(
        r.daemon
            .store
            .message(u64::from_str_radix(&queued.queue_id, 16).unwrap())
            .unwrap()
            .is_some(),
        "a real, findable queue id"
    );
}

#[test]
fn every_flag_and_argument_has_help() {
    let runtime = tempfile::tempdir().unwrap();
    let top = text(&rebound(runtime.path()).arg("--help").output().unwrap()).1;
    let mut commands: Vec<Vec<String>> = Vec::new();
    for name in subcommands(&top) {
        let help = text(
            &rebound(runtime.path())
                .args([name.as_str(), "--help"])
                .output()
                .unwrap(),
        )
        .1;
        let subs = subcommands(&help);
        if subs.is_empty() {
            commands.push(vec![name.clone()]);
        }
        commands.extend(subs.into_iter().map(|s| vec![name.clone(), s]));
    }
    assert!(commands.len() > 10, "{commands:?}");
    for c in commands {
        let (_, help, _) = text(
            &rebound(runtime.path())
                .args(&c)
                .arg("--help")
                .output()
                .unwrap(),
        );
        for line in options_and_arguments(&help) {
            assert!(
                line.trim().contains("  "),
                "`rebound {}`: no help for {line:?}\n{help}",
                c.join(" ")
            );
        }
    }
}

/// Names listed under `Commands:` (except `help`).
fn subcommands(help: &str) -> Vec<String> {
    section(help, "Commands:")
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect()
}

/// The entry lines under `Arguments:` and `Options:` (continuation lines skipped).
fn options_and_arguments(help: &str) -> Vec<String> {
    section(help, "Arguments:")
        .chain(section(help, "Options:"))
        .filter(|l| l.trim_start().starts_with(['-', '<', '[']))
        .map(str::to_string)
        .collect()
}

fn section<'a>(help: &'a str, title: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    help.lines()
        .skip_while(move |l| *l != title)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
}

/// `serve` on a pseudo-terminal (util-linux `script`) until its pointer appears; what it wrote there.
fn serve_on_a_tty(dir: &Path, no_color: bool) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let inner = format!(
        "{} serve --config {}",
        env!("CARGO_BIN_EXE_rebound"),
        serve_config(dir, "").display()
    );
    let mut cmd = Command::new(script);
    cmd.args(["-qec", &inner, "/dev/null"])
        .env_remove("REBOUND_CONFIG")
        .env("REBOUND_RUNTIME_DIR", dir.join("runtime"))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pointer = dir.join("runtime/daemon.json");
    let start = Instant::now();
    while !pointer.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&pointer).ok()?).ok()?["pid"]
            .as_i64()?;
    // SAFETY: the daemon this test started (named by its own pointer).
    unsafe { libc::kill(libc::pid_t::try_from(pid).ok()?, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn log_colour_only_on_a_terminal_and_never_with_no_color() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some(tty) = serve_on_a_tty(a.path(), false) else {
        return eprintln!("skipped: no `script` to make a terminal");
    };
    assert!(
        tty.contains("api listening") && tty.contains("\x1b["),
        "a terminal gets colour: {tty:?}"
    );
    let plain = serve_on_a_tty(b.path(), true).unwrap();
    assert!(
        plain.contains("api listening") && !plain.contains("\x1b["),
        "NO_COLOR: {plain:?}"
    );
}
