//! Amazon SES notifications delivered by e-mail (SNS): a JSON document of type Bounce,
//! Complaint or Delivery.

use serde_json::Value;

use super::Recogniser;
use crate::bounce::fields::clean_address;
use crate::bounce::{Context, RecipientReport};
use crate::model::{Class, EnhancedCode, Reason};

pub static RECOGNISER: Recogniser = Recogniser {
    name: "amazonses",
    detect,
    parse,
};

fn detect(ctx: &Context) -> bool {
    ctx.body.trim_start().starts_with('{') && ctx.body_has("\"notificationType\"")
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

fn parse(ctx: &Context) -> Option<Vec<RecipientReport>> {
    let doc = document(&ctx.body)?;
    let kind = doc.get("notificationType")?.as_str()?;
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
    list.iter()
        .map(|r| {
            let diag = text(r, "diagnosticCode")
                .map(|d| crate::bounce::fields::strip_type(&d).to_string())
                .unwrap_or_default();
            RecipientReport {
                action: text(r, "action"),
                status: text(r, "status").as_deref().and_then(EnhancedCode::parse),
                remote_mta: mta.clone(),
                ..RecipientReport::failed(text(r, "emailAddress").map(|a| clean_address(&a)), diag)
            }
        })
        .collect()
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
}
