//! Microsoft Exchange 5.5-2003 text NDRs: "did not reach the following recipient(s):" then
//! `addr on DATE` lines, each followed by the reason.

use super::{Cues, Layout, Recogniser, bare, scan};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "exchange",
    cues: Cues {
        phrases: &[
            "did not reach the following recipient",
            "following recipient(s) could not be reached",
        ],
        fields: &["x-ms-embedded-report"],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[
        "did not reach the following recipient",
        "could not be delivered to the following recipient",
        "following recipient(s) could not be reached",
    ],
    end: &[],
    rcpt: bare,
    stop_at_blank: false,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("did not reach the following recipient")
        || ctx.body_has("following recipient(s) could not be reached")
        || ctx.header("x-ms-embedded-report").is_some()
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(ctx, &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_recipient_line() {
        let raw = b"From: System Administrator <postmaster@e.test>\nSubject: Undeliverable: hello\n\nYour message\n\n  To: f@u.test\n\n\
            did not reach the following recipient(s):\n\nf@u.test on Thu, 29 Apr 2007 16:51:51 -0500\n    The recipient name is not recognized\n\
            g@u.test on Thu, 29 Apr 2007 16:51:51 -0500\n    The e-mail account does not exist at the organization\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].recipient.as_deref(), Some("g@u.test"));
        assert!(
            r[1].diagnostic
                .as_deref()
                .unwrap()
                .contains("does not exist")
        );
    }
}
