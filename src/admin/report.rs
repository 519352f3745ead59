//! Reading the communications log: filtered, paged event queries, and the
//! undelivered report (each message/recipient whose latest status in a window
//! is anything but `delivered`, with a count per status). A row whose message was
//! resent and whose resend was delivered (to the same address, or to the one
//! corrected address it was resent to) leaves the report, for the CLI, the API and
//! the console alike ([`resolved_by_resend`]); its own status stays in the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use super::AdminError;
use crate::daemon::state::Daemon;
use crate::model::address::suppression_key;
use crate::model::time::{Timestamp, parse_duration};
use crate::model::{Class, Event, Reason, Status};
use crate::store::events::{EventPage, EventQuery};

/// Every event name a filter may use.
const EVENT_NAMES: [&str; 15] = [
    "queued",
    "deferred",
    "delivered",
    "bounced",
    "failed",
    "expired",
    "dropped",
    "complained",
    "unsubscribed",
    "delayed",
    "resent",
    "autoreply",
    "unverified",
    "suppression_added",
    "suppression_removed",
];

/// An event filter as people write it (strings straight from a query string or CLI flags).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub recipient: Option<String>,
    /// Comma-separated event names.
    pub status: Option<String>,
    /// Queue id, or a `<Message-ID>` as the app logged it (see [`events`]).
    pub message: Option<String>,
    /// RFC 3339 time, a date, or a duration back from now (`7d`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// The column the log is sorted by (see [`super::log`]); time by default.
    pub sort: Option<String>,
    /// `asc` or `desc` (see [`super::log::LogSort::parse`]).
    pub order: Option<String>,
}

/// A time bound: RFC 3339 / a date, or a duration meaning "that long before `now`".
pub fn parse_since(s: &str, now: Timestamp) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(s).or_else(|| parse_duration(s).ok().map(|d| now.minus(d)))
}

fn time_param(
    param: &'static str,
    v: &Option<String>,
    now: Timestamp,
) -> Result<Option<Timestamp>, AdminError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_since(s, now).map(Some).ok_or_else(|| {
            AdminError::bad(
                param,
                format!("{s:?} is neither an RFC 3339 time, a date nor a duration like 7d"),
            )
        }),
    }
}

fn statuses_param(v: &Option<String>, allowed: &[&str]) -> Result<Vec<String>, AdminError> {
    let mut out = Vec::new();
    for s in v
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !allowed.contains(&s) {
            return Err(AdminError::bad(
                "status",
                format!("unknown status {s:?} (one of: {})", allowed.join(", ")),
            ));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// Parses `limit` (1..=`max`, default `default`).
pub fn limit_param(v: Option<&str>, default: usize, max: usize) -> Result<usize, AdminError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(AdminError::bad(
                "limit",
                format!("{s:?} is not a number from 1 to {max}"),
            )),
        },
    }
}

impl EventFilter {
    /// Checks every field and builds the store query (newest first).
    pub fn to_query(&self, now: Timestamp) -> Result<EventQuery, AdminError> {
        let queue_id = match self.message.as_deref().filter(|s| !s.is_empty()) {
            Some(m) => Some(
                crate::store::queue::parse_queue_id(m.trim()).ok_or_else(|| {
                    AdminError::bad(
                        "message",
                        format!("{m:?} is neither a queue id nor a <Message-ID>"),
                    )
                })?,
            ),
            None => None,
        };
        let recipient = self.recipient.clone().filter(|s| !s.is_empty());
        if let Some(r) = &recipient {
            suppression_key(r)
                .ok_or_else(|| AdminError::bad("recipient", format!("{r:?} is not an address")))?;
        }
        if let Some(c) = self
            .cursor
            .as_ref()
            .filter(|c| c.len() != 32 || crate::store::unhex(c).is_none())
        {
            return Err(AdminError::bad(
                "cursor",
                format!("{c:?} is not a cursor from this list"),
            ));
        }
        let since = time_param("since", &self.since, now)?;
        let until = time_param("until", &self.until, now)?;
        if since.zip(until).is_some_and(|(a, b)| a > b) {
            return Err(AdminError::bad("since", "since is after until"));
        }
        Ok(EventQuery {
            recipient,
            statuses: statuses_param(&self.status, &EVENT_NAMES)?,
            queue_id,
            since,
            until,
            limit: limit_param(self.limit.as_deref(), 100, 1000)?,
            cursor: self.cursor.clone(),
            ascending: false,
        })
    }
}

