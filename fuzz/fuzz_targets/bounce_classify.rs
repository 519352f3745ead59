//! Fuzzes the bounce parser (`rebound::bounce::parse_unguarded`: only the
//! mail-parser call inside is guarded, so a panic in rebound's own code is a
//! crash here) and the reply classifier on the codes and texts it extracts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::model::EnhancedCode;

fuzz_target!(|data: &[u8]| {
    let report = rebound::bounce::parse_unguarded(data);
    let text = String::from_utf8_lossy(data);
    let first = text.split_whitespace().next().unwrap_or("");
    let code = first.get(..3).and_then(|c| c.parse::<u16>().ok());
    let _ = rebound::classify::classify(code, EnhancedCode::parse(first), &text);
    let _ = rebound::classify::classify(None, None, &text);
    let _ = format!("{report:?}");
});
