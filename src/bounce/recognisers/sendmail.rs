//! Sendmail text notifications (and V5 sendmail): a session transcript with `addr... reason` lines.

use std::sync::LazyLock;

use regex::Regex;

use super::{Layout, Recogniser, scan};
use crate::bounce::fields::clean_address;
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "sendmail",
    detect,
    parse,
};

static RCPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[245]\d\d[ -])?\s*<?([^<>\s]+@[^<>\s]+?)>?\.\.\.\s*(.*)$")
        .expect("static regex")
});

fn rcpt(line: &str) -> Option<(String, String)> {
    let c = RCPT.captures(line.trim())?;
    let addr = clean_address(c.get(1)?.as_str());
    (!addr.is_empty()).then(|| (addr, line.trim().to_string()))
}

const LAYOUT: Layout = Layout {
    start: &[
        "transcript of session follows",
        "the following addresses had permanent fatal errors",
    ],
    end: &[
        "unsent message follows",
        "original message follows",
        "----- message header follows",
    ],
    rcpt,
    stop_at_blank: false,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("Transcript of session follows")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(&ctx.body, &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_lines_name_the_recipient() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@s.test>\nSubject: Returned mail: User unknown\n\n\
            ----- Transcript of session follows -----\n550 h@t.test... User unknown\n\n----- Unsent message follows -----\nTo: h@t.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("h@t.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 h@t.test... User unknown")
        );
    }
}
