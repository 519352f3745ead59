//! Whether a notice that is not a DSN says the message failed for good or is still being tried,
//! in its own words. A DSN states it in its `Action:` field; qmail ("This is a permanent error;
//! I've given up"), Sendmail ("Warning: message still undelivered after 4 hours"), Exim ("This
//! is a permanent error", "Delivery attempts will continue"), Postfix's text notices and the
//! other plain-text formats state it in prose. These words, not the reason, decide the action.
//! The patterns are lower case and matched on lower-cased text (see [`stated_in_lower`]).

use std::sync::LazyLock;

use regex::Regex;

use super::RecipientReport;
use super::context::Context;

/// What a notice states about its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stated {
    /// Given up: the message will not be delivered (`failed`).
    Permanent,
    /// Still queued and retried (`delayed`).
    Temporary,
}

impl Stated {
    fn action(self) -> &'static str {
        match self {
            Stated::Permanent => "failed",
            Stated::Temporary => "delayed",
        }
    }
}

/// A notice that says it is only a warning: it wins over any other word in it (a warning quotes
/// the failure that will become permanent if it persists).
static WARNING_ONLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"warning message only|this is a warning only|do not need to resend|no action is required on your part")
        .expect("static regex")
});

/// The MTA has given up (qmail, Exim, Sendmail, Postfix, Domino, GroupWise ... wording).
static PERMANENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"permanent (fatal )?(error|failure)|failed permanently|permanently (failed|rejected|undeliverable)|i'?ve given up|i have given up|giving up|gave up|not going to try again|will not be retried|won'?t be retried|no further (delivery )?attempts|fatal error|could not be delivered for \d+ days")
        .expect("static regex")
});

/// The message is still queued (Sendmail, Exim, Postfix, Exchange delay wording).
static TEMPORARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"will be retried|will retry|will keep trying|will continue (to try|trying)|still (be )?trying|delivery attempts will continue|has not yet been delivered|message still undelivered|delivery (of your message )?(has been|is) (delayed|deferred)|message (has been |was )?deferred|delayed mail|delivery delayed|recipients? was delayed")
        .expect("static regex")
});

/// What `text` states, if anything: a warning, else given-up words, else still-trying words.
pub fn stated_in(text: &str) -> Option<Stated> {
    stated_in_lower(&text.to_ascii_lowercase())
}

/// [`stated_in`] for an ASCII-lower-cased text. The patterns above are lower case and matched
/// case-sensitively on lower-cased text, so the regex engine can skip ahead on their literal
/// prefixes (a `(?i)` pattern cannot, and costs about three times as much on these texts).
fn stated_in_lower(text: &str) -> Option<Stated> {
    if WARNING_ONLY.is_match(text) {
        Some(Stated::Temporary)
    } else if PERMANENT.is_match(text) {
        Some(Stated::Permanent)
    } else if TEMPORARY.is_match(text) {
        Some(Stated::Temporary)
    } else {
        None
    }
}

/// What the notice as a whole states: its subject, then its notification text.
pub fn stated(ctx: &Context) -> Option<Stated> {
    let subject = stated_in(&ctx.subject);
    if subject == Some(Stated::Temporary) {
        return subject;
    }
    let words = match ctx.notification_lower() {
        Some(lower) => stated_in_lower(lower),
        None => stated_in(ctx.notification()),
    };
    words.or(subject)
}

/// Gives every record of a non-DSN notice without an action the one its words state: the
/// recipient's own diagnostic first, then the notice's. A notice that states nothing is left to
/// [`super::infer_action`] (a failure notice that does not say it will retry has given up).
pub fn apply(ctx: &Context, recipients: &mut [RecipientReport]) {
    let whole = std::cell::OnceCell::new();
    for r in recipients.iter_mut().filter(|r| r.action.is_none()) {
        let own = r.diagnostic.as_deref().and_then(stated_in);
        if let Some(s) = own.or_else(|| *whole.get_or_init(|| stated(ctx))) {
            r.action = Some(s.action().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_decide() {
        assert_eq!(
            stated_in("This is a permanent error; I've given up. Sorry it didn't work out."),
            Some(Stated::Permanent)
        );
        assert_eq!(
            stated_in(
                "Warning: message still undelivered after 4 hours\nWill keep trying until message is 5 days old"
            ),
            Some(Stated::Temporary)
        );
        assert_eq!(
            stated_in("**  THIS IS A WARNING MESSAGE ONLY  ** giving up on host x"),
            Some(Stated::Temporary)
        );
        assert_eq!(
            stated_in("Delivery of your message to the following recipients was delayed:"),
            Some(Stated::Temporary)
        );
        assert_eq!(stated_in("550 5.1.1 user unknown"), None);
    }
}
