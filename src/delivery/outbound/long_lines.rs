//! Body lines over 998 octets made conformant for the wire (RFC 5322 §2.1.1)
//! without changing the content: rebound accepts such lines (as Postfix and Exim
//! do) and re-encodes, once per message before the per-recipient copies are made.
//!
//! [`conform`] returns the message borrowed when no line is too long (the hot
//! path). Otherwise each MIME leaf that has an over-long body line is re-encoded:
//! 7bit/8bit/binary/absent/unknown become quoted-printable (CTE header replaced or
//! added, `MIME-Version: 1.0` added to a message that lacks it), base64 is
//! re-wrapped at 76, quoted-printable gets soft line breaks. Multiparts are walked
//! by boundary (nested too, and `message/rfc822` bodies); parts without long lines
//! stay byte-identical; an over-long line in a preamble or epilogue (which MIME
//! readers discard) is cut at 998. Header lines are never changed: inbound refuses
//! an over-long top-level header line, one in a part header is passed on as it is.

use std::borrow::Cow;

/// Longest line, line end excluded (RFC 5322 §2.1.1).
pub const MAX_LINE: usize = 998;
/// Longest encoded line for base64 and quoted-printable, line end excluded (RFC 2045).
const ENCODED_LINE: usize = 76;
/// Multipart / message nesting followed; deeper entities are re-encoded whole.
const MAX_DEPTH: usize = 32;

/// `msg` with every line at most [`MAX_LINE`] octets (see the module docs);
/// borrowed when nothing needed changing.
pub fn conform(msg: &[u8]) -> Cow<'_, [u8]> {
    if !has_long_line(msg) {
        return Cow::Borrowed(msg);
    }
    Cow::Owned(entity(msg, true, 0))
}

/// [`conform`] for an owned body: `msg` itself comes back when nothing changed.
pub fn conform_owned(msg: Vec<u8>) -> Vec<u8> {
    let changed = match conform(&msg) {
        Cow::Owned(v) => Some(v),
        Cow::Borrowed(_) => None,
    };
    changed.unwrap_or(msg)
}

/// Whether any line of `data` (CR before LF not counted) exceeds [`MAX_LINE`].
pub fn has_long_line(data: &[u8]) -> bool {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        if strip_cr(&data[start..nl]).len() > MAX_LINE {
            return true;
        }
        start = nl + 1;
    }
    strip_cr(&data[start..]).len() > MAX_LINE
}

fn strip_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Lines of `data`, each with its LF (the last one may have none).
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
}

/// A line split into its text and its line end (`\r\n`, `\n` or nothing).
fn split_eol(line: &[u8]) -> (&[u8], &[u8]) {
    let n = if line.ends_with(b"\r\n") {
        2
    } else {
        usize::from(line.ends_with(b"\n"))
    };
    line.split_at(line.len() - n)
}

/// One entity (a message, or a MIME part) made conformant; `is_message` adds
/// `MIME-Version` when the body is re-encoded.
fn entity(e: &[u8], is_message: bool, depth: usize) -> Vec<u8> {
    let (head, body) = split_entity(e);
    if !has_long_line(body) {
        return e.to_vec();
    }
    let fields = fields(head);
    let ctype = field_value(&fields, "content-type").unwrap_or_default();
    let media = media_type(&ctype);
    if depth < MAX_DEPTH {
        if media.starts_with("multipart/") {
            let boundary = param(&ctype, "boundary").filter(|b| !b.is_empty());
            if let Some(parts) = boundary.and_then(|b| multipart(body, b.as_bytes(), depth + 1)) {
                return [head, &parts].concat();
            }
        } else if media == "message/rfc822" || media == "message/global" {
            return [head, &entity(body, true, depth + 1)].concat();
        }
    }
    leaf(head, &fields, body, is_message)
}

/// Splits at the end of the header section: the first empty line (kept in the
/// head), or the first line that is not a header field (which starts the body).
fn split_entity(e: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    for line in lines(e) {
        let (text, _) = split_eol(line);
        if text.is_empty() {
            return e.split_at(pos + line.len());
        }
        if !is_field_line(text, pos == 0) {
            return e.split_at(pos);
        }
        pos += line.len();
    }
    (e, &[])
}

/// A header field's first line (`name:`) or, after the first, a continuation line.
fn is_field_line(text: &[u8], first: bool) -> bool {
    if text[0] == b' ' || text[0] == b'\t' {
        return !first;
    }
    match memchr::memchr(b':', text) {
        Some(colon) => {
            text[..colon]
                .trim_ascii_end()
                .iter()
                .all(|&b| (33..=126).contains(&b))
                && colon > 0
        }
        None => false,
    }
}

/// One header field: its raw lines (continuations and line ends included) and name.
struct Field<'a> {
    raw: &'a [u8],
    name: &'a [u8],
}

/// The fields of a head from [`split_entity`] (its empty line left out).
fn fields(head: &[u8]) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    for line in lines(head) {
        let (text, _) = split_eol(line);
        let start = pos;
        pos += line.len();
        if text.is_empty() {
            break;
        }
        match out.last_mut() {
            Some(f) if text[0] == b' ' || text[0] == b'\t' => {
                f.raw = &head[start - f.raw.len()..pos]
            }
            _ => {
                let colon = memchr::memchr(b':', text).unwrap_or(text.len());
                out.push(Field {
                    raw: &head[start..pos],
                    name: text[..colon].trim_ascii_end(),
                });
            }
        }
    }
    out
}

fn is_named(f: &Field<'_>, name: &str) -> bool {
    f.name.eq_ignore_ascii_case(name.as_bytes())
}

