//! Ipswitch IMail Server (`X-Mailer: <SMTP32 ...>`): one `reason: address` line per failed
//! recipient, then "Original message follows." A notice whose header lost the `X-Mailer` is
//! still IMail's when its subject is "Undeliverable Mail" and a line is one of IMail's own
//! verdicts ("Unknown user: addr", "User mailbox exceeds allowed size: addr", ...).

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Layout, Recogniser, captured_address, scan};
use crate::bounce::fields::clean_address;
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "imail",
    cues: Cues {
        phrases: &["original message follows"],
        fields: &["x-mailer"],
    },
    detect,
    parse,
};

const LAYOUT: Layout = Layout {
    start: &[],
    end: &[],
    rcpt: reason_then_address,
    stop_at_blank: true,
};

/// A reason of two words or more (so not a quoted `To:` header), a colon, the address.
static REASON_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*([A-Za-z][^:<>@]*\s[^:<>@]*[A-Za-z0-9]):\s*<?([^<>\s@]+@[^<>\s]+?)>?\s*$")
        .expect("static regex")
});

/// `undeliverable to a@example.org`, the remote reply on the lines after it (IMail's and
/// SMTP32's layouts both use it).
pub(super) static UNDELIVERABLE_TO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*undeliverable to\s+<?([^<>\s@]+@[^<>\s]+?)>?\s*$").expect("static regex")
});

/// `Unknown user: a@example.org` gives the address and the reason before it; `undeliverable to
/// a@example.org` gives the address, its reason following on the next lines.
fn reason_then_address(line: &str) -> Option<(String, String)> {
    if let Some(found) = captured_address(&UNDELIVERABLE_TO, line) {
        return Some(found);
    }
    let c = REASON_ADDRESS.captures(line)?;
    let addr = clean_address(c.get(2)?.as_str());
    let reason = c.get(1)?.as_str().trim().to_string();
    (!addr.is_empty()).then_some((addr, reason))
}

fn detect(ctx: &Context) -> bool {
    let mailer = ctx
        .header("x-mailer")
        .is_some_and(|m| m.trim_start().starts_with("<SMTP32"));
    mailer
        || ctx
            .subject
            .trim()
            .eq_ignore_ascii_case("undeliverable mail")
            && ctx.body_has("original message follows")
            && ctx.notification().lines().any(is_own_line)
}

/// IMail's own reasons, each put before the address it applies to.
const OWN_REASONS: &[&str] = &[
    "unknown user",
    "user mailbox exceeds allowed size",
    "invalid final delivery userid",
    "unknown host",
    "request failed due to security error",
];

/// `Unknown user: a@example.org` and the like, or `undeliverable to a@example.org`.
fn is_own_line(line: &str) -> bool {
    if UNDELIVERABLE_TO.is_match(line) {
        return true;
    }
    REASON_ADDRESS.captures(line).is_some_and(|c| {
        let reason = c.get(1).map_or("", |m| m.as_str().trim());
        OWN_REASONS.iter().any(|r| reason.eq_ignore_ascii_case(r))
    })
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    Some(scan(ctx, &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: \"Postmaster\" <postmaster@imail.test>\nSubject: Undeliverable Mail\n\
        X-Mailer: <SMTP32 v8.22>\nTo: app@sender.test\n\n\
        To: app@sender.test\n\nUnknown user: gone@imail.test\n\nUser mailbox exceeds allowed size: full@imail.test\n\n\
        undeliverable to spam@imail.test\n\nBody of message generated response:\n550-REJECTED - Blacklisted URL\n550 in message\n\n\
        Original message follows.\n\nReceived: from sender.test\nTo: gone@imail.test\n";

    #[test]
    fn each_reason_goes_with_the_address_on_its_line() {
        let ctx = Context::build(RAW);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.recipient.as_deref(), r.diagnostic.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("gone@imail.test"), Some("Unknown user")),
                (
                    Some("full@imail.test"),
                    Some("User mailbox exceeds allowed size")
                ),
                (
                    Some("spam@imail.test"),
                    Some(
                        "Body of message generated response: 550-REJECTED - Blacklisted URL 550 in message"
                    )
                ),
            ]
        );
    }

    #[test]
    fn other_mailers_are_not_claimed() {
        let raw =
            b"From: postmaster@x.test\nX-Mailer: Microsoft Outlook\n\nUnknown user: a@x.test\n";
        assert!(!detect(&Context::build(raw)));
    }

    #[test]
    fn the_body_shape_is_enough_without_the_mailer_field() {
        let raw = b"From: Postmaster <postmaster@imail.test>\nSubject: Undeliverable Mail\n\n\
            Unknown user: pupil@imail.test\n\nOriginal message follows.\n\nTo: pupil@imail.test\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("pupil@imail.test"));
        assert_eq!(r[0].diagnostic.as_deref(), Some("Unknown user"));
    }

    #[test]
    fn an_other_reason_line_without_the_mailer_is_not_claimed() {
        let raw = b"From: Postmaster <postmaster@x.test>\nSubject: Undeliverable Mail\n\n\
            Delivery to this address failed: a@x.test\n\nOriginal message follows.\n";
        assert!(!detect(&Context::build(raw)));
    }
}
