//! Amazon SES notifications delivered by e-mail (SNS): a JSON document of type Bounce,
//! Complaint or Delivery. Three documented shapes: the notification itself
//! (`"notificationType"`), an event-publishing record (`"eventType"` in its place), and either of
//! them wrapped in an SNS envelope (`"Type": "Notification"`, the document a JSON string in
//! `"Message"`). A bounced recipient carries `action`/`status`/`diagnosticCode` only when the
//! remote server sent a DSN; otherwise the notice's `bounceType` (`Permanent`: SES will not try
//! again; `Transient`: it failed for now) and `bounceSubType` are all there is.

use serde_json::Value;

use super::{Cues, Recogniser};
use crate::bounce::fields::clean_address;
use crate::bounce::{Context, RecipientReport};
use crate::model::{Class, EnhancedCode, Reason};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "amazonses",
    cues: Cues {
        phrases: &["notificationtype", "eventtype"],
        fields: &[],
    },
    detect,
    parse,
};

fn detect(ctx: &Context) -> bool {
    ctx.body.trim_start().starts_with('{')
        && (ctx.body_has("notificationType\\\"")
            || ctx.body_has("\"notificationType\"")
            || ctx.body_has("\"eventType\"")
            || ctx.body_has("eventType\\\""))
}

/// The JSON document; SNS wraps long lines with a newline and a space.
fn document(body: &str) -> Option<Value> {
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    let text = body.get(start..=end)?;
    serde_json::from_str(&text.replace("\n ", ""))
        .or_else(|_| serde_json::from_str(&text.replace('\n', "")))
        .ok()
}

