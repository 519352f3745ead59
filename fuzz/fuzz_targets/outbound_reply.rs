//! Fuzzes the outbound reply reader with a remote server's bytes: replies are
//! cut without panics, bounded, and their text has no control characters.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rebound::delivery::outbound::reply::{MAX_REPLY_BYTES, ReplyReader};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut reader = ReplyReader::default();
        let mut input: &[u8] = data;
        for _ in 0..1000 {
            match reader.read(&mut input, Duration::from_secs(1)).await {
                Ok(r) => {
                    assert!((200..600).contains(&r.code), "{r:?}");
                    assert!(r.text.len() <= MAX_REPLY_BYTES && !r.text.contains(['\r', '\n', '\0']), "{r:?}");
                }
                Err(e) => {
                    let _ = e.to_reply("RCPT TO");
                    return;
                }
            }
        }
    });
});
