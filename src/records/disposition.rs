//! The one place that turns what became known about a recipient into state: its
//! status, the event in its communications log and the suppression list (README,
//! "Recipient lifecycle"). Every source goes through [`effect`]: a delivery reply,
//! an authenticated returned report, an unsubscribe, expiry and a drop.
//!
//! A reply at delivery time: 2xx → `delivered`; 4xx → `deferred`; 5xx → `bounced`
//! (class hard, suppressed), `deferred` only for the soft reasons that clear by
//! themselves ([`retried_after_5xx`]: a full mailbox, a rate limit), else `failed`
//! (not suppressed, not retried; `suspend`, a disabled mailbox, is one of these).
//! A returned report is read on two axes: its action (did *this message* fail for
//! good?) and its class (is the *address* dead?); see [`report_effect`].

use crate::classify::classify_reply;
use crate::daemon::state::Daemon;
use crate::model::time::Timestamp;
use crate::model::{
    Action, Class, Event, EventKind, Reason, Reply, Source, Status, Suppression, SuppressionReason,
    Verdict,
};
use crate::store::queue::MessageRecord;
use crate::store::{StoreError, WriteSet};

/// What became known about one (message, recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// The next hop answered a delivery attempt; `status` from [`decide`].
    Reply(Status),
    /// An authenticated returned report: its class, its action, and whether an ARF report
    /// is an opt-out (`Feedback-Type: opt-out`/`unsubscribe`).
    Report {
        class: Class,
        action: Action,
        opt_out: bool,
    },
    /// The recipient unsubscribed (one-click or mailto).
    Unsubscribe,
    /// `delivery.max_age` passed without success.
    Expired,
    /// Submitted to an address on the suppression list.
    Suppressed,
}

/// What a finding does: the event it records, the status it sets (if any) and the
/// suppression entry it adds (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    pub event: EventKind,
    pub status: Option<Status>,
    pub suppress: Option<SuppressionReason>,
}

const fn eff(
    event: EventKind,
    status: Option<Status>,
    suppress: Option<SuppressionReason>,
) -> Effect {
    Effect {
        event,
        status,
        suppress,
    }
}

/// The whole table: every finding's effect.
pub fn effect(f: Finding) -> Effect {
    match f {
        Finding::Reply(Status::Bounced) => eff(
            EventKind::Bounced,
            Some(Status::Bounced),
            Some(SuppressionReason::HardBounce),
        ),
        Finding::Reply(s) => eff(s.into(), Some(s), None),
        Finding::Report {
            class,
            action,
            opt_out,
        } => report_effect(class, action, opt_out),
        Finding::Unsubscribe => eff(
            EventKind::Unsubscribed,
            Some(Status::Unsubscribed),
            Some(SuppressionReason::Unsubscribe),
        ),
        Finding::Expired => eff(EventKind::Expired, Some(Status::Expired), None),
        Finding::Suppressed => eff(EventKind::Dropped, Some(Status::Dropped), None),
    }
}

/// A returned report: `failed` ends the recipient `bounced` (class hard: suppressed) or
/// `failed` (any other failure class, soft reasons such as a full mailbox included: not
/// suppressed); `delayed` only records a `delayed` event; a success report makes a still
/// pending recipient `delivered` (see [`replaces`]); complaints and opt-outs suppress.
/// `None` means the report is not a bounce: the caller keeps it in the security log.
pub fn report_effect(class: Class, action: Action, opt_out: bool) -> Effect {
    use Action::{Delayed, Delivered, Expanded, Failed, Relayed};
    match (class, action, opt_out) {
        (Class::Complaint, _, true) => eff(
            EventKind::Unsubscribed,
            Some(Status::Unsubscribed),
            Some(SuppressionReason::Unsubscribe),
        ),
        (Class::Complaint, _, false) => eff(
            EventKind::Complained,
            Some(Status::Complained),
            Some(SuppressionReason::Complaint),
        ),
        (Class::Hard, Failed, _) => eff(
            EventKind::Bounced,
            Some(Status::Bounced),
            Some(SuppressionReason::HardBounce),
        ),
        (Class::Soft | Class::Block, Failed, _) => {
            eff(EventKind::Failed, Some(Status::Failed), None)
        }
        (Class::Hard | Class::Soft | Class::Block, Delayed, _) => {
            eff(EventKind::Delayed, None, None)
        }
        // A success action outranks a failure class the words may have suggested.
        (
            Class::Hard | Class::Soft | Class::Block | Class::Delivered,
            Delivered | Relayed | Expanded,
            _,
        ) => eff(EventKind::Delivered, Some(Status::Delivered), None),
        (Class::Delivered, Failed | Delayed, _) => {
            eff(EventKind::Delivered, Some(Status::Delivered), None)
        }
        (Class::Autoreply, _, _) => eff(EventKind::Autoreply, None, None),
        (Class::Unclassified, _, _) => eff(EventKind::Unverified, None, None),
    }
}

