//! Exim (and hosts built on it: mail.ru, Yandex, GMX ...): the failed addresses, each indented
//! on its own line, followed by the indented SMTP error.

use super::{Layout, Recogniser, bare, scan};
use crate::bounce::fields::all_addresses;
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "exim",
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[
        "address(es) failed",
        "addresses failed",
        "address failed",
        "has not yet been delivered",
        "could not be delivered to one or more",
        "following address(es)",
        "following recipients",
    ],
    end: &[
        "------ this is a copy of the message",
        "------ the body of the message",
        "reporting-mta:",
    ],
    rcpt,
    stop_at_blank: true,
};

/// An address alone on a line indented by at most three spaces; deeper lines are the error text
/// (which may quote the address again).
fn rcpt(line: &str) -> Option<(String, String)> {
    let indent = line.len() - line.trim_start().len();
    if indent > 3 {
        return None;
    }
    bare(line)
}

fn detect(ctx: &Context) -> bool {
    ctx.header("x-failed-recipients").is_some()
        || ctx.body_has("created automatically by mail delivery software")
        || ctx.body_has("address(es) failed")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut found = scan(&ctx.body, &LAYOUT);
    if found.is_empty() {
        let failed: Vec<String> = ctx
            .headers_named("x-failed-recipients")
            .flat_map(all_addresses)
            .collect();
        let text = ctx.notification();
        found = failed
            .into_iter()
            .map(|a| {
                let diag = super::text_near(text, Some(&a)).unwrap_or_default();
                RecipientReport::failed(Some(a), diag)
            })
            .collect();
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_address_then_error() {
        let raw = b"From: Mail Delivery System <Mailer-Daemon@x.test>\nSubject: Mail delivery failed: returning message to sender\n\
            X-Failed-Recipients: i@s.test\n\nThis message was created automatically by mail delivery software.\n\n\
            A message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n\
              i@s.test\n    SMTP error from remote mail server after RCPT TO:<i@s.test>:\n    host mx.s.test [192.0.2.2]: 550 5.1.1 unknown user\n\n\
            ------ This is a copy of the message, including all the headers. ------\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .ends_with("550 5.1.1 unknown user")
        );
    }
}
