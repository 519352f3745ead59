//! Retention and erasure. `purge` deletes events older than `retention.events`
//! and bodies (with finished message records) older than `retention.bodies`, in
//! bounded batches; `erase` removes every event, queue record and stored body
//! that names one address (right to erasure). A message shared with other
//! recipients is kept for them: the address leaves its envelope (replaced by
//! [`ERASED`]) and every place it appears in the stored body, and the other
//! recipients' delivery goes on. The suppression entry stays, so the person is
//! still never mailed, but loses its diagnostic and event link.

use serde::Serialize;

use super::AdminError;
use crate::daemon::state::Daemon;
use crate::model::address::Address;
use crate::model::time::Timestamp;
use crate::store::events::EventQuery;
use crate::store::queue::MessageRecord;
use crate::store::scan::contains_ci;
use crate::store::{StoreError, TreeId, WriteSet};

/// What an erased address becomes in a message kept for its other recipients.
pub const ERASED: &str = "erased@erased.invalid";

/// Records deleted per write set.
const BATCH: usize = 1000;
/// Batches of each kind per purge run (the next run continues).
const MAX_ROUNDS: usize = 100;

/// What a purge run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeStats {
    pub events: usize,
    pub bodies: usize,
    pub messages: usize,
    /// The first storage error, if the run stopped early.
    pub error: Option<String>,
}

/// The first queue id received at or after `t` (ids carry their receipt second in the high bits).
fn first_id_at(t: Timestamp) -> u64 {
    ((t.millis().max(0) / 1000) as u64) << 24
}

/// Deletes what retention no longer allows. Never fails: errors end the run and are reported.
pub async fn purge(daemon: &Daemon, now: Timestamp) -> PurgeStats {
    let mut stats = PurgeStats::default();
    let ev_cut = now.minus(daemon.cfg.retention.events.0);
    let body_cut = first_id_at(now.minus(daemon.cfg.retention.bodies.0));
    let res = async {
        purge_events(daemon, ev_cut, &mut stats).await?;
        purge_messages(daemon, body_cut, &mut stats).await?;
        purge_bodies(daemon, body_cut, &mut stats).await
    }
    .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "retention purge stopped");
        stats.error = Some(e.to_string());
    }
    stats
}

async fn purge_events(
    daemon: &Daemon,
    cutoff: Timestamp,
    stats: &mut PurgeStats,
) -> Result<(), StoreError> {
    for _ in 0..MAX_ROUNDS {
        let old = daemon.store.events_before(cutoff, BATCH)?;
        let mut ws = WriteSet::new();
        for e in &old {
            ws.delete_event(e);
        }
        daemon.store.purge_current_before(&mut ws, cutoff, BATCH)?;
        daemon.commit(ws, &[]).await?;
        stats.events += old.len();
        if old.len() < BATCH {
            break;
        }
    }
    Ok(())
}

/// Finished records received before `cutoff_id`, with their bodies.
async fn purge_messages(
    daemon: &Daemon,
    cutoff_id: u64,
    stats: &mut PurgeStats,
) -> Result<(), StoreError> {
    let mut after = None;
    for _ in 0..MAX_ROUNDS {
        let recs: Vec<MessageRecord> = daemon
            .store
            .messages_after(after, BATCH)?
            .into_iter()
            .take_while(|r| r.id < cutoff_id)
            .collect();
        let Some(last) = recs.last() else { break };
        after = Some(last.id);
        let mut ws = WriteSet::new();
        for r in recs.iter().filter(|r| r.is_finished()) {
            stats.bodies += usize::from(daemon.store.has_body(r.id)?);
            remove_message(&mut ws, r);
            stats.messages += 1;
        }
        daemon.commit(ws, &[]).await?;
    }
    Ok(())
}

/// Bodies received before `cutoff_id` whose record is gone (never those of unfinished messages).
async fn purge_bodies(
    daemon: &Daemon,
    cutoff_id: u64,
    stats: &mut PurgeStats,
) -> Result<(), StoreError> {
    let mut after = None;
    for _ in 0..MAX_ROUNDS {
        let ids = daemon.store.body_ids(after, cutoff_id, BATCH)?;
        let Some(&last) = ids.last() else { break };
        after = Some(last);
        let mut ws = WriteSet::new();
        for id in ids {
            if daemon.store.message(id)?.is_none() {
                ws.remove(TreeId::Bodies, id.to_be_bytes().to_vec());
                stats.bodies += 1;
            }
        }
        daemon.commit(ws, &[]).await?;
    }
    Ok(())
}

