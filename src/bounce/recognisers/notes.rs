//! IBM/HCL Notes and Domino: a "Failure Reasons" block in which each reason line comes before the
//! address it applies to, then "Returned Message".

use super::{Cues, Recogniser, Verdicts, bare, own_verdicts};
use crate::bounce::fields::{find_address, squeeze};
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "notes",
    cues: Cues {
        phrases: &[START, NOT_DELIVERED],
        fields: &[],
    },
    detect,
    parse,
};

const START: &str = "------- failure reasons";
const END: &str = "------- returned message";

const NOT_DELIVERED: &str = "was not delivered to:";
const BECAUSE: &str = "because:";

fn detect(ctx: &Context) -> bool {
    ctx.body_has(START) || ctx.notification_has(NOT_DELIVERED) && ctx.notification_has(BECAUSE)
}

/// Domino's own words: the router looked the recipient up in the directory and did not find it.
const VERDICTS: Verdicts = &[
    (
        "not listed in domino directory",
        Reason::UserUnknown,
        "notes.not-listed",
    ),
    (
        "not listed in public name & address book",
        Reason::UserUnknown,
        "notes.not-listed",
    ),
    (
        "not listed in the domino directory",
        Reason::UserUnknown,
        "notes.not-listed",
    ),
];

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = match failure_reasons(ctx) {
        Some(found) if !found.is_empty() => found,
        _ => not_delivered_because(ctx)?,
    };
    own_verdicts(&mut found, VERDICTS);
    Some(found)
}

/// The prose form: "was not delivered to:", the addresses, "because:", the reason.
fn not_delivered_because(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let text = ctx.notification();
    let lower = text.to_ascii_lowercase();
    let from = lower.find(NOT_DELIVERED)? + NOT_DELIVERED.len();
    let because = from + lower.get(from..)?.find(BECAUSE)?;
    let addrs: Vec<String> = text
        .get(from..because)?
        .lines()
        .filter_map(find_address)
        .collect();
    let rest = text.get(because + BECAUSE.len()..)?.trim_start();
    let reason = squeeze(rest.split("\n\n").next().unwrap_or(""));
    Some(
        addrs
            .into_iter()
            .map(|a| RecipientReport::failed(Some(a), reason.clone()))
            .collect(),
    )
}

/// The "Failure Reasons" block: each reason line before the address it applies to.
fn failure_reasons(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let lower = &ctx.body_lower;
    let from = lower.find(START)?;
    let from = from + lower[from..].find('\n')? + 1;
    let to = lower[from..].find(END).map_or(lower.len(), |i| from + i);
    let mut out = Vec::new();
    let mut reason = String::new();
    for line in ctx.body.get(from..to)?.lines() {
        match bare(line) {
            Some((addr, _)) => out.push(RecipientReport::failed(
                Some(addr),
                std::mem::take(&mut reason),
            )),
            None => {
                reason.push(' ');
                reason.push_str(line.trim());
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_goes_with_the_address_after_it() {
        let raw = b"From: Postmaster <postmaster@notes.test>\nSubject: DELIVERY FAILURE: User not listed\n\n\
            Your message\n\n  Subject: hello\n\nwas not delivered to:\n\n  a@x.test\n\nbecause:\n\n  User a (a@x.test) not listed in Domino Directory\n\n\
            ------- Failure Reasons  --------\n\nUser  not listed in public Name & Address Book\na@x.test\n\n\
            Mailbox full\nb@x.test\n\n------- Returned Message --------\nTo: a@x.test\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].recipient.as_deref(), Some("a@x.test"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("User not listed in public Name & Address Book")
        );
        assert_eq!(
            (r[1].recipient.as_deref(), r[1].diagnostic.as_deref()),
            (Some("b@x.test"), Some("Mailbox full"))
        );
    }
}
