//! Yahoo! Mail: "Sorry, we were unable to deliver your message to the following address." then
//! `<addr>:` blocks; its older qmail-based notices: "Message from yahoo.com." and "Unable to
//! deliver message to the following address(es).", then `<addr>:` blocks ("Sorry your message
//! to addr cannot be delivered. This account has been disabled or discontinued [#102].") and
//! "--- Original message follows.".

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Layout, Recogniser, Verdicts, angle_colon, own_verdicts, scan};
use crate::bounce::fields::clean_address;
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "yahoo",
    cues: Cues {
        phrases: &[
            "we were unable to deliver your message to the following address",
            "sorry, your message to",
            "message from yahoo",
        ],
        fields: &[],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[
        "unable to deliver your message to the following address",
        "unable to deliver message to the following address",
    ],
    end: &[
        "--- below this line is a copy",
        "--- original message follows",
    ],
    rcpt: angle_colon,
    stop_at_blank: true,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("we were unable to deliver your message to the following address")
        || ctx.body_has("sorry, your message to") && ctx.body_has("cannot be delivered")
        || ctx.notification_has("message from yahoo")
            && ctx.notification_has("unable to deliver message to the following address")
}

/// Yahoo's own words (its help pages list them with their `[#NNN]` / `dd` codes).
const VERDICTS: Verdicts = &[
    (
        "user doesn't have a",
        Reason::UserUnknown,
        "yahoo.no-account",
    ),
    (
        "user doesn't have an",
        Reason::UserUnknown,
        "yahoo.no-account",
    ),
    (
        "this account has been disabled or discontinued",
        Reason::Suspend,
        "yahoo.disabled",
    ),
    ("mailbox is full", Reason::MailboxFull, "yahoo.mailbox-full"),
];

/// The older one-line form: "Sorry, your message to ADDR cannot be delivered. REASON".
static SORRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)sorry,? your message to <?([^<>\s]+@[^<>\s]+?)>? cannot be delivered\.?\s*(.*)$",
    )
    .expect("static regex")
});

fn sorry(line: &str) -> Option<(String, String)> {
    let c = SORRY.captures(line)?;
    let addr = clean_address(c.get(1)?.as_str());
    (!addr.is_empty()).then(|| (addr, c.get(2).map_or("", |m| m.as_str()).to_string()))
}

const OLD_LAYOUT: Layout = Layout {
    start: &[],
    end: &[
        "--- below this line is a copy",
        "--- original message follows",
    ],
    rcpt: sorry,
    stop_at_blank: true,
};

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(ctx, &LAYOUT);
    if found.is_empty() {
        found = scan(ctx, &OLD_LAYOUT);
    }
    own_verdicts(&mut found, VERDICTS);
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_block_after_the_apology() {
        let raw = b"From: MAILER-DAEMON@y.test\nSubject: Failure Notice\n\nSorry, we were unable to deliver your message to the following address.\n\n\
            <e@v.test>:\nRemote host said: 554 delivery error: dd This user doesn't have an account [-5] - mta.v.test\n\n--- Below this line is a copy of the message.\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .starts_with("Remote host said: 554")
        );
    }

    #[test]
    fn the_old_layout_gives_yahoos_own_verdicts() {
        let raw = b"From: MAILER-DAEMON@yahoo.test\nSubject: failure delivery\n\n\
            Message from yahoo.test.\nUnable to deliver message to the following address(es).\n\n\
            <gone@yahoo.test>:\nSorry your message to gone@yahoo.test cannot be delivered. \
            This user doesn't have a yahoo.test account (gone@yahoo.test) [0]\n\n\
            <off@yahoo.test>:\nSorry your message to off@yahoo.test cannot be delivered. \
            This account has been disabled or discontinued [#102].\n\n\
            --- Original message follows.\n\nTo: gone@yahoo.test\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.recipient.as_deref(), r.reason))
            .collect();
        assert_eq!(
            got,
            [
                (Some("gone@yahoo.test"), Reason::UserUnknown),
                (Some("off@yahoo.test"), Reason::Suspend),
            ]
        );
    }
}
