//! What the recognisers look at: a returned message taken apart once (headers, notification text,
//! delivery-status and feedback parts, the embedded original), with a degraded fallback.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders, PartType};

use super::fields::{Field, contains_ci, field, parse_fields, parse_fields_where};

/// Largest input handed to mail-parser; anything beyond is ignored (a bounce needs the head only).
pub const MAX_INPUT: usize = 8 << 20;
/// Longest notification text kept.
const MAX_BODY: usize = 256 << 10;

static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .header_text(HeaderName::Subject)
        .default_header_ignore()
});

/// A returned message, taken apart.
#[derive(Debug, Default, Clone)]
pub struct Context {
    /// Top-level header fields, unfolded, undecoded.
    pub headers: Vec<Field>,
    /// Decoded Subject.
    pub subject: String,
    /// The notification text: text parts outside any embedded message, LF line ends.
    pub body: String,
    /// `body` with ASCII letters lower-cased (same byte offsets), for fast substring tests.
    pub body_lower: String,
    /// Where the original-message marker line starts in `body`, if there is one.
    pub marker: Option<usize>,
    /// Each `message/delivery-status` part, as text.
    pub dsn: Vec<String>,
    /// The `message/feedback-report` part, as text.
    pub feedback: Option<String>,
    /// Header fields of the embedded original message, when one is attached.
    pub original: Option<Vec<Field>>,
    /// The `report-type` of a top-level `multipart/report`.
    pub report_type: Option<String>,
    /// True when mail-parser failed or panicked and the message was split by hand.
    pub degraded: bool,
}

impl Context {
    /// Takes `raw` apart. A panic inside mail-parser is caught (the message is then split by
    /// hand); rebound's own code here is not guarded.
    pub fn build(raw: &[u8]) -> Context {
        let raw = &raw[..raw.len().min(MAX_INPUT)];
        let converted;
        let raw = if memchr::memchr(b'\n', raw).is_none() && memchr::memchr(b'\r', raw).is_some() {
            converted = raw
                .iter()
                .map(|&b| if b == b'\r' { b'\n' } else { b })
                .collect::<Vec<u8>>();
            converted.as_slice()
        } else {
            raw
        };
        let prepared = super::opaque::prepare(raw, true);
        let mut parsed = parse_mime(prepared.as_ref().map_or(raw, |p| &p.bytes));
        let plain_empty = matches!(&parsed, Some(ctx) if ctx.body.trim().is_empty());
        if plain_empty && prepared.as_ref().is_some_and(|p| p.skipped_html) {
            // The plain-text part was empty after all: read the HTML.
            let again = super::opaque::prepare(raw, false);
            parsed = parse_mime(again.as_ref().map_or(raw, |p| &p.bytes));
        }
        let mut ctx = match parsed {
            Some(ctx) if !ctx.headers.is_empty() || !ctx.body.is_empty() => ctx,
            _ => degraded(raw),
        };
        if ctx.body.trim().is_empty() && ctx.dsn.is_empty() && ctx.feedback.is_none() {
            // Broken MIME (a boundary mail-parser could not see): read the raw body as text.
            ctx.body = degraded(raw).body;
        }
        ctx.body_lower = ctx.body.to_ascii_lowercase();
        ctx.marker = super::markers::marker_line(&ctx.body, &ctx.body_lower);
        ctx
    }

    /// The notification part of the text: everything before the quoted original.
    pub fn notification(&self) -> &str {
        self.marker
            .and_then(|end| self.body.get(..end))
            .unwrap_or(&self.body)
    }

    /// The first top-level header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(
            TOP_FIELDS.contains(&name),
            "{name} is not kept in TOP_FIELDS"
        );
        field(&self.headers, name)
    }

    /// All top-level headers named `name`.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        debug_assert!(
            TOP_FIELDS.contains(&name),
            "{name} is not kept in TOP_FIELDS"
        );
        self.headers
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// True when header `name` contains `needle` (case-insensitive).
    pub fn header_has(&self, name: &str, needle: &str) -> bool {
        self.headers_named(name).any(|v| contains_ci(v, needle))
    }

    /// The From header value.
    pub fn from(&self) -> &str {
        self.header("from").unwrap_or("")
    }

    /// True when the notification text (before the original-message marker) holds `needle`
    /// (lower-case ASCII), in any case.
    pub fn notification_has(&self, needle: &'static str) -> bool {
        match self.notification_lower() {
            Some(lower) => super::fields::find_in_lower(lower.as_bytes(), needle).is_some(),
            None => contains_ci(self.notification(), needle),
        }
    }

    /// [`Context::notification`] ASCII-lower-cased (the same byte offsets), when `body_lower`
    /// mirrors the body.
    pub fn notification_lower(&self) -> Option<&str> {
        if self.body_lower.len() != self.body.len() {
            return None;
        }
        self.body_lower.get(..self.notification().len())
    }

    /// True when the whole notification body holds `needle` (lower-case ASCII), in any case.
    pub fn body_has(&self, needle: &'static str) -> bool {
        if self.body_lower.len() != self.body.len() {
            return contains_ci(&self.body, needle);
        }
        super::fields::find_in_lower(self.body_lower.as_bytes(), needle).is_some()
    }
}