/// The unfolded value of the first field called `name`.
fn field_value(fields: &[Field<'_>], name: &str) -> Option<String> {
    let f = fields.iter().find(|f| is_named(f, name))?;
    let colon = memchr::memchr(b':', f.raw)?;
    let value: Vec<u8> = f.raw[colon + 1..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    Some(String::from_utf8_lossy(&value).trim().to_string())
}

/// `type/subtype`, lower-cased.
fn media_type(ctype: &str) -> String {
    ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The value of parameter `name` of a `Content-Type` value (quoted or not).
fn param(ctype: &str, name: &str) -> Option<String> {
    let mut rest = ctype.split_once(';')?.1;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => quoted(q),
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = next;
    }
}

/// A quoted-string body (after its opening quote): the unescaped value and what follows.
fn quoted(q: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &q[i + 1..]),
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            _ => value.push(c),
        }
    }
    (value, "")
}

/// Whether `line` is a delimiter for `boundary`: `Some(true)` for the close delimiter.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let (text, _) = split_eol(line);
    let rest = text.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    rest.iter()
        .all(|&b| b == b' ' || b == b'\t')
        .then_some(close)
}

/// A multipart body with each part made conformant; `None` if it has no delimiter.
fn multipart(body: &[u8], boundary: &[u8], depth: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    let (mut seg_start, mut pos, mut seen, mut closed) = (0, 0, false, false);
    for line in lines(body) {
        let start = pos;
        pos += line.len();
        let Some(close) = delimiter(line, boundary).filter(|_| !closed) else {
            continue;
        };
        let seg = &body[seg_start..start];
        out.extend_from_slice(&if seen {
            entity(seg, false, depth)
        } else {
            cut_long_lines(seg)
        });
        out.extend_from_slice(line);
        (seen, closed, seg_start) = (true, close, pos);
    }
    if !seen {
        return None;
    }
    let rest = &body[seg_start..];
    out.extend_from_slice(&if closed {
        cut_long_lines(rest)
    } else {
        entity(rest, false, depth)
    });
    Some(out)
}

/// Text nobody decodes (a preamble, an epilogue) with over-long lines cut at [`MAX_LINE`].
fn cut_long_lines(seg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seg.len() + seg.len() / MAX_LINE * 2);
    for line in lines(seg) {
        let (mut text, eol) = split_eol(line);
        while text.len() > MAX_LINE {
            out.extend_from_slice(&text[..MAX_LINE]);
            out.extend_from_slice(b"\r\n");
            text = &text[MAX_LINE..];
        }
        out.extend_from_slice(text);
        out.extend_from_slice(eol);
    }
    out
}

/// A leaf whose body has an over-long line, re-encoded according to its CTE.
fn leaf(head: &[u8], fields: &[Field<'_>], body: &[u8], is_message: bool) -> Vec<u8> {
    let cte = field_value(fields, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match cte.as_str() {
        "base64" => [head, &rewrap_base64(body)].concat(),
        "quoted-printable" => [head, &soft_break_qp(body)].concat(),
        _ => [qp_head(fields, is_message), encode_qp(body)].concat(),
    }
}

/// The head with `Content-Transfer-Encoding: quoted-printable` in place of any
/// CTE field (and `MIME-Version: 1.0` for a message without one), empty line last.
fn qp_head(fields: &[Field<'_>], is_message: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields
        .iter()
        .filter(|f| !is_named(f, "content-transfer-encoding"))
    {
        out.extend_from_slice(f.raw);
        if !f.raw.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if is_message && !fields.iter().any(|f| is_named(f, "mime-version")) {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    out
}

/// Base64 text re-wrapped at 76 characters a line (line ends dropped, nothing else).
fn rewrap_base64(body: &[u8]) -> Vec<u8> {
    let chars: Vec<u8> = body
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let mut out = Vec::with_capacity(chars.len() + chars.len() / ENCODED_LINE * 2 + 2);
    for chunk in chars.chunks(ENCODED_LINE) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quoted-printable text with soft line breaks added to its over-long lines
/// (never inside an `=XX` escape); other lines unchanged.
fn soft_break_qp(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    for line in lines(body) {
        let (mut text, eol) = split_eol(line);
        if text.len() > MAX_LINE {
            while text.len() > ENCODED_LINE {
                let cut = qp_cut(text);
                out.extend_from_slice(&text[..cut]);
                out.extend_from_slice(b"=\r\n");
                text = &text[cut..];
            }
        }
        out.extend_from_slice(text);
        out.extend_from_slice(eol);
    }
    out
}

/// Where to soft-break encoded QP `text` (longer than a line): at 75 characters,
/// or before an `=` among the last two so no escape is split.
fn qp_cut(text: &[u8]) -> usize {
    let cut = ENCODED_LINE - 1;
    match text[cut - 2..cut].iter().position(|&b| b == b'=') {
        Some(p) => cut - 2 + p,
        None => cut,
    }
}

/// `body` encoded quoted-printable (RFC 2045 §6.7): line ends (CRLF or LF) stay
/// hard line breaks written CRLF, lines are soft-broken at 76.
pub fn encode_qp(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8 + 8);
    for line in lines(body) {
        let (text, eol) = split_eol(line);
        encode_qp_line(text, &mut out);
        if !eol.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// One line of text, encoded; whitespace at its end is escaped so it survives.
fn encode_qp_line(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut col = 0;
    for (i, &b) in text.iter().enumerate() {
        let literal =
            matches!(b, 33..=60 | 62..=126) || (matches!(b, b' ' | b'\t') && i + 1 < text.len());
        let width = if literal { 1 } else { 3 };
        if col + width > ENCODED_LINE - 1 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
    }
}

#[cfg(test)]
mod tests;
