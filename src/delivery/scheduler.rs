//! The delivery loop: takes due messages from the time-ordered schedule index
//! (cost proportional to what is due), runs one attempt per message (its
//! pending recipients grouped by domain, one VERP-signed transaction per
//! recipient), and hands the replies to [`crate::records::disposition`]. In-flight
//! messages are tracked in memory; after a crash their schedule entries are
//! still due, so delivery is at-least-once.
//!
//! An attempt starts only while the store can record its outcome: when the
//! store is faulted (a failed write or flush) the loop starts nothing, and an
//! attempt that finished but could not be recorded keeps its outcome in memory
//! (the message stays in flight, so it is not sent again); those outcomes are
//! written first once the store recovers. Outcomes still held at shutdown are
//! saved to the store's journal and recorded at the next start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::daemon::state::Daemon;
use crate::delivery::outbound::{Deliver, Transaction};
use crate::feedback::verp::VerpTag;
use crate::model::address::Address;
use crate::model::time::Timestamp;
use crate::model::{EnhancedCode, Event, Reply, Status};
use crate::records::disposition::{Outcome, apply_attempt, expire_pending};
use crate::store::queue::{MessageRecord, schedule_key};
use crate::store::{StoreError, TreeId, WriteSet};

/// Most messages taken from the index per wake-up.
const BATCH: usize = 512;

/// Queue ids of the messages being attempted, or whose outcome waits in [`Held`].
type InFlight = Arc<Mutex<HashSet<u64>>>;

/// Outcomes of finished attempts that the store could not record, by queue id.
type Held = Arc<Mutex<HashMap<u64, Unrecorded>>>;

/// An attempt that reached the next hop, before its outcome is turned into a write set.
#[derive(Debug, Clone)]
struct Delivered {
    rec: MessageRecord,
    outcomes: Vec<Outcome>,
    now: Timestamp,
    /// Recipients dropped as suppressed before the attempt, and their events.
    dropped_ws: WriteSet,
    dropped: Vec<Event>,
}

/// An attempt's outcome ready to write: its write set, events and the updated record.
#[derive(Debug)]
struct Built {
    ws: WriteSet,
    events: Vec<Event>,
    rec: MessageRecord,
}

/// A finished attempt the store could not record: written once it recovers. `Delivered` when
/// even building the write set failed (an event id could not be allocated).
#[derive(Debug)]
enum Unrecorded {
    Delivered(Delivered),
    Built(Built),
}

/// Why an attempt ended without its outcome on disk.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Delivered (or refused) but not recorded: the outcome is kept, the message not retried.
    #[error("outcome could not be recorded: {error}")]
    Unrecorded {
        error: StoreError,
        outcome: Box<Unrecorded>,
    },
}

