//! Fuzzes complaint (ARF, RFC 5965) recognition: the input becomes the
//! machine-readable part of a multipart/report feedback message (so the fuzzer
//! starts inside the ARF path), and is also parsed as a whole message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn wrap(part: &[u8]) -> Vec<u8> {
    let mut m = b"From: fbl@isp.example\r\nTo: b@bounces.relay.test\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\
--B\r\nContent-Type: message/feedback-report\r\n\r\n"
        .to_vec();
    m.extend_from_slice(part);
    m.extend_from_slice(b"\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: app@school.test\r\nTo: user@example.net\r\nSubject: hi\r\n\r\nhello\r\n--B--\r\n");
    m
}

fuzz_target!(|data: &[u8]| {
    let _ = rebound::bounce::parse_unguarded(&wrap(data));
    let _ = rebound::bounce::parse_unguarded(data);
});
