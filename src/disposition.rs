//! The one place that turns delivery outcomes into state: recipient statuses,
//! events, suppression entries, the next attempt or expiry (SPEC §1). A reply
//! maps to a status as: 2xx → delivered; 4xx → deferred; 5xx → bounced (class
//! hard, and the address is suppressed), failed (class block, not suppressed)
//! or deferred (class soft, e.g. 552 mailbox full).

use crate::classify::classify_reply;
use crate::model::{Class, Event, EventKind, Reason, Reply, Source, Status, Suppression, SuppressionReason, Verdict};
use crate::relay::Relay;
use crate::store::queue::MessageRecord;
use crate::store::{StoreError, WriteSet};
use crate::time::Timestamp;

/// What one recipient's reply means.
pub fn decide(reply: &Reply) -> (Status, Verdict) {
    let v = classify_reply(reply);
    let status = if reply.is_positive() {
        Status::Delivered
    } else if reply.is_transient() {
        Status::Deferred
    } else {
        match v.class {
            Class::Hard => Status::Bounced,
            Class::Soft => Status::Deferred,
            _ => Status::Failed,
        }
    };
    (status, v)
}

/// The result of one attempt for one recipient (index into the record's recipients).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub index: usize,
    pub reply: Reply,
    pub remote_host: Option<String>,
}

/// Applies an attempt's outcomes to `rec` and returns the write set and events.
/// Schedules the next attempt, or expires what is still pending when the plan says so.
pub fn apply_attempt(relay: &Relay, rec: &mut MessageRecord, outcomes: &[Outcome], now: Timestamp) -> Result<(WriteSet, Vec<Event>), StoreError> {
    let mut ws = WriteSet::new();
    let mut events = Vec::new();
    let old_due = rec.next_attempt;
    rec.attempts += 1;
    let next = relay.retry.next_attempt(rec.received, rec.attempts, now);
    for o in outcomes {
        let Some(r) = rec.recipients.get_mut(o.index) else { continue };
        let (status, verdict) = decide(&o.reply);
        r.status = status;
        r.attempts += 1;
        r.last_diagnostic = Some(o.reply.diagnostic());
        let mut ev = Event::new(status.into(), now).with_reply(&o.reply).with_verdict(&verdict);
        fill(&mut ev, rec, o.index);
        ev.source = Some(Source::Delivery);
        ev.attempt = Some(rec.recipients[o.index].attempts);
        ev.remote_host = o.remote_host.clone();
        if status == Status::Deferred {
            ev.next_attempt = next;
        }
        let ev = relay.record(&mut ws, ev)?;
        if status == Status::Bounced {
            suppress(relay, &mut ws, &rec.recipients[o.index].address, SuppressionReason::HardBounce, &ev, &mut events)?;
        }
        events.push(ev);
    }
    rec.next_attempt = if rec.is_finished() { None } else { next };
    if rec.next_attempt.is_none() && !rec.is_finished() {
        expire_pending(relay, rec, now, &mut ws, &mut events)?;
    }
    ws.put_message(rec, old_due);
    Ok((ws, events))
}

/// Marks every still-pending recipient `expired` (max_age passed).
pub fn expire_pending(relay: &Relay, rec: &mut MessageRecord, now: Timestamp, ws: &mut WriteSet, events: &mut Vec<Event>) -> Result<(), StoreError> {
    let max_age = crate::time::format_duration(relay.retry.max_age);
    for i in 0..rec.recipients.len() {
        if rec.recipients[i].status.is_final() {
            continue;
        }
        let last = rec.recipients[i].last_diagnostic.clone().unwrap_or_else(|| "no attempt completed".into());
        rec.recipients[i].status = Status::Expired;
        let mut ev = Event::new(EventKind::Expired, now);
        fill(&mut ev, rec, i);
        ev.source = Some(Source::Scheduler);
        ev.class = Some(Class::Soft);
        ev.reason = Some(Reason::Expired);
        ev.attempt = Some(rec.recipients[i].attempts);
        ev.diagnostic = Some(format!("delivery time expired after {max_age}; last: {last}"));
        events.push(relay.record(ws, ev)?);
    }
    rec.next_attempt = None;
    Ok(())
}

/// Fills queue id, message id and recipient from the record.
pub fn fill(ev: &mut Event, rec: &MessageRecord, index: usize) {
    ev.queue_id = Some(rec.queue_id());
    ev.message_id = rec.message_id.clone();
    ev.recipient = rec.recipients.get(index).map(|r| r.address.clone());
}

/// Adds `address` to the suppression list unless it is already there.
pub fn suppress(relay: &Relay, ws: &mut WriteSet, address: &str, reason: SuppressionReason, cause: &Event, events: &mut Vec<Event>) -> Result<(), StoreError> {
    if relay.store.suppression(address)?.is_some() {
        return Ok(());
    }
    let entry = Suppression { address: address.to_string(), reason, time: cause.time, diagnostic: cause.diagnostic.clone(), event_id: Some(cause.id.clone()) };
    ws.put_suppression(&entry);
    let mut ev = Event::new(EventKind::SuppressionAdded, cause.time);
    ev.recipient = Some(address.to_string());
    ev.queue_id = cause.queue_id.clone();
    ev.message_id = cause.message_id.clone();
    ev.diagnostic = Some(format!("{reason}: {}", cause.diagnostic.clone().unwrap_or_default()));
    ev.source = cause.source;
    events.push(relay.record(ws, ev)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EnhancedCode;

    fn r(code: u16, e: &str, text: &str) -> Reply {
        Reply::remote(code, EnhancedCode::parse(e), text)
    }

    #[test]
    fn replies_map_to_statuses() {
        assert_eq!(decide(&r(250, "2.0.0", "ok")).0, Status::Delivered);
        assert_eq!(decide(&r(451, "4.7.1", "greylisted")).0, Status::Deferred);
        assert_eq!(decide(&r(450, "4.1.1", "user unknown (temporary)")).0, Status::Deferred);
        assert_eq!(decide(&r(550, "5.1.1", "user unknown")).0, Status::Bounced);
        assert_eq!(decide(&r(552, "5.2.2", "mailbox full")).0, Status::Deferred);
    }
}
