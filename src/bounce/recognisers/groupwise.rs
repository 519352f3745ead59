//! Novell/Micro Focus GroupWise: "The message that you sent was undeliverable to the following:"
//! then one indented `addr (reason)` line per recipient, then "Possibly truncated original
//! message follows:".

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Layout, Recogniser, scan};
use crate::bounce::fields::clean_address;
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "groupwise",
    cues: Cues {
        phrases: &["the message that you sent was undeliverable to the following"],
        fields: &[],
    },
    detect,
    parse,
};

static RCPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*<?([^<>\s()]+@[^<>\s()]+?)>?\s*(?:\((.*)\))?\s*$").expect("static regex")
});

/// `addr (user not found)`: the address and the reason in brackets.
fn rcpt(line: &str) -> Option<(String, String)> {
    let c = RCPT.captures(line)?;
    let addr = clean_address(c.get(1)?.as_str());
    let why = c.get(2).map_or("", |m| m.as_str()).to_string();
    (!addr.is_empty()).then_some((addr, why))
}

const LAYOUT: Layout = Layout {
    start: &["was undeliverable to the following"],
    end: &[
        "possibly truncated original message follows",
        "original message follows",
    ],
    rcpt,
    stop_at_blank: true,
};

fn detect(ctx: &Context) -> bool {
    ctx.notification_has("the message that you sent was undeliverable to the following")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(ctx, &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_in_brackets() {
        let raw = b"From: Mail Delivery System <postmaster@gw.test>\nSubject: Message status - undeliverable\n\n\
            The message that you sent was undeliverable to the following:\n\tb@gw.test (user not found)\n\n\
            Possibly truncated original message follows:\n\nTo: b@gw.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(
            (r[0].recipient.as_deref(), r[0].diagnostic.as_deref()),
            (Some("b@gw.test"), Some("user not found"))
        );
    }
}