/// One page of the log in the filter's order (newest first by default, see [`super::log`]).
pub fn events(daemon: &Daemon, filter: &EventFilter) -> Result<EventPage, AdminError> {
    let sort = super::log::LogSort::parse(filter.sort.as_deref(), filter.order.as_deref())?;
    let filter = by_queue_id(daemon, filter)?;
    super::log::sorted_page(daemon, &filter, sort)
}

/// The filter with a `<Message-ID>` in `message` replaced by that message's queue id.
fn by_queue_id(daemon: &Daemon, filter: &EventFilter) -> Result<EventFilter, AdminError> {
    let mut f = filter.clone();
    if let Some(m) = f
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| m.starts_with('<') && m.ends_with('>'))
    {
        let n = daemon
            .store
            .message_by_message_id(m)?
            .ok_or_else(|| AdminError::NotFound(format!("no message with Message-ID {m}")))?;
        f.message = Some(crate::store::queue::format_queue_id(n));
    }
    Ok(f)
}

/// One (message, recipient) that was not delivered.
#[derive(Debug, Clone, Serialize)]
pub struct UndeliveredItem {
    pub queue_id: Option<String>,
    pub message_id: Option<String>,
    pub recipient: String,
    pub status: Status,
    pub time: Timestamp,
    pub class: Option<Class>,
    pub reason: Option<Reason>,
    pub reply_code: Option<u16>,
    pub enhanced_status: Option<String>,
    pub diagnostic: Option<String>,
}

/// The undelivered report: items (oldest first) and a count per status.
#[derive(Debug, Clone, Serialize)]
pub struct UndeliveredReport {
    pub since: Timestamp,
    pub until: Timestamp,
    pub summary: BTreeMap<String, usize>,
    pub total: usize,
    /// Rows left out because a resend of them was delivered (not in `total` or `summary`).
    pub resolved: usize,
    pub items: Vec<UndeliveredItem>,
    pub next_cursor: Option<String>,
}

/// Statuses the report can show (everything but delivered).
const UNDELIVERED: [&str; 8] = [
    "queued",
    "deferred",
    "bounced",
    "failed",
    "expired",
    "dropped",
    "complained",
    "unsubscribed",
];

/// Builds the report over `[since, until]` (default: the last `days` days up to now).
pub fn undelivered(
    daemon: &Daemon,
    days: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    status: Option<&str>,
) -> Result<UndeliveredReport, AdminError> {
    let now = daemon.now();
    let wanted = statuses_param(&status.map(str::to_string), &UNDELIVERED)?;
    let days = limit_param(days, 30, 3650).map_err(|_| {
        AdminError::bad(
            "days",
            format!(
                "{:?} is not a number of days from 1 to 3650",
                days.unwrap_or("")
            ),
        )
    })?;
    let until = time_param("until", &until.map(str::to_string), now)?.unwrap_or(now);
    let since = time_param("since", &since.map(str::to_string), now)?
        .unwrap_or_else(|| until.minus(Duration::from_secs(days as u64 * 86_400)));
    if since > until {
        return Err(AdminError::bad("since", "since is after until"));
    }
    let latest = latest_statuses(daemon, since, until)?;
    let done = resolved_by_resend(daemon, since)?;
    let mut items: Vec<UndeliveredItem> = Vec::with_capacity(latest.len());
    let mut resolved = 0;
    for (id, e) in latest {
        let Some(item) = item_of(e, &wanted) else {
            continue;
        };
        if done.contains(&id) {
            resolved += 1;
        } else {
            items.push(item);
        }
    }
    items.sort_by(|a, b| {
        (a.time, &a.queue_id, &a.recipient).cmp(&(b.time, &b.queue_id, &b.recipient))
    });
    let mut summary = BTreeMap::new();
    for i in &items {
        *summary.entry(i.status.as_str().to_string()).or_insert(0) += 1;
    }
    Ok(UndeliveredReport {
        since,
        until,
        summary,
        total: items.len(),
        resolved,
        items,
        next_cursor: None,
    })
}

/// Most `resent` events read to find the resends that were delivered.
const MAX_RESENT: usize = 20_000;

