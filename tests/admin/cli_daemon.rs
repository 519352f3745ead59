//! The operator's questions answered from the CLI against a running daemon:
//! what happened to the mail to X, who did not get it, unblock an address, fix
//! a typo and resend (delivered, and linked to the original in the log).

use std::time::Duration;

use crate::support::prelude::*;
use rebound::model::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_report_unblock_and_resend_to_a_corrected_address() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    let cli_cfg = dir.path().join("cli.toml");
    std::fs::write(
        &cli_cfg,
        format!(
            "[server]\ndata_dir = {:?}\n[api]\nurl = \"http://{}\"\ntoken = \"test-token\"\n",
            dir.path().join("data"),
            d.api_addr
        ),
    )
    .unwrap();
    let smtp = d.smtp_addrs[0];
    // A typo: "unknown@" bounces (the scripted MX answers 550 5.1.1).
    let (ok, out) = tokio::task::spawn_blocking(move || {
        python_send(
            smtp,
            "crm@school.test",
            &["unknown@example.net"],
            "Subject: Report card\r\n\r\nAttached.\r\n",
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    wait_for(
        &d,
        "unknown@example.net",
        &[EventKind::Bounced],
        Duration::from_secs(10),
    )
    .await;

    let c = cli_cfg.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(
            &c,
            &["--json", "events", "--recipient", "unknown@example.net"],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = lines
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["suppression_added", "bounced", "queued"],
        "newest first"
    );
    let queue_id = lines[1]["queue_id"].as_str().unwrap().to_string();
    assert_eq!(lines[1]["reason"], "userunknown");

    let c = cli_cfg.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || cli(&c, &["report", "undelivered", "--days", "30"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("unknown@example.net") && out.contains("bounced"),
        "{out}"
    );

    // Resending to the same (suppressed) address is refused with the reason.
    let (c, q) = (cli_cfg.clone(), queue_id.clone());
    let (code, _, err) = tokio::task::spawn_blocking(move || cli(&c, &["resend", &q]))
        .await
        .unwrap();
    assert_eq!(code, 2, "refused: {err}");
    assert!(err.contains("suppress"), "{err}");

    // Fix the typo and resend: delivered, and both messages are linked in the log.
    let (c, q) = (cli_cfg.clone(), queue_id.clone());
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&c, &["--json", "resend", &q, "--to", "known@example.net"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&queue_id), "{out}");
    let h = wait_for(
        &d,
        "known@example.net",
        &[EventKind::Delivered],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(h, ["queued", "delivered"]);
    let resent: Vec<String> = history(&d, "unknown@example.net");
    assert!(resent.contains(&"resent".to_string()), "{resent:?}");
    assert_eq!(
        mx.record().messages.len(),
        1,
        "only the corrected message was delivered"
    );
    let body = String::from_utf8_lossy(&mx.record().messages[0]).into_owned();
    assert!(body.contains("Report card"), "the stored body was resent");

    // Unblock the bounced address ("Remove block"): a hard bounce needs no --force.
    let c = cli_cfg.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        cli(&c, &["suppressions", "remove", "unknown@example.net"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        d.daemon
            .store
            .suppression("unknown@example.net")
            .unwrap()
            .is_none()
    );
    d.stop().await;

    // With the daemon gone the CLI says so and exits 1.
    let c = cli_cfg.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || cli(&c, &["queue", "list"]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_import_shows_progress_and_names_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_daemon(test_config(dir.path())).await;
    let cli_cfg = dir.path().join("cli.toml");
    std::fs::write(
        &cli_cfg,
        format!(
            "[server]\ndata_dir = {:?}\n[api]\nurl = \"http://{}\"\ntoken = \"test-token\"\n",
            dir.path().join("data"),
            d.api_addr
        ),
    )
    .unwrap();
    let mut csv = String::from("address,reason\n");
    for i in 2..=12_001 {
        csv.push_str(&if i == 7000 {
            "not-an-address,manual\n".to_string()
        } else {
            format!("old{i}@example.com,hard_bounce\n")
        });
    }
    let file = dir.path().join("legacy.csv");
    std::fs::write(&file, csv).unwrap();
    let (c, f) = (cli_cfg.clone(), file.clone());
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&c, &["suppressions", "import", f.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added 11999"), "{out}");
    assert!(
        err.contains("5001/12001 lines imported") && err.contains("12001/12001 lines imported"),
        "progress: {err}"
    );
    assert!(
        err.contains("legacy.csv: line 7000:"),
        "the bad record is named by file and line: {err}"
    );
    assert!(
        d.daemon
            .store
            .suppression("old11999@example.com")
            .unwrap()
            .is_some()
    );
    d.stop().await;
}
