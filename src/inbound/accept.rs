//! Intake on the queue: the [`Intake`] implementation SMTP sessions use. It
//! splits a submission into relay recipients (queued, or `dropped` when
//! suppressed) and bounce-domain recipients (returned mail, handed to
//! [`crate::feedback::returned`]), stores record, body, schedule entry and events in one
//! write set, and resolves only once the group commit has flushed them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::config::OnSuppressed;
use crate::daemon::state::Daemon;
use crate::inbound::intake::{Intake, IntakeError, RcptDecision, Receipt, Submission};
use crate::model::address::Address;
use crate::model::{Event, Source};
use crate::records::enqueue::{NewMessage, free_space, is_bounce_domain, queue_message};
use crate::store::queue::{MessageRecord, format_queue_id};
use crate::store::{StoreError, WriteSet};

/// The queue's side of SMTP intake.
#[derive(Debug, Clone)]
pub struct QueueIntake {
    pub daemon: Arc<Daemon>,
}

impl Intake for QueueIntake {
    fn accepting(&self) -> Result<(), IntakeError> {
        let r = &self.daemon;
        if r.shutting_down.load(Ordering::SeqCst) {
            return Err(IntakeError::ShuttingDown);
        }
        if r.committer.is_poisoned() {
            return Err(IntakeError::StorageFailed(
                "store poisoned after a failed flush".into(),
            ));
        }
        match free_space(&r.cfg.server.data_dir) {
            Some(free) if free < r.cfg.smtp.min_free_space.0 => {
                Err(IntakeError::InsufficientStorage)
            }
            _ => Ok(()),
        }
    }

    fn check_recipient(&self, rcpt: &Address) -> RcptDecision {
        let r = &self.daemon;
        if is_bounce_domain(r, rcpt) {
            return RcptDecision::BounceIntake;
        }
        if r.cfg.suppression.on_suppressed == OnSuppressed::Reject
            && let Ok(Some(s)) = r.store.suppression(rcpt.as_str())
        {
            return RcptDecision::RejectSuppressed(s.reason);
        }
        RcptDecision::Relay
    }

    async fn submit(&self, sub: Submission) -> Result<Receipt, IntakeError> {
        self.accepting()?;
        let daemon = self.daemon.clone();
        let built = build_submission(&daemon, sub).map_err(storage)?;
        daemon
            .commit(built.ws, &built.events)
            .await
            .map_err(storage)?;
        daemon.wake.notify_one();
        notify_late_failures(&daemon, &built.late_failures, &built.events).await;
        Ok(built
            .id
            .map_or_else(Receipt::report_received, |queue_id| Receipt { queue_id }))
    }
}

fn storage(e: StoreError) -> IntakeError {
    tracing::error!(error = %e, "could not store a message");
    IntakeError::StorageFailed(e.to_string())
}

/// With `bounces.notify_sender`, tells the original senders of `failed` messages about the
/// recipients that a returned report showed to have failed for good (after the report's
/// effects were stored).
pub async fn notify_late_failures(daemon: &Daemon, failed: &[MessageRecord], events: &[Event]) {
    for rec in failed {
        if let Err(e) = crate::delivery::sender_dsn::maybe_notify(daemon, rec, events).await {
            tracing::error!(queue_id = %rec.queue_id(), error = %e, "could not queue the sender DSN for a late failure");
        }
    }
}

/// One submission's write set, its events, the queue id (none for returned reports only) and the messages a returned report
/// showed to have failed after delivery.
struct Built {
    ws: WriteSet,
    events: Vec<Event>,
    id: Option<String>,
    late_failures: Vec<MessageRecord>,
}

/// Builds the write set for one submission. Returned mail to any number of bounce-domain
/// recipients is parsed and stored once.
fn build_submission(daemon: &Daemon, sub: Submission) -> Result<Built, StoreError> {
    let mut ws = WriteSet::new();
    let (returned, outgoing): (Vec<_>, Vec<_>) = sub
        .recipients
        .iter()
        .partition(|r| is_bounce_domain(daemon, &r.address));
    let (mut events, mut late_failures) = (Vec::new(), Vec::new());
    if !returned.is_empty() {
        let rcpts: Vec<&str> = returned.iter().map(|r| r.address.as_str()).collect();
        let peer = sub.session.peer.ip().to_string();
        let origin = crate::feedback::returned::Origin::Smtp {
            rcpts: &rcpts,
            peer: &peer,
        };
        let done = crate::feedback::returned::ingest(daemon, &sub.body, origin, &mut ws)?;
        events = done.events;
        late_failures = done.failed;
    }
    if outgoing.is_empty() {
        return Ok(Built {
            ws,
            events,
            id: None,
            late_failures,
        });
    }
    let new = NewMessage {
        sender: sub.sender.map(|a| a.to_string()).unwrap_or_default(),
        recipients: outgoing
            .iter()
            .map(|r| (r.address.to_string(), r.orcpt.clone(), r.notify))
            .collect(),
        env_id: sub.env_id,
        ret: sub.ret,
        client: sub.session.peer.ip().to_string(),
        auth_user: sub.session.auth_user,
        is_dsn: false,
        source: Source::Smtp,
        body: sub.body,
    };
    let id = queue_message(daemon, new, &mut ws, &mut events)?;
    Ok(Built {
        ws,
        events,
        id: Some(format_queue_id(id)),
        late_failures,
    })
}
