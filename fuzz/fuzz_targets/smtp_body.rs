//! Fuzzes the DATA/BDAT body receiver: the input is fed in pieces whose sizes
//! come from its first byte. Checks: a stored body has only CRLF line ends, and
//! DATA framing never ends before a real CRLF.CRLF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::inbound::body::{BodyReceiver, Framing};

fn bare_line_end(b: &[u8]) -> bool {
    (0..b.len()).any(|i| (b[i] == b'\n' && (i == 0 || b[i - 1] != b'\r')) || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')))
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else { return };
    let step = usize::from(step % 16) + 1;
    for framing in [Framing::Dot, Framing::Chunked] {
        let mut rx = BodyReceiver::new(framing, 64 * 1024);
        let mut consumed_total = 0;
        let mut ended = false;
        for piece in input.chunks(step) {
            let (used, done) = rx.ingest(piece);
            assert!(used <= piece.len());
            consumed_total += used;
            if done {
                ended = true;
                break;
            }
        }
        if framing == Framing::Dot && ended {
            let seen = &input[..consumed_total];
            assert!(seen == b".\r\n" || seen.ends_with(b"\r\n.\r\n"), "DATA ended without CRLF.CRLF: {seen:?}");
        }
        if framing == Framing::Chunked {
            rx.finish_chunked();
        }
        if let Ok(body) = rx.into_body() {
            assert!(!bare_line_end(&body), "bare CR/LF stored");
        }
    }
});