/// Runs until `shutdown`; in-flight attempts are tracked by `tracker`.
pub async fn run<D: Deliver>(
    daemon: Arc<Daemon>,
    transport: Arc<D>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let inflight: InFlight = Arc::default();
    let held: Held = Arc::default();
    let slots = Arc::new(Semaphore::new(daemon.cfg.delivery.concurrency.max(1) * 4));
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if daemon.committer.is_poisoned() || !record_held(&daemon, &held, &inflight).await {
            // Paused: nothing starts until the store can record outcomes again.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = daemon.committer.health().changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let started = match take_due(&daemon, &inflight) {
            Ok(due) => {
                let started =
                    start_attempts(due, &daemon, &transport, &inflight, &held, &slots, &tracker);
                match started.await {
                    Some(n) => n,
                    None => return,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduler cannot read the queue");
                0
            }
        };
        if started < BATCH {
            let pause = sleep_time(&daemon);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = daemon.wake.notified() => {}
                _ = daemon.committer.health().changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
    // The held outcomes are saved for the next start, again once the in-flight attempts have
    // finished (bounded by the daemon's shutdown deadline).
    save_unrecorded(&daemon, &held);
    tracker.close();
    tracker.wait().await;
    save_unrecorded(&daemon, &held);
}

/// Spawns one attempt per due message, each once a slot is free; the number started, or
/// `None` when the slots are closed.
async fn start_attempts<D: Deliver>(
    due: Vec<(Timestamp, u64)>,
    daemon: &Arc<Daemon>,
    transport: &Arc<D>,
    inflight: &InFlight,
    held: &Held,
    slots: &Arc<Semaphore>,
    tracker: &TaskTracker,
) -> Option<usize> {
    let n = due.len();
    for (at, id) in due {
        let permit = slots.clone().acquire_owned().await.ok()?;
        let (daemon, transport, inflight, held) = (
            daemon.clone(),
            transport.clone(),
            inflight.clone(),
            held.clone(),
        );
        tracker.spawn(async move {
            let result = attempt(&daemon, transport.as_ref(), id, at).await;
            finish(&daemon, id, result, &inflight, &held);
            drop(permit);
        });
    }
    Some(n)
}

/// Releases the message after its attempt, or keeps it in flight with its outcome held.
fn finish(
    daemon: &Daemon,
    id: u64,
    result: Result<(), AttemptError>,
    inflight: &Mutex<HashSet<u64>>,
    held: &Mutex<HashMap<u64, Unrecorded>>,
) {
    match result {
        Ok(()) => {}
        Err(AttemptError::Unrecorded { error, outcome }) => {
            tracing::debug!(queue_id = %format!("{id:X}"), error = %error, "outcome held until the store recovers");
            held.lock().map(|mut h| h.insert(id, *outcome)).ok();
            return;
        }
        // A write or read the disk refused outside the commit task (ENOSPC, EIO) faults the store too.
        Err(AttemptError::Store(e @ (StoreError::Db(_) | StoreError::Flush(_)))) => {
            tracing::debug!(queue_id = %format!("{id:X}"), error = %e, "attempt not recorded");
            daemon.committer.poison(&e);
        }
        // While faulted the store's one log line says why; no line per message.
        Err(e) if daemon.committer.is_poisoned() => {
            tracing::debug!(queue_id = %format!("{id:X}"), error = %e, "attempt not recorded")
        }
        Err(e) => {
            tracing::error!(queue_id = %format!("{id:X}"), error = %e, "attempt could not be recorded")
        }
    }
    inflight.lock().map(|mut s| s.remove(&id)).ok();
}

/// Writes the held outcomes (oldest first is not needed: each is one message). False when
/// some could not be written yet (the store faulted again).
async fn record_held(
    daemon: &Daemon,
    held: &Mutex<HashMap<u64, Unrecorded>>,
    inflight: &Mutex<HashSet<u64>>,
) -> bool {
    let pending: Vec<(u64, Unrecorded)> = match held.lock() {
        Ok(mut h) if !h.is_empty() => h.drain().collect(),
        _ => return true,
    };
    let n = pending.len();
    let mut rest = pending.into_iter();
    while let Some((id, u)) = rest.next() {
        if let Err((_, again)) = record(daemon, u).await {
            if let Ok(mut h) = held.lock() {
                h.insert(id, again);
                h.extend(rest);
            }
            return false;
        }
        inflight.lock().map(|mut s| s.remove(&id)).ok();
    }
    tracing::info!(
        outcomes = n,
        "recorded the delivery outcomes held during the storage fault"
    );
    true
}

/// At shutdown: outcomes still held go to the store's journal, applied at the next start
/// (see [`record_unrecorded`]), so their messages are not delivered again.
fn save_unrecorded(daemon: &Daemon, held: &Mutex<HashMap<u64, Unrecorded>>) {
    let Ok(h) = held.lock() else { return };
    let (mut sets, mut lost) = (Vec::new(), Vec::new());
    for (id, u) in h.iter() {
        match u {
            Unrecorded::Built(b) => sets.push(b.ws.clone()),
            Unrecorded::Delivered(d) => match build(daemon, d) {
                Ok(Some(b)) => sets.push(b.ws),
                Ok(None) => {}
                Err(_) => lost.push(format!("{id:X}")),
            },
        }
    }
    if !sets.is_empty() {
        match daemon.store.save_unrecorded(&sets) {
            Ok(path) => {
                tracing::warn!(messages = sets.len(), file = %path.display(), "delivery outcomes not recorded before shutdown were saved; the next start records them")
            }
            Err(e) => {
                tracing::error!(messages = sets.len(), error = %e, "delivery outcomes could not be saved");
                lost.extend(h.keys().map(|id| format!("{id:X}")));
            }
        }
    }
    if !lost.is_empty() {
        tracing::error!(messages = lost.len(), queue_ids = %lost.join(","), "delivery outcomes could not be recorded nor saved; these messages will be delivered again");
    }
}

/// At start-up, before anything else writes: records the outcomes a faulted store could not
/// take before the last shutdown. Returns how many.
pub async fn record_unrecorded(daemon: &Daemon) -> Result<usize, StoreError> {
    let sets = daemon.store.unrecorded()?;
    let n = sets.len();
    for ws in sets {
        daemon.committer.commit(ws).await?;
    }
    if n > 0 {
        daemon
            .store
            .clear_unrecorded()
            .map_err(|e| StoreError::Db(format!("removing the saved outcomes: {e}")))?;
        tracing::info!(
            outcomes = n,
            "recorded the delivery outcomes saved at the last shutdown"
        );
    }
    Ok(n)
}

/// Due entries not already in flight; marks them in flight.
fn take_due(daemon: &Daemon, inflight: &InFlight) -> Result<Vec<(Timestamp, u64)>, StoreError> {
    let mut set = inflight
        .lock()
        .map_err(|_| StoreError::Db("scheduler lock poisoned".into()))?;
    let due = daemon.store.due(daemon.now(), set.len() + BATCH)?;
    let fresh: Vec<_> = due
        .into_iter()
        .filter(|(_, id)| !set.contains(id))
        .take(BATCH)
        .collect();
    for (_, id) in &fresh {
        set.insert(*id);
    }
    Ok(fresh)
}

/// How long to sleep: until the next due entry, at most one second (the clock may be a test clock).
fn sleep_time(daemon: &Daemon) -> Duration {
    let now = daemon.now();
    match daemon.store.next_due() {
        Ok(Some(t)) if t > now => t.since(now).min(Duration::from_secs(1)),
        Ok(Some(_)) => Duration::from_millis(50),
        _ => Duration::from_secs(1),
    }
}

/// One attempt for one message; nothing is sent while the store is faulted.
async fn attempt<D: Deliver>(
    daemon: &Daemon,
    transport: &D,
    id: u64,
    at: Timestamp,
) -> Result<(), AttemptError> {
    let Some(mut rec) = daemon.store.message(id)? else {
        daemon
            .store
            .tree(TreeId::Schedule)
            .remove(schedule_key(at, id))
            .map_err(StoreError::from)?;
        return Ok(());
    };
    if rec.next_attempt != Some(at) {
        daemon
            .store
            .tree(TreeId::Schedule)
            .remove(schedule_key(at, id))
            .map_err(StoreError::from)?;
        return Ok(());
    }
    let now = daemon.now();
    let body = match daemon.store.body(id)? {
        Some(b) => Arc::new(crate::delivery::outbound::long_lines::conform_owned(b)),
        None => return Ok(expire_without_body(daemon, &mut rec, now).await?),
    };
    if daemon.committer.is_poisoned() {
        return Ok(()); // due again once the store recovers
    }
    let (dropped_ws, dropped) = drop_newly_suppressed(daemon, &mut rec, now)?;
    let groups = pending_by_domain(&rec);
    let started = Instant::now();
    let outcomes = deliver_groups(daemon, transport, &rec, groups, body).await;
    daemon
        .counters
        .observe_attempt(started.elapsed().as_millis() as u64);
    // From here on the next hop has the message: every failure keeps the outcome.
    let delivered = Delivered {
        rec,
        outcomes,
        now: daemon.now(),
        dropped_ws,
        dropped,
    };
    record(daemon, Unrecorded::Delivered(delivered))
        .await
        .map_err(|(error, u)| AttemptError::Unrecorded {
            error,
            outcome: Box::new(u),
        })
}

/// Builds (if not yet built) and writes an attempt's outcome; on failure returns it to hold.
async fn record(daemon: &Daemon, u: Unrecorded) -> Result<(), (StoreError, Unrecorded)> {
    let built = match u {
        Unrecorded::Built(b) => b,
        Unrecorded::Delivered(d) => match build(daemon, &d) {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::info!(queue_id = %d.rec.queue_id(), "message deleted during its delivery attempt");
                return Ok(());
            }
            Err(e) => {
                daemon.committer.poison(&e);
                return Err((e, Unrecorded::Delivered(d)));
            }
        },
    };
    if let Err(e) = daemon.commit(built.ws.clone(), &built.events).await {
        return Err((e, Unrecorded::Built(built)));
    }
    log_outcomes(&built.events);
    notify_sender(daemon, &built.rec, &built.events).await;
    Ok(())
}

/// The write set of a delivered attempt. A returned DSN, an unsubscribe or an operator may have
/// changed the message while it was being delivered: the attempt applies to the stored copy,
/// not to ours. `None` when the message was deleted.
fn build(daemon: &Daemon, d: &Delivered) -> Result<Option<Built>, StoreError> {
    let mut rec = d.rec.clone();
    let Some(outcomes) = merge_concurrent(daemon, &mut rec, d.outcomes.clone())? else {
        return Ok(None);
    };
    let (mut ws, events) = apply_attempt(daemon, &mut rec, &outcomes, d.now)?;
    ws.extend(d.dropped_ws.clone());
    let mut all = d.dropped.clone();
    all.extend(events);
    Ok(Some(Built {
        ws,
        events: all,
        rec,
    }))
}

/// Re-reads the record: recipients finished by someone else meanwhile keep that status and
/// lose this attempt's outcome; the stored schedule time is the one to move. `None` when the
/// message was deleted.
fn merge_concurrent(
    daemon: &Daemon,
    rec: &mut MessageRecord,
    outcomes: Vec<Outcome>,
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let Some(fresh) = daemon.store.message(rec.id)? else {
        return Ok(None);
    };
    let mut changed = Vec::new();
    for (i, (mine, theirs)) in rec.recipients.iter_mut().zip(&fresh.recipients).enumerate() {
        if theirs.status.is_final() && theirs.status != mine.status {
            *mine = theirs.clone();
            changed.push(i);
        }
    }
    rec.next_attempt = fresh.next_attempt;
    Ok(Some(
        outcomes
            .into_iter()
            .filter(|o| !changed.contains(&o.index))
            .collect(),
    ))
}

/// Recipients suppressed since the message was queued are not attempted: `dropped`.
fn drop_newly_suppressed(
    daemon: &Daemon,
    rec: &mut MessageRecord,
    now: Timestamp,
) -> Result<(WriteSet, Vec<crate::model::Event>), StoreError> {
    let (mut ws, mut events) = (WriteSet::new(), Vec::new());
    for i in 0..rec.recipients.len() {
        if rec.recipients[i].status.is_final() {
            continue;
        }
        let Some(s) = daemon.store.suppression(&rec.recipients[i].address)? else {
            continue;
        };
        rec.recipients[i].status = Status::Dropped;
        let mut ev = crate::records::enqueue::base_event(
            crate::model::EventKind::Dropped,
            now,
            rec,
            &rec.recipients[i].address,
        );
        ev.source = Some(crate::model::Source::Scheduler);
        ev.diagnostic = Some(format!(
            "{} while queued",
            crate::records::enqueue::suppressed_since(&s)
        ));
        events.push(daemon.record(&mut ws, ev)?);
    }
    Ok((ws, events))
}

/// One log line per recipient outcome, for operators (the event log is the product's record).
fn log_outcomes(events: &[Event]) {
    for e in events {
        let (q, r, d) = (
            e.queue_id.as_deref().unwrap_or("-"),
            e.recipient.as_deref().unwrap_or("-"),
            e.diagnostic.as_deref().unwrap_or(""),
        );
        tracing::info!(
            queue_id = q,
            recipient = r,
            status = e.status.as_str(),
            relay = e.remote_host.as_deref().unwrap_or("-"),
            "{d}"
        );
    }
}

/// Queues a DSN to the sender for this attempt's failures, if one is due (logged on failure:
/// the attempt itself is already recorded).
async fn notify_sender(daemon: &Daemon, rec: &MessageRecord, events: &[Event]) {
    match crate::delivery::sender_dsn::maybe_notify(daemon, rec, events).await {
        Ok(Some(id)) => {
            tracing::info!(queue_id = %rec.queue_id(), dsn = %format!("{id:X}"), "DSN queued for the sender")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(queue_id = %rec.queue_id(), error = %e, "could not queue a DSN for the sender")
        }
    }
}

async fn expire_without_body(
    daemon: &Daemon,
    rec: &mut MessageRecord,
    now: Timestamp,
) -> Result<(), StoreError> {
    tracing::error!(queue_id = %rec.queue_id(), "message body missing; expiring its recipients");
    let (mut ws, mut events) = (WriteSet::new(), Vec::new());
    let old = rec.next_attempt;
    expire_pending(daemon, rec, now, &mut ws, &mut events)?;
    ws.put_message(rec, old)?;
    daemon.commit(ws, &events).await?;
    notify_sender(daemon, rec, &events).await;
    Ok(())
}

/// Pending recipients (queued or deferred) grouped by normalised domain: (index, address).
fn pending_by_domain(rec: &MessageRecord) -> BTreeMap<String, Vec<(usize, Address)>> {
    let mut groups: BTreeMap<String, Vec<(usize, Address)>> = BTreeMap::new();
    for (i, r) in rec.recipients.iter().enumerate() {
        if matches!(r.status, Status::Queued | Status::Deferred)
            && let Ok(a) = Address::parse(&r.address)
        {
            groups.entry(a.domain_key()).or_default().push((i, a));
        }
    }
    groups
}

/// Runs every domain group concurrently; returns one outcome per pending recipient.
async fn deliver_groups<D: Deliver>(
    daemon: &Daemon,
    transport: &D,
    rec: &MessageRecord,
    groups: BTreeMap<String, Vec<(usize, Address)>>,
    body: Arc<Vec<u8>>,
) -> Vec<Outcome> {
    let now = daemon.now();
    let futures = groups.into_iter().map(|(domain, rcpts)| {
        let txs: Vec<Transaction> = rcpts
            .iter()
            .map(|(i, a)| Transaction {
                mail_from: envelope_sender(daemon, rec, *i, now),
                recipients: vec![a.clone()],
                body: crate::delivery::outbound::dkim::sign_copy(
                    daemon,
                    rec,
                    &domain,
                    crate::feedback::unsubscribe::personalise(daemon, rec, *i, &body, now),
                ),
            })
            .collect();
        async move {
            let results = transport.deliver(&domain, txs).await;
            rcpts
                .iter()
                .zip(results)
                .map(|((i, _), mut res)| outcome_of(*i, res.pop()))
                .collect::<Vec<_>>()
        }
    });
    let mut out = Vec::new();
    for group in futures_util::future::join_all(futures).await {
        out.extend(group);
    }
    out
}

fn outcome_of(index: usize, res: Option<crate::delivery::outbound::RcptOutcome>) -> Outcome {
    match res {
        Some(o) => Outcome {
            index,
            reply: o.reply,
            remote_host: o.remote_host,
        },
        None => Outcome {
            index,
            reply: Reply::local(
                451,
                EnhancedCode::new(4, 3, 0),
                "internal error: no outcome for recipient",
            ),
            remote_host: None,
        },
    }
}

/// The VERP-signed envelope sender for recipient `index`; `<>` stays `<>`.
pub fn envelope_sender(
    daemon: &Daemon,
    rec: &MessageRecord,
    index: usize,
    now: Timestamp,
) -> String {
    if rec.sender.is_empty() {
        return String::new();
    }
    // smtp.max_recipients is at most u16::MAX (config check); a larger index could only
    // come from a record written before that check, and gets a tag that matches nobody.
    let rcpt_index = u16::try_from(index).unwrap_or(u16::MAX);
    daemon.verp.address(&VerpTag {
        queue_id: rec.id,
        rcpt_index,
        issued: now,
    })
}
