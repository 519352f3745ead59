//! Reading what a browser sends: the `Cookie` header (RFC 6265 §5.4 pairs) and
//! `application/x-www-form-urlencoded` forms and query strings. Both take any
//! bytes and never panic (fuzzed: `fuzz/fuzz_targets/console_http.rs`).

use std::collections::HashMap;

/// Most bytes of a form body or query string read.
pub const MAX_FORM: usize = 64 * 1024;
/// Most fields kept from one form.
pub const MAX_FIELDS: usize = 64;

/// The value of cookie `name` in a `Cookie` header value (the first one, quotes removed).
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'"' && b != b'\\')
            .then_some(v)
    })
}

/// A cookie's value from request headers (every `Cookie` header is read).
pub fn cookie_from(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|h| cookie(h, name))
        .map(str::to_string)
}

/// A decoded form or query string: the first value of each field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(HashMap<String, String>);

impl Form {
    /// Parses urlencoded bytes (`+` is a space, bad `%` escapes are kept as written); at most
    /// [`MAX_FORM`] bytes and [`MAX_FIELDS`] fields are read.
    pub fn parse(bytes: &[u8]) -> Form {
        let bytes = &bytes[..bytes.len().min(MAX_FORM)];
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(bytes).take(MAX_FIELDS) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Form(map)
    }

    /// The query string of a URI.
    pub fn query(uri: &axum::http::Uri) -> Form {
        Form::parse(uri.query().unwrap_or("").as_bytes())
    }

    /// The trimmed value of `k`, `None` when absent or empty.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value of `k` as sent (not trimmed; a password).
    pub fn raw(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// Like [`Form::get`], owned.
    pub fn owned(&self, k: &str) -> Option<String> {
        self.get(k).map(str::to_string)
    }
}

/// `k=v&...` with each part percent-encoded; empty values are left out.
pub fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// A path to send the browser back to after a form: only a console path of ours
/// (`/ui/...`, no scheme, no `//`, no backslash), else `fallback`.
pub fn local_path<'a>(back: Option<&'a str>, fallback: &'a str) -> &'a str {
    match back {
        Some(b)
            if b.starts_with("/ui/")
                && !b.contains("//")
                && !b.contains('\\')
                && b.bytes().all(|c| c.is_ascii_graphic()) =>
        {
            b
        }
        _ => fallback,
    }
}
