//! The table of plain-text bounce recognisers, one per MTA/provider family, and the small
//! line-scanning engine they share.

mod amazonses;
mod aol;
mod dragonfly;
mod exchange;
mod exim;
pub mod generic;
mod gmail;
mod googlegroups;
mod groupwise;
mod imail;
mod inline_dsn;
mod interscan;
mod james;
mod kddi;
mod netscape;
mod notes;
mod office365;
mod qmail;
mod sendmail;
mod smtp32;
mod sun_messaging;
mod yahoo;

use std::sync::LazyLock;

use regex::Regex;

use super::RecipientReport;
use super::context::Context;
use super::fields::{Field, clean_address, contains_ci, parse_fields_where, squeeze};
use super::markers::{first_end, first_marker, holds_original_marker, line_start};
use crate::model::Reason;

/// One MTA/provider family: the cues that admit it, a detection predicate and a parser.
#[derive(Debug)]
pub struct Recogniser {
    pub name: &'static str,
    /// What a message must show before `detect` is asked (see [`Cues`]).
    pub cues: Cues,
    pub detect: fn(&Context) -> bool,
    pub parse: fn(&Context) -> Option<Vec<RecipientReport>>,
}

/// A recogniser's necessary signs: whenever its `detect` is true, the body holds at least one of
/// `phrases` (lower case, anywhere in the body) or the message has one of the top-level
/// `fields`. [`run`] finds every recogniser's phrases in one pass over the body (one
/// Aho-Corasick automaton for the whole table) and asks `detect` only of the recognisers whose
/// cue is present, instead of letting twenty predicates search the body one phrase at a time.
/// The `cues_are_necessary` test checks the promise on every fixture, and debug builds (the
/// fuzz targets) check it on every message.
#[derive(Debug)]
pub struct Cues {
    pub phrases: &'static [&'static str],
    pub fields: &'static [&'static str],
}

/// Tried in order; the first recogniser that detects the message and finds recipients wins.
pub static TABLE: &[&Recogniser] = &[
    &amazonses::RECOGNISER,
    &googlegroups::RECOGNISER,
    &kddi::RECOGNISER,
    &james::RECOGNISER,
    &qmail::RECOGNISER,
    &sun_messaging::RECOGNISER,
    &interscan::RECOGNISER,
    &netscape::RECOGNISER,
    &groupwise::RECOGNISER,
    &dragonfly::RECOGNISER,
    &notes::RECOGNISER,
    &imail::RECOGNISER,
    &smtp32::RECOGNISER,
    &gmail::RECOGNISER,
    &yahoo::RECOGNISER,
    &office365::RECOGNISER,
    &exchange::RECOGNISER,
    &aol::RECOGNISER,
    &sendmail::RECOGNISER,
    &exim::RECOGNISER,
    &inline_dsn::RECOGNISER,
];

pub use generic::generic;

/// Runs the table: in table order, every recogniser whose cue is present and whose `detect`
/// agrees parses the message; the first that finds recipients wins.
pub fn run(ctx: &Context) -> Option<(&'static str, Vec<RecipientReport>)> {
    let cued = cued(ctx);
    TABLE
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            let admitted = cued & (1 << i) != 0;
            debug_assert!(
                admitted || !(r.detect)(ctx),
                "recogniser {} detects a message without any of its cues",
                r.name
            );
            admitted && (r.detect)(ctx)
        })
        .find_map(|(_, r)| {
            let found = (r.parse)(ctx)?;
            (!found.is_empty()).then_some((r.name, found))
        })
}

