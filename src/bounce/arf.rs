//! Complaint reports: RFC 5965 ARF (`message/feedback-report`) and the few provider formats
//! that report a complaint or an opt-out without one.

use super::context::Context;
use super::fields::{Field, clean_address, contains_ci, field, find_address, parse_fields};
use super::{BounceReport, RecipientReport};
use crate::model::{Class, Reason};

/// Fills `report` when the message is a complaint; returns whether it was one.
pub fn recognise(ctx: &Context, report: &mut BounceReport) -> bool {
    let found = match &ctx.feedback {
        Some(text) => from_arf(ctx, text, report),
        None => from_provider(ctx),
    };
    match found {
        Some(recipients) if !recipients.is_empty() => {
            report.recipients = recipients;
            true
        }
        _ => false,
    }
}

fn from_arf(ctx: &Context, text: &str, report: &mut BounceReport) -> Option<Vec<RecipientReport>> {
    let fields = parse_fields(text, false);
    let ftype = field(&fields, "feedback-type")
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "abuse".into());
    report.reporting_mta =
        field(&fields, "reporting-mta").map(|s| super::fields::strip_type(s).to_string());
    report.original.envelope_sender = field(&fields, "original-mail-from")
        .map(clean_address)
        .filter(|s| !s.is_empty());
    let mut rcpts: Vec<String> = fields
        .iter()
        .filter(|f| {
            f.name.eq_ignore_ascii_case("original-rcpt-to")
                || f.name.eq_ignore_ascii_case("removal-recipient")
        })
        .map(|f| clean_address(&f.value))
        .filter(|a| !a.is_empty())
        .collect();
    if rcpts.is_empty() {
        rcpts.extend(original_recipient(ctx.original.as_deref()));
    }
    if rcpts.is_empty() {
        rcpts.push(String::new());
    }
    Some(
        rcpts
            .into_iter()
            .map(|r| complaint(r, &ftype, "arf"))
            .collect(),
    )
}

/// The recipient an embedded original was addressed to.
fn original_recipient(original: Option<&[Field]>) -> Option<String> {
    let o = original?;
    [
        "x-hmxmroriginalrecipient",
        "x-original-to",
        "delivered-to",
        "to",
    ]
    .iter()
    .find_map(|n| field(o, n).and_then(find_address))
}

/// Complaint formats without a feedback-report part: Hotmail/Outlook.com JMRP and Apple Mail
/// "unsubscribe" messages.
fn from_provider(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let o = ctx.original.as_deref();
    let hotmail = o.is_some_and(|o| field(o, "x-hmxmroriginalrecipient").is_some())
        || contains_ci(&ctx.subject, "complaint about message from");
    if hotmail {
        let rcpt = original_recipient(o).unwrap_or_default();
        return Some(vec![complaint(rcpt, "abuse", "arf.jmrp")]);
    }
    if ctx.body_has("sent this email to unsubscribe") && contains_ci(&ctx.subject, "unsubscribe") {
        let rcpt = find_address(ctx.from()).unwrap_or_default();
        return Some(vec![complaint(rcpt, "opt-out", "arf.unsubscribe")]);
    }
    None
}

fn complaint(recipient: String, feedback_type: &str, rule: &'static str) -> RecipientReport {
    RecipientReport {
        recipient: Some(recipient).filter(|r| !r.is_empty()),
        reason: Reason::Feedback,
        class: Class::Complaint,
        feedback_type: Some(feedback_type.to_string()),
        rule,
        ..RecipientReport::blank()
    }
}
