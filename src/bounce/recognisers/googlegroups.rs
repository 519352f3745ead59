//! Google Groups: a post to a group that does not exist or does not accept the sender.

use super::{Cues, Recogniser};
use crate::bounce::fields::all_addresses;
use crate::bounce::{Context, RecipientReport};
use crate::model::Reason;

pub static RECOGNISER: Recogniser = Recogniser {
    name: "googlegroups",
    cues: Cues {
        phrases: &["google groups"],
        fields: &[],
    },
    detect,
    parse,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("Google Groups") && ctx.header("x-failed-recipients").is_some()
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let text = ctx.notification();
    let diag: String = text
        .lines()
        .find(|l| l.contains("group you tried to"))
        .unwrap_or("")
        .trim()
        .to_string();
    let found = ctx
        .headers_named("x-failed-recipients")
        .flat_map(all_addresses)
        .map(|a| RecipientReport {
            reason: Reason::Rejected,
            rule: "googlegroups.not-permitted",
            ..RecipientReport::failed(Some(a), diag.clone())
        })
        .collect();
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_from_the_failed_recipients_header() {
        let raw = b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nX-Failed-Recipients: grp@googlegroups.test\nSubject: Delivery Status Notification (Failure)\n\n\
            Hello a@b.test,\n\nWe're writing to let you know that the group you tried to contact (grp) may not exist.\n\nGoogle Groups\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].recipient.as_deref(), r[0].reason),
            (Some("grp@googlegroups.test"), Reason::Rejected)
        );
    }
}