/// Bit `i` is set when `TABLE[i]`'s cue is present in `ctx`.
fn cued(ctx: &Context) -> u32 {
    const _: () = assert!(TABLE.len() <= 32, "one bit per recogniser");
    if ctx.body_lower.len() != ctx.body.len() {
        return u32::MAX; // no lower-cased body to search: ask every recogniser
    }
    let mut bits = 0u32;
    for (i, r) in TABLE.iter().enumerate() {
        if r.cues.fields.iter().any(|f| ctx.header(f).is_some()) {
            bits |= 1 << i;
        }
    }
    // Every occurrence's start, each search resuming one byte after the last match's start, so
    // that a cue inside another cue's match is still seen (no cue is a prefix of another, so
    // two cues never start at the same byte; see `cue_phrases_are_prefix_free`).
    let hay = ctx.body_lower.as_bytes();
    let mut from = 0;
    while let Some(m) = CUES
        .automaton
        .find(aho_corasick::Input::new(hay).range(from..))
    {
        bits |= CUES.owner[m.pattern().as_usize()];
        from = m.start() + 1;
    }
    bits
}

/// Every recogniser's phrases in one automaton; `owner[p]` is the bit of the recogniser that
/// phrase `p` belongs to.
struct CueIndex {
    automaton: aho_corasick::AhoCorasick,
    owner: Vec<u32>,
}

static CUES: LazyLock<CueIndex> = LazyLock::new(|| {
    let mut phrases = Vec::new();
    let mut owner = Vec::new();
    for (i, r) in TABLE.iter().enumerate() {
        for p in r.cues.phrases {
            debug_assert_eq!(*p, p.to_ascii_lowercase(), "cues are lower case");
            phrases.push(*p);
            owner.push(1u32 << i);
        }
    }
    let automaton = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(&phrases)
        .expect("static cue phrases");
    CueIndex { automaton, owner }
});

/// A format's own words for a verdict, as (phrase in lower case, reason, rule id): an MTA that
/// states the cause in its own words and without a code (Domino's "not listed in Domino
/// Directory", Yahoo's "This user doesn't have a yahoo.com account") is taken at its word.
pub type Verdicts = &'static [(&'static str, Reason, &'static str)];

/// Gives each record whose diagnostic holds one of `verdicts`' phrases that verdict (the first
/// phrase in table order); the others are left to the classifier.
pub fn own_verdicts(found: &mut [RecipientReport], verdicts: Verdicts) {
    for r in found.iter_mut().filter(|r| r.rule.is_empty()) {
        let Some(d) = r.diagnostic.as_deref() else {
            continue;
        };
        if let Some((_, reason, rule)) = verdicts.iter().find(|(p, _, _)| contains_ci(d, p)) {
            (r.reason, r.rule) = (*reason, rule);
        }
    }
}

/// How a family lays out its notification text.
#[derive(Debug)]
pub struct Layout {
    /// Recipient blocks start after the first line containing one of these (lower case); empty: at the top.
    pub start: &'static [&'static str],
    /// The notification ends at the first line containing one of these (lower case).
    pub end: &'static [&'static str],
    /// Recognises a line that names a failed recipient; returns the address and the rest of the line.
    pub rcpt: fn(&str) -> Option<(String, String)>,
    /// A blank line ends a recipient's diagnostic (otherwise it runs to the next recipient).
    pub stop_at_blank: bool,
}

/// Scans the notification body with a family layout into unclassified recipient records.
pub fn scan(ctx: &Context, layout: &Layout) -> Vec<RecipientReport> {
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for line in region(&ctx.body, &ctx.body_lower, layout).lines() {
        if let Some((addr, rest)) = (layout.rcpt)(line) {
            out.push((addr, rest, false));
            continue;
        }
        let Some((_, diag, closed)) = out.last_mut() else {
            continue;
        };
        if line.trim().is_empty() {
            *closed |=
                layout.stop_at_blank && !diag.trim().is_empty() && !diag.trim_end().ends_with(':');
        } else if !*closed {
            diag.push(' ');
            diag.push_str(line.trim());
        }
    }
    merge(out)
}

