//! SMTP smuggling against the whole daemon: every bare-LF/bare-CR fake
//! end-of-data inside a body, followed by a smuggled transaction, yields one
//! 250, one queued message, nothing for the smuggled sender, and what rebound
//! then sends to the remote MX has only CRLF line ends and every leading dot
//! stuffed (so the smuggled commands stay body text there too).

use std::time::Duration;

use crate::support::mx::seqs;
use crate::support::mx::{Record, Script, ScriptedMx};
use crate::support::prelude::*;
use crate::support::smtp::{Blocking as Smtp, stuffed};
use rebound::model::EventKind;

const VARIANTS: [&[u8]; 11] = [
    b"\n.\n",
    b"\n.\r",
    b"\r.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n.\n",
    b"\r\n\x00.\r\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
];

/// Every variant is accepted: rebound normalises a bare CR or LF to CRLF and ends data only at
/// CRLF.CRLF, so each attempt is one ordinary message with the smuggled commands as body text.
/// Nothing is refused (a 5xx refusal would also keep the smuggled mail out, but would be a
/// change of behaviour this test should notice).
const EXPECTED_ACCEPTED: usize = VARIANTS.len();
const EXPECTED_REFUSED: usize = 0;

const SMUGGLED: &[u8] = b"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nX-Seq: 999\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n";

/// Bare CR or bare LF anywhere in `raw` (the positions).
fn bare_line_ends(raw: &[u8]) -> Vec<usize> {
    (0..raw.len())
        .filter(|&i| match raw[i] {
            b'\n' => i == 0 || raw[i - 1] != b'\r',
            b'\r' => raw.get(i + 1) != Some(&b'\n'),
            _ => false,
        })
        .collect()
}

/// Sends one smuggling attempt per variant (fresh connection each); returns the replies per variant.
fn smuggle_all(addr: std::net::SocketAddr) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    for (i, v) in VARIANTS.iter().enumerate() {
        let mut s = Smtp::greeted(addr).unwrap();
        let r = [
            s.cmd("MAIL FROM:<app@school.test>").unwrap(),
            s.cmd(&format!("RCPT TO:<r{i}@example.net>")).unwrap(),
            s.cmd("DATA").unwrap(),
        ];
        assert!(r[2].starts_with("354"), "{r:?}");
        let mut payload = format!("X-Seq: {i}\r\nSubject: first\r\n\r\nhello").into_bytes();
        payload.extend_from_slice(v);
        payload.extend_from_slice(SMUGGLED);
        s.send(&payload).unwrap();
        let end = s.reply().unwrap();
        let quit = s.cmd("QUIT").unwrap_or_else(|e| e.to_string());
        out.push((vec![end], quit));
    }
    out
}

async fn wait_messages(mx: &ScriptedMx, n: usize) -> Record {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rec = mx.record();
        if rec.messages.len() >= n || tokio::time::Instant::now() > deadline {
            return rec;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_smuggling_never_ends_data_early() {
    let mx = ScriptedMx::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    let addr = d.smtp_addrs[0];
    let replies = tokio::task::spawn_blocking(move || smuggle_all(addr))
        .await
        .unwrap();
    for (i, (end, quit)) in replies.iter().enumerate() {
        let v = VARIANTS[i];
        assert!(
            end[0].starts_with("250 2.0.0") || end[0].starts_with('5'),
            "{v:?}: {end:?}"
        );
        assert!(
            quit.starts_with("221"),
            "{v:?}: the smuggled commands were answered before QUIT: {quit}"
        );
    }
    let accepted = replies
        .iter()
        .filter(|(e, _)| e[0].starts_with("250"))
        .count();
    let refused = replies
        .iter()
        .filter(|(e, _)| e[0].starts_with('5'))
        .count();
    assert_eq!(
        (accepted, refused),
        (EXPECTED_ACCEPTED, EXPECTED_REFUSED),
        "(accepted, refused) of {} variants: {replies:?}",
        VARIANTS.len()
    );
    wait_messages(&mx, accepted).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rec = mx.record();
    assert!(
        history(&d, "victim@example.net").is_empty(),
        "the smuggled recipient was queued"
    );
    assert_eq!(
        rec.messages.len(),
        EXPECTED_ACCEPTED,
        "one message per DATA reaches the MX"
    );
    let mut numbers = seqs(&rec.messages);
    numbers.sort();
    let expected: Vec<u64> = (0..VARIANTS.len() as u64)
        .filter(|&i| replies[i as usize].0[0].starts_with("250"))
        .collect();
    assert_eq!(
        numbers, expected,
        "each accepted variant's own message (X-Seq) reaches the MX once"
    );
    assert!(
        !numbers.contains(&999),
        "the smuggled message became a message of its own"
    );
    assert!(
        rec.commands
            .iter()
            .all(|c| !c.contains("smuggler@evil.test") && !c.contains("victim@")),
        "{:?}",
        rec.commands
    );
    for m in &rec.messages {
        assert_eq!(
            bare_line_ends(m),
            Vec::<usize>::new(),
            "bare CR/LF sent to the MX: {:?}",
            String::from_utf8_lossy(m)
        );
    }
    let mut delivered = 0;
    for i in 0..VARIANTS.len() {
        if replies[i].0[0].starts_with("250") {
            delivered += 1;
            let h = wait_for(
                &d,
                &format!("r{i}@example.net"),
                &[EventKind::Delivered],
                Duration::from_secs(10),
            )
            .await;
            assert_eq!(h, ["queued", "delivered"], "variant {:?}", VARIANTS[i]);
        }
    }
    assert_eq!(delivered, EXPECTED_ACCEPTED);
    d.stop().await;
}

/// The lines of the body as the MX received them (terminator dropped), and whether the terminator was last.
fn wire_lines(raw: &[u8]) -> (Vec<String>, bool) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let terminated = text.ends_with("\r\n.\r\n");
    let body = text.strip_suffix(".\r\n").unwrap_or(&text);
    (
        body.split_terminator("\r\n").map(str::to_string).collect(),
        terminated,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_bytes_are_crlf_and_dot_stuffed() {
    let mx = ScriptedMx::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start_routed(dir.path(), mx.addr, |_| {}).await;
    let addr = d.smtp_addrs[0];
    // What the app means: lines ".", ".hidden", "..two", a bare LF and a bare CR inside lines.
    let mut data = stuffed("Subject: dots\r\n\r\nfirst\r\n.\r\n.hidden\r\n..two\r\n");
    data.truncate(data.len() - 3);
    data.extend_from_slice(b"bare\nlf\rcr\r\n.\r\n");
    let r = tokio::task::spawn_blocking(move || {
        Smtp::greeted(addr)
            .unwrap()
            .transaction("app@school.test", &["dots@example.net"], &data)
            .unwrap()
    })
    .await
    .unwrap();
    assert!(r[3].starts_with("250 "), "{r:?}");
    let rec = wait_messages(&mx, 1).await;
    assert_eq!(rec.messages.len(), 1);
    let raw = &rec.messages[0];
    assert_eq!(
        bare_line_ends(raw),
        Vec::<usize>::new(),
        "{:?}",
        String::from_utf8_lossy(raw)
    );
    let (lines, terminated) = wire_lines(raw);
    assert!(terminated);
    let body_start = lines
        .iter()
        .position(String::is_empty)
        .expect("header/body separator")
        + 1;
    assert_eq!(
        lines[body_start..],
        ["first", "..", "..hidden", "...two", "bare", "lf", "cr"],
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l != "."),
        "an unstuffed lone dot would end the message early"
    );
    d.stop().await;
}
