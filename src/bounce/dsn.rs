//! RFC 3464 `message/delivery-status` bodies: the per-message group and one record per recipient.

use super::fields::{Field, clean_address, parse_fields, strip_type};
use super::{BounceReport, RecipientReport};
use crate::model::EnhancedCode;

/// Per-message fields of a delivery-status body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PerMessage {
    pub reporting_mta: Option<String>,
    pub original_envelope_id: Option<String>,
    pub arrival_date: Option<String>,
    /// `X-Postfix-Sender` and similar: the envelope sender of the returned message.
    pub sender: Option<String>,
}

/// Parses one delivery-status body into its per-message fields and recipient records
/// (not yet classified). Groups are separated by blank lines; a group naming several recipients is
/// split at each new `Final-Recipient`, and fields before a group's first recipient field belong
/// to that recipient. Each record's `recipient` is the Original-Recipient when one is given.
pub fn parse_dsn(text: &str) -> (PerMessage, Vec<RecipientReport>) {
    let mut msg = PerMessage::default();
    let mut out: Vec<RecipientReport> = Vec::new();
    for group in groups(text) {
        let mut cur = RecipientReport::blank();
        for f in parse_fields(group, false) {
            let name = f.name.to_ascii_lowercase();
            if apply_message_field(&mut msg, &name, &f) {
                continue;
            }
            let starts_new = match name.as_str() {
                "final-recipient" => cur.recipient.is_some(),
                "original-recipient" => cur.original_recipient.is_some(),
                _ => false,
            };
            if starts_new {
                out.push(std::mem::replace(&mut cur, RecipientReport::blank()));
            }
            apply_recipient_field(&mut cur, &name, &f.value);
        }
        out.push(cur);
    }
    out.retain(|r| r.recipient.is_some() || r.original_recipient.is_some());
    // The address the sender used is the Original-Recipient (RFC 3464 §2.3.1); Final-Recipient
    // may be an alias's or a forwarding rewrite.
    for r in &mut out {
        if r.original_recipient.is_some() {
            r.recipient = r.original_recipient.clone();
        }
    }
    (msg, out)
}

/// The blank-line separated groups of a delivery-status body.
fn groups(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start_matches(['\n', '\r', ' ', '\t']);
        if trimmed.is_empty() {
            return None;
        }
        let end = blank_line(trimmed).unwrap_or(trimmed.len());
        let (group, tail) = trimmed.split_at(end);
        rest = tail;
        Some(group)
    })
}

/// Offset of the first blank (or white-space only) line.
fn blank_line(text: &str) -> Option<usize> {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if pos > 0 && line.trim().is_empty() {
            return Some(pos);
        }
        pos += line.len();
    }
    None
}

fn apply_message_field(msg: &mut PerMessage, name: &str, f: &Field) -> bool {
    let slot = match name {
        "reporting-mta" => &mut msg.reporting_mta,
        "original-envelope-id" => &mut msg.original_envelope_id,
        "arrival-date" => &mut msg.arrival_date,
        "x-postfix-sender" | "x-original-envelope-from" | "x-envelope-from" => &mut msg.sender,
        _ => return false,
    };
    if slot.is_none() {
        *slot = Some(strip_type(&f.value).to_string());
    }
    true
}

fn apply_recipient_field(r: &mut RecipientReport, name: &str, value: &str) {
    let text = || Some(strip_type(value).to_string()).filter(|s| !s.is_empty());
    match name {
        "final-recipient" => r.recipient = Some(clean_address(value)).filter(|a| !a.is_empty()),
        "original-recipient" => {
            r.original_recipient = Some(clean_address(value)).filter(|a| !a.is_empty())
        }
        "x-actual-recipient" if r.recipient.is_none() => {
            r.recipient = Some(clean_address(value)).filter(|a| !a.is_empty())
        }
        "action" => {
            r.action = value
                .split_whitespace()
                .next()
                .map(|s| s.to_ascii_lowercase())
        }
        "status" => {
            r.status = value
                .split_whitespace()
                .next()
                .and_then(EnhancedCode::parse)
        }
        "remote-mta" => r.remote_mta = text(),
        "diagnostic-code" => {
            r.diagnostic = text();
            r.diagnostic_type = value
                .split_once(';')
                .map(|(t, _)| t.trim().to_ascii_lowercase())
                .filter(|t| t.len() < 16);
        }
        "last-attempt-date" => r.last_attempt = text(),
        "will-retry-until" => r.will_retry_until = text(),
        _ => {}
    }
}

/// Fills the report from every delivery-status part; returns false when none had a recipient.
pub fn recognise(dsn_parts: &[String], report: &mut BounceReport) -> bool {
    for part in dsn_parts {
        let (msg, recipients) = parse_dsn(part);
        report.reporting_mta = report.reporting_mta.take().or(msg.reporting_mta);
        report.original_envelope_id = report
            .original_envelope_id
            .take()
            .or(msg.original_envelope_id);
        report.original.envelope_sender = report.original.envelope_sender.take().or(msg
            .sender
            .map(|s| clean_address(&s))
            .filter(|s| !s.is_empty()));
        report.recipients.extend(recipients);
    }
    !report.recipients.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_groups_and_a_folded_diagnostic() {
        let text = "Reporting-MTA: dns; mx.example.org\nOriginal-Envelope-Id: abc\n\n\
            Final-Recipient: rfc822; a@example.jp\nAction: failed\nStatus: 5.1.1\n\
            Diagnostic-Code: smtp; 550 5.1.1 <a@example.jp>...\n  User Unknown\n\n\
            Original-Recipient: rfc822;B@example.jp\nFinal-Recipient: rfc822; b@example.jp\nAction: delayed\nStatus: 4.4.7\n";
        let (msg, r) = parse_dsn(text);
        assert_eq!(msg.reporting_mta.as_deref(), Some("mx.example.org"));
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 5.1.1 <a@example.jp>... User Unknown")
        );
        assert_eq!(r[1].original_recipient.as_deref(), Some("b@example.jp"));
        assert_eq!(r[1].status.map(|s| s.to_string()).as_deref(), Some("4.4.7"));
    }

    #[test]
    fn recipient_field_last_in_its_group() {
        let text = "Reporting-MTA: dns; m.test\n\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 no such user\nFinal-Recipient: rfc822; z@x.test\n";
        let r = parse_dsn(text).1;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].action.as_deref(), Some("failed"));
        assert_eq!(r[0].diagnostic.as_deref(), Some("550 no such user"));
    }

    #[test]
    fn groups_without_blank_lines_still_split() {
        let text = "Final-Recipient: rfc822; a@x.test\nAction: failed\nStatus: 5.0.0\nFinal-Recipient: rfc822; b@x.test\nAction: failed\n";
        assert_eq!(parse_dsn(text).1.len(), 2);
    }
}
