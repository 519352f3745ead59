//! Unit tests for [`super::conform`]: QP round trips, multiparts, the borrowed fast path.

use super::*;

/// An independent, strict quoted-printable decoder (hard line breaks as CRLF).
fn decode_qp(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines(s) {
        let (text, eol) = split_eol(line);
        let text = text.trim_ascii_end();
        let (text, soft) = match text.strip_suffix(b"=") {
            Some(t) => (t, true),
            None => (text, false),
        };
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'=' {
                let hex = std::str::from_utf8(&text[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        if !soft && !eol.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn max_line(data: &[u8]) -> usize {
    lines(data).map(|l| split_eol(l).0.len()).max().unwrap_or(0)
}

fn body_of(msg: &[u8]) -> &[u8] {
    split_entity(msg).1
}

fn head_of(msg: &[u8]) -> String {
    String::from_utf8_lossy(split_entity(msg).0).into_owned()
}

#[test]
fn short_lines_come_back_borrowed() {
    let msg = b"Subject: hi\r\n\r\nshort\r\n".to_vec();
    assert!(matches!(conform(&msg), Cow::Borrowed(_)));
    let line = vec![b'x'; MAX_LINE];
    let msg = [&b"Subject: edge\r\n\r\n"[..], &line, b"\r\n"].concat();
    assert!(matches!(conform(&msg), Cow::Borrowed(_)));
    let ptr = msg.as_ptr();
    let out = conform_owned(msg);
    assert_eq!(out.as_ptr(), ptr);
}

#[test]
fn a_long_plain_body_becomes_quoted_printable_and_round_trips() {
    let mut body = b"first line with = signs == and a trailing space \r\n".to_vec();
    body.extend(std::iter::repeat_n(&b"<p class=\"x\">caf\xc3\xa9 = 1</p>  \t"[..], 300).flatten());
    body.extend_from_slice(b"\r\n\r\nlast line, no trailing CRLF \t");
    let msg = [
        &b"From: a@example.com\r\nSubject: long\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"[..],
        &body,
    ]
    .concat();
    let out = conform(&msg).into_owned();
    assert!(max_line(&out) <= ENCODED_LINE);
    let head = head_of(&out);
    assert_eq!(
        head,
        "From: a@example.com\r\nSubject: long\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(decode_qp(body_of(&out)), body);
    assert!(
        body_of(&out).starts_with(b"first line with =3D signs =3D=3D and a trailing space=20\r\n")
    );
}

#[test]
fn mime_version_is_not_doubled_and_headers_keep_their_case_and_folding() {
    let long = "y".repeat(1500);
    let msg = format!(
        "MIME-Version: 1.0\r\nContent-Type: text/html;\r\n charset=utf-8\r\ncontent-transfer-encoding: 7bit\r\n\r\n{long}\r\n"
    );
    let out = conform(msg.as_bytes()).into_owned();
    assert_eq!(
        head_of(&out),
        "MIME-Version: 1.0\r\nContent-Type: text/html;\r\n charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(decode_qp(body_of(&out)), format!("{long}\r\n").as_bytes());
}

#[test]
fn base64_is_rewrapped_and_qp_soft_broken() {
    let b64 = "QUJD".repeat(400);
    let msg = format!("Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n");
    let out = conform(msg.as_bytes()).into_owned();
    assert!(max_line(&out) <= ENCODED_LINE);
    assert_eq!(
        String::from_utf8(body_of(&out).to_vec())
            .unwrap()
            .replace("\r\n", ""),
        b64
    );
    let qp = "a=3Db=\t".repeat(300) + "==3D";
    let msg = format!("Content-Transfer-Encoding: Quoted-Printable\r\n\r\nshort=20\r\n{qp}\r\n");
    let out = conform(msg.as_bytes()).into_owned();
    assert!(max_line(&out) <= ENCODED_LINE);
    assert!(body_of(&out).starts_with(b"short=20\r\n"));
    let unbroken = String::from_utf8(body_of(&out).to_vec())
        .unwrap()
        .replace("=\r\n", "");
    assert!(
        unbroken == format!("short=20\r\n{qp}\r\n"),
        "soft breaks changed the text"
    );
}

#[test]
fn multipart_re_encodes_only_the_part_with_a_long_line() {
    let long = "<td>".repeat(1000);
    let msg = format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nplain text\r\n--b1\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{long}\r\n--b1--\r\nepilogue\r\n"
    );
    let out = String::from_utf8(conform(msg.as_bytes()).into_owned()).unwrap();
    assert!(max_line(out.as_bytes()) <= MAX_LINE);
    let (before, html) = out
        .split_once("--b1\r\nContent-Type: text/html\r\n")
        .unwrap();
    assert_eq!(
        before,
        msg.split_once("--b1\r\nContent-Type: text/html\r\n")
            .unwrap()
            .0
    );
    let (part, after) = html.split_once("\r\n--b1--").unwrap();
    assert_eq!(after, "\r\nepilogue\r\n");
    let (cte, qp) = part.split_once("\r\n\r\n").unwrap();
    assert_eq!(cte, "Content-Transfer-Encoding: quoted-printable");
    assert_eq!(decode_qp(qp.as_bytes()), long.as_bytes());
}

#[test]
fn nested_multipart_is_walked() {
    let long = "z=".repeat(800);
    let inner =
        format!("--in\r\nContent-Type: text/plain\r\n\r\nok\r\n--in\r\n\r\n{long}\r\n--in--\r\n");
    let msg = format!(
        "Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: multipart/alternative;\r\n\tboundary=\"in\"\r\n\r\n{inner}--out\r\nContent-Type: text/plain\r\n\r\nuntouched\r\n--out--\r\n"
    );
    let out = String::from_utf8(conform(msg.as_bytes()).into_owned()).unwrap();
    assert!(max_line(out.as_bytes()) <= MAX_LINE);
    assert!(out.starts_with("Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: multipart/alternative;\r\n\tboundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nok\r\n--in\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"));
    assert!(out.ends_with(
        "\r\n--in--\r\n--out\r\nContent-Type: text/plain\r\n\r\nuntouched\r\n--out--\r\n"
    ));
    let qp = out
        .split("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        .nth(1)
        .unwrap()
        .split("\r\n--in--")
        .next()
        .unwrap();
    assert_eq!(decode_qp(qp.as_bytes()), long.as_bytes());
}

#[test]
fn a_long_preamble_is_cut_and_a_multipart_without_delimiters_is_encoded_whole() {
    let long = "p".repeat(2500);
    let msg = format!(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n{long}\r\n--b\r\n\r\nx\r\n--b--\r\n"
    );
    let out = conform(msg.as_bytes()).into_owned();
    assert!(max_line(&out) <= MAX_LINE);
    assert!(out.ends_with(b"\r\n--b\r\n\r\nx\r\n--b--\r\n"));
    let msg = format!("Content-Type: multipart/mixed; boundary=zz\r\n\r\n{long}\r\n");
    let out = conform(msg.as_bytes()).into_owned();
    assert!(max_line(&out) <= ENCODED_LINE);
    assert_eq!(decode_qp(body_of(&out)), format!("{long}\r\n").as_bytes());
}

#[test]
fn an_encapsulated_message_is_walked_and_binary_is_re_encoded() {
    let long = "\u{0}\u{ff}".repeat(700);
    let msg = format!(
        "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Transfer-Encoding: binary\r\n\r\n{long}\r\n"
    );
    let out = conform(msg.as_bytes()).into_owned();
    assert!(max_line(&out) <= ENCODED_LINE);
    let expected_head = "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";
    assert!(out.starts_with(expected_head.as_bytes()));
    assert_eq!(
        decode_qp(&out[expected_head.len()..]),
        format!("{long}\r\n").as_bytes()
    );
}

#[test]
fn a_body_without_an_empty_line_after_the_headers_starts_at_the_first_non_field_line() {
    let long = "h".repeat(1200);
    let msg = format!("Subject: x\r\n{long}\r\n");
    let out = conform(msg.as_bytes()).into_owned();
    assert_eq!(
        head_of(&out),
        "Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(decode_qp(body_of(&out)), format!("{long}\r\n").as_bytes());
}

/// A small deterministic generator for the property test below (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A message made of pieces that matter here: MIME heads, delimiters, long runs
/// of awkward characters (`=`, spaces before line ends, dots, 8-bit), CRLF.
fn random_message(rng: &mut Rng) -> Vec<u8> {
    const PIECES: [&[u8]; 14] = [
        b"Content-Type: multipart/mixed; boundary=\"b\"\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Transfer-Encoding: 8bit\r\n",
        b"\r\n",
        b"\r\n--b\r\n",
        b"\r\n--b--\r\n",
        b"=",
        b" ",
        b"\t",
        b".",
        b"\xff\x00",
        b"=3D",
    ];
    let mut msg = Vec::new();
    for _ in 0..rng.below(40) {
        if rng.below(4) == 0 {
            msg.extend(std::iter::repeat_n(
                b'a' + rng.below(26) as u8,
                rng.below(1500),
            ));
        } else {
            msg.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
    }
    msg
}

#[test]
fn random_messages_never_gain_a_long_line_and_single_parts_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let msg = random_message(&mut rng);
        let out = conform(&msg);
        let long_in: std::collections::HashSet<&[u8]> = lines(&msg)
            .map(|l| split_eol(l).0)
            .filter(|l| l.len() > MAX_LINE)
            .collect();
        assert!(
            lines(&out)
                .map(|l| split_eol(l).0)
                .all(|l| l.len() <= MAX_LINE || long_in.contains(l)),
            "a new long line from {msg:?}"
        );
        // The same bytes as the body of a plain message: no long line at all, and QP decodes back.
        let plain = [&b"Subject: p\r\n\r\n"[..], &msg].concat();
        let out = conform(&plain);
        assert!(max_line(&out) <= MAX_LINE);
        if has_long_line(&msg) {
            assert!(decode_qp(body_of(&out)) == msg, "no round trip for {msg:?}");
        }
    }
}
