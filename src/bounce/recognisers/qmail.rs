//! qmail and its descendants (netqmail, notqmail, Yahoo! Japan's qmail): `<addr>:` blocks.

use super::{Cues, Layout, Recogniser, Verdicts, angle_colon, own_verdicts, scan};
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "qmail",
    cues: Cues {
        phrases: &["qmail"],
        fields: &[],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[
        "wasn't able to deliver",
        "was not able to deliver",
        "unable to deliver your message",
        "could not be delivered",
    ],
    end: &[
        "--- below this line",
        "--- enclosed are the original headers",
    ],
    rcpt: angle_colon,
    stop_at_blank: true,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("qmail-send program")
        || ctx.body_has("qmail") && ctx.body_has("wasn't able to deliver")
}

/// qmail's own words for its local deliveries (qmail-local, qmail-send): they say the mailbox
/// does not exist, whatever status digit follows them.
const VERDICTS: Verdicts = &[
    (
        "no mailbox here by that name",
        Reason::UserUnknown,
        "qmail.no-mailbox",
    ),
    (
        "this address no longer accepts mail",
        Reason::HasMoved,
        "qmail.no-longer-accepts",
    ),
];

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(ctx, &LAYOUT);
    own_verdicts(&mut found, VERDICTS);
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_angle_block() {
        let raw = b"From: MAILER-DAEMON@q.test\nSubject: failure notice\n\nHi. This is the qmail-send program at q.test.\n\
            I'm afraid I wasn't able to deliver your message to the following addresses.\n\n\
            <a@x.test>:\nRemote host said: 550 5.1.1 no mailbox here\n\n<b@y.test>:\n192.0.2.9 does not like recipient.\n\n\
            --- Below this line is a copy of the message.\n\nTo: a@x.test\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].recipient.as_deref(), Some("a@x.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("Remote host said: 550 5.1.1 no mailbox here")
        );
        assert_eq!(
            r[1].diagnostic.as_deref(),
            Some("192.0.2.9 does not like recipient.")
        );
    }
}
