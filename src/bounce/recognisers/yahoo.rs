//! Yahoo! Mail: "Sorry, we were unable to deliver your message to the following address." then `<addr>:` blocks.

use super::{Layout, Recogniser, angle_colon, scan};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "yahoo",
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &["unable to deliver your message to the following address"],
    end: &["--- below this line is a copy"],
    rcpt: angle_colon,
    stop_at_blank: true,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("we were unable to deliver your message to the following address")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(ctx, &LAYOUT))
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
}
