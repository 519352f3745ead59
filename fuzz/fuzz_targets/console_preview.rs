//! Fuzzes the console's preview sanitiser (message bodies are network bytes):
//! it never panics, and what it returns, read again by the same rules, has no
//! script element, and no tag with an event attribute or `javascript:`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::api::console::preview::{document, sanitise};

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let clean = sanitise(&html);
    let lower = clean.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script element survived: {clean:?}");
    for tag in lower.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
        assert!(!tag.contains("javascript:"), "javascript: survived in <{tag}>");
        let attrs = tag.split_once(' ').map(|(_, a)| a).unwrap_or("");
        for a in attrs.split(['"']).step_by(2) {
            assert!(!a.split_whitespace().any(|w| w.starts_with("on")), "an event attribute survived in <{tag}>");
        }
    }
    let _ = document(data);
});
