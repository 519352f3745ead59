//! Netscape Messaging Server (and its iPlanet successor before the Sun report layout): "This
//! Message was undeliverable due to the following reason:", the reason in prose, then each
//! failed recipient as `<addr>`; or "Each of the following recipients was rejected by a remote
//! mail server", then `Recipient: <addr>` / `Reason: ...` pairs.

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Recogniser, line_after};
use crate::bounce::fields::{clean_address, squeeze};
use crate::bounce::{Context, RecipientReport};

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

/// A line that is one address in angle brackets, perhaps with the server's words after it.
static ANGLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:recipient:\s*)?<([^<>\s]+@[^<>\s]+)>\s*(.*)$").expect("static regex")
});

fn detect(ctx: &Context) -> bool {
    ctx.notification_has(INTRO) || ctx.notification_has(REJECTED)
}

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
            let addr = clean_address(c.get(1).map_or("", |m| m.as_str()));
            let own = c.get(2).map_or("", |m| m.as_str());
            let diag = if own.is_empty() {
                reason.clone()
            } else {
                format!("{reason} {own}")
            };
            out.push(RecipientReport::failed(
                Some(addr).filter(|a| !a.is_empty()),
                squeeze(&diag),
            ));
        } else if let Some(why) = t
            .strip_prefix("Reason:")
            .or_else(|| t.strip_prefix("reason:"))
        {
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
    Some(out)
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
}
