//! Gmail's older plain-text NDR: "Delivery to the following recipient failed permanently".

use super::{Cues, Layout, Recogniser, bare, scan};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "gmail",
    cues: Cues {
        phrases: &[
            "delivery to the following recipient",
            "google tried to deliver your message",
        ],
        fields: &[],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[
        "delivery to the following recipient",
        "delivery to these recipients or groups",
    ],
    end: &[
        "----- original message -----",
        "----- message header follows",
    ],
    rcpt: bare,
    stop_at_blank: false,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("Delivery to the following recipient")
        || ctx.body_has("Google tried to deliver your message")
}

const MARKER: &str = "The error that the other server returned was:";

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(ctx, &LAYOUT);
    // The server's reply follows this sentence; keep only that part when present.
    for r in &mut found {
        if let Some(d) = r.diagnostic.as_mut()
            && let Some(i) = d.find(MARKER)
        {
            *d = d[i + MARKER.len()..].trim().to_string();
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_remote_reply() {
        let raw = b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nSubject: Delivery Status Notification (Failure)\n\n\
            Delivery to the following recipient failed permanently:\n\n     d@w.test\n\nTechnical details of permanent failure:\n\
            Google tried to deliver your message, but it was rejected by the server.\n\nThe error that the other server returned was:\n\
            550 5.2.2 mailbox full\n\n----- Original message -----\n\nTo: d@w.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r[0].recipient.as_deref(), Some("d@w.test"));
        assert_eq!(r[0].diagnostic.as_deref(), Some("550 5.2.2 mailbox full"));
    }
}