/// The SES document itself: an SNS envelope's `Message` string parsed in turn.
fn unwrap_sns(doc: Value) -> Option<Value> {
    match doc.get("Message").and_then(Value::as_str) {
        Some(inner) if doc.get("Type").is_some() => serde_json::from_str(inner).ok(),
        _ => Some(doc),
    }
}

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let doc = unwrap_sns(document(&ctx.body)?)?;
    let kind = doc
        .get("notificationType")
        .or_else(|| doc.get("eventType"))?
        .as_str()?;
    Some(match kind {
        "Bounce" => bounces(doc.get("bounce")?),
        "Complaint" => complaints(doc.get("complaint")?),
        "Delivery" => deliveries(doc.get("delivery")?),
        _ => Vec::new(),
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

fn bounces(b: &Value) -> Vec<RecipientReport> {
    let mta = text(b, "reportingMTA").map(|s| crate::bounce::fields::strip_type(&s).to_string());
    let list = b
        .get("bouncedRecipients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = text(b, "bounceType").unwrap_or_default();
    let sub = text(b, "bounceSubType").unwrap_or_default();
    list.iter()
        .map(|r| {
            let diag = text(r, "diagnosticCode")
                .map(|d| crate::bounce::fields::strip_type(&d).to_string())
                .unwrap_or_default();
            let mut line = RecipientReport {
                // SES sends a bounce notification once it has stopped trying: both kinds failed.
                action: text(r, "action").or_else(|| {
                    matches!(kind.as_str(), "Permanent" | "Transient").then(|| "failed".to_string())
                }),
                status: text(r, "status").as_deref().and_then(EnhancedCode::parse),
                remote_mta: mta.clone(),
                ..RecipientReport::failed(text(r, "emailAddress").map(|a| clean_address(&a)), diag)
            };
            if line.diagnostic.is_none() && line.status.is_none() {
                by_subtype(&mut line, &kind, &sub);
            }
            line
        })
        .collect()
}

/// A bounced recipient with no DSN of its own: SES's documented `bounceType`/`bounceSubType`
/// pair is the verdict (a suppression-list subtype is SES's own memory of an earlier bounce, not
/// news about the mailbox). `General` and `Undetermined` say nothing more, and are left to the
/// later steps (a permanent one with nothing else to go on is `onhold`).
fn by_subtype(line: &mut RecipientReport, kind: &str, sub: &str) {
    let permanent = kind == "Permanent";
    let (reason, status) = match (permanent, sub) {
        (true, "NoEmail") => (Reason::UserUnknown, "5.1.1"),
        (false, "MailboxFull") => (Reason::MailboxFull, "4.2.2"),
        (false, "MessageTooLarge") => (Reason::MesgTooBig, "4.3.4"),
        (false, "ContentRejected") => (Reason::ContentError, "4.6.0"),
        (false, "AttachmentRejected") => (Reason::SecurityError, "4.7.0"),
        (true, _) => {
            line.status = EnhancedCode::parse("5.0.0");
            return;
        }
        _ => {
            line.status = EnhancedCode::parse("4.0.0");
            return;
        }
    };
    line.status = EnhancedCode::parse(status);
    line.reason = reason;
    line.rule = "amazonses.subtype";
    line.diagnostic = Some(format!("{kind} bounce: {sub}"));
}

fn complaints(c: &Value) -> Vec<RecipientReport> {
    let ftype = text(c, "complaintFeedbackType").unwrap_or_else(|| "abuse".into());
    let list = c
        .get("complainedRecipients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|r| RecipientReport {
            recipient: text(r, "emailAddress").map(|a| clean_address(&a)),
            reason: Reason::Feedback,
            class: Class::Complaint,
            feedback_type: Some(ftype.clone()),
            rule: "amazonses.complaint",
            ..RecipientReport::blank()
        })
        .collect()
}

fn deliveries(d: &Value) -> Vec<RecipientReport> {
    let reply = text(d, "smtpResponse").unwrap_or_default();
    let mta = text(d, "reportingMTA");
    let list = d
        .get("recipients")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(Value::as_str)
        .map(|a| RecipientReport {
            action: Some("delivered".into()),
            remote_mta: mta.clone(),
            ..RecipientReport::failed(Some(clean_address(a)), reply.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_notification() {
        let raw = b"From: no-reply@sns.amazonaws.test\nSubject: AWS Notification Message\n\n{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[{\"emailAddress\":\"j@r.test\",\"action\":\"failed\",\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 us\n er unknown\"}],\"reportingMTA\":\"dsn; a.test\"}}\n\n--\nunsubscribe\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].diagnostic.as_deref(), Some("550 5.1.1 user unknown"));
        assert_eq!(r[0].remote_mta.as_deref(), Some("a.test"));
    }

    /// An event-publishing record inside an SNS envelope, with no DSN of its own: found, failed,
    /// and read from its bounce type and subtype.
    #[test]
    fn event_record_in_sns_envelope() {
        let inner = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"NoEmail","bouncedRecipients":[{"emailAddress":"gone@r.test"},{"emailAddress":"<also@r.test>"}]}}"#;
        let envelope =
            serde_json::json!({"Type": "Notification", "MessageId": "m-1", "Message": inner});
        let raw = format!(
            "From: no-reply@sns.amazonaws.test\nSubject: AWS Notification Message\n\n{envelope}\n"
        );
        let ctx = Context::build(raw.as_bytes());
        assert!(detect(&ctx));
        let r = parse(&ctx).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].recipient.as_deref(), Some("also@r.test"));
        assert_eq!(
            (r[0].reason, r[0].action.as_deref()),
            (Reason::UserUnknown, Some("failed"))
        );
        assert_eq!(r[0].status, EnhancedCode::parse("5.1.1"));
    }

    /// A transient bounce without a DSN is soft-class material, not a missing mailbox.
    #[test]
    fn transient_subtype() {
        let raw = b"Subject: x\n\n{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Transient\",\"bounceSubType\":\"MailboxFull\",\"bouncedRecipients\":[{\"emailAddress\":\"full@r.test\"}]}}\n";
        let r = parse(&Context::build(raw)).unwrap();
        assert_eq!(r[0].reason, Reason::MailboxFull);
        assert_eq!(r[0].status.map(|s| s.class), Some(4));
    }
}
