//! Returned mail: DSNs, NDRs, ARF complaints and auto-replies that come back to
//! the bounce domain (by SMTP, `rebound ingest` or `POST /v1/ingest`). Each is
//! parsed, tied to the exact message and recipient — by its signed VERP tag, or
//! else by the original Message-ID in the embedded headers — and applied per
//! SPEC §1. Anything forged, unsigned, expired or unmatched is recorded as an
//! `unverified` event with the parse result and changes nothing.

use crate::address::suppression_key;
use crate::bounce::{BounceReport, RecipientReport};
use crate::disposition::{fill, suppress};
use crate::model::{Class, Event, EventKind, Source, Status, SuppressionReason};
use crate::relay::Relay;
use crate::store::queue::MessageRecord;
use crate::store::{StoreError, WriteSet};
use crate::verp::VerpError;

/// At most this many recipients of one report are acted on (a report naming
/// thousands of addresses must not empty the list by itself).
pub const MAX_RECIPIENTS_PER_REPORT: usize = 100;

/// Where a report points.
enum Target {
    /// A valid VERP tag: this message, this recipient index.
    Tagged(MessageRecord, usize),
    /// The original Message-ID matched one of our messages.
    ByMessageId(MessageRecord),
    /// Not trusted, with the reason.
    Untrusted(String),
}

/// Parses `raw` and applies what it says; returns the events added to `ws`.
pub fn ingest(relay: &Relay, raw: &[u8], envelope_rcpt: Option<&str>, ws: &mut WriteSet) -> Result<Vec<Event>, StoreError> {
    if let Some(events) = crate::unsubscribe::by_mail(relay, raw, envelope_rcpt, ws)? {
        return Ok(events);
    }
    let report = crate::bounce::parse(raw);
    let target = find_target(relay, raw, &report, envelope_rcpt)?;
    let mut events = Vec::new();
    match target {
        Target::Tagged(mut rec, idx) => apply_tagged(relay, &mut rec, idx, &report, ws, &mut events)?,
        Target::ByMessageId(mut rec) => apply_by_message_id(relay, &mut rec, &report, ws, &mut events)?,
        Target::Untrusted(why) => events.push(unverified(relay, &report, None, &why, ws)?),
    }
    Ok(events)
}

fn find_target(relay: &Relay, raw: &[u8], report: &BounceReport, envelope_rcpt: Option<&str>) -> Result<Target, StoreError> {
    let validity = relay.cfg.bounces.tag_validity.0;
    let candidates = envelope_rcpt.into_iter().map(str::to_string).chain(verp_addresses(raw, relay.verp.domain()));
    let mut tag_problem = None;
    for addr in candidates {
        match relay.verp.verify(&addr, relay.now(), validity) {
            Ok(tag) => {
                return Ok(match relay.store.message(tag.queue_id)? {
                    Some(rec) if (tag.rcpt_index as usize) < rec.recipients.len() => Target::Tagged(rec, tag.rcpt_index as usize),
                    _ => Target::Untrusted("VERP tag names a message no longer kept".into()),
                });
            }
            Err(VerpError::NotOurs) => {}
            Err(e) => tag_problem = Some(format!("VERP tag rejected: {e}")),
        }
    }
    if let Some(why) = tag_problem {
        return Ok(Target::Untrusted(why));
    }
    let mid = report.original_message_id.clone().or_else(|| report.original.message_id.clone());
    if let Some(mid) = mid {
        if let Some(id) = relay.store.message_by_message_id(&mid)?
            && let Some(rec) = relay.store.message(id)?
        {
            return Ok(Target::ByMessageId(rec));
        }
        return Ok(Target::Untrusted(format!("no message of ours has Message-ID {mid}")));
    }
    Ok(Target::Untrusted("no VERP tag and no original Message-ID".into()))
}

/// `bounces+…@<domain>` addresses found anywhere in the raw message (headers of the
/// report, the embedded Return-Path ...), in order, without duplicates.
fn verp_addresses(raw: &[u8], domain: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(256 * 1024)]).to_ascii_lowercase();
    let suffix = format!("@{domain}");
    let mut out: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("bounces+") {
        let start = from + i;
        let tail = &text[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || "+.-_@".contains(c))).unwrap_or(tail.len());
        let cand = &tail[..end];
        if let Some(cut) = cand.find(&suffix) {
            let addr = cand[..cut + suffix.len()].to_string();
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        from = start + 8;
        if out.len() >= 8 {
            break;
        }
    }
    out
}

fn apply_tagged(relay: &Relay, rec: &mut MessageRecord, idx: usize, report: &BounceReport, ws: &mut WriteSet, events: &mut Vec<Event>) -> Result<(), StoreError> {
    let ours = suppression_key(&rec.recipients[idx].address);
    let claimed: Vec<&RecipientReport> = report.recipients.iter().filter(|r| r.recipient.is_some()).collect();
    let matching = claimed.iter().find(|r| keys_of(r).contains(&ours));
    let chosen = match (matching, claimed.is_empty()) {
        (Some(r), _) => (*r).clone(),
        (None, true) => report.recipients.first().cloned().unwrap_or_else(RecipientReport::blank),
        (None, false) => {
            let why = format!("valid VERP tag for {} but the report names {}", rec.recipients[idx].address, claimed.iter().filter_map(|r| r.recipient.clone()).collect::<Vec<_>>().join(", "));
            events.push(unverified(relay, report, Some(rec), &why, ws)?);
            return Ok(());
        }
    };
    apply_one(relay, rec, idx, &chosen, report, ws, events)?;
    let old = rec.next_attempt;
    if rec.is_finished() {
        rec.next_attempt = None;
    }
    ws.put_message(rec, old);
    Ok(())
}

