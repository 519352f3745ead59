//! The queue as operators see it: list, show, retry now, delete, and resend of
//! a stored message as a new queue entry linked to the old one.

use serde::Serialize;

use super::{AdminError, parse_id};
use crate::daemon::state::Daemon;
use crate::model::address::Address;
use crate::model::time::Timestamp;
use crate::model::{Event, EventKind, Source, Status};
use crate::records::enqueue::base_event;
use crate::store::events::EventQuery;
use crate::store::queue::{MessageRecord, RcptRecord, format_queue_id, new_queue_id};
use crate::store::{TreeId, WriteSet};

/// Most events shown with one message.
const SHOW_EVENTS: usize = 1000;

/// One recipient of a message, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RcptView {
    pub address: String,
    pub status: Status,
    pub attempts: u32,
    pub last_diagnostic: Option<String>,
}

/// A queued (or finished, kept for resend) message, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub queue_id: String,
    pub received: Timestamp,
    pub sender: String,
    pub message_id: Option<String>,
    pub client: String,
    pub auth_user: Option<String>,
    pub size: u64,
    pub attempts: u32,
    pub next_attempt: Option<Timestamp>,
    pub finished: bool,
    /// The body is still stored, so the message can be resent.
    pub body_kept: bool,
    pub resent_from: Option<String>,
    pub recipients: Vec<RcptView>,
    /// Only filled by [`show`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
}

impl MessageView {
    fn of(daemon: &Daemon, rec: &MessageRecord) -> MessageView {
        MessageView {
            queue_id: rec.queue_id(),
            received: rec.received,
            sender: rec.sender.clone(),
            message_id: rec.message_id.clone(),
            client: rec.client.clone(),
            auth_user: rec.auth_user.clone(),
            size: rec.size,
            attempts: rec.attempts,
            next_attempt: rec.next_attempt,
            finished: rec.is_finished(),
            body_kept: daemon.store.has_body(rec.id).unwrap_or(false),
            resent_from: rec.resent_from.map(format_queue_id),
            recipients: rec
                .recipients
                .iter()
                .map(|r| RcptView {
                    address: r.address.clone(),
                    status: r.status,
                    attempts: r.attempts,
                    last_diagnostic: r.last_diagnostic.clone(),
                })
                .collect(),
            events: None,
        }
    }
}

/// One page of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueuePage {
    pub items: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

/// Messages in queue-id order after `cursor`; unfinished only unless `all`.
pub fn list_queue(
    daemon: &Daemon,
    all: bool,
    cursor: Option<&str>,
    limit: usize,
) -> Result<QueuePage, AdminError> {
    let limit = limit.clamp(1, 1000);
    let mut after = match cursor {
        Some(c) => Some(crate::store::queue::parse_queue_id(c).ok_or_else(|| {
            AdminError::bad("cursor", format!("{c:?} is not a cursor from this list"))
        })?),
        None => None,
    };
    let mut items = Vec::new();
    loop {
        let batch = daemon.store.messages_after(after, 256)?;
        let done = batch.len() < 256;
        for rec in batch {
            after = Some(rec.id);
            if !all && rec.is_finished() {
                continue;
            }
            if items.len() == limit {
                let next = items.last().map(|m: &MessageView| m.queue_id.clone());
                return Ok(QueuePage {
                    items,
                    next_cursor: next,
                });
            }
            items.push(MessageView::of(daemon, &rec));
        }
        if done {
            return Ok(QueuePage {
                items,
                next_cursor: None,
            });
        }
    }
}

/// Loads a message by queue id, or by its Message-ID (`<...>`, as the app logged it).
fn load(daemon: &Daemon, id: &str) -> Result<MessageRecord, AdminError> {
    let id = id.trim();
    let n = if id.starts_with('<') && id.ends_with('>') {
        daemon
            .store
            .message_by_message_id(id)?
            .ok_or_else(|| AdminError::NotFound(format!("no message with Message-ID {id}")))?
    } else {
        parse_id(id)?
    };
    daemon
        .store
        .message(n)?
        .ok_or_else(|| AdminError::NotFound(format!("no message {id} in the queue")))
}

/// A message with its recipients and its events (oldest first).
pub fn show(daemon: &Daemon, id: &str) -> Result<MessageView, AdminError> {
    let rec = load(daemon, id)?;
    let mut view = MessageView::of(daemon, &rec);
    let q = EventQuery {
        queue_id: Some(rec.id),
        limit: SHOW_EVENTS,
        ascending: true,
        ..Default::default()
    };
    view.events = Some(daemon.store.query_events(&q)?.events);
    Ok(view)
}

/// Makes a message due now and wakes the scheduler.
pub async fn retry(daemon: &Daemon, id: &str) -> Result<MessageView, AdminError> {
    let mut rec = load(daemon, id)?;
    if rec.is_finished() {
        return Err(AdminError::refused(
            "finished",
            format!(
                "message {id} has no recipient waiting for delivery (use resend to send it again)"
            ),
        ));
    }
    let old_due = rec.next_attempt;
    rec.next_attempt = Some(daemon.now());
    let mut ws = WriteSet::new();
    ws.put_message(&rec, old_due)?;
    daemon.commit(ws, &[]).await?;
    daemon.wake.notify_one();
    Ok(MessageView::of(daemon, &rec))
}

