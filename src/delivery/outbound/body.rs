//! The message body as it goes on the wire after `354`: every line end made
//! CRLF (bare LF and bare CR converted, so no smuggled end-of-data can pass),
//! every line starting with "." dot-stuffed, and `CRLF.CRLF` exactly once at the end.

/// Encodes `body` for DATA, terminator included.
pub fn encode_for_data(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 8);
    let mut at_line_start = true;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        match b {
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                // CRLF is one line end; a lone CR or a lone LF is one too.
                i += if b == b'\r' && body.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                at_line_start = true;
                continue;
            }
            b'.' if at_line_start => out.extend_from_slice(b".."),
            _ => out.push(b),
        }
        at_line_start = false;
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_only_dot_stuffed_single_terminator() {
        assert_eq!(encode_for_data(b"A: b\r\n.\r\n"), b"A: b\r\n..\r\n.\r\n");
        assert_eq!(encode_for_data(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(
            encode_for_data(b"x\n.\nMAIL FROM:<e@v>\r\n"),
            b"x\r\n..\r\nMAIL FROM:<e@v>\r\n.\r\n"
        );
        assert_eq!(
            encode_for_data(b"x\r\n.\r\r\ny"),
            b"x\r\n..\r\n\r\ny\r\n.\r\n"
        );
        assert_eq!(encode_for_data(b".lead"), b"..lead\r\n.\r\n");
        assert_eq!(encode_for_data(b""), b".\r\n");
    }
}
