//! Apache James style notices (also Verizon vtext): "Error: ...", "Error message below:" with the
//! remote reply, then "Message details:" naming the envelope (`RCPT TO: addr`).

use super::{Cues, Recogniser};
use crate::bounce::fields::{contains_ci, find_address};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "james",
    cues: Cues {
        phrases: &["error message below:"],
        fields: &[],
    },
    detect,
    parse,
};

fn detect(ctx: &Context) -> bool {
    ctx.body_has("Error message below:") && ctx.body_has("Message details:")
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let mut diag = String::new();
    let mut rcpts = Vec::new();
    let mut in_error = false;
    for line in ctx.body.lines() {
        let t = line.trim();
        if let Some(e) = t.strip_prefix("Error:") {
            diag.push_str(e.trim());
        } else if contains_ci(t, "error message below:") {
            in_error = true;
        } else if in_error && !t.is_empty() {
            diag.push(' ');
            diag.push_str(t);
        } else if in_error {
            in_error = false;
        } else if t
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("rcpt to:"))
        {
            rcpts.extend(t.get(8..).and_then(find_address));
        }
    }
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
    fn reply_and_envelope_recipient() {
        let raw = b"From: post_master@j.test\nSubject: Re: hello\n\nError: Invalid user address\n\nError message below:\n\
            550 - Requested action not taken: no such user here\n\nMessage details:\n  Subject: hello\n  MAIL FROM: a@b.test\n  RCPT TO: n@j.test\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("n@j.test"));
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .contains("550 - Requested action not taken")
        );
    }
}
