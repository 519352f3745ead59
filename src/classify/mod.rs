//! Reply classification: an SMTP reply (code, enhanced status, text) to a class and a reason,
//! driven by the rule tables in [`rules`].

pub mod enhanced_codes;
pub mod rules;

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

use crate::model::{Class, EnhancedCode, Reason, Reply, Verdict};
use enhanced_codes::{CodeRule, Strength};
use rules::{OVERRIDE_RULES, REPLY_RULES, TEXT_RULES};

/// All text patterns (written in lower case) compiled once, in table order, and run over the
/// ASCII-lower-cased text. One small automaton per
/// rule (tried in order, first match wins) keeps the lazy DFAs small and warm; word boundaries are
/// ASCII-only so that the DFA, not the slower PikeVM, runs them.
static TEXT_REGEXES: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    TEXT_RULES
        .iter()
        .map(|r| {
            RegexBuilder::new(&r.pattern.replace(r"\b", r"(?-u:\b)"))
                .build()
                .ok()
        })
        .collect()
});

/// Longest diagnostic text that is scanned; the reason is always near the start.
const MAX_TEXT: usize = 4096;

/// Classifies a reply as received from a server or made up for a local failure.
pub fn classify_reply(reply: &Reply) -> Verdict {
    classify(Some(reply.code), reply.enhanced, &reply.text)
}

/// Classifies from whatever is known: a basic reply code, an enhanced status, and free text.
///
/// Class follows the reason (README "Bounces, complaints and unsubscribes"), except that a 4xx reply is always `Soft`.
pub fn classify(code: Option<u16>, enhanced: Option<EnhancedCode>, text: &str) -> Verdict {
    let (reason, rule) = find_reason(code, enhanced, text);
    let transient = code.map_or(enhanced.is_some_and(|e| e.class == 4), |c| {
        (400..500).contains(&c)
    });
    let class = match reason {
        Reason::Delivered => Class::Delivered,
        _ if transient => Class::Soft,
        r => r.class(true),
    };
    Verdict {
        class,
        reason,
        rule,
    }
}

/// The reason alone, and the id of the rule that gave it.
pub fn find_reason(
    code: Option<u16>,
    enhanced: Option<EnhancedCode>,
    text: &str,
) -> (Reason, &'static str) {
    let positive = match code {
        Some(c) => (200..300).contains(&c),
        None => enhanced.is_some_and(|e| e.class == 2),
    };
    if positive {
        return (Reason::Delivered, "code.2xx");
    }
    if let Some(found) = match_override(text) {
        return found;
    }
    let code_rule = enhanced.and_then(match_code);
    if let Some(r) = code_rule.filter(|r| r.strength == Strength::Strong) {
        return other_cause_named(r, text).unwrap_or((r.reason, r.id));
    }
    if let Some(found) = match_text(text) {
        return match code_rule {
            Some(r) if r.detail.is_some() && GENERIC_TEXT.contains(&found.1) => (r.reason, r.id),
            _ => found,
        };
    }
    if let Some(r) = code_rule {
        return (r.reason, r.id);
    }
    match code.and_then(|c| REPLY_RULES.iter().find(|(rc, _, _)| *rc == c)) {
        Some((_, reason, id)) => (*reason, id),
        None => (Reason::Undefined, "none"),
    }
}

/// Text rules whose words ("service unavailable", "policy", "address rejected") say less than
/// any enhanced code's registered meaning: a code beside them decides.
const GENERIC_TEXT: &[&str] = &["text.systemerror", "text.policy", "text.recipient-rejected"];

/// Causes that a reply names in words more precisely than a "no such mailbox" code beside them:
/// some providers answer X.1.1 for a full mailbox, a rate limit or a policy block.
const NAMED_CAUSES: &[Reason] = &[
    Reason::MailboxFull,
    Reason::RateLimited,
    Reason::Speeding,
    Reason::NoRelaying,
    Reason::Blocked,
    Reason::BadReputation,
    Reason::SpamDetected,
    Reason::VirusDetected,
    Reason::PolicyViolation,
    Reason::HasMoved,
    Reason::Suspend,
    Reason::MesgTooBig,
    Reason::ExceedLimit,
    Reason::TooManyConn,
];

/// Words saying the mailbox does not exist (narrower than the `text.userunknown` rule: not the
/// RFC 5321 "mailbox unavailable" that servers also use for blocks).
static NONEXISTENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"user unknown|unknown user|no such (user|mailbox|recipient|address|account|person)|(does not|doesn't|did not|not) exist|not found|unknown (recipient|address|mailbox|alias|account)|invalid (recipient|mailbox|address|user)|no mailbox|not a valid (mailbox|recipient|user|address)|(name|address) is not recognized")
        .expect("static regex")
});

/// Words stating outright that the mailbox does not exist ("does not exist", "no such user",
/// "doesn't have a ... account", "no mailbox here by that name"), unlike the bare "user unknown"
/// that filters also print.
static STATED_MISSING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(does not|doesn't|did not) exist|no such (user|mailbox|recipient|account|person)|doesn.t have an? .*account|no mailbox here|(user|mailbox|recipient|account) not found|not a valid (mailbox|recipient|user|address)")
        .expect("static regex")
});

/// Whether `text` states outright that the mailbox does not exist (see [`STATED_MISSING`]).
pub fn states_mailbox_missing(text: &str) -> bool {
    STATED_MISSING.is_match(&truncate(text, MAX_TEXT).to_ascii_lowercase())
}

/// The text's own cause when a strong "mailbox does not exist" code (X.1.1) stands beside words
/// naming another one ([`NAMED_CAUSES`]) and no words saying the mailbox does not exist.
fn other_cause_named(r: &CodeRule, text: &str) -> Option<(Reason, &'static str)> {
    if r.reason != Reason::UserUnknown {
        return None;
    }
    // The common case (the words say the mailbox is missing) is settled by one pattern.
    let lower = truncate(text, MAX_TEXT).to_ascii_lowercase();
    if NONEXISTENT.is_match(&lower) {
        return None;
    }
    match_lower(&lower).filter(|(reason, _)| NAMED_CAUSES.contains(reason))
}

/// The first text rule matching `text`, if any.
pub fn match_text(text: &str) -> Option<(Reason, &'static str)> {
    match_lower(&truncate(text, MAX_TEXT).to_ascii_lowercase())
}

/// [`match_text`] on text already truncated and ASCII-lower-cased.
fn match_lower(text: &str) -> Option<(Reason, &'static str)> {
    if text.is_empty() {
        return None;
    }
    TEXT_RULES
        .iter()
        .zip(TEXT_REGEXES.iter())
        .find(|(_, re)| re.as_ref().is_some_and(|re| re.is_match(text)))
        .map(|(rule, _)| (rule.reason, rule.id))
}

static OVERRIDE_REGEXES: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    OVERRIDE_RULES
        .iter()
        .map(|r| Regex::new(r.pattern).ok())
        .collect()
});

/// The first override rule matching `text` (short texts only: these wordings open a reply).
fn match_override(text: &str) -> Option<(Reason, &'static str)> {
    let text = truncate(text, 512).to_ascii_lowercase();
    OVERRIDE_RULES
        .iter()
        .zip(OVERRIDE_REGEXES.iter())
        .find(|(_, re)| re.as_ref().is_some_and(|re| re.is_match(&text)))
        .map(|(rule, _)| (rule.reason, rule.id))
}

fn match_code(e: EnhancedCode) -> Option<&'static CodeRule> {
    enhanced_codes::lookup(e)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
