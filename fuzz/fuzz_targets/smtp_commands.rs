//! Fuzzes SMTP command-line parsing: every line through smtp-proto's request
//! parser (as the session uses it) and rebound's address parser, raw and mapped
//! into a small SMTP alphabet so the fuzzer reaches deep syntax quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8] = b"<>@:.,=+- \"\\%!MAILFROMRCPTOSIZEBODYNOTIFYORCPTxX0123456789\r\n";

fn lines(data: &[u8]) {
    for line in data.split_inclusive(|&b| b == b'\n') {
        let _ = smtp_proto::Request::parse(&mut line.iter());
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        for utf8 in [false, true] {
            if let Ok(a) = rebound::inbound::commands::parse_address(text, utf8) {
                assert!(!a.as_str().contains(['\r', '\n', '\0']), "control character in a parsed address: {a:?}");
                let _ = (a.domain(), a.key());
            }
        }
        let _ = rebound::model::address::Address::parse(text);
        let _ = rebound::inbound::commands::printable(text, 200);
    }
}

fuzz_target!(|data: &[u8]| {
    lines(data);
    let mapped: Vec<u8> = data.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()]).collect();
    lines(&mapped);
});
