//! rebound against real receiving MTAs: Postfix and Exim act as the MX of test
//! domains, accept what rebound relays (so the recipient is `delivered`), then fail
//! it after acceptance and send their own DSN to rebound's VERP envelope sender,
//! which they route back to rebound's SMTP listener. Each recipient's final status
//! and suppression state must follow README "What happens to each recipient":
//!
//! | scenario | MTA says | expected |
//! | --- | --- | --- |
//! | user vanished after acceptance | 5.1.1 | `bounced` (reason `userunknown`), suppressed |
//! | mailbox disabled | 5.2.1 | `failed` (reason `suspend`), not suppressed: accounts get re-enabled (README "What happens to each recipient") |
//! | over quota | 5.2.2 / Exim "mailbox is full" | `failed` (reason `mailboxfull`), not suppressed |
//! | deferral timed out | 4.4.1, Action: failed | `failed`, not suppressed |
//! | delay warning (Postfix) | Action: delayed | a `delayed` event, status unchanged |
//!
//! Needs root, `postfix` (apt) and an Exim binary (`REBOUND_EXIM`, else
//! /opt/exim4/usr/sbin/exim4, else exim4/exim on PATH); see .ci/run. With `CI=true`
//! anything missing fails the test; elsewhere it is SKIPPED only when Postfix is
//! not installed at all.
//!
//! Every real DSN is saved under `$CARGO_TARGET_TMPDIR/real-mta-dsns/`; with
//! `REBOUND_SAVE_REAL_DSNS=1` also under tests/fixtures/bounce/real/.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::prelude::*;
use crate::support::skip::in_ci;
use rebound::daemon::Running;
use rebound::model::{Status, SuppressionReason};
use rebound::store::events::EventQuery;

const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/real_mta");

// ---------------------------------------------------------------- prerequisites

fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn find_exim() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("REBOUND_EXIM") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let opt = PathBuf::from("/opt/exim4/usr/sbin/exim4");
    if opt.is_file() {
        return Some(opt);
    }
    find_bin("exim4").or_else(|| find_bin("exim"))
}

fn output(cmd: &mut Command) -> (bool, String) {
    match cmd.stdin(Stdio::null()).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).1.trim() == "0"
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let (ok, uid) = output(Command::new("id").args(["-u", name]));
    let (ok2, gid) = output(Command::new("id").args(["-g", name]));
    (ok && ok2)
        .then(|| (uid.trim().parse().ok(), gid.trim().parse().ok()))
        .and_then(|(u, g)| Some((u?, g?)))
}

/// `None`: skip (outside CI, Postfix not installed at all). Panics (fails the test)
/// when anything else is missing.
fn prerequisites(need_exim: bool) -> Option<Option<PathBuf>> {
    if find_bin("postfix").is_none() && !in_ci() {
        eprintln!(
            "SKIPPED: real MTA tests (postfix is not installed; see .ci/run for the install steps)"
        );
        return None;
    }
    let mut missing = Vec::new();
    if find_bin("postfix").is_none() || find_bin("postconf").is_none() {
        missing.push("postfix (apt-get install postfix)".to_string());
    }
    if !is_root() {
        missing.push("root (Postfix and Exim are started from private config dirs)".to_string());
    }
    if user_ids("postfix").is_none() {
        missing.push("the postfix user".to_string());
    }
    let exim = if need_exim {
        let e = find_exim();
        match &e {
            None => missing.push(
                "an Exim binary (REBOUND_EXIM, /opt/exim4/usr/sbin/exim4 or exim4 on PATH)".into(),
            ),
            Some(p) => {
                let (_, v) = output(Command::new(p).arg("-bV"));
                if !v.contains("Exim version") {
                    missing.push(format!(
                        "a working {} (-bV said: {})",
                        p.display(),
                        v.trim()
                    ));
                }
            }
        }
        if user_ids("Debian-exim").is_none() {
            missing.push("the Debian-exim user".into());
        }
        e
    } else {
        None
    };
    assert!(
        missing.is_empty(),
        "real MTA tests need: {} (see .ci/run)",
        missing.join("; ")
    );
    Some(exim)
}

// ---------------------------------------------------------------- helpers

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = std::fs::read_to_string(Path::new(TEMPLATES).join(template)).expect("template");
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!s.contains("{{"), "unfilled placeholder in {template}: {s}");
    s
}

