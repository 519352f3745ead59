//! Reading a stored message's header block (RFC 5322 §2.2): the unfolded value
//! of a named field. Used by the intake (Date, Message-ID) and by unsubscribe (To).

/// The (unfolded) value of the first header called `name` in the header block.
pub fn header_value(msg: &[u8], name: &str) -> Option<String> {
    let end = memchr::memmem::find(msg, b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(msg.len());
    let head = &msg[..end];
    let mut value: Option<String> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
                continue;
            }
            return value;
        }
        if line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            value = Some(
                String::from_utf8_lossy(&line[name.len() + 1..])
                    .trim()
                    .to_string(),
            );
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_unfold() {
        let m = b"To: a@b\r\nSubject: one\r\n two\r\n\r\nbody";
        assert_eq!(header_value(m, "subject").as_deref(), Some("one two"));
        assert_eq!(header_value(m, "from"), None);
    }
}
