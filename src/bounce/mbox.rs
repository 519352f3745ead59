//! Splitting an mbox file into messages.

/// Splits an mbox on lines starting with `From `; a message without such separators yields itself.
/// The separator line is not part of the returned message.
pub fn split_mbox(raw: &[u8]) -> Vec<&[u8]> {
    if !raw.starts_with(b"From ") {
        return vec![raw];
    }
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < raw.len() {
        let end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        let at_line_start = pos == 0 || raw[pos - 1] == b'\n';
        if at_line_start
            && raw[pos..].starts_with(b"From ")
            && (pos == 0 || preceded_by_blank(raw, pos))
        {
            if let Some(s) = start {
                out.push(trim_trailing_newline(&raw[s..pos]));
            }
            start = Some(end);
        }
        pos = end;
    }
    if let Some(s) = start {
        out.push(trim_trailing_newline(&raw[s.min(raw.len())..]));
    }
    out.retain(|m| !m.is_empty());
    out
}

fn preceded_by_blank(raw: &[u8], pos: usize) -> bool {
    raw[..pos].ends_with(b"\n\n") || raw[..pos].ends_with(b"\r\n\r\n")
}

fn trim_trailing_newline(m: &[u8]) -> &[u8] {
    let m = m.strip_suffix(b"\n").unwrap_or(m);
    m.strip_suffix(b"\r").unwrap_or(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_from_lines_after_blank_lines() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\ntext\nFrom here on, text\n\nFrom c@d Tue Jan 2 00:00:00 2024\nSubject: two\n\nbody\n";
        let parts = split_mbox(mbox);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"Subject: one"));
        assert!(parts[0].ends_with(b"From here on, text\n"));
        assert!(parts[1].starts_with(b"Subject: two"));
    }

    #[test]
    fn a_single_message_is_itself() {
        let msg = b"Subject: x\n\nbody\n";
        assert_eq!(split_mbox(msg), vec![&msg[..]]);
    }
}