fn chown(path: &Path, ids: (u32, u32)) {
    std::os::unix::fs::chown(path, Some(ids.0), Some(ids.1)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A mailbox already just under the MTA's limit, so the next message overflows it.
fn nearly_full_mailbox(path: &Path, limit: usize, owner: (u32, u32)) {
    let line = "x".repeat(69) + "\n";
    let body = line.repeat((limit - 500) / 70);
    std::fs::write(path, body).unwrap();
    chown(path, owner);
}

fn wait_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

async fn submit(d: &Running, rcpt: &str) {
    let smtp = d.smtp_addrs[0];
    let r = rcpt.to_string();
    let tag = rcpt.replace(['@', '.'], "-");
    let body = format!(
        "From: crm@school.test\r\nTo: {r}\r\nMessage-ID: <{tag}@school.test>\r\nSubject: Term dates\r\n\r\nSee you soon.\r\n"
    );
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(smtp, "crm@school.test", &[r.as_str()], &body)
    })
    .await
    .unwrap();
    assert!(ok, "rebound refused the submission to {rcpt}: {out}");
}

/// The recipient's current status in its queue entry (found through its events).
fn current_status(d: &Running, rcpt: &str) -> Option<Status> {
    let q = EventQuery {
        recipient: Some(rcpt.into()),
        limit: 1000,
        ascending: true,
        ..Default::default()
    };
    let events = d.daemon.store.query_events(&q).ok()?.events;
    let id = events.iter().find_map(|e| {
        e.queue_id
            .as_deref()
            .and_then(rebound::store::queue::parse_queue_id)
    })?;
    let rec = d.daemon.store.message(id).ok()??;
    rec.recipients
        .iter()
        .find(|r| r.address.eq_ignore_ascii_case(rcpt))
        .map(|r| r.status)
}

/// Where each MTA leaves its copy of the DSNs it sent to rebound.
#[derive(Clone)]
struct Copies {
    dir: PathBuf,
    /// Header lines the copying delivery prepended (removed before saving).
    prepended: &'static [&'static str],
}

impl Copies {
    /// The copy of the DSN about `rcpt` with `Action: action`, if it has come.
    fn find(&self, rcpt: &str, action: &str) -> Option<String> {
        let rcpt = rcpt.to_ascii_lowercase();
        for e in std::fs::read_dir(&self.dir).ok()?.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let lower = text.to_ascii_lowercase();
            let about = lower.contains(&format!("final-recipient: rfc822; {rcpt}"))
                || lower.contains(&format!("final-recipient: rfc822;{rcpt}"));
            if about && lower.contains(&format!("action: {action}")) {
                return Some(self.strip(&text));
            }
        }
        None
    }

    fn strip(&self, text: &str) -> String {
        let mut lines = text.split_inclusive('\n').peekable();
        let mut out = String::new();
        while let Some(l) = lines.peek() {
            if self
                .prepended
                .iter()
                .any(|p| l.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase()))
            {
                lines.next();
            } else {
                break;
            }
        }
        out.extend(lines);
        out
    }
}

fn save_dsn(name: &str, text: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-mta-dsns");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
    if std::env::var("REBOUND_SAVE_REAL_DSNS").is_ok_and(|v| v == "1") {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounce/real");
        std::fs::create_dir_all(&fixtures).unwrap();
        std::fs::write(fixtures.join(name), text).unwrap();
    }
}

// ---------------------------------------------------------------- scenarios

struct Scenario {
    rcpt: &'static str,
    /// The file the real DSN is saved as.
    fixture: &'static str,
    want: Status,
    /// The reason the final event must carry, where the DSN leaves no doubt.
    want_reason: Option<&'static str>,
    /// The MTA sends a delay warning first (Action: delayed), which must record
    /// `delayed` and leave the status alone.
    delay_warning_first: Option<&'static str>,
}

