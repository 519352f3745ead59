//! Before mail-parser sees a returned message, the parts a bounce never reads are made opaque so
//! that they are not decoded: the embedded original (mail-parser would parse and decode every
//! part of it, though only its header block is read) and, when the notice has a plain-text part,
//! its HTML alternatives (Exchange and Gmail send long quoted-printable HTML twins of the text).

/// The subtype an embedded message is declared as instead of `rfc822`/`global`.
pub const EMBEDDED: &[u8] = b"x-rebound-embedded";
/// The type an HTML alternative is declared as instead of `text/html` (ignored when collecting).
const SKIPPED_HTML: &[u8] = b"x-rebound/skipped-html";
/// The name its `Content-Transfer-Encoding` field gets, so that it is not decoded either.
const SKIPPED_ENCODING: &[u8] = b"X-Rebound-Skipped-Encoding";
const ENCODING_FIELD: &[u8] = b"content-transfer-encoding:";

/// A rewritten copy of a message.
pub struct Prepared {
    pub bytes: Vec<u8>,
    /// HTML parts were made opaque (if the plain text turns out empty, parse again without).
    pub skipped_html: bool,
}

/// What a `Content-Type:` line declares, as far as this module cares.
#[derive(Clone, Copy, PartialEq)]
enum Declared {
    Embedded,
    Html,
    Plain,
}

/// One replacement: `len` bytes at `at` become `with`.
struct Edit {
    at: usize,
    len: usize,
    with: &'static [u8],
}

/// `raw` with embedded messages (and, when `skip_html` and there is a plain-text part, HTML
/// parts) made opaque; `None` when there is nothing to change.
pub fn prepare(raw: &[u8], skip_html: bool) -> Option<Prepared> {
    let declared: Vec<(usize, Declared)> = memchr::memchr_iter(b'/', raw)
        .filter_map(|at| declared_at(raw, at).map(|d| (at, d)))
        .collect();
    let has_plain = declared.iter().any(|(_, d)| *d == Declared::Plain);
    let mut edits = Vec::new();
    let mut skipped_html = false;
    for &(at, d) in &declared {
        match d {
            Declared::Embedded => edits.push(Edit {
                at: at + 1,
                len: 6,
                with: EMBEDDED,
            }),
            Declared::Html if skip_html && has_plain => {
                skipped_html = true;
                edits.push(Edit {
                    at: at - 4,
                    len: 9,
                    with: SKIPPED_HTML,
                });
                if let Some(field) = encoding_field(raw, at) {
                    edits.push(Edit {
                        at: field,
                        len: ENCODING_FIELD.len() - 1,
                        with: SKIPPED_ENCODING,
                    });
                }
            }
            _ => {}
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.at);
    Some(Prepared {
        bytes: apply(raw, &edits),
        skipped_html,
    })
}

fn apply(raw: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 32 * edits.len());
    let mut from = 0;
    for e in edits {
        if e.at < from {
            continue; // overlapping edits cannot happen; never apply one twice
        }
        out.extend_from_slice(&raw[from..e.at]);
        out.extend_from_slice(e.with);
        from = e.at + e.len;
    }
    out.extend_from_slice(&raw[from..]);
    out
}

/// What the `/` at `at` declares, when it sits in `message/rfc822`, `message/global`,
/// `text/html` or `text/plain` on a `Content-Type:` line.
fn declared_at(raw: &[u8], at: usize) -> Option<Declared> {
    // Most slashes (base64, URLs, dates) are followed by none of r, g, h, p.
    if !matches!(
        raw.get(at + 1)?.to_ascii_lowercase(),
        b'r' | b'g' | b'h' | b'p'
    ) {
        return None;
    }
    let word_ends = |end: usize| {
        raw.get(end)
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'-')
    };
    let is = |start: usize, word: &[u8]| {
        raw.get(start..start + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    let (main_len, declared) = if (is(at + 1, b"rfc822") || is(at + 1, b"global"))
        && word_ends(at + 7)
        && at >= 7
        && is(at - 7, b"message")
    {
        (7, Declared::Embedded)
    } else if at >= 4 && is(at - 4, b"text") {
        match () {
            _ if is(at + 1, b"html") && word_ends(at + 5) => (4, Declared::Html),
            _ if is(at + 1, b"plain") && word_ends(at + 6) => (4, Declared::Plain),
            _ => return None,
        }
    } else {
        return None;
    };
    let line_start = memchr::memrchr(b'\n', &raw[..at]).map_or(0, |i| i + 1);
    let line = raw[line_start..at - main_len].trim_ascii_start();
    let field = b"content-type:";
    (line.len() >= field.len() && line[..field.len()].eq_ignore_ascii_case(field))
        .then_some(declared)
}

/// Where the `Content-Transfer-Encoding:` field of the part header holding offset `at` starts:
/// the header block runs back to a boundary or blank line and on to the next blank line.
fn encoding_field(raw: &[u8], at: usize) -> Option<usize> {
    let mut start = memchr::memrchr(b'\n', &raw[..at]).map_or(0, |i| i + 1);
    while start > 0 {
        let prev = memchr::memrchr(b'\n', &raw[..start - 1]).map_or(0, |i| i + 1);
        let line = raw[prev..start - 1].trim_ascii();
        if line.is_empty() || line.starts_with(b"--") {
            break;
        }
        start = prev;
    }
    let mut line_at = start;
    while line_at < raw.len() {
        let end = memchr::memchr(b'\n', &raw[line_at..]).map_or(raw.len(), |i| line_at + i);
        let line = &raw[line_at..end];
        if line.trim_ascii().is_empty() {
            return None;
        }
        if line.len() >= ENCODING_FIELD.len()
            && line[..ENCODING_FIELD.len()].eq_ignore_ascii_case(ENCODING_FIELD)
        {
            return Some(line_at);
        }
        line_at = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALTERNATIVE: &[u8] = b"Content-Type: multipart/alternative; boundary=\"b\"\n\n--b\n\
        Content-Type: text/plain\n\nUser unknown\n--b\n\
        Content-Transfer-Encoding: quoted-printable\nContent-Type: text/html; charset=utf-8\n\n\
        <p>User=20unknown</p>\n--b--\n";

    #[test]
    fn html_twins_of_plain_text_are_neither_html_nor_decoded() {
        let p = prepare(ALTERNATIVE, true).unwrap();
        let text = String::from_utf8(p.bytes).unwrap();
        assert!(p.skipped_html);
        assert!(text.contains("Content-Type: text/plain\n"), "{text}");
        assert!(
            text.contains("Content-Type: x-rebound/skipped-html; charset"),
            "{text}"
        );
        assert!(
            text.contains("X-Rebound-Skipped-Encoding: quoted-printable"),
            "{text}"
        );
        assert!(prepare(ALTERNATIVE, false).is_none());
    }

    #[test]
    fn html_alone_is_kept() {
        let raw =
            b"Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<p>x</p>\n";
        assert!(prepare(raw, true).is_none());
    }

    #[test]
    fn embedded_messages_are_renamed_but_not_text_that_mentions_them() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
            see the message/rfc822 part\n--b\nContent-Type: Message/RFC822\n\nFrom: a@b.example\n\n--b--\n";
        let text = String::from_utf8(prepare(raw, true).unwrap().bytes).unwrap();
        assert!(text.contains("see the message/rfc822 part"), "{text}");
        assert!(
            text.contains("Content-Type: Message/x-rebound-embedded\n"),
            "{text}"
        );
        assert!(!text.contains("RFC822"), "{text}");
    }
}
