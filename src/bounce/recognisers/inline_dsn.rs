//! Delivery-status fields written into the text itself (Amazon WorkMail, some gateways, broken
//! MIME): `Final-Recipient:`, `Action:`, `Status:` lines inside a text part.

use super::{Cues, Recogniser};
use crate::bounce::dsn::parse_dsn;
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "inline-dsn",
    cues: Cues {
        phrases: &["final-recipient:"],
        fields: &[],
    },
    detect,
    parse,
};

pub(super) fn detect(ctx: &Context) -> bool {
    ctx.body_has("final-recipient:") && (ctx.body_has("status:") || ctx.body_has("action:"))
}

pub(super) fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let text = ctx.notification();
    let lower = text.to_ascii_lowercase();
    // Start at the first DSN-looking field so the prose before it is not taken for a group.
    let start = [
        "reporting-mta:",
        "final-recipient:",
        "original-recipient:",
        "action:",
    ]
    .iter()
    .filter_map(|m| lower.find(m))
    .min()?;
    let start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    Some(parse_dsn(&text[start..]).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_inside_the_text_part() {
        let raw = b"From: MAILER-DAEMON@w.test\nSubject: Undeliverable\n\nAn error occurred while trying to deliver the mail to the following recipients:\n\
            l@w.test\nTechnical report:\nReporting-MTA: dsn; out.w.test\nAction: failed\nFinal-Recipient: rfc822; l@w.test\n\
            Diagnostic-Code: smtp; 550 5.3.5 Internal System Error\nStatus: 5.3.5\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("l@w.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 5.3.5 Internal System Error")
        );
    }
}
