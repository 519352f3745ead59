//! The suppression list as operators manage it: list by reason, add (any
//! reason, `manual` by default), and "Remove block", where complaint and
//! unsubscribe entries need `force` because they record a person's wish.

use serde::Serialize;

use super::AdminError;
use crate::daemon::state::Daemon;
use crate::model::address::Address;
use crate::model::time::Timestamp;
use crate::model::{Event, EventKind, Source, Suppression, SuppressionReason};
use crate::store::WriteSet;

/// One page of the suppression list.
#[derive(Debug, Clone, Serialize)]
pub struct SuppressionPage {
    pub items: Vec<Suppression>,
    pub next_cursor: Option<String>,
}

/// Entries in address order, optionally of one reason.
pub fn list_suppressions(
    daemon: &Daemon,
    reason: Option<SuppressionReason>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<SuppressionPage, AdminError> {
    let (items, next_cursor) = daemon
        .store
        .suppressions(reason, cursor, limit.clamp(1, 1000))?;
    Ok(SuppressionPage { items, next_cursor })
}

/// Parses an address given by an operator.
pub fn parse_address(param: &'static str, s: &str) -> Result<Address, AdminError> {
    Address::parse(s).map_err(|e| AdminError::bad(param, format!("{s:?}: {e}")))
}

/// Adds (or changes) an entry. Returns the entry and whether anything changed.
/// Replacing a complaint/unsubscribe entry with another reason needs `force`.
pub async fn add_suppression(
    daemon: &Daemon,
    address: &Address,
    reason: SuppressionReason,
    diagnostic: Option<String>,
    force: bool,
) -> Result<(Suppression, bool), AdminError> {
    let mut ws = WriteSet::new();
    let mut events = Vec::new();
    let res = stage_add(
        daemon,
        &mut ws,
        &mut events,
        address,
        reason,
        diagnostic,
        force,
        daemon.now(),
    )?;
    daemon.commit(ws, &events).await?;
    Ok(res)
}

/// Puts an add into a write set (shared with bulk import).
#[allow(clippy::too_many_arguments)]
pub(super) fn stage_add(
    daemon: &Daemon,
    ws: &mut WriteSet,
    events: &mut Vec<Event>,
    address: &Address,
    reason: SuppressionReason,
    diagnostic: Option<String>,
    force: bool,
    time: Timestamp,
) -> Result<(Suppression, bool), AdminError> {
    if let Some(old) = daemon.store.suppression(address.as_str())? {
        if old.reason == reason {
            return Ok((old, false));
        }
        if old.reason.needs_consent_to_remove() && !force {
            return Err(consent_error(&old));
        }
    }
    let mut ev = Event::new(EventKind::SuppressionAdded, daemon.now());
    ev.recipient = Some(address.to_string());
    ev.source = Some(Source::Admin);
    ev.diagnostic = Some(format!(
        "{reason}: {}",
        diagnostic
            .clone()
            .unwrap_or_else(|| "added by an operator".into())
    ));
    let ev = daemon.record(ws, ev)?;
    let entry = Suppression {
        address: address.to_string(),
        reason,
        time,
        diagnostic,
        event_id: Some(ev.id.clone()),
    };
    ws.put_suppression(&entry);
    events.push(ev);
    Ok((entry, true))
}

fn consent_error(s: &Suppression) -> AdminError {
    AdminError::refused(
        "consent_required",
        format!(
            "{} is suppressed because of a {} (since {}): the recipient asked not to be mailed; remove it only with their consent, using force",
            s.address, s.reason, s.time
        ),
    )
}

/// Removes an entry ("Remove block"); complaint and unsubscribe entries need `force`.
pub async fn remove_suppression(
    daemon: &Daemon,
    address: &Address,
    force: bool,
) -> Result<Suppression, AdminError> {
    let old = daemon
        .store
        .suppression(address.as_str())?
        .ok_or_else(|| AdminError::NotFound(format!("{address} is not on the suppression list")))?;
    if old.reason.needs_consent_to_remove() && !force {
        return Err(consent_error(&old));
    }
    let mut ws = WriteSet::new();
    let mut ev = Event::new(EventKind::SuppressionRemoved, daemon.now());
    ev.recipient = Some(old.address.clone());
    ev.source = Some(Source::Admin);
    ev.diagnostic = Some(format!(
        "{} entry removed by an operator{}",
        old.reason,
        if force { " (forced)" } else { "" }
    ));
    let ev = daemon.record(&mut ws, ev)?;
    ws.remove_suppression(&old.address);
    // Reports about copies sent before this moment no longer suppress the address.
    ws.put_unblocked(&old.address, ev.time);
    daemon.commit(ws, &[ev]).await?;
    Ok(old)
}
