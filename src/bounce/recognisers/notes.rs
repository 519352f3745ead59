//! IBM/HCL Notes and Domino: a "Failure Reasons" block in which each reason line comes before the
//! address it applies to, then "Returned Message".

use super::{Recogniser, bare};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "notes",
    detect,
    parse,
};

const START: &str = "------- failure reasons";
const END: &str = "------- returned message";

fn detect(ctx: &Context) -> bool {
    ctx.body_has(START)
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
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
