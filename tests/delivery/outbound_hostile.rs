//! The outbound client against hostile or broken servers: silence, endless and
//! oversized replies, invalid codes, garbage, resets at every step. Every case
//! must end in a clean synthetic 4xx per recipient, never a hang or a panic.

use crate::support::config::routed_to;
use crate::support::mx::{Mode, Script, ScriptedMx, tx};
use rebound::delivery::outbound::Deliverer;
use rebound::model::Reply;

async fn one_reply(script: Script, rcpt: &str) -> (Reply, crate::support::mx::Record) {
    let mx = ScriptedMx::start(script).await;
    let d = Deliverer::new(&routed_to(mx.addr), "relay.test").unwrap();
    let out = d
        .deliver("a.test", vec![tx("s@app.test", &[rcpt], b"body\r\n")])
        .await;
    (out[0][0].reply.clone(), mx.record())
}

fn assert_synthetic(r: &Reply, code: u16, enhanced: &str, text: &str) {
    assert!(r.synthetic, "{r:?}");
    assert_eq!(r.code, code, "{r:?}");
    assert_eq!(
        r.enhanced.map(|e| e.to_string()).as_deref(),
        Some(enhanced),
        "{r:?}"
    );
    assert!(
        r.text.contains(text),
        "{:?} should mention {text:?}",
        r.text
    );
}

#[tokio::test]
async fn silent_greeting_times_out() {
    let (r, _) = one_reply(
        Script {
            mode: Mode::Silent,
            ..Script::default()
        },
        "ok@a.test",
    )
    .await;
    assert_synthetic(&r, 451, "4.4.2", "greeting");
}

#[tokio::test]
async fn endless_multiline_reply_is_cut() {
    let (r, _) = one_reply(Script::default(), "endless@a.test").await;
    assert_synthetic(&r, 451, "4.5.0", "longer than");
}

#[tokio::test]
async fn oversized_reply_is_cut() {
    let (r, _) = one_reply(Script::default(), "oversized@a.test").await;
    assert_synthetic(&r, 451, "4.5.0", "longer than");
}

#[tokio::test]
async fn invalid_code_is_a_protocol_error() {
    let (r, _) = one_reply(Script::default(), "badcode@a.test").await;
    assert_synthetic(&r, 451, "4.5.0", "malformed");
}

#[tokio::test]
async fn binary_garbage_is_a_protocol_error() {
    let (r, _) = one_reply(
        Script {
            pipelining: true,
            ..Script::default()
        },
        "garbage@a.test",
    )
    .await;
    assert_synthetic(&r, 451, "4.5.0", "malformed");
}

#[tokio::test]
async fn reset_at_each_step_is_temporary() {
    for (step, enhanced, text) in [
        ("EHLO", "4.5.0", "EHLO"),
        ("MAIL", "4.4.2", "MAIL FROM"),
        ("RCPT", "4.4.2", "RCPT TO"),
        ("DATA", "4.4.2", "DATA"),
        ("DOT", "4.4.2", "end of data"),
    ] {
        let (r, rec) = one_reply(
            Script {
                mode: Mode::ResetAt(step),
                ..Script::default()
            },
            "ok@a.test",
        )
        .await;
        assert_synthetic(&r, 451, enhanced, text);
        assert!(rec.connections >= 1, "{step}");
    }
}

#[tokio::test]
async fn refused_connection_is_temporary() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = Deliverer::new(&routed_to(addr), "relay.test")
        .unwrap()
        .deliver("a.test", vec![tx("s@app.test", &["ok@a.test"], b"x\r\n")])
        .await;
    assert_synthetic(&out[0][0].reply, 451, "4.4.1", "cannot connect");
    assert_eq!(out[0][0].remote_host, None);
}