/// The lines a layout reads: from the line after its first start marker (or the top) up to the
/// line holding the first end or original-message marker after that. `lower` is `body` (or a text
/// it starts with) ASCII-lower-cased, byte for byte.
pub(super) fn region<'a>(body: &'a str, lower: &str, layout: &Layout) -> &'a str {
    let owned;
    let lower = match lower.get(..body.len()) {
        Some(l) => l,
        None => {
            owned = body.to_ascii_lowercase();
            owned.as_str()
        }
    };
    let begin = if layout.start.is_empty() {
        0
    } else {
        match first_marker(lower, layout.start.iter(), 0) {
            Some(at) => line_after(body, at),
            None => return "",
        }
    };
    let end = first_end(lower, layout.end, begin)
        .map_or(body.len(), |at| line_start(body, at).max(begin));
    &body[begin..end]
}

/// The offset just after the line of `text` holding offset `at`.
pub(super) fn line_after(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

/// One record per address, keeping the first non-empty diagnostic.
pub(super) fn merge(found: Vec<(String, String, bool)>) -> Vec<RecipientReport> {
    let mut out: Vec<RecipientReport> = Vec::new();
    for (addr, diag, _) in found {
        let diag = squeeze(&diag);
        match out
            .iter_mut()
            .find(|r| r.recipient.as_deref() == Some(addr.as_str()))
        {
            Some(r) if r.diagnostic.is_none() && !diag.is_empty() => r.diagnostic = Some(diag),
            Some(_) => {}
            None => out.push(RecipientReport::failed(Some(addr), diag)),
        }
    }
    out
}

static ANGLE_COLON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*<([^<>\s]+@[^<>\s]+)>:?\s*(.*)$").expect("static regex"));
static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*<?([^<>\s@]+@[^<>\s:]+?)>?:?(?:\s+(?:\(.*\)|on .*))?\s*$")
        .expect("static regex")
});

/// `<addr>: text` at the start of a line (qmail, Postfix, Yahoo).
pub fn angle_colon(line: &str) -> Option<(String, String)> {
    let c = ANGLE_COLON.captures(line)?;
    let addr = clean_address(c.get(1)?.as_str());
    (!addr.is_empty()).then(|| (addr, c.get(2).map_or("", |m| m.as_str()).to_string()))
}

/// A line that is just an address (possibly in brackets, possibly with a short trailer).
pub fn bare(line: &str) -> Option<(String, String)> {
    let c = BARE.captures(line)?;
    let addr = clean_address(c.get(1)?.as_str());
    (!addr.is_empty()).then(|| (addr, String::new()))
}

/// The text about `addr` in `body`: its line and the lines after it up to a blank line.
pub fn text_near(body: &str, addr: Option<&str>) -> Option<String> {
    let addr = addr?;
    let out = squeeze(near(body, addr)?);
    (out.len() > addr.len() + 4).then_some(out)
}

/// The lines of `body` about `addr`, as one slice: the line that names it and up to eight after
/// it, to a blank line or an original-message marker.
pub fn near<'a>(body: &'a str, addr: &str) -> Option<&'a str> {
    let at = crate::bounce::fields::find_ci(body, addr)?;
    let start = body.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line_end = |from: usize| body[from..].find('\n').map_or(body.len(), |i| from + i);
    let mut end = line_end(start);
    for _ in 0..8 {
        if end >= body.len() {
            break;
        }
        let next = line_end(end + 1);
        let line = &body[end + 1..next];
        if line.trim().is_empty() || holds_original_marker(line) {
            break;
        }
        end = next;
    }
    Some(&body[start..end])
}

/// Header fields of an original message quoted in the text after the marker line starting at
/// `marker` (see `markers::marker_line`), if any.
pub fn original_in_text(body: &str, marker: Option<usize>) -> Vec<Field> {
    let Some(start) = marker else {
        return Vec::new();
    };
    let rest = &body[start..];
    let rest = rest.split_once('\n').map_or("", |(_, r)| r);
    // From the first line that looks like a field (lines come from `body`, so offsets hold).
    let from_field = rest
        .lines()
        .find(|l| looks_like_field(l))
        .map_or(0, |l| l.as_ptr() as usize - rest.as_ptr() as usize);
    parse_fields_where(
        &rest[from_field..],
        true,
        crate::bounce::context::is_original_field,
    )
}