/// Follows one recipient through delivered → the real DSN → its final state;
/// returns the assertions that failed (empty when all passed).
async fn follow(d: &Running, copies: &Copies, s: &Scenario, deadline: Instant) -> Vec<String> {
    let mut failed = Vec::new();
    let rcpt = s.rcpt;
    let h = history(d, rcpt);
    let Some(delivered_at) = h.iter().position(|k| k == "delivered") else {
        return vec![format!(
            "{rcpt}: never `delivered` by the real MTA: history {h:?}, status {:?}",
            current_status(d, rcpt)
        )];
    };
    if let Some(name) = s.delay_warning_first {
        let Some(text) = wait_copy(copies, rcpt, "delayed", deadline).await else {
            return vec![format!(
                "{rcpt}: the MTA sent no delay warning before the deadline: history {h:?}"
            )];
        };
        save_dsn(name, &text);
        let h = wait_history(
            d,
            rcpt,
            |h| h.iter().any(|k| k == "delayed"),
            Duration::from_secs(10),
        )
        .await;
        let status = current_status(d, rcpt);
        if !h.iter().any(|k| k == "delayed") {
            let log: Vec<String> = d
                .daemon
                .store
                .unverified(None, 20)
                .unwrap()
                .0
                .into_iter()
                .filter_map(|e| e.diagnostic)
                .collect();
            failed.push(format!("{rcpt}: delay warning (Action: delayed) recorded no `delayed` event: history {h:?}; security log {log:?}"));
        }
        // Only meaningful until the final DSN lands, so checked right away.
        if status != Some(Status::Delivered) {
            failed.push(format!("{rcpt}: a delay warning changed the status: {status:?} (want Delivered), history {h:?}"));
        }
    }
    let Some(text) = wait_copy(copies, rcpt, "failed", deadline).await else {
        failed.push(format!(
            "{rcpt}: the MTA sent no failure DSN before the deadline: history {:?}",
            history(d, rcpt)
        ));
        return failed;
    };
    save_dsn(s.fixture, &text);
    let final_kind = if s.want == Status::Bounced {
        "bounced"
    } else {
        "failed"
    };
    // The copy and the DSN to rebound are delivered side by side: give rebound a
    // moment to receive and apply it (settles as soon as the final kind shows up).
    let h = wait_history(
        d,
        rcpt,
        |h| h[delivered_at + 1..].iter().any(|k| k == final_kind),
        Duration::from_secs(10),
    )
    .await;
    let status = current_status(d, rcpt);
    let after: Vec<&String> = h[delivered_at + 1..].iter().collect();
    if !after.iter().any(|k| *k == final_kind) {
        failed.push(format!(
            "{rcpt}: no `{final_kind}` event after `delivered`: history {h:?}"
        ));
    }
    if status != Some(s.want) {
        failed.push(format!(
            "{rcpt}: status {status:?}, want {:?} (history {h:?})",
            s.want
        ));
    }
    let last_status_event = h
        .iter()
        .rev()
        .find(|k| Status::ALL.iter().any(|st| st.as_str() == k.as_str()));
    if last_status_event.map(|k| k.as_str()) != Some(final_kind) {
        failed.push(format!("{rcpt}: last status-setting event {last_status_event:?}, want {final_kind:?} (history {h:?})"));
    }
    if let Some(want) = s.want_reason {
        let q = EventQuery {
            recipient: Some(rcpt.into()),
            limit: 1000,
            ascending: true,
            ..Default::default()
        };
        let events = d.daemon.store.query_events(&q).unwrap().events;
        let reason = events
            .iter()
            .rev()
            .find(|e| e.status.as_str() == final_kind)
            .and_then(|e| e.reason)
            .map(|r| r.as_str());
        if reason != Some(want) {
            failed.push(format!(
                "{rcpt}: the `{final_kind}` event's reason is {reason:?}, want {want:?}"
            ));
        }
    }
    let sup = d.daemon.store.suppression(rcpt).unwrap();
    match (s.want, sup) {
        (Status::Bounced, None) => {
            failed.push(format!("{rcpt}: bounced (hard) but not suppressed"))
        }
        (Status::Bounced, Some(x)) if x.reason != SuppressionReason::HardBounce => {
            failed.push(format!(
                "{rcpt}: suppressed with reason {:?}, want HardBounce",
                x.reason
            ))
        }
        (Status::Bounced, Some(_)) => {}
        (_, Some(x)) => failed.push(format!(
            "{rcpt}: must not be suppressed, but is ({:?}: {:?})",
            x.reason, x.diagnostic
        )),
        (_, None) => {}
    }
    failed
}

