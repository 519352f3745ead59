//! The message-body receiver for DATA and BDAT: finds the end of data (only at
//! CRLF.CRLF), dot-unstuffs, normalises bare CR and bare LF to CRLF, enforces the
//! size limit and the header-line limit with bounded memory, and counts `Received:`
//! headers. Body lines of any length are accepted (as Postfix and Exim do); outbound
//! re-encodes them for the wire (see [`crate::delivery::outbound::long_lines`]).
//!
//! smtp-proto's `DataReceiver` is deliberately not used for DATA: it ends data on
//! `CRLF . CR CR LF` (the `\r\n.\r\r\n` smuggling variant), which is not CRLF.CRLF.

/// Longest header line, CRLF included (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1).
pub const MAX_TEXT_LINE: usize = 1000;

/// More `Received:` headers than this means a mail loop (`554 5.4.6`).
pub const MAX_RECEIVED: usize = 50;

/// How the body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// DATA: dot-stuffed, ends at CRLF.CRLF.
    Dot,
    /// BDAT: byte-counted chunks, no stuffing, no terminator.
    Chunked,
}

/// Why a received body cannot be accepted (decided once the whole body has been read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProblem {
    TooBig,
    /// A line of the header section exceeds 998 octets (body lines may be longer).
    HeaderLineTooLong,
    Loop,
}

/// Incremental body receiver; feed it the bytes after DATA (or each BDAT chunk).
#[derive(Debug)]
pub struct BodyReceiver {
    framing: Framing,
    max_size: usize,
    body: Vec<u8>,
    /// Octets of the message (after normalisation), counted even once storing stopped.
    size: u64,
    /// Raw octets of the current line, without its line end.
    line_len: usize,
    /// At the start of a line that followed a real CRLF (where stuffing applies).
    line_start: bool,
    /// The current line began with a (removed) stuffing dot.
    dot_line: bool,
    pending_cr: bool,
    in_headers: bool,
    /// Bytes of the current header line kept for the `Received:` check.
    head: [u8; 9],
    received: usize,
    too_big: bool,
    /// A header line was too long.
    line_too_long: bool,
}

impl BodyReceiver {
    pub fn new(framing: Framing, max_size: usize) -> Self {
        BodyReceiver {
            framing,
            max_size,
            body: Vec::new(),
            size: 0,
            line_len: 0,
            line_start: true,
            dot_line: false,
            pending_cr: false,
            in_headers: true,
            head: [0; 9],
            received: 0,
            too_big: false,
            line_too_long: false,
        }
    }

    /// Consumes bytes; returns how many were used and whether end of data was reached
    /// (always `false` for chunked framing). Bytes after the terminator are not consumed.
    pub fn ingest(&mut self, input: &[u8]) -> (usize, bool) {
        for (i, &b) in input.iter().enumerate() {
            if self.step(b) {
                return (i + 1, true);
            }
        }
        (input.len(), false)
    }

    /// Ends a chunked body (BDAT LAST): a trailing bare CR becomes CRLF.
    pub fn finish_chunked(&mut self) {
        if self.pending_cr {
            self.pending_cr = false;
            self.end_line();
        }
    }

    /// Octets seen so far (may exceed what was stored).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The verdict on the whole body, or the body itself.
    pub fn into_body(self) -> Result<Vec<u8>, BodyProblem> {
        if self.too_big {
            Err(BodyProblem::TooBig)
        } else if self.line_too_long {
            Err(BodyProblem::HeaderLineTooLong)
        } else if self.received > MAX_RECEIVED {
            Err(BodyProblem::Loop)
        } else {
            Ok(self.body)
        }
    }

    /// One input byte; `true` at end of data.
    fn step(&mut self, b: u8) -> bool {
        if self.pending_cr {
            self.pending_cr = false;
            if b == b'\n' {
                if self.framing == Framing::Dot && self.dot_line && self.line_len == 1 {
                    return true;
                }
                self.end_line();
                self.line_start = true;
                return false;
            }
            // Bare CR: normalised to CRLF, but it never starts a line where a dot counts.
            self.end_line();
        }
        match b {
            b'\r' => self.pending_cr = true,
            b'\n' => self.end_line(),
            b'.' if self.line_start && self.framing == Framing::Dot => {
                self.line_start = false;
                self.dot_line = true;
                self.line_len = 1;
            }
            _ => {
                self.line_start = false;
                self.line_len += 1;
                if self.in_headers && self.line_len + 2 > MAX_TEXT_LINE {
                    self.line_too_long = true;
                }
                self.push(b);
            }
        }
        false
    }

