//! Message preview: the stored body of a message, its HTML part passed through
//! [`sanitise`] (or its text part escaped), served at
//! `/ui/messages/{id}/preview` with `Content-Security-Policy: default-src 'none';
//! style-src 'unsafe-inline'; img-src data:; sandbox` and shown in an iframe
//! with the `sandbox` attribute. The CSP alone stops scripts and remote loads;
//! the sanitiser is defence in depth (no script/style-loading elements, no `on*`
//! attributes, no link targets, no source but `data:image/`).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::html::esc;
use super::{Con, auth};

/// The preview document's CSP.
pub const PREVIEW_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox";
/// Most bytes of a body parsed for the preview.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Most bytes of the header section shown.
pub const MAX_HEADERS: usize = 16 * 1024;

/// Elements dropped with everything inside them.
const DROP_WITH_CONTENT: [&str; 16] = [
    "script",
    "iframe",
    "object",
    "embed",
    "noscript",
    "template",
    "svg",
    "math",
    "title",
    "textarea",
    "xmp",
    "noembed",
    "noframes",
    "plaintext",
    "applet",
    "frameset",
];
/// Elements kept (their allowed attributes only); every other tag is dropped, its text kept.
const KEEP: [&str; 47] = [
    "a",
    "abbr",
    "address",
    "article",
    "b",
    "blockquote",
    "body",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "section",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tr",
];
const KEEP_MORE: [&str; 8] = ["tfoot", "th", "thead", "u", "ul", "head", "style", "q"];
/// Attributes kept (values re-escaped); `src` only on `img` and only `data:image/...`.
const ATTRS: [&str; 21] = [
    "align",
    "alt",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "class",
    "color",
    "colspan",
    "dir",
    "face",
    "height",
    "lang",
    "rowspan",
    "size",
    "style",
    "title",
    "valign",
    "width",
    "src",
    "span",
];

/// A tag as read: name (lower-case), closing or not, attributes (lower-case name, raw value).
struct Tag {
    name: String,
    closing: bool,
    attrs: Vec<(String, String)>,
    /// Byte length of the tag in the input.
    len: usize,
}

/// Sanitises an HTML document for the preview (see the module doc). Never panics.
pub fn sanitise(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(1 << 20));
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&text(&rest[..lt]));
        rest = &rest[lt..];
        if let Some(end) = rest.strip_prefix("<!--") {
            rest = end.find("-->").map(|i| &end[i + 3..]).unwrap_or("");
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.find('>').map(|i| &rest[i + 1..]).unwrap_or("");
            continue;
        }
        let Some(tag) = read_tag(rest) else {
            out.push_str("&lt;");
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        if DROP_WITH_CONTENT.contains(&tag.name.as_str()) {
            if !tag.closing {
                rest = skip_past_close(rest, &tag.name);
            }
            continue;
        }
        if tag.name == "style" && !tag.closing {
            let (css, after) = raw_text(rest, "style");
            out.push_str(&format!("<style>{}</style>", inert_css(css)));
            rest = after;
            continue;
        }
        if KEEP.contains(&tag.name.as_str()) || KEEP_MORE.contains(&tag.name.as_str()) {
            out.push_str(&render_tag(&tag));
        }
    }
    out.push_str(&text(rest));
    out
}

/// Text between tags: kept, with stray `>` and quotes escaped (entities pass as written).
fn text(t: &str) -> String {
    t.replace('>', "&gt;").replace('"', "&quot;")
}

/// Reads the tag `s` starts with (`<name ...>` or `</name>`); `None` when it is not a tag.
fn read_tag(s: &str) -> Option<Tag> {
    let b = s.as_bytes();
    let mut i = 1;
    let closing = b.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let start = i;
    while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
        i += 1;
    }
    if i == start || !b[start].is_ascii_alphabetic() {
        return None;
    }
    let name = s[start..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/')
        {
            i += 1;
        }
        match b.get(i) {
            None => {
                return Some(Tag {
                    name,
                    closing,
                    attrs,
                    len: s.len(),
                });
            }
            Some(b'>') => {
                return Some(Tag {
                    name,
                    closing,
                    attrs,
                    len: i + 1,
                });
            }
            Some(_) => {}
        }
        let (attr, next) = read_attr(s, i);
        attrs.extend(attr);
        i = next;
    }
}

/// One attribute at byte `i`: `(name, value)` and the index after it.
fn read_attr(s: &str, mut i: usize) -> (Option<(String, String)>, usize) {
    let b = s.as_bytes();
    let start = i;
    while b
        .get(i)
        .is_some_and(|c| !c.is_ascii_whitespace() && !matches!(c, b'=' | b'>' | b'/'))
    {
        i += 1;
    }
    if i == start {
        return (None, i + 1);
    }
    let name = s[start..i].to_ascii_lowercase();
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if b.get(i) != Some(&b'=') {
        return (Some((name, String::new())), i);
    }
    i += 1;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let (value, next) = match b.get(i) {
        Some(q @ (b'"' | b'\'')) => match s[i + 1..].find(*q as char) {
            Some(j) => (&s[i + 1..i + 1 + j], i + 2 + j),
            None => (&s[i + 1..], s.len()),
        },
        _ => {
            let st = i;
            while b
                .get(i)
                .is_some_and(|c| !c.is_ascii_whitespace() && *c != b'>')
            {
                i += 1;
            }
            (&s[st..i], i)
        }
    };
    (Some((name, decode_entities(value))), next)
}

