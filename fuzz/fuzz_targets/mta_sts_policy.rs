//! Fuzzes what MTA-STS reads from the network: the policy file parser, the HTTP
//! response parser of the policy fetch, and the `_mta-sts` TXT record parser.
//! None may panic; an accepted policy keeps its bounds and matches its own patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::delivery::outbound::mta_sts::fetch::parse_response;
use rebound::delivery::outbound::mta_sts::policy::{MAX_MAX_AGE, MAX_MX_PATTERNS, Policy, PolicyMode, parse_policy, parse_record, record_id};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse_policy(data) {
        assert!(p.max_age <= MAX_MAX_AGE && p.mx.len() <= MAX_MX_PATTERNS, "{p:?}");
        assert!(p.mode == PolicyMode::None || !p.mx.is_empty(), "{p:?}");
        for m in &p.mx {
            let host = m.strip_prefix("*.").map(|rest| format!("x.{rest}")).unwrap_or_else(|| m.clone());
            let alone = Policy { mx: vec![m.clone()], ..p.clone() };
            assert!(alone.allows(&host), "{m} does not match {host}");
            assert!(!alone.allows(&format!("{host}.evil.test")), "{m}");
        }
    }
    for closed in [false, true] {
        if let Ok(body) = parse_response(data, closed) {
            assert!(body.len() <= data.len());
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = parse_record(&text) {
        assert!(!id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
    }
    let _ = record_id(text.split('\n'));
});
