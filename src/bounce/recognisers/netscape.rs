//! Netscape Messaging Server (and its iPlanet successor before the Sun report layout): "This
//! Message was undeliverable due to the following reason:", the reason in prose, then each
//! failed recipient as `<addr>`; or "Each of the following recipients was rejected by a remote
//! mail server", then `Recipient: <addr>` / `Reason: ...` pairs.

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Recogniser, Verdicts, line_after, own_verdicts};
use crate::bounce::fields::{clean_address, squeeze, starts_with_ci};
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "netscape",
    cues: Cues {
        phrases: &[INTRO, REJECTED],
        fields: &[],
    },
    detect,
    parse,
};

const INTRO: &str = "this message was undeliverable due to the following reason";
const REJECTED: &str = "each of the following recipients was rejected by a remote mail server";

/// A line that is one address in angle brackets, perhaps after `Recipient:` (the remote server
/// refused it) or `SMTP` (an unknown destination address), perhaps with the server's words after it.
static ANGLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?i:(recipient:|smtp)\s*)?<([^<>\s]+@[^<>\s]+)>\s*(.*)$")
        .expect("static regex")
});

fn detect(ctx: &Context) -> bool {
    ctx.notification_has(INTRO) || ctx.notification_has(REJECTED)
}

/// Netscape's own words for the reason before the addresses.
const VERDICTS: Verdicts = &[
    (
        "destination addresses were unknown",
        Reason::UserUnknown,
        "netscape.addresses-unknown",
    ),
    (
        "did not have mailboxes on this system",
        Reason::UserUnknown,
        "netscape.no-mailbox",
    ),
];

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let lower = &ctx.body_lower;
    let at = lower.find(INTRO).or_else(|| lower.find(REJECTED))?;
    let text = ctx
        .body
        .get(line_after(&ctx.body, at)..ctx.marker.unwrap_or(ctx.body.len()).max(at))?;
    let mut reason = String::new();
    let mut out: Vec<RecipientReport> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(c) = ANGLE.captures(t) {
            out.push(recipient(&c, &reason));
        } else if let Some(why) = reason_line(t) {
            if let Some(last) = out.last_mut().filter(|r| r.diagnostic.is_none()) {
                last.diagnostic = Some(squeeze(why)).filter(|d| !d.is_empty());
            }
        } else if out.is_empty() && !t.is_empty() {
            reason.push(' ');
            reason.push_str(t);
        } else if t.to_ascii_lowercase().starts_with("please reply to") {
            break;
        }
    }
    out.retain(|r| r.recipient.is_some());
    own_verdicts(&mut out, VERDICTS);
    Some(out)
}

/// The record for an address line. A `Recipient:` line is one the remote server refused in
/// answer to RCPT ("each of the following recipients was rejected by a remote mail server"): its
/// `Reason:` line, the server's reply, follows. Any other takes the reason given before it.
fn recipient(c: &regex::Captures<'_>, reason: &str) -> RecipientReport {
    let addr = clean_address(c.get(2).map_or("", |m| m.as_str()));
    let own = c.get(3).map_or("", |m| m.as_str());
    let refused = c
        .get(1)
        .is_some_and(|p| p.as_str().eq_ignore_ascii_case("recipient:"));
    let diag = if refused {
        own.to_string()
    } else if own.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} {own}")
    };
    let mut r = RecipientReport::failed(Some(addr).filter(|a| !a.is_empty()), squeeze(&diag));
    if refused {
        r.smtp_command = Some("RCPT");
    }
    r
}

/// The text after a `Reason:` label.
fn reason_line(t: &str) -> Option<&str> {
    const REASON: &str = "reason:";
    starts_with_ci(t, REASON).then(|| &t[REASON.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_comes_before_the_addresses() {
        let raw = b"From: Mail Administrator <Postmaster@ns.test>\nSubject: Mail System Error - Returned Mail\n\n\
            This Message was undeliverable due to the following reason:\n\nThe user(s) account is temporarily over quota.\n\n\
            <c@ns.test>\n\nPlease reply to Postmaster@ns.test\nif you feel this message to be in error.\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("The user(s) account is temporarily over quota.")
        );
    }

    #[test]
    fn a_refused_recipient_takes_its_reason_line_and_rcpt() {
        let raw = b"From: Mail Administrator <Postmaster@ns.test>\nSubject: Mail System Error - Returned Mail\n\n\
            This Message was undeliverable due to the following reason:\n\n\
            Each of the following recipients was rejected by a remote mail server.\n\
            The reasons given by the server are included to help you determine why\neach recipient was rejected.\n\n\
            \x20   Recipient: <a@ns.test>\n    Reason:    <a@ns.test>... User unknown\n\n\
            Please reply to Postmaster@ns.test\nif you feel this message to be in error.\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("a@ns.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("<a@ns.test>... User unknown")
        );
        assert_eq!(r[0].smtp_command, Some("RCPT"));
    }

    #[test]
    fn unknown_destination_addresses_are_its_own_verdict() {
        let raw = b"From: Mail Administrator <Postmaster@ns.test>\nSubject: Mail System Error - Returned Mail\n\n\
            This Message was undeliverable due to the following reason:\n\n\
            The following destination addresses were unknown (please check\nthe addresses and re-mail the message):\n\n\
            SMTP <b@ns.test>\n\nPlease reply to Postmaster@ns.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("b@ns.test"));
        assert_eq!(
            (r[0].reason, r[0].rule),
            (Reason::UserUnknown, "netscape.addresses-unknown")
        );
    }
}
