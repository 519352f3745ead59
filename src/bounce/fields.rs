//! Small text tools shared by the bounce parser: header-field groups, addresses, SMTP codes in text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::model::EnhancedCode;

/// One `Name: value` field, name as written, value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// Parses a block of header-style lines (RFC 5322 fields, DSN groups). Continuation lines
/// (leading white space) are unfolded into the previous field; lines without a colon are skipped.
/// Stops at the first blank line when `stop_at_blank`.
pub fn parse_fields(text: &str, stop_at_blank: bool) -> Vec<Field> {
    parse_fields_where(text, stop_at_blank, |_| true)
}

/// [`parse_fields`] keeping only the fields whose name `keep` accepts; the others are never copied.
pub fn parse_fields_where(
    text: &str,
    stop_at_blank: bool,
    keep: impl Fn(&str) -> bool,
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if stop_at_blank && (!out.is_empty() || skipping) {
                break;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if skipping {
                continue;
            }
            if let Some(last) = out.last_mut() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            skipping = !keep(name);
            if !skipping && !name.is_empty() && name.len() < 80 && !name.contains(' ') {
                out.push(Field {
                    name: name.to_string(),
                    value: value.trim().to_string(),
                });
            }
        }
    }
    out
}

/// The value of the first field named `name` (case-insensitive).
pub fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_str())
}

static ADDR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)[a-z0-9!#$%&'*+/=?^_`{|}~.\-"]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*"#)
        .expect("static regex")
});

/// The first e-mail address in `text`, without angle brackets or a trailing dot.
pub fn find_address(text: &str) -> Option<String> {
    ADDR.find_iter(text)
        .map(|m| clean_address(m.as_str()))
        .find(|a| !a.is_empty())
}

/// All e-mail addresses in `text`, cleaned, in order.
pub fn all_addresses(text: &str) -> impl Iterator<Item = String> + '_ {
    ADDR.find_iter(text)
        .map(|m| clean_address(m.as_str()))
        .filter(|a| !a.is_empty())
}

/// Strips brackets, quotes, a `rfc822;` type prefix and trailing punctuation from an address.
pub fn clean_address(s: &str) -> String {
    let s = strip_type(s);
    let s = s.trim().trim_start_matches(['<', '"', '\'', '(', '[']);
    let s = s.trim_end_matches(['>', '"', '\'', ')', ']', '.', ',', ';', ':']);
    let s = s.trim_start_matches('.');
    if s.contains('@') && !s.starts_with('@') && !s.ends_with('@') {
        s.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// Removes an RFC 3464 address/diagnostic type prefix (`rfc822;`, `smtp;`, `dns;`, `x-unix;`).
pub fn strip_type(s: &str) -> &str {
    match s.split_once(';') {
        Some((kind, rest)) if is_type_token(kind.trim()) => rest.trim(),
        _ => s.trim(),
    }
}

fn is_type_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 16
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

static REPLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s:;(\[<>#'=])([245][0-5][0-9])(?:[ ,:\-]|$)").expect("static regex")
});

/// The first basic SMTP reply code (`550`) in `text`.
pub fn find_reply_code(text: &str) -> Option<u16> {
    REPLY
        .captures_iter(text)
        .find_map(|c| c.get(1)?.as_str().parse().ok())
}

/// A remote reply quoted inside a relay's own summary, as Amazon SES writes it:
/// `5.1.0 - Unknown address error 550-'5.7.1 <a@b>... Access denied' (delivery attempts: 0)`.
static QUOTED_REPLY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\s)([45][0-9]{2})-'(.+)'").expect("static regex"));

/// The reply code and text of a remote reply quoted in a relay's summary (see [`QUOTED_REPLY`]).
pub fn quoted_reply(text: &str) -> Option<(u16, &str)> {
    let c = QUOTED_REPLY.captures(text)?;
    Some((c.get(1)?.as_str().parse().ok()?, c.get(2)?.as_str()))
}

/// The first 4xx or 5xx reply code in `text`.
pub fn find_failure_code(text: &str) -> Option<u16> {
    REPLY
        .captures_iter(text)
        .filter_map(|c| c.get(1)?.as_str().parse().ok())
        .find(|c: &u16| *c >= 400)
}

/// The first enhanced status code (`5.1.1`) in `text`, preferring a specific one over `x.0.0`.
pub fn find_enhanced(text: &str) -> Option<EnhancedCode> {
    let bytes = text.as_bytes();
    let mut generic = None;
    for dot in memchr::memchr_iter(b'.', bytes) {
        let Some(code) = enhanced_at(bytes, dot) else {
            continue;
        };
        if code.subject == 0 && code.detail == 0 {
            generic.get_or_insert(code);
        } else {
            return Some(code);
        }
    }
    generic
}

/// The enhanced code whose first dot is at `dot`: a class digit (2, 4 or 5) not preceded by a
/// digit or dot, then 1-3 digits, a dot, 1-3 digits, not followed by a digit or a dot and digit.
fn enhanced_at(b: &[u8], dot: usize) -> Option<EnhancedCode> {
    let class_at = dot.checked_sub(1)?;
    let class = b[class_at];
    if !matches!(class, b'2' | b'4' | b'5') {
        return None;
    }
    if class_at > 0 && (b[class_at - 1].is_ascii_digit() || b[class_at - 1] == b'.') {
        return None;
    }
    let (subject, next) = number_at(b, dot + 1)?;
    if b.get(next) != Some(&b'.') {
        return None;
    }
    let (detail, end) = number_at(b, next + 1)?;
    let continues = match b.get(end) {
        Some(b'.') => b.get(end + 1).is_some_and(u8::is_ascii_digit),
        Some(c) => c.is_ascii_digit(),
        None => false,
    };
    (!continues).then(|| EnhancedCode::new(class - b'0', subject, detail))
}

/// 1-3 ASCII digits at `at` (no more), their value and the offset after them.
fn number_at(b: &[u8], at: usize) -> Option<(u16, usize)> {
    let len = b
        .get(at..)?
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=3).contains(&len) {
        return None;
    }
    let value = b[at..at + len]
        .iter()
        .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    Some((value, at + len))
}

