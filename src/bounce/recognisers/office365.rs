//! Exchange 2010+ / Office 365 NDRs in any language: the prose for people is translated, but the
//! "diagnostic information for administrators" block still names each recipient on its own line
//! followed by the remote reply in quotes (`... returned '550 5.1.10 RESOLVER.ADR...'`) or between
//! hashes (`#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##`).

use std::sync::LazyLock;

use regex::Regex;

use super::{Cues, Recogniser, bare, merge};
use crate::bounce::{Context, RecipientReport};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "office365",
    cues: Cues {
        phrases: &["resolver.", "remote server returned '", ADMIN_BLOCK],
        fields: &["x-ms-exchange-message-is-ndr"],
    },
    detect,
    parse,
};

/// A reply quoted after an apostrophe or a hash: a basic or enhanced code, then the text.
static QUOTED_REPLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"['#]\s*#?\s*((?:[45]\d\d[ -]|[45]\.\d{1,3}\.\d{1,3}\s)[^']*)")
        .expect("static regex")
});

/// The heading of the administrators' block of an English Exchange 2007+ NDR, which may carry
/// neither the NDR header (a relayed or re-sent notice) nor a `RESOLVER.` code (a remote reply).
const ADMIN_BLOCK: &str = "diagnostic information for administrators";

fn detect(ctx: &Context) -> bool {
    ctx.header("x-ms-exchange-message-is-ndr").is_some()
        || ctx.body_has("RESOLVER.")
        || ctx.body_has("Remote Server returned '")
        || ctx.body_has(ADMIN_BLOCK)
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let text = ctx.notification();
    let found = admin_pairs(text);
    (!found.is_empty()).then(|| merge(found))
}

/// Every (address line, quoted reply on the next non-blank line) pair.
fn admin_pairs(text: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some((addr, _)) = bare(line) {
            last = Some(addr);
            continue;
        }
        let reply = QUOTED_REPLY.captures(line).and_then(|c| c.get(1));
        if let (Some(addr), Some(reply)) = (last.take(), reply) {
            let reply = reply.as_str().trim().trim_end_matches(['#', '>', ' ']);
            out.push((addr, reply.to_string(), false));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Reason;

    #[test]
    fn translated_ndr_is_read_from_the_administrator_block() {
        let raw = "From: postmaster@tenant.test\nTo: app@a.test\nSubject: Unzustellbar: Rechnung\n\
            X-MS-Exchange-Message-Is-Ndr:\n\n\
            Die Nachricht konnte nicht zugestellt werden an:\n\nerika@tenant.test\n\
            Bitte pr\u{fc}fen Sie die Adresse.\n\n\
            Diagnoseinformationen f\u{fc}r Administratoren:\n\nGenerierender Server: srv1.tenant.test\n\n\
            erika@tenant.test\nServeur distant: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\n\n\
            Original message headers:\n\nTo: erika@tenant.test\n";
        let ctx = Context::build(raw.as_bytes());
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("erika@tenant.test"));
        let d = r[0].diagnostic.as_deref().unwrap();
        assert!(d.starts_with("550 5.1.10 RESOLVER.ADR"), "{d}");
        assert_eq!(
            crate::classify::find_reason(Some(550), None, d).0,
            Reason::UserUnknown
        );
    }

    #[test]
    fn the_administrator_block_alone_admits_the_notice() {
        let raw = b"From: Microsoft Exchange <MicrosoftExchange1@ex.test>\nSubject: Undeliverable: hi\n\n\
            Delivery has failed to these recipients or groups:\n\nPete (pete@r.test)\nYour message wasn't delivered.\n\n\
            Diagnostic information for administrators:\n\nGenerating server: ex.test\n\n\
            pete@r.test\nmx.r.test #550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus ##\n";
        let ctx = Context::build(raw);
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient.as_deref(), Some("pete@r.test"));
        assert!(r[0].diagnostic.as_deref().unwrap().starts_with("550 5.7.1"));
    }

    #[test]
    fn hash_quoted_replies_of_older_servers() {
        let raw = b"From: postmaster@old.test\nSubject: Undeliverable\nX-MS-Exchange-Message-Is-Ndr:\n\n\
            Delivery has failed to these recipients or groups:\n\nbo@old.test\n\n\
            Diagnostic information for administrators:\n\nbo@old.test\n#552 5.2.2 STOREDRV.Deliver; mailbox full ##\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("552 5.2.2 STOREDRV.Deliver; mailbox full")
        );
    }
}
