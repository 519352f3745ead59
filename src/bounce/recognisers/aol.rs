//! AOL's notices of the 2000s (a Sendmail-derived MTA): "----- The following addresses had
//! permanent fatal errors -----", each address on its own line with `(reason: 550 ...)` on the
//! next, and no session transcript (a notice with one is read by the Sendmail recogniser); or
//! "Your mail to the following recipients could not be delivered because they are not accepting
//! mail from SENDER:" then the recipients' screen names, one a line: the recipients' own mail
//! controls refuse that sender (`filtered`: a block, not an address to suppress).

use super::{
    Cues, Layout, Recogniser, Verdicts, bare, line_after, original_in_text, own_verdicts, scan,
};
use crate::bounce::fields::{all_addresses, field, find_address};
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "aol",
    cues: Cues {
        phrases: &[
            "the following addresses had permanent fatal errors",
            NOT_ACCEPTING,
        ],
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

const NOT_ACCEPTING: &str = "not accepting mail from";

fn detect(ctx: &Context) -> bool {
    ctx.notification_has("the following addresses had permanent fatal errors")
        && !ctx.notification_has("transcript of session follows")
        || ctx.notification_has(NOT_ACCEPTING)
            && ctx.notification_has("your mail to the following recipients could not be delivered")
}

/// AOL's own replies for an address it does not have.
const VERDICTS: Verdicts = &[
    (
        "mailbox not found",
        Reason::UserUnknown,
        "aol.mailbox-not-found",
    ),
    (
        "they are not accepting mail from",
        Reason::Filtered,
        "aol.not-accepting-from",
    ),
];

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(ctx, &LAYOUT);
    if found.is_empty() {
        found = not_accepting(ctx).unwrap_or_default();
    }
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

/// The "not accepting mail from" form: the sentence is every recipient's diagnostic; each
/// recipient is a screen name (an address when it has an `@`), completed from the returned
/// message's `To:` or else with the domain of the notice's sender (AOL's own).
fn not_accepting(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let text = ctx.notification();
    let lower = text.to_ascii_lowercase();
    let at = lower.find("your mail to the following recipients could not be delivered")?;
    let from = line_after(text, at);
    let sentence = text.get(at..from)?.trim().trim_end_matches(':');
    let in_text;
    let original = match &ctx.original {
        Some(f) => f.as_slice(),
        None => {
            in_text = original_in_text(&ctx.body, ctx.marker);
            in_text.as_slice()
        }
    };
    let to: Vec<String> = field(original, "to").map_or(Vec::new(), |t| all_addresses(t).collect());
    let domain =
        find_address(ctx.from()).and_then(|a| a.split_once('@').map(|(_, d)| d.to_string()))?;
    let names = text.get(from..)?.lines().map(str::trim);
    let found = names
        .skip_while(|n| n.is_empty())
        .take_while(|n| !n.is_empty() && !n.contains(char::is_whitespace))
        .map(|n| {
            let addr = find_address(n).unwrap_or_else(|| complete(n, &to, &domain));
            RecipientReport::failed(Some(addr), sentence)
        })
        .collect();
    Some(found)
}

/// A screen name as the address the returned message was sent to, else at `domain`.
fn complete(name: &str, to: &[String], domain: &str) -> String {
    to.iter()
        .find(|a| {
            a.split_once('@')
                .is_some_and(|(local, _)| local.eq_ignore_ascii_case(name))
        })
        .cloned()
        .unwrap_or_else(|| format!("{}@{domain}", name.to_ascii_lowercase()))
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

    #[test]
    fn screen_names_refusing_the_sender_are_filtered() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@aol.test>\nSubject: Returned mail: see transcript for details\n\n\
            Your mail to the following recipients could not be delivered because they are not accepting mail from s@a.test:\n\n\
            \tKiddo\n\tother@aol.test\n\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.recipient.as_deref(), r.reason))
            .collect();
        assert_eq!(
            got,
            [
                (Some("kiddo@aol.test"), Reason::Filtered),
                (Some("other@aol.test"), Reason::Filtered),
            ]
        );
    }
}