/// Collapses runs of white space into one space and trims.
pub fn squeeze(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Offset of `needle`, ASCII-lower-cased, in `lower` (an ASCII-lower-cased text). The searcher for
/// each needle is built once per thread: the needles are the recognisers' fixed phrases.
pub fn find_in_lower(lower: &[u8], needle: &'static str) -> Option<usize> {
    type Finders = HashMap<
        (usize, usize),
        memchr::memmem::Finder<'static>,
        std::hash::BuildHasherDefault<AddressHasher>,
    >;
    thread_local! {
        static FINDERS: RefCell<Finders> = RefCell::new(HashMap::default());
    }
    FINDERS.with(|cell| {
        let mut finders = cell.borrow_mut();
        finders
            .entry((needle.as_ptr() as usize, needle.len()))
            .or_insert_with(|| {
                memchr::memmem::Finder::new(needle.to_ascii_lowercase().as_bytes()).into_owned()
            })
            .find(lower)
    })
}

/// Hashes the (address, length) key of a `&'static str` in [`find_in_lower`]'s cache: the keys are
/// distinct addresses already, so mixing them is all that is needed (SipHash cost more than the
/// search on short texts).
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u8(b);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.write_u64(u64::from(b));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// True when `text` starts with `prefix`, ASCII case-insensitively.
pub fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// True when `haystack` contains `needle`, ASCII case-insensitively.
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    find_ci(haystack, needle).is_some()
}

/// Byte offset of the first ASCII-case-insensitive occurrence of `needle` in `haystack`.
pub fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else {
        return Some(0);
    };
    let last_start = h.len().checked_sub(n.len())?;
    // Only positions that start with the needle's first letter (either case) are compared.
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, &h[..=last_start])
        .find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_fields_and_strips_types() {
        let f = parse_fields(
            "Final-Recipient: rfc822; <A@Example.org>\nDiagnostic-Code: smtp; 550 5.1.1\n  user unknown\n\nX: y",
            true,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(
            clean_address(field(&f, "final-recipient").unwrap()),
            "a@example.org"
        );
        assert_eq!(
            strip_type(field(&f, "Diagnostic-Code").unwrap()),
            "550 5.1.1 user unknown"
        );
    }

    #[test]
    fn finds_codes_in_text() {
        assert_eq!(find_reply_code("Remote host said: 550 5.1.1 no"), Some(550));
        assert_eq!(find_reply_code("port 25000 then 4.4.1"), None);
        assert_eq!(
            find_enhanced("550 5.0.0 <a@b>... 5.1.1 unknown").map(|e| e.to_string()),
            Some("5.1.1".into())
        );
        assert_eq!(find_enhanced("version 1.5.1.2"), None);
        let code = |t: &str| find_enhanced(t).map(|e| e.to_string());
        assert_eq!(code("5.7.509 Access denied."), Some("5.7.509".into()));
        assert_eq!(code("(#5.1.1)."), Some("5.1.1".into()));
        assert_eq!(code("5.0.0 5.2.2 full"), Some("5.2.2".into()));
        assert_eq!(code("at 15.1.1 or 5.1.1234 or 5.1234.1 or 5.1.1.4"), None);
        assert_eq!(code("ends 4.4.7"), Some("4.4.7".into()));
        assert_eq!(
            find_address("to <Kiji.Tora@Example.JP>."),
            Some("kiji.tora@example.jp".into())
        );
    }
}