async fn wait_copy(copies: &Copies, rcpt: &str, action: &str, deadline: Instant) -> Option<String> {
    loop {
        if let Some(t) = copies.find(rcpt, action) {
            return Some(t);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_history(
    d: &Running,
    rcpt: &str,
    done: impl Fn(&[String]) -> bool,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let h = history(d, rcpt);
        if done(&h) || Instant::now() > deadline {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits every scenario's recipient, waits for rebound to deliver each to the
/// real MTA, then follows each one; fails with every failed assertion at once.
async fn run_scenarios(
    mta: &str,
    d: &Running,
    copies: &Copies,
    scenarios: &[Scenario],
    log: &Path,
) {
    for s in scenarios {
        submit(d, s.rcpt).await;
    }
    for s in scenarios {
        wait_history(
            d,
            s.rcpt,
            |h| h.iter().any(|k| k == "delivered"),
            Duration::from_secs(20),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failed = Vec::new();
    for s in scenarios {
        let f = follow(d, copies, s, deadline).await;
        eprintln!(
            "{mta} {}: {}",
            s.rcpt,
            if f.is_empty() {
                "ok".to_string()
            } else {
                f.join(" | ")
            }
        );
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "{mta}: {} assertion(s) failed:\n  {}\n--- {} (tail):\n{}",
        failed.len(),
        failed.join("\n  "),
        log.display(),
        tail(log, 40)
    );
}

// ---------------------------------------------------------------- Postfix

const MAILBOX_LIMIT: usize = 200_000;

struct PostfixGuard {
    config_dir: PathBuf,
}

impl Drop for PostfixGuard {
    fn drop(&mut self) {
        let _ = output(
            Command::new("postfix")
                .arg("-c")
                .arg(&self.config_dir)
                .arg("stop"),
        );
    }
}

/// Writes the config under `root`, starts Postfix with its smtpd on `port`; returns its guard, copies and log.
fn start_postfix(root: &Path, port: u16, rebound_port: u16) -> (PostfixGuard, Copies, PathBuf) {
    let postfix = user_ids("postfix").unwrap();
    let nobody = user_ids("nobody").expect("user nobody");
    let (cfg, queue, data, vmail) = (
        root.join("postfix"),
        root.join("queue"),
        root.join("data"),
        root.join("vmail"),
    );
    for d in [&cfg, &queue, &data, &vmail] {
        std::fs::create_dir_all(d).unwrap();
    }
    chown(&data, postfix);
    chown(&vmail, nobody);
    nearly_full_mailbox(&vmail.join("full"), MAILBOX_LIMIT, nobody);
    let closed = free_port();
    let log = root.join("maillog");
    let vars = [
        ("CONFIG_DIR", cfg.display().to_string()),
        ("QUEUE_DIR", queue.display().to_string()),
        ("DATA_DIR", data.display().to_string()),
        ("LOG", log.display().to_string()),
        ("VMAIL_DIR", vmail.display().to_string()),
        ("VMAIL_UID", nobody.0.to_string()),
        ("VMAIL_GID", nobody.1.to_string()),
        ("MAILBOX_LIMIT", MAILBOX_LIMIT.to_string()),
        ("BOUNCE_DOMAIN", BOUNCE_DOMAIN.to_string()),
        ("BOUNCE_DOMAIN_RE", BOUNCE_DOMAIN.replace('.', "\\.")),
        ("REBOUND_PORT", rebound_port.to_string()),
        ("CLOSED_PORT", closed.to_string()),
        ("QUEUE_LIFETIME", "12s".into()),
        ("DELAY_WARNING", "3s".into()),
        ("PORT", port.to_string()),
    ];
    std::fs::write(cfg.join("main.cf"), fill("postfix-main.cf", &vars)).unwrap();
    std::fs::write(cfg.join("master.cf"), fill("postfix-master.cf", &vars)).unwrap();
    std::fs::write(cfg.join("transport"), fill("postfix-transport", &vars)).unwrap();
    std::fs::write(cfg.join("dsn_copy"), fill("postfix-dsn_copy", &vars)).unwrap();
    let guard = PostfixGuard {
        config_dir: cfg.clone(),
    };
    let (ok, out) = output(Command::new("postfix").arg("-c").arg(&cfg).arg("start"));
    assert!(
        ok,
        "postfix -c {} start failed: {out}\n{}",
        cfg.display(),
        tail(&log, 30)
    );
    assert!(
        wait_port(port, Duration::from_secs(20)),
        "Postfix smtpd never listened on {port}:\n{}",
        tail(&log, 30)
    );
    let copies = Copies {
        dir: vmail.join("copies/new"),
        prepended: &["Return-Path:", "X-Original-To:", "Delivered-To:"],
    };
    (guard, copies, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_dsns_after_delivery() {
    if prerequisites(false).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Postfix's daemons (postfix, nobody) must reach their directories.
    chmod(dir.path(), 0o755);
    let mta_root = dir.path().join("mta");
    std::fs::create_dir_all(&mta_root).unwrap();
    chmod(&mta_root, 0o755);
    // rebound first (its listener is where the DSNs go), routed to a Postfix port
    // chosen now; Postfix starts right after, before anything is submitted.
    let port = free_port();
    let d = start_routed(
        &dir.path().join("rebound"),
        ([127, 0, 0, 1], port).into(),
        |c| c.bounces.domain = BOUNCE_DOMAIN.into(),
    )
    .await;
    let (_guard, copies, log) = start_postfix(&mta_root, port, d.smtp_addrs[0].port());
    let scenarios = [
        Scenario {
            rcpt: "gone@local.postfix.test",
            fixture: "postfix-user-unknown.eml",
            want: Status::Bounced,
            want_reason: Some("userunknown"),
            delay_warning_first: None,
        },
        Scenario {
            rcpt: "off@disabled.postfix.test",
            fixture: "postfix-mailbox-disabled.eml",
            want: Status::Failed,
            want_reason: Some("suspend"),
            delay_warning_first: None,
        },
        Scenario {
            rcpt: "full@quota.postfix.test",
            fixture: "postfix-quota.eml",
            want: Status::Failed,
            want_reason: Some("mailboxfull"),
            delay_warning_first: None,
        },
        Scenario {
            rcpt: "late@slow.postfix.test",
            fixture: "postfix-deferral-timeout.eml",
            want: Status::Failed,
            want_reason: None,
            delay_warning_first: Some("postfix-delay-warning.eml"),
        },
    ];
    run_scenarios("postfix", &d, &copies, &scenarios, &log).await;
    d.stop().await;
}

// ---------------------------------------------------------------- Exim

/// The Exim daemon (`-bdf`: in the foreground, so this is its pid), killed on drop.
struct EximGuard {
    child: Child,
}

impl Drop for EximGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the config under `root`, starts Exim's daemon on `port` with a queue
/// run every second; returns its guard, copies and main log.
fn start_exim(
    exim: &Path,
    root: &Path,
    port: u16,
    rebound_port: u16,
) -> (EximGuard, Copies, PathBuf) {
    let ids = user_ids("Debian-exim").unwrap();
    let (spool, mail, copies) = (root.join("spool"), root.join("mail"), root.join("copies"));
    for d in [&spool, &mail, &copies] {
        std::fs::create_dir_all(d).unwrap();
        chown(d, ids);
    }
    nearly_full_mailbox(&mail.join("full"), MAILBOX_LIMIT, ids);
    let vars = [
        ("EXIM", exim.display().to_string()),
        ("SPOOL", spool.display().to_string()),
        ("MAILDIR", mail.display().to_string()),
        ("COPIES", copies.display().to_string()),
        ("QUOTA", MAILBOX_LIMIT.to_string()),
        ("BOUNCE_DOMAIN", BOUNCE_DOMAIN.to_string()),
        ("REBOUND_PORT", rebound_port.to_string()),
        ("CLOSED_PORT", free_port().to_string()),
        ("PORT", port.to_string()),
    ];
    let conf = root.join("exim.conf");
    std::fs::write(&conf, fill("exim.conf", &vars)).unwrap();
    let log = spool.join("log/mainlog");
    let child = Command::new(exim)
        .arg("-C")
        .arg(&conf)
        .args(["-bdf", "-q1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("exim starts");
    let guard = EximGuard { child };
    assert!(
        wait_port(port, Duration::from_secs(20)),
        "Exim never listened on {port}:\n{}\n{}",
        tail(&log, 30),
        tail(&spool.join("log/paniclog"), 30)
    );
    (
        guard,
        Copies {
            dir: copies,
            prepended: &[],
        },
        log,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exim_dsns_after_delivery() {
    let Some(exim) = prerequisites(true) else {
        return;
    };
    let exim = exim.expect("checked by prerequisites");
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let mta_root = dir.path().join("mta");
    std::fs::create_dir_all(&mta_root).unwrap();
    chmod(&mta_root, 0o755);
    let port = free_port();
    let d = start_routed(
        &dir.path().join("rebound"),
        ([127, 0, 0, 1], port).into(),
        |c| c.bounces.domain = BOUNCE_DOMAIN.into(),
    )
    .await;
    let (_guard, copies, log) = start_exim(&exim, &mta_root, port, d.smtp_addrs[0].port());
    let scenarios = [
        Scenario {
            rcpt: "gone@local.exim.test",
            fixture: "exim-user-unknown.eml",
            want: Status::Bounced,
            want_reason: Some("userunknown"),
            delay_warning_first: None,
        },
        Scenario {
            rcpt: "off@local.exim.test",
            fixture: "exim-mailbox-disabled.eml",
            want: Status::Failed,
            want_reason: Some("suspend"),
            delay_warning_first: None,
        },
        Scenario {
            rcpt: "full@quota.exim.test",
            fixture: "exim-quota.eml",
            want: Status::Failed,
            want_reason: Some("mailboxfull"),
            delay_warning_first: None,
        },
        Scenario {
            rcpt: "late@slow.exim.test",
            fixture: "exim-deferral-timeout.eml",
            want: Status::Failed,
            want_reason: None,
            delay_warning_first: None,
        },
    ];
    run_scenarios("exim", &d, &copies, &scenarios, &log).await;
    d.stop().await;
}
