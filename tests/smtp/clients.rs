//! The listener against clients nobody here wrote: Python's `smtplib` (plain
//! send, multi-recipient, STARTTLS + AUTH LOGIN/PLAIN) and `swaks` (pipelined,
//! STARTTLS + AUTH). Each external run happens on a blocking thread so the
//! in-process server keeps serving. A missing binary skips loudly (and fails
//! the test with `CI=true`).

use std::process::{Command, Output};

use crate::support::config::listener_config;
use crate::support::listener::*;

async fn run(cmd: Command) -> Option<Output> {
    let mut cmd = cmd;
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join");
    match out {
        Ok(o) => Some(o),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let install = match name.as_str() {
                "swaks" => "apt-get install swaks (see .ci/run)",
                "python3" => "apt-get install python3",
                _ => "install it (see .ci/run)",
            };
            crate::support::skip::skip("this SMTP client test", &format!("`{name}`"), install);
            None
        }
        Err(e) => panic!("cannot run {name}: {e}"),
    }
}

fn python(script: &str, args: &[String]) -> Command {
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).args(args);
    c
}

fn check(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

const PY_PLAIN: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", port, local_hostname="py.client.test") as s:
    s.ehlo()
    assert s.has_extn("pipelining") and s.has_extn("chunking") and s.has_extn("smtputf8"), s.esmtp_features
    refused = s.sendmail("app@example.com", ["one@example.org"], "Subject: from python\r\n\r\nbare lf\nline\r\n.leading dot\r\n")
    assert refused == {}, refused
    refused = s.sendmail("app@example.com", ["a@example.org", "b@example.org", "bad%hop@example.org"], "Subject: multi\r\n\r\nhi\r\n")
    assert list(refused) == ["bad%hop@example.org"] and refused["bad%hop@example.org"][0] == 553, refused
    try:
        s.sendmail("app@example.com", ["c@example.org"], "Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 1000)
        raise SystemExit("oversized message accepted")
    except smtplib.SMTPSenderRefused as e:  # smtplib declares SIZE=, refused at MAIL
        assert e.smtp_code == 552, e
    print("ok")
"#;

#[tokio::test]
async fn python_smtplib_plain_and_multi_recipient() {
    let srv = start(listener_config()).await;
    let Some(out) = run(python(PY_PLAIN, &[srv.addr.port().to_string()])).await else {
        return;
    };
    check(&out);
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].session.helo, "py.client.test");
    assert!(
        subs[0]
            .body
            .ends_with(b"Subject: from python\r\n\r\nbare lf\r\nline\r\n.leading dot\r\n"),
        "{:?}",
        String::from_utf8_lossy(&subs[0].body)
    );
    let rcpts: Vec<_> = subs[1]
        .recipients
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(rcpts, ["a@example.org", "b@example.org"]);
}

const PY_TLS: &str = r#"
import smtplib, ssl, sys
port, cafile, mech = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("127.0.0.1", port, local_hostname="py.tls.test") as s:
    s.ehlo()
    assert "auth" not in s.esmtp_features, s.esmtp_features
    s.starttls(context=ctx)
    s.ehlo()
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"], s.esmtp_features
    s.user, s.password = "app", "wrong"
    try:
        s.auth(mech, getattr(s, "auth_" + mech.lower()))
        raise SystemExit("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
    s.user, s.password = "app", "correct horse"
    code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()))
    assert code == 235, code
    s.sendmail("app@example.com", ["far@example.org"], "Subject: via tls\r\n\r\nhi\r\n")
    print("ok")
"#;

#[tokio::test]
async fn python_smtplib_starttls_and_login() {
    let mut cfg = listener_config();
    cfg.smtp.relay_networks = vec![];
    let (srv, cert) = start_tls(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cert.as_ref())
    );
    std::fs::write(&ca, pem).unwrap();
    for mech in ["LOGIN", "PLAIN"] {
        let args = [
            srv.addr.port().to_string(),
            ca.display().to_string(),
            mech.to_string(),
        ];
        let Some(out) = run(python(PY_TLS, &args)).await else {
            return;
        };
        check(&out);
    }
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 2);
    assert!(
        subs.iter()
            .all(|s| s.session.tls && s.session.auth_user.as_deref() == Some("app"))
    );
}

fn swaks(port: u16, extra: &[&str]) -> Command {
    let mut c = Command::new("swaks");
    c.args([
        "--server",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--helo",
        "swaks.test",
        "--from",
        "app@example.com",
    ]);
    c.args(extra);
    c
}

#[tokio::test]
async fn swaks_pipelined_multi_recipient() {
    let srv = start(listener_config()).await;
    let to = "one@example.org,two@example.org";
    let Some(out) = run(swaks(
        srv.addr.port(),
        &["--to", to, "--pipeline", "--body", "pipelined body"],
    ))
    .await
    else {
        return;
    };
    check(&out);
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as Q0001")
            || transcript.contains("<-  250 2.0.0 Ok: queued as Q0001"),
        "{transcript}"
    );
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].recipients.len(), 2);
    assert!(String::from_utf8_lossy(&subs[0].body).contains("pipelined body"));
}

#[tokio::test]
async fn swaks_starttls_auth_and_relay_denied_without_it() {
    let mut cfg = listener_config();
    cfg.smtp.relay_networks = vec![];
    let (srv, _cert) = start_tls(cfg).await;
    let Some(out) = run(swaks(
        srv.addr.port(),
        &["--to", "far@example.org", "--quit-after", "RCPT"],
    ))
    .await
    else {
        return;
    };
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("550 5.7.1 Relaying denied"));
    let auth = [
        "--to",
        "far@example.org",
        "--tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        "app",
        "--auth-password",
        "correct horse",
    ];
    let Some(out) = run(swaks(srv.addr.port(), &auth)).await else {
        return;
    };
    check(&out);
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        transcript.contains("235 2.7.0 Authentication successful"),
        "{transcript}"
    );
    let subs = srv.intake.take();
    assert_eq!(subs.len(), 1);
    assert!(subs[0].session.tls && subs[0].session.relay_allowed);
}