/// A report row's identity: (queue id, normalised recipient), as [`resolved_by_resend`] names rows.
pub fn row_id(i: &UndeliveredItem) -> (String, String) {
    (
        i.queue_id.clone().unwrap_or_default(),
        suppression_key(&i.recipient).unwrap_or_else(|| i.recipient.to_lowercase()),
    )
}

/// The (queue id, recipient) rows whose message was resent and whose resend was delivered: to
/// the same address, or to the one (corrected) address it was resent to. Reads the `resent`
/// events from `delivery.max_age` before `since` on (a row's latest status may be set after
/// its resend: a deferred original that expires later), and each resend's own events.
pub fn resolved_by_resend(
    daemon: &Daemon,
    since: Timestamp,
) -> Result<HashSet<(String, String)>, AdminError> {
    let mut out = HashSet::new();
    let mut delivered_of: HashMap<String, (HashSet<String>, HashSet<String>)> = HashMap::new();
    let from = since.minus(daemon.cfg.delivery.max_age.0);
    let mut q = EventQuery {
        statuses: vec!["resent".into()],
        since: Some(from),
        limit: 1000,
        ..Default::default()
    };
    let mut seen = 0;
    loop {
        let page = daemon.store.query_events(&q)?;
        seen += page.events.len();
        for e in &page.events {
            let (Some(linked), Some(qid), Some(rcpt)) = (
                e.linked_queue_id.as_deref(),
                e.queue_id.as_deref(),
                e.recipient.as_deref().and_then(suppression_key),
            ) else {
                continue;
            };
            if !delivered_of.contains_key(linked) {
                delivered_of.insert(linked.to_string(), outcome_of(daemon, linked)?);
            }
            let (rcpts, delivered) = &delivered_of[linked];
            if delivered.contains(&rcpt) || (rcpts.len() == 1 && delivered.len() == 1) {
                out.insert((qid.to_string(), rcpt));
            }
        }
        match page.next_cursor {
            Some(c) if seen < MAX_RESENT => q.cursor = Some(c),
            _ => return Ok(out),
        }
    }
}

/// A message's recipients and those of them delivered, from its events.
fn outcome_of(
    daemon: &Daemon,
    queue_id: &str,
) -> Result<(HashSet<String>, HashSet<String>), AdminError> {
    let Some(id) = crate::store::queue::parse_queue_id(queue_id) else {
        return Ok(Default::default());
    };
    let page = daemon.store.query_events(&EventQuery {
        queue_id: Some(id),
        limit: 1000,
        ascending: true,
        ..Default::default()
    })?;
    let (mut rcpts, mut delivered) = (HashSet::new(), HashSet::new());
    for e in page.events {
        let Some(r) = e.recipient.as_deref().and_then(suppression_key) else {
            continue;
        };
        if e.status.status() == Some(Status::Delivered) {
            delivered.insert(r.clone());
        }
        rcpts.insert(r);
    }
    Ok((rcpts, delivered))
}

fn item_of(e: Event, wanted: &[String]) -> Option<UndeliveredItem> {
    let status = e.status.status()?;
    if status == Status::Delivered
        || (!wanted.is_empty() && !wanted.iter().any(|w| w == status.as_str()))
    {
        return None;
    }
    Some(UndeliveredItem {
        queue_id: e.queue_id,
        message_id: e.message_id,
        recipient: e.recipient?,
        status,
        time: e.time,
        class: e.class,
        reason: e.reason,
        reply_code: e.reply_code,
        enhanced_status: e.enhanced_status,
        diagnostic: e.diagnostic,
    })
}

/// The latest status-setting event of each (queue id, recipient) whose current status was
/// set in the window, read through the current-status index (one small entry per recipient,
/// with the row it shows: no event is read, see [`crate::store::current`]).
fn latest_statuses(
    daemon: &Daemon,
    since: Timestamp,
    until: Timestamp,
) -> Result<HashMap<(String, String), Event>, AdminError> {
    let mut latest: HashMap<(String, String), Event> = HashMap::new();
    for c in daemon
        .store
        .current_between(since, until, |s| s != Status::Delivered)?
    {
        let Some(e) = daemon.store.row_of(&c)? else {
            continue;
        };
        let Some(r) = e.recipient.as_deref().and_then(suppression_key) else {
            continue;
        };
        latest.insert((e.queue_id.clone().unwrap_or_default(), r), e);
    }
    Ok(latest)
}