fn remove_message(ws: &mut WriteSet, r: &MessageRecord) {
    ws.delete_message(r, false);
    if let Some(mid) = &r.message_id {
        ws.remove(TreeId::MsgIds, mid.as_bytes().to_vec());
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EraseStats {
    pub address: String,
    pub events: usize,
    pub messages: usize,
    pub bodies: usize,
    /// Of `messages`, those kept for their other recipients (the address scrubbed from them).
    #[serde(default)]
    pub messages_kept: usize,
    /// The suppression entry is kept (reason and time only) so the address stays blocked.
    pub suppression_kept: bool,
}

/// Removes every event (the security log's included), queue record and stored body that
/// names `address`.
/// Other pending recipients of an erased message get a `dropped` event.
pub async fn erase(daemon: &Daemon, address: &Address) -> Result<EraseStats, AdminError> {
    let mut stats = EraseStats {
        address: address.to_string(),
        ..Default::default()
    };
    let key = address.key();
    erase_messages(daemon, &key, address.as_str(), &mut stats).await?;
    erase_bodies(
        daemon,
        &[key.clone(), address.as_str().to_ascii_lowercase()],
        &mut stats,
    )
    .await?;
    erase_events(daemon, &key, &mut stats).await?;
    let mut ws = WriteSet::new();
    stats.events += daemon.store.erase_unverified(&mut ws, address.as_str())?;
    daemon.commit(ws, &[]).await?;
    if let Some(mut s) = daemon.store.suppression(address.as_str())? {
        s.diagnostic = None;
        s.event_id = None;
        let mut ws = WriteSet::new();
        ws.put_suppression(&s);
        daemon.commit(ws, &[]).await?;
        stats.suppression_kept = true;
    }
    tracing::info!(
        events = stats.events,
        messages = stats.messages,
        bodies = stats.bodies,
        "erased an address on request"
    );
    Ok(stats)
}

async fn erase_events(
    daemon: &Daemon,
    key: &str,
    stats: &mut EraseStats,
) -> Result<(), StoreError> {
    loop {
        let q = EventQuery {
            recipient: Some(key.to_string()),
            limit: BATCH,
            ascending: true,
            ..Default::default()
        };
        let page = daemon.store.query_events(&q)?;
        if page.events.is_empty() {
            return Ok(());
        }
        let mut ws = WriteSet::new();
        // The current-status index keeps a report row naming the address.
        daemon.store.unindex_current(&mut ws, &page.events)?;
        for e in &page.events {
            ws.delete_event(e);
        }
        daemon.commit(ws, &[]).await?;
        stats.events += page.events.len();
    }
}

async fn erase_messages(
    daemon: &Daemon,
    key: &str,
    address: &str,
    stats: &mut EraseStats,
) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        let recs = daemon.store.messages_after(after, BATCH)?;
        let Some(last) = recs.last() else {
            return Ok(());
        };
        after = Some(last.id);
        let mut ws = WriteSet::new();
        for r in recs
            .iter()
            .filter(|r| r.recipients.iter().any(|x| names(&x.address, key)))
        {
            stats.messages += 1;
            if r.recipients.iter().all(|x| names(&x.address, key)) {
                stats.bodies += usize::from(daemon.store.has_body(r.id)?);
                remove_message(&mut ws, r);
            } else {
                scrub_shared(daemon, &mut ws, r, key, address)?;
                stats.messages_kept += 1;
            }
        }
        daemon.commit(ws, &[]).await?;
    }
}

/// Takes the address out of a message other recipients still have: its envelope entry
/// becomes [`ERASED`] (no longer attempted) and the stored body loses every mention.
fn scrub_shared(
    daemon: &Daemon,
    ws: &mut WriteSet,
    r: &MessageRecord,
    key: &str,
    address: &str,
) -> Result<(), StoreError> {
    let mut rec = r.clone();
    for x in rec.recipients.iter_mut().filter(|x| names(&x.address, key)) {
        x.address = ERASED.to_string();
        x.orcpt = None;
        x.last_diagnostic = None;
        if !x.status.is_final() {
            x.status = crate::model::Status::Dropped;
        }
    }
    if let Some(body) = daemon.store.body(r.id)? {
        ws.insert(
            TreeId::Bodies,
            r.id.to_be_bytes().to_vec(),
            replace_ci(&body, address.as_bytes(), b"[erased]"),
        );
    }
    let old_due = r.next_attempt;
    if rec.is_finished() {
        rec.next_attempt = None;
    }
    ws.put_message(&rec, old_due)?;
    Ok(())
}

/// `hay` with every ASCII-case-insensitive occurrence of `needle` replaced by `with`.
fn replace_ci(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return hay.to_vec();
    }
    let (mut out, mut i) = (Vec::with_capacity(hay.len()), 0);
    while i < hay.len() {
        if hay.len() - i >= needle.len() && hay[i..i + needle.len()].eq_ignore_ascii_case(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn names(address: &str, key: &str) -> bool {
    crate::model::address::suppression_key(address).as_deref() == Some(key)
}

async fn erase_bodies(
    daemon: &Daemon,
    needles: &[String],
    stats: &mut EraseStats,
) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        let bodies = daemon.store.bodies_after(after, 64)?;
        let Some((last, _)) = bodies.last() else {
            return Ok(());
        };
        after = Some(*last);
        let mut ws = WriteSet::new();
        for (id, body) in &bodies {
            if !needles.iter().any(|n| contains_ci(body, n.as_bytes())) {
                continue;
            }
            if daemon.store.message(*id)?.is_some() {
                // Kept for its other recipients: scrubbed, not deleted.
                let scrubbed = needles.iter().fold(body.clone(), |b, n| {
                    replace_ci(&b, n.as_bytes(), b"[erased]")
                });
                ws.insert(TreeId::Bodies, id.to_be_bytes().to_vec(), scrubbed);
            } else {
                ws.remove(TreeId::Bodies, id.to_be_bytes().to_vec());
                stats.bodies += 1;
            }
        }
        daemon.commit(ws, &[]).await?;
    }
}
