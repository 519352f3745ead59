//! The last resort: a message that presents itself as a bounce but matched no family. Its
//! recipients are taken from `X-Failed-Recipients`, the quoted original's To/Cc, or the addresses
//! named in the notification, each with the text around it.

use super::{is_header_line, is_system_address, looks_like_bounce, original_in_text, text_near};
use crate::bounce::fields::{
    Field, all_addresses, field, find_address, find_ci, find_reply_code, squeeze,
};
use crate::bounce::{Context, RecipientReport};
use crate::classify::match_text;
use crate::model::Reason;

/// Most recipients taken from one unrecognised message.
const MAX: usize = 50;

/// Recipients and diagnostics of an unrecognised bounce, or `None` when it does not look like one.
pub fn generic(ctx: &Context) -> Option<Vec<RecipientReport>> {
    if !looks_like_bounce(ctx) {
        return None;
    }
    let region = ctx.notification();
    let quoted;
    let original: &[Field] = match &ctx.original {
        Some(o) => o,
        None => {
            quoted = original_in_text(&ctx.body, ctx.marker);
            &quoted
        }
    };
    let rcpts = recipients(ctx, region, original);
    if rcpts.is_empty() {
        return None;
    }
    let all = squeeze(region);
    // A subject that says the message expired ("could not be delivered for 5 days") decides.
    let expired = match_text(&ctx.subject).filter(|(r, _)| *r == Reason::Expired);
    let found = rcpts
        .into_iter()
        .map(|a| {
            let diag = text_near(region, Some(&a))
                .filter(|d| has_code_or_words(d) && !is_quoted_header(d))
                .unwrap_or_else(|| truncated(&all, 600));
            let mut r = RecipientReport::failed(Some(a), diag);
            if let Some((reason, rule)) = expired {
                (r.reason, r.rule) = (reason, rule);
            }
            r
        })
        .collect();
    Some(found)
}

/// Who failed, most trustworthy source first.
fn recipients(ctx: &Context, region: &str, original: &[Field]) -> Vec<String> {
    let original_to: Vec<String> = ["to", "cc"]
        .iter()
        .filter_map(|h| field(original, h))
        .flat_map(all_addresses)
        .collect();
    let mut rcpts: Vec<String> = ctx
        .headers_named("x-failed-recipients")
        .flat_map(all_addresses)
        .collect();
    if rcpts.is_empty() {
        rcpts = all_addresses(region)
            .filter(|a| original_to.contains(a))
            .collect();
    }
    if rcpts.is_empty() {
        let mut skip: Vec<String> = ["from", "to", "reply-to", "sender", "return-path"]
            .iter()
            .filter_map(|h| ctx.header(h).and_then(find_address))
            .collect();
        skip.extend(
            ["from", "reply-to", "sender", "return-path"]
                .iter()
                .filter_map(|h| field(original, h))
                .flat_map(all_addresses),
        );
        rcpts = region
            .lines()
            .filter(|l| !is_header_line(l))
            .flat_map(|l| all_addresses(without_alias(l)))
            .filter(|a| !skip.contains(a) && !is_system_address(a))
            .take(MAX * 4)
            .collect();
    }
    if rcpts.is_empty() {
        rcpts.extend(original_to.into_iter().take(1));
    }
    let mut seen = std::collections::HashSet::new();
    rcpts.retain(|a| seen.insert(a.clone()));
    rcpts.truncate(MAX);
    rcpts
}

/// The line up to Postfix's `(expanded from <alias>)`, which names the address the failed one
/// was expanded from, not a second failed recipient.
fn without_alias(line: &str) -> &str {
    match find_ci(line, "(expanded from") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn has_code_or_words(d: &str) -> bool {
    find_reply_code(d).is_some() || d.split_whitespace().count() > 4
}

/// Text that starts like the quoted original's `To:`/`Cc:` header says nothing about the failure.
fn is_quoted_header(d: &str) -> bool {
    ["to:", "cc:"]
        .iter()
        .any(|p| crate::bounce::fields::starts_with_ci(d, p))
}

fn truncated(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_format_uses_the_quoted_original() {
        let raw = b"From: postmaster@odd.test\nTo: app@a.test\nSubject: Delivery failure\n\nYour message could not be delivered.\n\
            Recipient: <m@odd.test>\nReason: 550 mailbox unavailable\n\n--- Original message follows.\n\nFrom: app@a.test\nTo: m@odd.test\n\nhi\n";
        let r = generic(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("m@odd.test"));
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .contains("550 mailbox unavailable")
        );
    }

    #[test]
    fn an_expanded_from_alias_is_not_a_recipient() {
        let raw = b"From: MAILER-DAEMON@mx.test\nTo: s@a.test\nSubject: Undelivered Mail Returned to Sender\n\n\
            This is the mail system at host mx.test.\n\n<m@b.test> (expanded from <list@a.test>): mail for b.test\n    loops back to myself\n";
        let r = generic(&Context::build(raw)).unwrap();
        let got: Vec<_> = r.iter().map(|r| r.recipient.as_deref()).collect();
        assert_eq!(got, [Some("m@b.test")]);
    }

    #[test]
    fn a_quoted_to_line_is_not_the_diagnostic() {
        let raw = b"From: NDR Administrator <sysadmin@gw.test>\nTo: app@a.test\nSubject: Undeliverable Message\n\n\
            Message could not be delivered.\nError: No such mailbox at this gateway\n\n\nOriginal Message:\nFrom: app@a.test\n\
            To: 5550100@gw.test\nSubject: hi\n";
        let r = generic(&Context::build(raw)).unwrap();
        assert_eq!(r[0].recipient.as_deref(), Some("5550100@gw.test"));
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .contains("No such mailbox"),
            "{:?}",
            r[0].diagnostic
        );
    }

    #[test]
    fn ordinary_mail_is_not_taken() {
        assert!(
            generic(&Context::build(
                b"From: a@b.test\nSubject: hello\n\nhi c@d.test\n"
            ))
            .is_none()
        );
    }
}
