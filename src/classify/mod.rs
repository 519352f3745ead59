//! Placeholder classifier (replaced by the rules table on the `bounce` branch).
use crate::model::{Class, EnhancedCode, Reason, Reply, Verdict};

pub fn classify_reply(reply: &Reply) -> Verdict {
    classify(Some(reply.code), reply.enhanced, &reply.text)
}

pub fn classify(code: Option<u16>, enhanced: Option<EnhancedCode>, text: &str) -> Verdict {
    let _ = text;
    let c = code.unwrap_or(0);
    if (200..300).contains(&c) {
        return Verdict { class: Class::Delivered, reason: Reason::Delivered, rule: "stub" };
    }
    let reason = match enhanced.map(|e| (e.subject, e.detail)) {
        Some((1, 1)) => Reason::UserUnknown,
        Some((2, 2)) => Reason::MailboxFull,
        _ => Reason::Undefined,
    };
    let class = if c < 500 { Class::Soft } else { reason.class(true) };
    Verdict { class, reason, rule: "stub" }
}
