//! DragonFly Mail Agent (dma): "There was an error delivering your mail to <addr>." then the reply.

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Layout, Recogniser, captured_address, scan};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "dragonfly",
    cues: Cues {
        phrases: &[
            "dragonfly mail agent",
            "there was an error delivering your mail to",
        ],
        fields: &[],
    },
    detect,
    parse,
};

static RCPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)error delivering your mail to <?([^<>\s]+@[^<>\s]+?)>?\.?\s*$")
        .expect("static regex")
});

fn rcpt(line: &str) -> Option<(String, String)> {
    captured_address(&RCPT, line)
}

const LAYOUT: Layout = Layout {
    start: &[],
    end: &["message headers follow"],
    rcpt,
    stop_at_blank: false,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("DragonFly Mail Agent")
        || ctx.body_has("There was an error delivering your mail to")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(ctx, &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_after_the_sentence_is_the_diagnostic() {
        let raw = b"From: MAILER-DAEMON <>\nSubject: Mail delivery failed\n\nThis is the DragonFly Mail Agent v0.13 at d.test.\n\n\
            There was an error delivering your mail to <c@z.test>.\n\nmx.z.test [192.0.2.1] did not like our RCPT TO:\n550 5.1.1 unknown\n\n\
            Message headers follow.\n\nTo: c@z.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("c@z.test"));
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .ends_with("550 5.1.1 unknown")
        );
    }
}
