//! Sendmail text notifications (and V5 sendmail): a session transcript with `addr... reason` lines.

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Recogniser, first_end, first_marker, inline_dsn, line_after, line_start, merge};
use crate::bounce::fields::{clean_address, find_address};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "sendmail",
    cues: Cues {
        phrases: &["transcript of session follows"],
        fields: &[],
    },
    detect,
    parse,
};

static RCPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[245]\d\d[ -])?\s*<?([^<>\s]+@[^<>\s]+?)>?\.\.\.\s*(.*)$")
        .expect("static regex")
});

fn rcpt(line: &str) -> Option<(String, String)> {
    let c = RCPT.captures(line.trim())?;
    let addr = clean_address(c.get(1)?.as_str());
    (!addr.is_empty()).then(|| (addr, line.trim().to_string()))
}

/// The transcript (or the list of failed addresses) starts after one of these lines.
const START: &[&str] = &[
    "transcript of session follows",
    "the following addresses had permanent fatal errors",
];
/// The notification ends at one of these (a non-MIME DSN or the returned message).
const END: &[&str] = &[
    "unsent message follows",
    "original message follows",
    "----- message header follows",
    "reporting-mta:",
];

fn detect(ctx: &Context) -> bool {
    ctx.body_has("Transcript of session follows")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = merge(transcript(&ctx.body, &ctx.body_lower));
    if inline_dsn::detect(ctx) {
        let fields = inline_dsn::parse(ctx).unwrap_or_default();
        for r in &mut found {
            let key = r.recipient.as_deref().and_then(find_address);
            let same = fields
                .iter()
                .find(|f| key.is_some() && f.recipient.as_deref().and_then(find_address) == key);
            if let Some(f) = same {
                r.status = r.status.or(f.status);
                r.action = r.action.take().or_else(|| f.action.clone());
            }
        }
    }
    Some(found)
}

/// Sendmail prints each recipient's SMTP exchange (`... while talking to`, `>>> RCPT`, `<<< 550
/// ...`) and then its `addr... summary` line, so the lines since the previous summary are that
/// recipient's; V5 sendmail's summary ("Remote protocol error") says nothing without them.
/// Lines after the last summary ("Message could not be delivered for 5 days") belong to it.
fn transcript(body: &str, lower: &str) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    let Some(first) = first_marker(lower, START.iter(), 0) else {
        return out;
    };
    let mut begin = line_after(body, first);
    let end = first_end(lower, END, begin).map_or(body.len(), |at| line_start(body, at).max(begin));
    // A later start line (the transcript after the list of failed addresses) starts afresh.
    while begin < end {
        let next = first_marker(lower, START.iter(), begin).filter(|&at| at < end);
        let stop = next.map_or(end, |at| line_start(body, at).max(begin));
        for line in body[begin..stop].lines() {
            match rcpt(line) {
                Some((addr, mut diag)) => {
                    for p in pending.drain(..) {
                        diag.push(' ');
                        diag.push_str(p);
                    }
                    out.push((addr, diag, false));
                }
                None if !line.trim().is_empty() => pending.push(line.trim()),
                None => {}
            }
        }
        match next {
            Some(at) => {
                pending.clear();
                begin = line_after(body, at);
            }
            None => break,
        }
    }
    if let Some((_, diag, _)) = out.last_mut() {
        for p in pending {
            diag.push(' ');
            diag.push_str(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_lines_name_the_recipient() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@s.test>\nSubject: Returned mail: User unknown\n\n\
            ----- Transcript of session follows -----\n550 h@t.test... User unknown\n\n----- Unsent message follows -----\nTo: h@t.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("h@t.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 h@t.test... User unknown")
        );
    }

    #[test]
    fn each_summary_takes_the_exchange_before_it() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@s.test>\nSubject: Returned mail: see transcript\n\n\
            ----- Transcript of session follows -----\nWhile talking to mx.one.test:\n>>> MAIL From:<me@s.test>\n\
            <<< 550 Relaying from your host is not permitted\n554 <a@one.test>... Remote protocol error\n\
            While talking to mx.two.test:\n>>> RCPT To:<b@two.test>\n<<< 550 No such mailbox\n\
            550 <b@two.test>... User unknown\nQueue run took too long\n\n----- Unsent message follows -----\nTo: a@one.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 2);
        let a = r[0].diagnostic.as_deref().unwrap();
        assert!(
            a.contains("Relaying from your host") && !a.contains("No such mailbox"),
            "{a}"
        );
        let b = r[1].diagnostic.as_deref().unwrap();
        assert!(b.starts_with("550 <b@two.test>... User unknown"), "{b}");
        assert!(
            b.contains("<<< 550 No such mailbox") && b.contains("too long"),
            "{b}"
        );
        assert!(!b.contains("Relaying"), "{b}");
    }
}
