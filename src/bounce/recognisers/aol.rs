//! AOL's notices of the 2000s (a Sendmail-derived MTA): "----- The following addresses had
//! permanent fatal errors -----", each address on its own line with `(reason: 550 ...)` on the
//! next, and no session transcript (a notice with one is read by the Sendmail recogniser).

use super::{Cues, Layout, Recogniser, Verdicts, bare, own_verdicts, scan};
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "aol",
    cues: Cues {
        phrases: &["the following addresses had permanent fatal errors"],
        fields: &[],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &["the following addresses had permanent fatal errors"],
    end: &["transcript of session follows", "original message follows"],
    rcpt: bare,
    stop_at_blank: true,
};

fn detect(ctx: &Context) -> bool {
    ctx.notification_has("the following addresses had permanent fatal errors")
        && !ctx.notification_has("transcript of session follows")
}

/// AOL's own replies for an address it does not have.
const VERDICTS: Verdicts = &[(
    "mailbox not found",
    Reason::UserUnknown,
    "aol.mailbox-not-found",
)];

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(ctx, &LAYOUT);
    for r in &mut found {
        if let Some(d) = r.diagnostic.as_mut() {
            *d = d
                .trim_start_matches("(reason:")
                .trim_end_matches(')')
                .trim()
                .to_string();
        }
    }
    own_verdicts(&mut found, VERDICTS);
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_line_under_the_address() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@aol.test>\nSubject: Returned mail: User unknown\n\n\
            The original message was received at Mon, 1 Jan 2007 00:00:00 -0500\n\n\
            \x20  ----- The following addresses had permanent fatal errors -----\n<g@aol.test>\n    (reason: 550 MAILBOX NOT FOUND)\n\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r[0].diagnostic.as_deref(), Some("550 MAILBOX NOT FOUND"));
    }
}
