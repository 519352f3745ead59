//! The SMTP32 mail server (`X-Mailer: <SMTP32 vN.NN>`) in its address-first layout: Subject
//! "Delivery failure" or "Undeliverable Mail", each failed recipient as a line of its own
//! (`user@host`) with the server's reason on the lines under it ("No such user: user", "User
//! mailbox exceeds allowed size", "Delivery failed N attempts", or `undeliverable to addr` and
//! the remote reply), then "--- Original message follows.". Its reason-first layout
//! (`Unknown user: addr`) is read by the IMail recogniser, which comes first in the table.

use super::imail::UNDELIVERABLE_TO;
use super::{Cues, Layout, Recogniser, bare, captured_address, scan};
use crate::bounce::fields::{contains_ci, starts_with_ci};
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "smtp32",
    cues: Cues {
        phrases: &["message follows"],
        fields: &["x-mailer"],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[],
    end: &[],
    rcpt: address_line,
    stop_at_blank: true,
};

/// A line that is an address (its reason on the lines after it).
fn address_line(line: &str) -> Option<(String, String)> {
    captured_address(&UNDELIVERABLE_TO, line).or_else(|| bare(line))
}

/// The server's own words at the start of a recipient's reason: they decide it (a remote reply
/// quoted under `undeliverable to` is left to the classifier).
const OWN: &[(&str, Reason, &str)] = &[
    ("no such user", Reason::UserUnknown, "smtp32.no-such-user"),
    ("unknown user", Reason::UserUnknown, "smtp32.unknown-user"),
    (
        "user mailbox exceeds allowed size",
        Reason::MailboxFull,
        "smtp32.mailbox-size",
    ),
];

fn detect(ctx: &Context) -> bool {
    let mailer = ctx
        .header("x-mailer")
        .is_some_and(|m| m.trim_start().starts_with("<SMTP32"));
    let subject = ["delivery failure", "undeliverable mail"]
        .iter()
        .any(|s| ctx.subject.trim().eq_ignore_ascii_case(s));
    (mailer || subject && ctx.body_has("original message follows")) && has_own_block(ctx)
}

/// An address line followed at once by a line starting with one of the server's own reasons.
fn has_own_block(ctx: &Context) -> bool {
    let lines: Vec<&str> = ctx.notification().lines().collect();
    lines.windows(2).any(|w| {
        address_line(w[0]).is_some() && {
            let next = w[1].trim();
            OWN.iter().any(|(p, _, _)| starts_with_ci(next, p))
                || starts_with_ci(next, "delivery failed")
                || contains_ci(next, "generated response")
        }
    })
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(ctx, &LAYOUT);
    for r in found.iter_mut().filter(|r| r.rule.is_empty()) {
        let Some(d) = r.diagnostic.as_deref() else {
            continue;
        };
        if let Some((_, reason, rule)) = OWN.iter().find(|(p, _, _)| starts_with_ci(d, p)) {
            (r.reason, r.rule) = (*reason, rule);
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: Mail Delivery Subsystem <MAILER-DAEMON@s32.test>\nSubject: Delivery failure\n\
        X-Mailer: <SMTP32 v8.15>\n\n\
        gone@s32.test\nNo such user: gone\n\n\
        full@s32.test\nUser mailbox exceeds allowed size\n\n\
        undeliverable to far@remote.test\nBody of message generated response:\n550 No such user here\n\n\
        --- Original message follows.\n\nTo: gone@s32.test\n";

    #[test]
    fn each_address_takes_the_lines_under_it() {
        let ctx = Context::build(RAW);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.recipient.as_deref(), r.reason, r.rule))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("gone@s32.test"),
                    Reason::UserUnknown,
                    "smtp32.no-such-user"
                ),
                (
                    Some("full@s32.test"),
                    Reason::MailboxFull,
                    "smtp32.mailbox-size"
                ),
                (Some("far@remote.test"), Reason::Undefined, ""),
            ]
        );
        assert!(
            r[2].diagnostic
                .as_deref()
                .unwrap()
                .contains("550 No such user here")
        );
    }

    #[test]
    fn a_notice_without_its_block_shape_is_not_claimed() {
        let raw = b"From: postmaster@x.test\nSubject: Delivery failure\n\n\
            Your message could not be delivered to a@x.test.\n\n--- Original message follows.\n";
        assert!(!detect(&Context::build(raw)));
    }
}