    /// Closes the current line with CRLF; `line_start` is left false (set by the caller for real CRLF).
    fn end_line(&mut self) {
        if self.in_headers && self.line_len + 2 > MAX_TEXT_LINE {
            self.line_too_long = true;
        }
        if self.in_headers {
            let content = self.line_len - usize::from(self.dot_line);
            if content == 0 {
                self.in_headers = false;
            } else if self.head.eq_ignore_ascii_case(b"received:") {
                self.received += 1;
            }
        }
        self.push(b'\r');
        self.push(b'\n');
        self.line_len = 0;
        self.dot_line = false;
        self.line_start = false;
        self.head = [0; 9];
    }

    fn push(&mut self, b: u8) {
        if self.in_headers && b != b'\r' && b != b'\n' {
            let content = self.line_len - usize::from(self.dot_line);
            if let Some(slot) = content.checked_sub(1).and_then(|i| self.head.get_mut(i)) {
                *slot = b;
            }
        }
        self.size += 1;
        if self.size > self.max_size as u64 {
            self.too_big = true;
        }
        if !self.too_big && !self.line_too_long {
            self.body.push(b);
        } else if !self.body.is_empty() {
            self.body = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, usize, bool) {
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        let (used, done) = r.ingest(input);
        (r.into_body().unwrap_or_default(), used, done)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_unstuffs() {
        let (body, used, done) = run(b"A: b\r\n\r\n..x\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(&body, b"A: b\r\n\r\n.x\r\n");
        assert_eq!(used, b"A: b\r\n\r\n..x\r\n.\r\n".len());
    }

    #[test]
    fn smuggling_variants_never_end_data() {
        for v in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r",
            b"\r\n.\n",
            b"\n.\r",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r\n.\r\r\n",
            b"\r\n\x00.\r\n",
        ] {
            let mut input = b"Subject: x\r\n\r\nhello".to_vec();
            input.extend_from_slice(v);
            input.extend_from_slice(b"MAIL FROM:<evil@x.test>\r\n");
            let (_, _, done) = run(&input);
            assert!(!done, "{v:?} ended data");
        }
    }

    #[test]
    fn bare_newlines_become_crlf() {
        let (body, _, done) = run(b"a\nb\rc\r\n.\r\n");
        assert!(done);
        assert_eq!(&body, b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn split_terminator_completes() {
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        assert_eq!(r.ingest(b"x\r\n."), (4, false));
        assert_eq!(r.ingest(b"\r"), (1, false));
        assert_eq!(r.ingest(b"\nNOOP\r\n"), (1, true));
        assert_eq!(r.into_body().unwrap(), b"x\r\n");
    }

    #[test]
    fn limits_are_reported_after_the_end() {
        let mut r = BodyReceiver::new(Framing::Dot, 10);
        let (_, done) = r.ingest(b"0123456789abcdef\r\n.\r\n");
        assert!(done);
        assert_eq!(r.into_body(), Err(BodyProblem::TooBig));
        let long = [b'a'; 999];
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        r.ingest(&long);
        assert!(r.ingest(b"\r\n.\r\n").1);
        assert_eq!(r.into_body(), Err(BodyProblem::HeaderLineTooLong));
        let ok = [b'a'; 998];
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        r.ingest(&ok);
        assert!(r.ingest(b"\r\n.\r\n").1);
        assert!(r.into_body().is_ok());
        let body_line = [b'b'; 5000];
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        r.ingest(b"Subject: x\r\n\r\n");
        r.ingest(&body_line);
        assert!(r.ingest(b"\r\n.\r\n").1);
        assert_eq!(r.into_body().unwrap().len(), 14 + 5000 + 2);
    }

    #[test]
    fn counts_received_headers_only_in_the_header_section() {
        let mut msg = Vec::new();
        for _ in 0..51 {
            msg.extend_from_slice(b"Received: from x\r\n");
        }
        msg.extend_from_slice(b"\r\nbody\r\n.\r\n");
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        assert!(r.ingest(&msg).1);
        assert_eq!(r.into_body(), Err(BodyProblem::Loop));
        let mut r = BodyReceiver::new(Framing::Dot, 1 << 20);
        let mut body_only = b"Subject: x\r\n\r\n".to_vec();
        body_only.extend_from_slice(&msg);
        assert!(r.ingest(&body_only).1);
        assert!(r.into_body().is_ok());
    }

    #[test]
    fn chunked_keeps_dots_and_has_no_terminator() {
        let mut r = BodyReceiver::new(Framing::Chunked, 1 << 20);
        assert_eq!(r.ingest(b"a\r\n.\r\nb\r"), (8, false));
        r.finish_chunked();
        assert_eq!(r.into_body().unwrap(), b"a\r\n.\r\nb\r\n");
    }
}
