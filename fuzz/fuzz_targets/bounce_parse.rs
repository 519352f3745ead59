//! Fuzz target: the bounce parser and the reply classifier on arbitrary bytes. Uses the unguarded
//! parser so that our own panics are found (mail-parser's debug assertion is still caught; run
//! with `-O`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::bounce::{parse_unguarded, split_mbox};
use rebound::classify::classify;
use rebound::model::EnhancedCode;

fuzz_target!(|data: &[u8]| {
    for msg in split_mbox(data) {
        let report = parse_unguarded(msg);
        assert!(!report.recipients.is_empty());
        let _ = serde_json::to_string(&report);
    }
    let text = String::from_utf8_lossy(data);
    let code = data.first().map(|b| 200 + u16::from(*b) * 2);
    let enhanced = text.split_whitespace().next().and_then(EnhancedCode::parse);
    let _ = classify(code, enhanced, &text);
});