/// A 5xx reply whose reason clears by itself is retried like a 4xx (a full mailbox empties,
/// a rate limit lifts); every other 5xx is final.
pub fn retried_after_5xx(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::MailboxFull
            | Reason::SystemFull
            | Reason::TooManyConn
            | Reason::RateLimited
            | Reason::Speeding
    )
}

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
            Class::Soft if retried_after_5xx(v.reason) => Status::Deferred,
            _ => Status::Failed,
        }
    };
    (status, v)
}

/// Whether a new status from a returned report may replace `current`: a person's wish
/// (complained, unsubscribed) is never overwritten by a failure, and a dead address
/// (`bounced`) is not turned back into a mere `failed`.
/// A success report only ends a recipient that was still pending.
pub fn replaces(current: Status, new: Status) -> bool {
    match (current, new) {
        (Status::Complained | Status::Unsubscribed, Status::Bounced | Status::Failed) => false,
        (Status::Bounced, Status::Failed) => false,
        (c, Status::Delivered) => matches!(c, Status::Queued | Status::Deferred),
        _ => current != new,
    }
}

/// Applies `effect` to recipient `idx` of `rec`: sets the status (when it replaces the current
/// one), records `ev` (already described by the caller) and adds the suppression entry.
/// Returns the recorded event, or `None` when the status could not change and the event
/// would only repeat one already recorded.
pub fn apply_effect(
    daemon: &Daemon,
    rec: &mut MessageRecord,
    idx: usize,
    effect: Effect,
    mut ev: Event,
    ws: &mut WriteSet,
    events: &mut Vec<Event>,
) -> Result<Option<Event>, StoreError> {
    let Some(r) = rec.recipients.get_mut(idx) else {
        return Ok(None);
    };
    if let Some(s) = effect.status {
        if !replaces(r.status, s) {
            return Ok(None);
        }
        r.status = s;
        r.last_diagnostic = ev.diagnostic.clone();
    }
    ev.status = effect.event;
    fill(&mut ev, rec, idx);
    let ev = daemon.record(ws, ev)?;
    if let Some(reason) = effect.suppress {
        let address = rec.recipients[idx].address.clone();
        suppress(daemon, ws, &address, reason, &ev, events)?;
    }
    events.push(ev.clone());
    Ok(Some(ev))
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
pub fn apply_attempt(
    daemon: &Daemon,
    rec: &mut MessageRecord,
    outcomes: &[Outcome],
    now: Timestamp,
) -> Result<(WriteSet, Vec<Event>), StoreError> {
    let mut ws = WriteSet::new();
    let mut events = Vec::new();
    let old_due = rec.next_attempt;
    rec.attempts += 1;
    let next = daemon.retry.next_attempt(rec.received, rec.attempts, now);
    for o in outcomes {
        let Some(r) = rec.recipients.get_mut(o.index) else {
            continue;
        };
        let (status, verdict) = decide(&o.reply);
        let effect = effect(Finding::Reply(status));
        r.status = status;
        r.attempts += 1;
        r.last_diagnostic = Some(o.reply.diagnostic());
        let mut ev = Event::new(effect.event, now)
            .with_reply(&o.reply)
            .with_verdict(&verdict);
        fill(&mut ev, rec, o.index);
        ev.source = Some(Source::Delivery);
        ev.attempt = Some(rec.recipients[o.index].attempts);
        ev.remote_host = o.remote_host.clone();
        if status == Status::Deferred {
            ev.next_attempt = next;
        }
        let ev = daemon.record(&mut ws, ev)?;
        if let Some(reason) = effect.suppress {
            suppress(
                daemon,
                &mut ws,
                &rec.recipients[o.index].address,
                reason,
                &ev,
                &mut events,
            )?;
        }
        events.push(ev);
    }
    rec.next_attempt = if rec.is_finished() { None } else { next };
    if rec.next_attempt.is_none() && !rec.is_finished() {
        expire_pending(daemon, rec, now, &mut ws, &mut events)?;
    }
    ws.put_message(rec, old_due)?;
    Ok((ws, events))
}

/// Marks every still-pending recipient `expired` (max_age passed).
pub fn expire_pending(
    daemon: &Daemon,
    rec: &mut MessageRecord,
    now: Timestamp,
    ws: &mut WriteSet,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let max_age = crate::model::time::format_duration(daemon.retry.max_age);
    for i in 0..rec.recipients.len() {
        if rec.recipients[i].status.is_final() {
            continue;
        }
        let last = rec.recipients[i]
            .last_diagnostic
            .clone()
            .unwrap_or_else(|| "no attempt completed".into());
        let effect = effect(Finding::Expired);
        rec.recipients[i].status = effect.status.unwrap_or(Status::Expired);
        let mut ev = Event::new(effect.event, now);
        fill(&mut ev, rec, i);
        ev.source = Some(Source::Scheduler);
        ev.class = Some(Class::Soft);
        ev.reason = Some(Reason::Expired);
        ev.attempt = Some(rec.recipients[i].attempts);
        ev.diagnostic = Some(format!(
            "delivery time expired after {max_age}; last: {last}"
        ));
        events.push(daemon.record(ws, ev)?);
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
pub fn suppress(
    daemon: &Daemon,
    ws: &mut WriteSet,
    address: &str,
    reason: SuppressionReason,
    cause: &Event,
    events: &mut Vec<Event>,
) -> Result<(), StoreError> {
    if daemon.store.suppression(address)?.is_some() {
        return Ok(());
    }
    let entry = Suppression {
        address: address.to_string(),
        reason,
        time: cause.time,
        diagnostic: cause.diagnostic.clone(),
        event_id: Some(cause.id.clone()),
    };
    ws.put_suppression(&entry);
    let mut ev = Event::new(EventKind::SuppressionAdded, cause.time);
    ev.recipient = Some(address.to_string());
    ev.queue_id = cause.queue_id.clone();
    ev.message_id = cause.message_id.clone();
    ev.diagnostic = Some(format!(
        "{reason}: {}",
        cause.diagnostic.clone().unwrap_or_default()
    ));
    ev.source = cause.source;
    events.push(daemon.record(ws, ev)?);
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
        assert_eq!(
            decide(&r(450, "4.1.1", "user unknown (temporary)")).0,
            Status::Deferred
        );
        assert_eq!(decide(&r(550, "5.1.1", "user unknown")).0, Status::Bounced);
        assert_eq!(decide(&r(552, "5.2.2", "mailbox full")).0, Status::Deferred);
        // A disabled mailbox at RCPT is final and not a dead address: failed, never retried for 72 h.
        assert_eq!(
            decide(&r(550, "5.2.1", "mailbox disabled")).0,
            Status::Failed
        );
        assert_eq!(decide(&r(554, "5.7.1", "spam")).0, Status::Failed);
    }

    /// Every (class, action) pair of a returned report, and the opt-out flag for complaints.
    #[test]
    fn every_report_class_and_action_has_one_effect() {
        use Action::*;
        use EventKind as K;
        let hard = Some(SuppressionReason::HardBounce);
        type Row = (
            Class,
            Action,
            EventKind,
            Option<Status>,
            Option<SuppressionReason>,
        );
        let table: [Row; 35] = [
            (Class::Hard, Failed, K::Bounced, Some(Status::Bounced), hard),
            (Class::Hard, Delayed, K::Delayed, None, None),
            (
                Class::Hard,
                Delivered,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Hard,
                Relayed,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Hard,
                Expanded,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (Class::Soft, Failed, K::Failed, Some(Status::Failed), None),
            (Class::Soft, Delayed, K::Delayed, None, None),
            (
                Class::Soft,
                Delivered,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Soft,
                Relayed,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Soft,
                Expanded,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (Class::Block, Failed, K::Failed, Some(Status::Failed), None),
            (Class::Block, Delayed, K::Delayed, None, None),
            (
                Class::Block,
                Delivered,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Block,
                Relayed,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Block,
                Expanded,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Delivered,
                Failed,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Delivered,
                Delayed,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Delivered,
                Delivered,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Delivered,
                Relayed,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Delivered,
                Expanded,
                K::Delivered,
                Some(Status::Delivered),
                None,
            ),
            (
                Class::Complaint,
                Failed,
                K::Complained,
                Some(Status::Complained),
                Some(SuppressionReason::Complaint),
            ),
            (
                Class::Complaint,
                Delayed,
                K::Complained,
                Some(Status::Complained),
                Some(SuppressionReason::Complaint),
            ),
            (
                Class::Complaint,
                Delivered,
                K::Complained,
                Some(Status::Complained),
                Some(SuppressionReason::Complaint),
            ),
            (
                Class::Complaint,
                Relayed,
                K::Complained,
                Some(Status::Complained),
                Some(SuppressionReason::Complaint),
            ),
            (
                Class::Complaint,
                Expanded,
                K::Complained,
                Some(Status::Complained),
                Some(SuppressionReason::Complaint),
            ),
            (Class::Autoreply, Failed, K::Autoreply, None, None),
            (Class::Autoreply, Delayed, K::Autoreply, None, None),
            (Class::Autoreply, Delivered, K::Autoreply, None, None),
            (Class::Autoreply, Relayed, K::Autoreply, None, None),
            (Class::Autoreply, Expanded, K::Autoreply, None, None),
            (Class::Unclassified, Failed, K::Unverified, None, None),
            (Class::Unclassified, Delayed, K::Unverified, None, None),
            (Class::Unclassified, Delivered, K::Unverified, None, None),
            (Class::Unclassified, Relayed, K::Unverified, None, None),
            (Class::Unclassified, Expanded, K::Unverified, None, None),
        ];
        for (class, action, event, status, suppress) in table {
            assert_eq!(
                report_effect(class, action, false),
                Effect {
                    event,
                    status,
                    suppress
                },
                "{class:?} {action:?}"
            );
        }
        for action in Action::ALL {
            let e = report_effect(Class::Complaint, action, true);
            assert_eq!(
                (e.event, e.status, e.suppress),
                (
                    K::Unsubscribed,
                    Some(Status::Unsubscribed),
                    Some(SuppressionReason::Unsubscribe)
                )
            );
        }
    }

    #[test]
    fn other_findings_and_precedence() {
        assert_eq!(
            effect(Finding::Reply(Status::Bounced)).suppress,
            Some(SuppressionReason::HardBounce)
        );
        assert_eq!(effect(Finding::Reply(Status::Failed)).suppress, None);
        assert_eq!(effect(Finding::Expired).status, Some(Status::Expired));
        assert_eq!(effect(Finding::Suppressed).event, EventKind::Dropped);
        assert_eq!(
            effect(Finding::Unsubscribe).suppress,
            Some(SuppressionReason::Unsubscribe)
        );
        assert!(replaces(Status::Delivered, Status::Failed));
        assert!(replaces(Status::Delivered, Status::Bounced));
        assert!(replaces(Status::Failed, Status::Bounced));
        assert!(!replaces(Status::Bounced, Status::Failed));
        assert!(!replaces(Status::Unsubscribed, Status::Bounced));
        assert!(!replaces(Status::Complained, Status::Failed));
        assert!(!replaces(Status::Bounced, Status::Bounced));
        assert!(replaces(Status::Deferred, Status::Delivered));
        assert!(!replaces(Status::Bounced, Status::Delivered));
        assert!(!replaces(Status::Delivered, Status::Delivered));
    }
}