/// Decodes the entities that could hide a scheme or a quote (`&#..;`, `&#x..;`, `&colon;` ...).
fn decode_entities(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest.find(';').filter(|i| *i <= 10);
        let decoded = semi.and_then(|i| entity(&rest[1..i]));
        match (semi, decoded) {
            (Some(i), Some(c)) => {
                out.push(c);
                rest = &rest[i + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(e: &str) -> Option<char> {
    let n = if let Some(hex) = e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(dec) = e.strip_prefix('#') {
        dec.parse().ok()?
    } else {
        return match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "colon" => Some(':'),
            "Tab" => Some('\t'),
            "NewLine" => Some('\n'),
            _ => None,
        };
    };
    char::from_u32(n)
}

/// The tag rebuilt with allowed attributes only, every value escaped.
fn render_tag(t: &Tag) -> String {
    if t.closing {
        return format!("</{}>", t.name);
    }
    let mut s = format!("<{}", t.name);
    for (k, v) in &t.attrs {
        if !ATTRS.contains(&k.as_str()) || !attr_ok(&t.name, k, v) {
            continue;
        }
        s.push_str(&format!(" {k}=\"{}\"", esc(v)));
    }
    s.push('>');
    s
}

fn attr_ok(tag: &str, name: &str, value: &str) -> bool {
    let squashed: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    match name {
        "src" => {
            tag == "img"
                && squashed.starts_with("data:image/")
                && !squashed.starts_with("data:image/svg")
        }
        "style" => {
            !squashed.contains("url(")
                && !squashed.contains("expression(")
                && !squashed.contains("@import")
                && !squashed.contains("javascript:")
        }
        _ => !squashed.contains("javascript:") && !squashed.contains("vbscript:"),
    }
}

/// `rest` after the first `</name` ... `>` (or empty when it never closes).
fn skip_past_close<'a>(rest: &'a str, name: &str) -> &'a str {
    raw_text(rest, name).1
}

/// Splits `rest` at the first `</name` (case-insensitive): the text before, and what follows
/// the closing tag's `>`.
fn raw_text<'a>(rest: &'a str, name: &str) -> (&'a str, &'a str) {
    let b = rest.as_bytes();
    for i in memchr::memmem::find_iter(b, b"</") {
        let cand = &b[i + 2..];
        if cand.len() >= name.len() && cand[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            let after = &rest[i..];
            let end = after.find('>').map(|j| &after[j + 1..]).unwrap_or("");
            return (&rest[..i], end);
        }
    }
    (rest, "")
}

/// CSS with nothing that loads or runs: `url(...)` becomes `none`, `@import ...;` and
/// `expression(...)` are removed, `javascript:` and `<` neutralised.
fn inert_css(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let lower = css.to_ascii_lowercase();
    let mut i = 0;
    while i < css.len() {
        let rest = &lower[i..];
        let skip_to = |end: char, from: usize| {
            rest[from..]
                .find(end)
                .map(|j| i + from + j + 1)
                .unwrap_or(css.len())
        };
        if rest.starts_with("url(") {
            out.push_str("none");
            i = skip_to(')', 4);
            continue;
        }
        if rest.starts_with("expression(") {
            i = skip_to(')', 11);
            continue;
        }
        if rest.starts_with("@import") {
            i = skip_to(';', 7);
            continue;
        }
        if rest.starts_with("javascript:") {
            out.push_str("blocked");
            i += 11;
            continue;
        }
        let c = css[i..].chars().next().unwrap_or(' ');
        match c {
            '<' => out.push_str("\\3c "),
            c => out.push(c),
        }
        i += c.len_utf8();
    }
    out
}

/// The raw header section of a message (up to the blank line, at most [`MAX_HEADERS`]), as text.
pub fn header_text(body: &[u8]) -> String {
    let end = memchr::memmem::find(body, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(body, b"\n\n"))
        .unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end.min(MAX_HEADERS)]).into_owned()
}

/// The decoded Subject of a message.
pub fn subject(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(MAX_HEADERS)];
    mail_parser::MessageParser::new()
        .parse_headers(head)
        .and_then(|m| m.subject().map(str::to_string))
}

/// The preview document of a stored message.
pub fn document(body: &[u8]) -> String {
    let body = &body[..body.len().min(MAX_BODY)];
    let Some(msg) = mail_parser::MessageParser::new().parse(body) else {
        return "<!doctype html><meta charset=\"utf-8\"><p>This message could not be read.</p>"
            .into();
    };
    let inner = if msg.html_body_count() > 0
        && msg
            .html_part(0)
            .is_some_and(|p| matches!(p.body, mail_parser::PartType::Html(_)))
    {
        msg.body_html(0).map(|h| sanitise(&h)).unwrap_or_default()
    } else {
        format!(
            "<pre style=\"white-space:pre-wrap;font:14px/1.4 monospace\">{}</pre>",
            esc(&msg.body_text(0).unwrap_or_default())
        )
    };
    format!("<!doctype html><html><head><meta charset=\"utf-8\"></head><body>{inner}</body></html>")
}

/// `GET /ui/messages/{id}/preview`.
pub async fn serve(
    axum::extract::State(con): Con,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = auth::signed_in(&con, &headers, &uri) {
        return r;
    }
    let found = crate::admin::parse_id(&id)
        .ok()
        .and_then(|n| con.daemon.store.body(n).ok().flatten());
    let (status, doc) = match found {
        Some(b) => (StatusCode::OK, tokio::task::spawn_blocking(move || document(&b)).await.unwrap_or_default()),
        None => (StatusCode::NOT_FOUND, "<!doctype html><meta charset=\"utf-8\"><p>The body of this message is no longer stored.</p>".into()),
    };
    let mut r = (status, doc).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PREVIEW_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
