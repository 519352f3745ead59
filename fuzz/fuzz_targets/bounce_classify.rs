//! Fuzzes the bounce parser (`rebound::bounce::parse`, which has its own panic
//! guard, so `parse_unguarded` is fuzzed too) and the reply classifier on the
//! codes and texts it extracts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::model::EnhancedCode;

fuzz_target!(|data: &[u8]| {
    let report = rebound::bounce::parse_unguarded(data);
    let _ = rebound::bounce::parse(data);
    let text = String::from_utf8_lossy(data);
    let first = text.split_whitespace().next().unwrap_or("");
    let code = first.get(..3).and_then(|c| c.parse::<u16>().ok());
    let _ = rebound::classify::classify(code, EnhancedCode::parse(first), &text);
    let _ = rebound::classify::classify(None, None, &text);
    let _ = format!("{report:?}");
});