/// mail-parser with a panic caught (it has a debug assertion that fires on some malformed
/// multiparts): `None` when it could not parse `raw` or panicked. Only the mail-parser call is
/// guarded; a panic in rebound's own code (such as [`from_message`]) propagates.
fn mail_parse(raw: &[u8]) -> Option<Message<'_>> {
    catch_unwind(AssertUnwindSafe(|| PARSER.parse(raw)))
        .ok()
        .flatten()
}

/// The message taken apart by mail-parser, or `None` when mail-parser could not take it.
fn parse_mime(raw: &[u8]) -> Option<Context> {
    mail_parse(raw).map(|m| from_message(&m))
}

fn from_message(msg: &Message<'_>) -> Context {
    let mut ctx = Context {
        headers: fields_where(msg, is_top_field),
        subject: msg.subject().unwrap_or("").to_string(),
        ..Context::default()
    };
    ctx.report_type = msg
        .content_type()
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .and_then(|ct| ct.attribute("report-type"))
        .map(|s| s.to_ascii_lowercase());
    let mut html = String::new();
    let mut nested_report = None;
    for part in &msg.parts {
        collect_part(&mut ctx, &mut html, part, &mut nested_report);
    }
    if ctx.dsn.is_empty()
        && let Some(inner) = nested_report.and_then(mail_parse)
    {
        take_nested_report(&mut ctx, &inner);
    }
    if ctx.body.trim().is_empty() && !html.is_empty() {
        ctx.body = strip_tags(&html);
    }
    if ctx.body.trim().is_empty() && !ctx.dsn.is_empty() {
        ctx.body = ctx.dsn.join("\n");
    }
    ctx
}

/// The only top-level fields a recogniser reads (lower case). A bounce from Exchange or Gmail
/// carries dozens of long fields nobody reads; only these are copied. Add a name here when a
/// recogniser needs one ([`Context::header`] checks this in debug builds).
const TOP_FIELDS: [&str; 15] = [
    "from",
    "to",
    "reply-to",
    "sender",
    "return-path",
    "x-failed-recipients",
    "auto-submitted",
    "precedence",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-mailer",
    "x-ms-exchange-message-is-ndr",
    "x-ms-embedded-report",
];

/// The message's own header fields whose name `keep` accepts, unfolded.
fn fields_where(msg: &Message<'_>, keep: impl Fn(&str) -> bool) -> Vec<Field> {
    msg.headers_raw()
        .filter(|(n, _)| keep(n))
        .map(|(n, v)| Field {
            name: n.to_string(),
            value: unfold(v),
        })
        .collect()
}

/// One of the top-level fields a recogniser reads ([`TOP_FIELDS`]).
fn is_top_field(name: &str) -> bool {
    TOP_FIELDS.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// The fields of a returned original that anything reads: the addresses (a generic notice's
/// recipients are looked for among them), subject, Message-ID, our own `X-Rebound-*` fields, and
/// Content-Type (an attached delivery report is read as the report).
pub fn is_original_field(name: &str) -> bool {
    const READ: [&str; 9] = [
        "from",
        "to",
        "cc",
        "reply-to",
        "sender",
        "return-path",
        "subject",
        "message-id",
        "content-type",
    ];
    READ.iter().any(|r| name.eq_ignore_ascii_case(r)) || is_rebound_field(name)
}

/// One of our own `X-Rebound-*` fields.
pub fn is_rebound_field(name: &str) -> bool {
    name.len() > 10
        && name
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-rebound-"))
}

/// Adds what one MIME part holds to `ctx`; an embedded delivery report's bytes go to
/// `nested_report` (the first one only).
fn collect_part<'a>(
    ctx: &mut Context,
    html: &mut String,
    part: &'a mail_parser::MessagePart<'_>,
    nested_report: &mut Option<&'a [u8]>,
) {
    let is = |t: &str, s: &str| part.is_content_type(t, s);
    if is("message", "x-rebound-embedded") {
        collect_embedded(ctx, part, nested_report);
        return;
    }
    match &part.body {
        PartType::Text(t) if is("text", "rfc822-headers") => {
            set_original(ctx, parse_fields_where(t, true, is_original_field))
        }
        PartType::Text(t)
            if is("message", "delivery-status") || is("message", "global-delivery-status") =>
        {
            ctx.dsn.push(t.replace('\r', ""))
        }
        PartType::Text(t) if is("message", "feedback-report") => {
            ctx.feedback = Some(t.replace('\r', ""))
        }
        PartType::Text(t) => push_body(&mut ctx.body, t),
        PartType::Html(t) => push_body(html, t),
        PartType::Binary(b) | PartType::InlineBinary(b) => collect_binary(ctx, part, b),
        PartType::Message(m) => {
            set_original(ctx, fields_where(m, is_original_field));
        }
        PartType::Multipart(_) => {}
    }
}

