//! au by KDDI (ezweb, dion) notices: "Could not be delivered to: <addr>" and a one-line reason.

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Layout, Recogniser, captured_address, scan};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "kddi",
    cues: Cues {
        phrases: &["could not be delivered to:"],
        fields: &[],
    },
    detect,
    parse,
};

static RCPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)could not be delivered to:?\s*<?([^<>\s]+@[^<>\s]+?)>?\s*$")
        .expect("static regex")
});

fn rcpt(line: &str) -> Option<(String, String)> {
    captured_address(&RCPT, line)
}

const LAYOUT: Layout = Layout {
    start: &[],
    end: &[],
    rcpt,
    stop_at_blank: true,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("Could not be delivered to:")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(ctx, &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_on_the_next_line() {
        let raw = b"From: no-reply@k.test\nSubject: Mail\n\nYour mail sent on: Thu, 29 Apr 2013 00:00:00 +0900\n     Could not be delivered to: <k@k.test>\n     As their mailbox is full.\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r[0].recipient.as_deref(), Some("k@k.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("As their mailbox is full.")
        );
    }
}