fn apply_by_message_id(relay: &Relay, rec: &mut MessageRecord, report: &BounceReport, ws: &mut WriteSet, events: &mut Vec<Event>) -> Result<(), StoreError> {
    let mut matched = 0;
    for r in report.recipients.iter().take(MAX_RECIPIENTS_PER_REPORT) {
        let keys = keys_of(r);
        let Some(idx) = rec.recipients.iter().position(|x| keys.contains(&suppression_key(&x.address))) else { continue };
        apply_one(relay, rec, idx, r, report, ws, events)?;
        matched += 1;
    }
    if matched == 0 {
        let why = format!("Message-ID matches {} but no reported recipient was one of its recipients", rec.queue_id());
        events.push(unverified(relay, report, Some(rec), &why, ws)?);
        return Ok(());
    }
    let old = rec.next_attempt;
    if rec.is_finished() {
        rec.next_attempt = None;
    }
    ws.put_message(rec, old);
    Ok(())
}

fn keys_of(r: &RecipientReport) -> Vec<Option<String>> {
    let strip = |s: &String| s.rsplit(';').next().unwrap_or(s).trim().to_string();
    [r.recipient.as_ref(), r.original_recipient.as_ref()].into_iter().flatten().map(|s| suppression_key(&strip(s))).filter(Option::is_some).collect()
}

/// What a report's class means for the recipient: (event, new status, suppression).
fn effect(r: &RecipientReport) -> (EventKind, Option<Status>, Option<SuppressionReason>) {
    let opt_out = r.feedback_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("opt-out") || t.eq_ignore_ascii_case("unsubscribe"));
    match r.class {
        Class::Hard => (EventKind::Bounced, Some(Status::Bounced), Some(SuppressionReason::HardBounce)),
        Class::Block => (EventKind::Failed, Some(Status::Failed), None),
        Class::Soft => (EventKind::Deferred, None, None),
        Class::Complaint if opt_out => (EventKind::Unsubscribed, Some(Status::Unsubscribed), Some(SuppressionReason::Unsubscribe)),
        Class::Complaint => (EventKind::Complained, Some(Status::Complained), Some(SuppressionReason::Complaint)),
        Class::Autoreply => (EventKind::Autoreply, None, None),
        Class::Delivered => (EventKind::Delivered, None, None),
        Class::None => (EventKind::Unverified, None, None),
    }
}

fn apply_one(relay: &Relay, rec: &mut MessageRecord, idx: usize, r: &RecipientReport, report: &BounceReport, ws: &mut WriteSet, events: &mut Vec<Event>) -> Result<(), StoreError> {
    let (kind, status, suppression) = effect(r);
    let mut ev = Event::new(kind, relay.now());
    fill(&mut ev, rec, idx);
    describe(&mut ev, r, report);
    if kind == EventKind::Unverified {
        ev.diagnostic = Some(format!("returned message is not a bounce ({} format)", report.format));
    }
    if let Some(s) = status {
        rec.recipients[idx].status = s;
        rec.recipients[idx].last_diagnostic = ev.diagnostic.clone();
    }
    let ev = relay.record(ws, ev)?;
    if let Some(reason) = suppression {
        suppress(relay, ws, &rec.recipients[idx].address.clone(), reason, &ev, events)?;
    }
    events.push(ev);
    Ok(())
}

fn describe(ev: &mut Event, r: &RecipientReport, report: &BounceReport) {
    ev.source = Some(if r.class == Class::Complaint { Source::Arf } else { Source::Dsn });
    ev.class = Some(r.class);
    ev.reason = Some(r.reason);
    ev.rule = Some(format!("{}:{}", report.format, r.rule));
    ev.reply_code = r.reply_code;
    ev.enhanced_status = r.status.map(|s| s.to_string());
    ev.diagnostic = r.diagnostic.clone();
    ev.remote_host = r.remote_mta.clone();
    ev.feedback_type = r.feedback_type.clone();
}

fn unverified(relay: &Relay, report: &BounceReport, rec: Option<&MessageRecord>, why: &str, ws: &mut WriteSet) -> Result<Event, StoreError> {
    let first = report.recipients.first().cloned().unwrap_or_else(RecipientReport::blank);
    let mut ev = Event::new(EventKind::Unverified, relay.now());
    describe(&mut ev, &first, report);
    ev.recipient = first.recipient.clone();
    if let Some(rec) = rec {
        ev.queue_id = Some(rec.queue_id());
        ev.message_id = rec.message_id.clone();
    }
    let summary = first.diagnostic.clone().unwrap_or_default();
    ev.diagnostic = Some(format!("{why}; parsed as {} {} ({}){}", report.format, first.class.as_str(), first.reason, if summary.is_empty() { String::new() } else { format!(": {summary}") }));
    tracing::warn!(reason = why, "returned message not trusted");
    relay.record(ws, ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_verp_addresses_in_raw_text() {
        let raw = b"To: Bounces+ABCdef234@Bounces.Example.com\r\nX: <bounces+zzz@other.example>\r\n\r\nReturn-Path: <bounces+abcdef234@bounces.example.com>\r\n";
        assert_eq!(verp_addresses(raw, "bounces.example.com"), vec!["bounces+abcdef234@bounces.example.com".to_string()]);
    }
}
