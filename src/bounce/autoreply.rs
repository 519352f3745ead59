//! Auto-replies (RFC 3834 and the usual vacation conventions): recorded, never a failure.

use std::sync::LazyLock;

use regex::Regex;

use super::RecipientReport;
use super::context::Context;
use super::fields::{contains_ci, find_address};
use crate::model::{Class, Reason};

static SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)out of (the )?office|auto(matic|matische?)?[- ]?(reply|response|antwort|antwoord)|autoreply|vacation|on leave|abwesenheit|abwesend|absence|absent|r[ée]ponse automatique|respuesta autom[aá]tica|fuera de (la )?oficina|risposta automatica|fuori ufficio|automatisch antwoord|afwezig|resposta autom[aá]tica|ausente|不在|自動返信|自動応答|休暇|automatyczna odpowied|frånvaro|poissa|fravær",
    )
    .expect("static regex")
});

/// True when the message says it was sent automatically in reply to another one.
pub fn is_autoreply(ctx: &Context) -> bool {
    ctx.header_has("auto-submitted", "auto-replied")
        || ctx.header("x-autoreply").is_some()
        || ctx.header("x-autorespond").is_some()
        || ctx.header("x-autoresponder").is_some()
        || ctx.header_has("precedence", "auto_reply")
        || ctx.header_has("x-auto-response-suppress", "oof") && SUBJECT.is_match(&ctx.subject)
        || SUBJECT.is_match(&ctx.subject)
        || contains_ci(&ctx.subject, "auto:")
}

/// The single record for an auto-reply: the person who answered is the recipient.
pub fn record(ctx: &Context) -> RecipientReport {
    RecipientReport {
        recipient: find_address(ctx.from()),
        reason: Reason::Vacation,
        class: Class::Autoreply,
        diagnostic: Some(ctx.subject.trim().to_string()).filter(|s| !s.is_empty()),
        rule: "autoreply",
        ..RecipientReport::blank()
    }
}