/// An original made opaque by [`super::opaque`]: its header fields become the original's, and
/// when it is itself a delivery report its bytes go to `nested_report` (the first one only).
fn collect_embedded<'a>(
    ctx: &mut Context,
    part: &'a mail_parser::MessagePart<'_>,
    nested_report: &mut Option<&'a [u8]>,
) {
    let bytes = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
        PartType::Message(_) | PartType::Multipart(_) => return,
    };
    let fields = head_fields(bytes);
    if nested_report.is_none() && is_report_head(&fields) {
        *nested_report = Some(bytes);
    }
    set_original(ctx, fields);
}

/// A part mail-parser left undecoded as bytes: read by its declared type as a delivery status,
/// a feedback report, the original's headers, or text.
fn collect_binary(ctx: &mut Context, part: &mail_parser::MessagePart<'_>, b: &[u8]) {
    let ct = part.content_type();
    let sub = ct
        .and_then(|c| c.subtype())
        .unwrap_or("")
        .to_ascii_lowercase();
    let main = ct.map(|c| c.ctype()).unwrap_or("").to_ascii_lowercase();
    let text = || String::from_utf8_lossy(b).replace('\r', "");
    match (main.as_str(), sub.as_str()) {
        (_, "delivery-status" | "global-delivery-status") => ctx.dsn.push(text()),
        (_, "feedback-report") => ctx.feedback = Some(text()),
        (_, "rfc822-headers" | "global-headers") | ("message", "rfc822" | "global") => {
            set_original(ctx, parse_fields_where(&text(), true, is_original_field))
        }
        ("text", _) | ("", _) => push_body(&mut ctx.body, &text()),
        _ => {}
    }
}

/// A report forwarded as an attachment (a gateway wrapping the real DSN in its own notice): when
/// the outer message has no delivery-status part, the first attached `multipart/report` with one
/// supplies it, and its own returned message becomes the original.
fn take_nested_report(ctx: &mut Context, inner: &Message<'_>) {
    let mut sub = Context::default();
    let mut html = String::new();
    let mut ignored = None;
    for part in &inner.parts {
        collect_part(&mut sub, &mut html, part, &mut ignored);
    }
    ctx.dsn = sub.dsn;
    if sub.original.is_some() {
        ctx.original = sub.original;
    }
    push_body(&mut ctx.body, &sub.body);
}

/// The header fields of an embedded message (up to its first blank line), without the trace and
/// signature fields.
fn head_fields(bytes: &[u8]) -> Vec<Field> {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let blank = |sep: &[u8]| memchr::memmem::find(bytes, sep).unwrap_or(bytes.len());
    let end = blank(b"\n\n").min(blank(b"\n\r\n"));
    parse_fields_where(
        &String::from_utf8_lossy(&bytes[..end]),
        true,
        is_original_field,
    )
}

/// True when an embedded message's header declares a delivery report.
fn is_report_head(fields: &[Field]) -> bool {
    field(fields, "content-type")
        .is_some_and(|ct| contains_ci(ct, "multipart/report") && contains_ci(ct, "delivery-status"))
}

fn set_original(ctx: &mut Context, fields: Vec<Field>) {
    if ctx.original.is_none() && !fields.is_empty() {
        ctx.original = Some(fields);
    }
}

fn push_body(body: &mut String, text: &str) {
    if body.len() >= MAX_BODY {
        return;
    }
    if !body.is_empty() {
        body.push('\n');
    }
    let room = MAX_BODY - body.len();
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    if memchr::memchr(b'\r', text.as_bytes()).is_some() {
        body.push_str(&text.replace('\r', ""));
    } else {
        body.push_str(text);
    }
}

/// Unfolds a raw header value: line breaks and the white space after them become one space.
pub fn unfold(v: &str) -> String {
    let trimmed = v.trim();
    if memchr::memchr(b'\n', trimmed.as_bytes()).is_none() {
        return trimmed.to_string(); // most fields are one line
    }
    let mut out = String::with_capacity(v.len());
    for (i, line) in v.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 {
            let t = line.trim_start();
            if t.is_empty() {
                continue;
            }
            out.push(' ');
            out.push_str(t);
        } else {
            out.push_str(line.trim_start());
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Very small HTML-to-text: drops tags, turns block ends into new lines, decodes a few entities.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push('\n');
            }
            _ if !in_tag && c != '\r' => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// Hand split for messages mail-parser could not take: headers up to the first blank line, the rest as text.
fn degraded(raw: &[u8]) -> Context {
    let text = String::from_utf8_lossy(raw);
    let text = if text.contains('\n') {
        text.replace('\r', "")
    } else {
        text.replace('\r', "\n")
    };
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => ("", text.as_str()),
    };
    let headers = parse_fields(head, false);
    let subject = field(&headers, "subject").unwrap_or("").to_string();
    let mut ctx = Context {
        headers,
        subject,
        degraded: true,
        ..Context::default()
    };
    push_body(&mut ctx.body, body);
    ctx
}
