//! Fuzzes the re-encoder for over-long lines (`rebound::delivery::outbound::long_lines`).
//! The first byte picks a mode. Mode 0: the rest is a whole message (stored form,
//! CRLF only): no panic, borrowed when no line is over 998, and every output line
//! over 998 octets is one already in the input (a header line, left as it is).
//! Modes 1-6: the rest is the body of a single-part message under a fixed head:
//! no output line over 998 at all, and the body decodes back to the original
//! (quoted-printable decoded, base64 unwrapped, added QP soft breaks removed).
#![no_main]

use std::borrow::Cow;
use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rebound::delivery::outbound::long_lines::{MAX_LINE, conform, has_long_line};

/// Heads for the single-part modes, and how their body comes out.
const HEADS: [(&str, Cte); 6] = [
    ("", Cte::Identity),
    ("Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n", Cte::Identity),
    ("Content-Type: text/html; charset=utf-8\r\nMIME-Version: 1.0\r\n", Cte::Identity),
    ("Content-Transfer-Encoding: binary\r\n", Cte::Identity),
    ("Content-Transfer-Encoding: base64\r\n", Cte::Base64),
    ("Content-Transfer-Encoding: quoted-printable\r\n", Cte::Qp),
];

#[derive(Clone, Copy)]
enum Cte {
    Identity,
    Base64,
    Qp,
}

/// Bare CR and bare LF made CRLF, as the SMTP receiver stores a message.
fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r\n").unwrap_or(l))
}

/// A strict quoted-printable decoder: the encoder's output must always be valid.
fn decode_qp(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in s.split_inclusive(|&b| b == b'\n') {
        let (text, hard) = match line.strip_suffix(b"\r\n") {
            Some(t) => (t, true),
            None => (line, false),
        };
        assert!(!text.ends_with(b" ") && !text.ends_with(b"\t"), "trailing whitespace");
        let (text, hard) = match text.strip_suffix(b"=") {
            Some(t) => (t, false),
            None => (text, hard),
        };
        assert!(text.len() < 76, "QP line too long");
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'=' {
                let hex = std::str::from_utf8(&text[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 3;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        if hard {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn without(data: &[u8], pattern: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(pattern) {
            i += pattern.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn whole_message(msg: &[u8]) {
    let out = conform(msg);
    if !has_long_line(msg) {
        assert!(matches!(out, Cow::Borrowed(_)), "copied a message without long lines");
        return;
    }
    let long_in: HashSet<&[u8]> = lines(msg).filter(|l| l.len() > MAX_LINE).collect();
    for l in lines(&out) {
        assert!(l.len() <= MAX_LINE || long_in.contains(l), "made a new line of {} octets", l.len());
    }
}

fn single_part(head: &str, cte: Cte, body: &[u8]) {
    let msg = [head.as_bytes(), b"\r\n", body].concat();
    let out = conform(&msg);
    assert!(lines(&out).all(|l| l.len() <= MAX_LINE), "a line over 998 octets");
    if !has_long_line(body) {
        assert!(matches!(out, Cow::Borrowed(_)));
        return;
    }
    let sep = out.windows(4).position(|w| w == b"\r\n\r\n").expect("head ends") + 4;
    let (out_head, out_body) = out.split_at(sep);
    match cte {
        Cte::Identity => {
            assert!(out_head.ends_with(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
            assert!(decode_qp(out_body) == body, "QP did not round-trip");
        }
        Cte::Base64 => {
            assert_eq!(out_head, [head.as_bytes(), b"\r\n"].concat());
            assert!(without(out_body, b"\r\n") == without(body, b"\r\n"), "base64 text changed");
        }
        Cte::Qp => {
            assert_eq!(out_head, [head.as_bytes(), b"\r\n"].concat());
            assert!(without(out_body, b"=\r\n") == without(body, b"=\r\n"), "QP text changed");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // Long lines are what this is about: let a short input stand for a long one.
    let rest = if rest.len() < 64 { rest.repeat(1200 / rest.len().max(1)) } else { rest.to_vec() };
    let input = crlf(&rest);
    match usize::from(mode) % (HEADS.len() + 1) {
        0 => whole_message(&input),
        m => {
            let (head, cte) = HEADS[m - 1];
            single_part(head, cte, &input);
        }
    }
});
