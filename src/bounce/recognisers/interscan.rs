//! Trend Micro InterScan Messaging Security (IMSS/IMSVA) notices: a field block (`Sender:`,
//! `Recipient:`, `Subject:`, `Reason: Unable to deliver message to <addr>`, `Response from
//! server:`), or the older transcript form (`Sent <<< RCPT TO:<addr>`, `Received >>> 550 ...`,
//! `Unable to deliver message to <addr>`).

use super::{Cues, Recogniser};
use crate::bounce::fields::{all_addresses, contains_ci, squeeze};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "interscan",
    cues: Cues {
        phrases: &["unable to deliver message to"],
        fields: &[],
    },
    detect,
    parse,
};

fn detect(ctx: &Context) -> bool {
    ctx.notification_has("unable to deliver message to")
        && (ctx.notification_has("received >>>")
            || ctx.notification_has("reason: unable to deliver")
            || ctx.notification_has("message from interscan messaging security suite")
            || ctx.header_has("x-mailer", "interscan"))
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut rcpts: Vec<String> = Vec::new();
    let (mut diag, mut summary) = (Vec::new(), Vec::new());
    for line in ctx.notification().lines() {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("recipient:") || lower.starts_with("sent <<< rcpt to:") {
            rcpts.extend(all_addresses(t));
        } else if lower.starts_with("received >>>") || lower.starts_with("response from server:") {
            diag.push(
                t.split_once(['>', ':'])
                    .map_or(t, |(_, v)| v)
                    .trim_start_matches(['>', ' ']),
            );
        } else if contains_ci(t, "unable to deliver message to") {
            if rcpts.is_empty() {
                rcpts.extend(all_addresses(t));
            }
            summary.push(t.trim_start_matches("Reason:").trim());
        }
    }
    // The server's own reply first: it is the one classified.
    diag.extend(summary);
    let mut seen = std::collections::HashSet::new();
    rcpts.retain(|a| seen.insert(a.clone()));
    let diag = squeeze(&diag.join(" "));
    Some(
        rcpts
            .into_iter()
            .map(|a| RecipientReport::failed(Some(a), diag.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_response_is_the_diagnostic() {
        let raw = b"From: postmaster@tm.test\nSubject: Mail could not be delivered\n\n\
            Sender: <s@a.test>\nRecipient: <e@tm.test>\nSubject: hi\n\
            Reason: Unable to deliver message to <e@tm.test> (and other recipients in the same domain).\n\
            Response from server: 550 5.1.1 <e@tm.test>: Recipient address rejected: User unknown\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert!(
            r[0].diagnostic.as_deref().unwrap().starts_with("550 5.1.1"),
            "{:?}",
            r[0].diagnostic
        );
    }
}
