//! Sun Java System / Oracle Communications Messaging Server (and iPlanet): "This report relates to
//! a message you sent with the following header fields:", then one block per recipient of
//! `Recipient address:`, `Original address:`, `Reason:`, `Diagnostic code:` and `Remote system:`
//! lines. The `Reason:` is the server's summary; the remote reply in `Diagnostic code:` is the
//! one classified (its code says whether "rejected address" was the mailbox or a policy).

use super::{Cues, Recogniser};
use crate::bounce::fields::{clean_address, squeeze, strip_type};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "sun-messaging",
    cues: Cues {
        phrases: &["this report relates to a message you sent"],
        fields: &[],
    },
    detect,
    parse,
};

fn detect(ctx: &Context) -> bool {
    ctx.notification_has("this report relates to a message you sent")
        && ctx.notification_has("recipient address:")
}

/// The value after `name` (case-insensitive) at the start of `line`.
fn value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let t = line.trim_start();
    crate::bounce::fields::starts_with_ci(t, name).then(|| t[name.len()..].trim())
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut out: Vec<RecipientReport> = Vec::new();
    let mut words = String::new();
    for line in ctx.notification().lines() {
        if let Some(a) = value(line, "recipient address:") {
            out.push(RecipientReport::failed(
                Some(clean_address(a)).filter(|a| !a.is_empty()),
                "",
            ));
            continue;
        }
        let Some(r) = out.last_mut() else { continue };
        if let Some(a) = value(line, "original address:") {
            r.original_recipient = Some(clean_address(strip_type(a))).filter(|a| !a.is_empty());
        } else if let Some(why) = value(line, "reason:") {
            words = why.to_string();
        } else if let Some(d) = value(line, "diagnostic code:") {
            r.diagnostic = Some(squeeze(strip_type(d)));
        } else if let Some(m) = value(line, "remote system:") {
            r.remote_mta = Some(
                strip_type(m)
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
        } else if line.trim().is_empty() && r.diagnostic.is_none() && !words.is_empty() {
            r.diagnostic = Some(std::mem::take(&mut words));
        }
    }
    if let Some(r) = out
        .last_mut()
        .filter(|r| r.diagnostic.is_none() && !words.is_empty())
    {
        r.diagnostic = Some(words);
    }
    // The address the sender used, not the server's rewrite of it.
    for r in out.iter_mut().filter(|r| r.original_recipient.is_some()) {
        r.recipient = r.original_recipient.clone();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_fields() {
        let raw = b"From: Internet Mail Delivery <postmaster@sun.test>\nSubject: Delivery Notification: Delivery has failed\n\n\
            This report relates to a message you sent with the following header fields:\n\n  Subject: hi\n\n\
            Your message cannot be delivered to the following recipients:\n\n  Recipient address: d@sun.test\n\
            \x20 Original address: D.Person@sun.test\n  Reason: Remote SMTP server has rejected address\n\
            \x20 Diagnostic code: smtp;550 5.1.1 unknown or illegal alias: d@sun.test\n  Remote system: dns;mx.sun.test (TCP|192.0.2.1|25)\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].original_recipient.as_deref(),
            Some("d.person@sun.test")
        );
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 5.1.1 unknown or illegal alias: d@sun.test")
        );
    }
}