fn looks_like_field(line: &str) -> bool {
    match line.split_once(':') {
        Some((name, _)) => {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

/// True when the reporting MTA's own notice says the address could not be found (Gmail's
/// "** Address not found **"), whatever words the remote reply it quotes used.
pub fn reporter_says_unknown(ctx: &Context) -> bool {
    [
        "address not found",
        "address couldn't be found",
        "address could not be found",
    ]
    .into_iter()
    .any(|phrase| ctx.notification_has(phrase))
}

static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)undeliver|undelivered|delivery (status|failure|has failed|notification|problem)|returned mail|return(ed)? to sender|failure notice|mail delivery|could not be delivered|non[- ]?delivery|not delivered|delivery failed|mail system error|rejected|nondeliverable|fehlgeschlagen|unzustellbar|no entregado|non recapitabile|non remis|échec|配信|エラー|不達").expect("static regex")
});

/// True when the message presents itself as a delivery failure report.
pub fn looks_like_bounce(ctx: &Context) -> bool {
    let from = ctx.from();
    BOUNCE_SUBJECT.is_match(&ctx.subject)
        || [
            "mailer-daemon",
            "postmaster",
            "post_master",
            "mail delivery",
            "mail-daemon",
            "maildaemon",
            "mail administrator",
        ]
        .iter()
        .any(|m| contains_ci(from, m))
        || ctx.header("x-failed-recipients").is_some()
}

/// A quoted header line naming the sender or the message, not a recipient.
pub(crate) fn is_header_line(line: &str) -> bool {
    let l = line.trim_start();
    [
        "from:",
        "sender:",
        "reply-to:",
        "return-path:",
        "message-id:",
        "references:",
        "in-reply-to:",
        "received:",
        "x-",
        "envelope-from",
        "(envelope-from",
    ]
    .iter()
    .any(|p| crate::bounce::fields::starts_with_ci(l, p))
        || contains_ci(line, "message-id")
}

/// Mailer-daemon and similar system senders, never a failed recipient.
pub fn is_system_address(a: &str) -> bool {
    let local = a.split('@').next().unwrap_or("");
    [
        "mailer-daemon",
        "postmaster",
        "mail-daemon",
        "maildaemon",
        "noreply",
        "no-reply",
        "root",
        "abuse",
    ]
    .iter()
    .any(|s| local.eq_ignore_ascii_case(s))
}

static COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:>>>\s*|(?-u:\b)smtp:|after\s+|in reply to\s+(?:end of\s+)?|did not like our\s+(?:final\s+)?|while sending\s+|response to\s+|smtp command[\s:-]*)(data|end of data|rcpt to|rcpt|mail from|mail|helo|ehlo|initial connection)(?-u:\b)|(does not like recipient|does not like sender|but sender was rejected|but my name was rejected|failed after i sent the message|failed on data command|in (?:local recipient|virtual mailbox|virtual alias|relay recipient) table)")
        .expect("static regex")
});

/// The SMTP command a failure answered (`DATA`, `RCPT`, `MAIL`, `HELO`), when the text says so.
pub fn smtp_command(text: &str) -> Option<&'static str> {
    // Matched on lower-cased text by a case-sensitive pattern: the engine can then skip ahead on
    // its literal prefixes, which a `(?i)` pattern cannot.
    let lower = text.to_ascii_lowercase();
    let c = COMMAND.captures(&lower)?;
    if let Some(said) = c.get(2) {
        return Some(sentence_stage(said.as_str()));
    }
    Some(match c.get(1)?.as_str() {
        "data" | "end of data" => "DATA",
        "rcpt" | "rcpt to" => "RCPT",
        "mail" | "mail from" => "MAIL",
        "initial connection" => "CONN",
        _ => "HELO",
    })
}