/// Removes a message, its schedule entry and body; each pending recipient gets a `dropped` event.
pub async fn delete(daemon: &Daemon, id: &str) -> Result<Vec<Event>, AdminError> {
    let rec = load(daemon, id)?;
    let now = daemon.now();
    let mut ws = WriteSet::new();
    let mut events = Vec::new();
    for r in rec.recipients.iter().filter(|r| !r.status.is_final()) {
        let mut ev = base_event(EventKind::Dropped, now, &rec, &r.address);
        ev.source = Some(Source::Admin);
        ev.diagnostic = Some("deleted from the queue by an operator".into());
        events.push(daemon.record(&mut ws, ev)?);
    }
    ws.delete_message(&rec, false);
    if let Some(mid) = &rec.message_id {
        ws.remove(TreeId::MsgIds, mid.as_bytes().to_vec());
    }
    daemon.commit(ws, &events).await?;
    Ok(events)
}

/// What a resend created.
#[derive(Debug, Clone, Serialize)]
pub struct ResendResult {
    pub queue_id: String,
    pub resent_from: String,
    pub recipients: Vec<String>,
}

/// Queues the stored body of `id` again as a new message, to `to` or to the original
/// recipients. Refused when a target is suppressed (naming why) or the body is gone.
pub async fn resend(
    daemon: &Daemon,
    id: &str,
    to: Option<Address>,
) -> Result<ResendResult, AdminError> {
    let old = load(daemon, id)?;
    let body = daemon.store.body(old.id)?.ok_or_else(|| {
        AdminError::refused(
            "body_expired",
            format!(
                "the body of message {id} is no longer stored (kept {})",
                crate::model::time::format_duration(daemon.cfg.retention.bodies.0)
            ),
        )
    })?;
    let targets: Vec<String> = match to {
        Some(a) => vec![a.to_string()],
        None => old.recipients.iter().map(|r| r.address.clone()).collect(),
    };
    refuse_suppressed(daemon, &targets)?;
    let now = daemon.now();
    let new_id = new_queue_id(&daemon.store, now)?;
    let rec = resent_copy(&old, new_id, &targets, now, body.len());
    let mut ws = WriteSet::new();
    let events = record_resend(daemon, &mut ws, &old, &rec, &targets, now)?;
    ws.put_message(&rec, None)?;
    ws.insert(TreeId::Bodies, new_id.to_be_bytes().to_vec(), body);
    if let Some(mid) = &rec.message_id {
        ws.insert(
            TreeId::MsgIds,
            mid.as_bytes().to_vec(),
            new_id.to_be_bytes().to_vec(),
        );
    }
    daemon.commit(ws, &events).await?;
    daemon.wake.notify_one();
    Ok(ResendResult {
        queue_id: rec.queue_id(),
        resent_from: old.queue_id(),
        recipients: targets,
    })
}

/// The new message of a resend: `old`'s envelope and headers under `new_id`, due now, every
/// target a fresh `queued` recipient.
fn resent_copy(
    old: &MessageRecord,
    new_id: u64,
    targets: &[String],
    now: Timestamp,
    size: usize,
) -> MessageRecord {
    MessageRecord {
        id: new_id,
        received: now,
        client: "admin".into(),
        auth_user: None,
        recipients: targets
            .iter()
            .map(|a| RcptRecord {
                address: a.clone(),
                orcpt: None,
                notify: None,
                status: Status::Queued,
                attempts: 0,
                last_diagnostic: None,
            })
            .collect(),
        attempts: 0,
        next_attempt: Some(now),
        resent_from: Some(old.id),
        size: size as u64,
        ..old.clone()
    }
}

/// The events of a resend, into `ws`: `resent` for each original recipient (saying where
/// the mail went again), `queued` for each target of the new message.
fn record_resend(
    daemon: &Daemon,
    ws: &mut WriteSet,
    old: &MessageRecord,
    rec: &MessageRecord,
    targets: &[String],
    now: Timestamp,
) -> Result<Vec<Event>, AdminError> {
    let mut events = Vec::new();
    for r in &old.recipients {
        let mut gone = base_event(EventKind::Resent, now, old, &r.address);
        gone.source = Some(Source::Admin);
        gone.linked_queue_id = Some(rec.queue_id());
        gone.diagnostic = Some(format!(
            "resent to {} as {}",
            targets.join(", "),
            rec.queue_id()
        ));
        events.push(daemon.record(ws, gone)?);
    }
    for a in targets {
        let mut queued = base_event(EventKind::Queued, now, rec, a);
        queued.source = Some(Source::Admin);
        queued.linked_queue_id = Some(old.queue_id());
        events.push(daemon.record(ws, queued)?);
    }
    Ok(events)
}

fn refuse_suppressed(daemon: &Daemon, targets: &[String]) -> Result<(), AdminError> {
    let mut why = Vec::new();
    for a in targets {
        if let Some(s) = daemon.store.suppression(a)? {
            why.push(format!(
                "{a} is suppressed ({} since {}{})",
                s.reason,
                s.time,
                s.diagnostic.map(|d| format!(": {d}")).unwrap_or_default()
            ));
        }
    }
    if why.is_empty() {
        return Ok(());
    }
    Err(AdminError::refused(
        "suppressed",
        format!("resend refused: {}", why.join("; ")),
    ))
}
