//! Fuzzes VERP tag verification: arbitrary return paths never panic, a genuine
//! tag verifies, and a changed tag never verifies as a different message or
//! recipient (only a non-canonical spelling of the same bytes may pass).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rebound::model::time::Timestamp;
use rebound::feedback::verp::{Verp, VerpTag};

const MAX_AGE: Duration = Duration::from_secs(3600);

fuzz_target!(|data: &[u8]| {
    let verp = Verp::new(b"fuzz-key", "bounces.relay.test");
    let now = Timestamp(1_800_000_000_000);
    let _ = verp.verify(&String::from_utf8_lossy(data), now, MAX_AGE);
    if data.len() < 12 {
        return;
    }
    let queue_id = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let rcpt_index = u16::from_le_bytes([data[8], data[9]]);
    let tag = VerpTag { queue_id, rcpt_index, issued: now };
    let addr = verp.address(&tag);
    let back = verp.verify(&addr, now, MAX_AGE).expect("a fresh tag verifies");
    assert_eq!((back.queue_id, back.rcpt_index), (queue_id, rcpt_index));
    let mut bytes = addr.into_bytes();
    let at = usize::from(data[10]) % bytes.len();
    bytes[at] = bytes[at].wrapping_add(data[11].max(1));
    if let Ok(changed) = String::from_utf8(bytes)
        && let Ok(t) = verp.verify(&changed, now, MAX_AGE)
    {
        assert_eq!((t.queue_id, t.rcpt_index), (queue_id, rcpt_index), "a forged tag verified: {changed}");
    }
});