/// The command behind a sentence only one stage produces: qmail-remote's own words about a
/// refusal (qmail-remote.c: "HOST does not like recipient." after RCPT, "... but sender was
/// rejected." after MAIL, "... but my name was rejected." after HELO, "HOST failed after I sent
/// the message." after the data), which precede the quoted "Remote host said:" reply instead of
/// naming the command; and Postfix smtpd's recipient table lookups ("User unknown in local
/// recipient table", "... in virtual mailbox table"), which it answers to RCPT only.
fn sentence_stage(said: &str) -> &'static str {
    match said {
        "does not like recipient" => "RCPT",
        s if s.ends_with(" table") => "RCPT",
        "does not like sender" | "but sender was rejected" => "MAIL",
        "but my name was rejected" => "HELO",
        _ => "DATA",
    }
}

/// The address in the first capture group of `re` on `line`, cleaned; for a
/// [`Layout::rcpt`] whose line carries no diagnostic of its own.
pub(super) fn captured_address(re: &regex::Regex, line: &str) -> Option<(String, String)> {
    let addr = crate::bounce::fields::clean_address(re.captures(line)?.get(1)?.as_str());
    (!addr.is_empty()).then(|| (addr, String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.eml` fixture, parsed into a context.
    fn fixture_contexts() -> Vec<(String, Context)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bounce");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).expect("fixture directory") {
            let path = entry.expect("fixture entry").path();
            if path.extension().is_some_and(|e| e == "eml") {
                let raw = std::fs::read(&path).expect("fixture");
                out.push((path.display().to_string(), Context::build(&raw)));
            }
        }
        out
    }

    #[test]
    fn cues_are_necessary() {
        let contexts = fixture_contexts();
        assert!(contexts.len() >= 30, "fixtures found: {}", contexts.len());
        let mut detected = 0;
        for (file, ctx) in &contexts {
            let bits = cued(ctx);
            for (i, r) in TABLE.iter().enumerate() {
                if (r.detect)(ctx) {
                    detected += 1;
                    assert!(bits & (1 << i) != 0, "{}: {file} has no cue", r.name);
                }
            }
        }
        assert!(detected >= 20, "recognisers detected only {detected} times");
    }

    #[test]
    fn cue_phrases_are_prefix_free() {
        let phrases: Vec<&str> = TABLE.iter().flat_map(|r| r.cues.phrases).copied().collect();
        for (i, a) in phrases.iter().enumerate() {
            for (j, b) in phrases.iter().enumerate() {
                assert!(
                    i == j || !b.starts_with(a),
                    "cue {a:?} is a prefix of {b:?}"
                );
            }
        }
    }

    #[test]
    fn a_cue_overlapping_another_is_seen() {
        // DragonFly's cue ends in the "t" that starts Sun Messaging's: a search that resumed
        // after the end of each match would miss the second.
        let raw = b"From: MAILER-DAEMON@example.org\r\nSubject: failure notice\r\n\r\nDragonFly Mail Agenthis report relates to a message you sent\r\n";
        let ctx = Context::build(raw);
        let bits = cued(&ctx);
        let index = |name: &str| TABLE.iter().position(|r| r.name == name).expect("in table");
        assert!(bits & (1 << index("dragonfly")) != 0);
        assert!(bits & (1 << index("sun-messaging")) != 0);
        assert!(bits & (1 << index("gmail")) == 0, "no gmail cue here");
    }

    #[test]
    fn the_first_original_marker_is_the_leftmost() {
        let lower =
            "intro\n--- below this line is a copy of the message.\nthis is a copy of the message";
        let at = super::super::markers::first_original(lower, 0).expect("marker");
        assert_eq!(at, lower.find("below").expect("in text"));
        assert_eq!(
            super::super::markers::first_original(lower, at + 1),
            Some(lower.rfind("this is a copy").expect("in text"))
        );
        assert!(holds_original_marker("----- Original Message -----"));
        assert!(!holds_original_marker("nothing here"));
    }
}
