//! The communications log in the order asked for (`sort` = `time`, `status`,
//! `recipient`, `message`, `diagnostic`; `order` = `desc` or `asc`), the same for
//! `rebound`'s API (`GET /v1/events`) and the console's `/ui/log`. Every order is
//! total: the column's value, then the event (newest first), so a cursor (the last
//! row's value and event key) pages without a row skipped or shown twice.
//!
//! - `time` reads the log's own key and `status` the status index
//!   ([`crate::store::grouped`]): both order the whole log, and a page costs what it
//!   shows.
//! - `recipient`, `message` and `diagnostic` have no index in that order: the filtered
//!   events are read and sorted, at most [`SORT_LIMIT`] of them. A filter that matches
//!   more (all recipients over 30 days of a big store) is refused with a word on what
//!   to narrow (a recipient, a message, a status, dates). `status` with a recipient or
//!   message filter sorts the same way (that set is small; the status index would read
//!   past everyone else's events).

use super::{AdminError, EventFilter};
use crate::daemon::state::Daemon;
use crate::model::Event;
use crate::model::address::suppression_key;
use crate::store::events::{EventPage, EventQuery};
use crate::store::grouped::{GroupCursor, GroupedQuery};
use crate::store::{TreeId, hex, unhex};

/// The most events a sort without an index orders in one request.
pub const SORT_LIMIT: usize = 5_000;

/// A column the log sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Time,
    Status,
    Recipient,
    Message,
    Diagnostic,
}

/// The columns by their words, in the order the console shows them.
pub const COLUMNS: [(&str, Column); 5] = [
    ("time", Column::Time),
    ("status", Column::Status),
    ("recipient", Column::Recipient),
    ("message", Column::Message),
    ("diagnostic", Column::Diagnostic),
];

/// An order: a column and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSort {
    pub column: Column,
    pub descending: bool,
}

impl Default for LogSort {
    /// Newest first.
    fn default() -> Self {
        LogSort {
            column: Column::Time,
            descending: true,
        }
    }
}

impl LogSort {
    /// `sort` (a column word; also `newest`/`oldest`, the console's earlier words for time)
    /// and `order` (`asc`/`desc`; by default time is newest first and the others A to Z).
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> Result<LogSort, AdminError> {
        let (column, default_desc) = match sort.map(str::trim).filter(|s| !s.is_empty()) {
            None | Some("newest") => (Column::Time, true),
            Some("oldest") => (Column::Time, false),
            Some(s) => match COLUMNS.iter().find(|(w, _)| *w == s) {
                Some((_, c)) => (*c, *c == Column::Time),
                None => {
                    return Err(AdminError::bad(
                        "sort",
                        format!("{s:?} is not one of time, status, recipient, message, diagnostic"),
                    ));
                }
            },
        };
        let descending = match order.map(str::trim).filter(|s| !s.is_empty()) {
            None => default_desc,
            Some("desc") => true,
            Some("asc") => false,
            Some(o) => {
                return Err(AdminError::bad(
                    "order",
                    format!("{o:?} is not asc or desc"),
                ));
            }
        };
        Ok(LogSort { column, descending })
    }

    /// The column's word.
    pub fn word(self) -> &'static str {
        COLUMNS
            .iter()
            .find(|(_, c)| *c == self.column)
            .map_or("time", |(w, _)| w)
    }

    /// `asc` or `desc`.
    pub fn order_word(self) -> &'static str {
        if self.descending { "desc" } else { "asc" }
    }

    /// True when this order reads the filtered set and sorts it (bounded by [`SORT_LIMIT`]).
    pub fn sorts_in_memory(self, f: &EventFilter) -> bool {
        let narrow = f.recipient.as_deref().is_some_and(|s| !s.is_empty())
            || f.message.as_deref().is_some_and(|s| !s.is_empty());
        match self.column {
            Column::Time => false,
            Column::Status => narrow,
            _ => true,
        }
    }
}

/// One page of the log in `sort`'s order (`f.message` already a queue id).
pub fn sorted_page(
    daemon: &Daemon,
    f: &EventFilter,
    sort: LogSort,
) -> Result<EventPage, AdminError> {
    if sort.column == Column::Time {
        let mut q = f.to_query(daemon.now())?;
        q.ascending = !sort.descending;
        return Ok(daemon.store.query_events(&q)?);
    }
    let after = match f.cursor.as_deref() {
        Some(c) => Some(parse_cursor(c, sort)?),
        None => None,
    };
    let mut plain = f.clone();
    plain.cursor = None;
    let q = plain.to_query(daemon.now())?;
    if sort.sorts_in_memory(f) {
        in_memory(daemon, q, sort, after.as_ref())
    } else {
        by_status_index(daemon, &q, sort, after.as_ref())
    }
}

/// The status index, groups in the order asked, each newest first.
fn by_status_index(
    daemon: &Daemon,
    q: &EventQuery,
    sort: LogSort,
    after: Option<&GroupCursor>,
) -> Result<EventPage, AdminError> {
    let page = daemon.store.query_grouped(GroupedQuery {
        tree: TreeId::EvStatus,
        groups_descending: sort.descending,
        query: q,
        after,
    })?;
    Ok(EventPage {
        events: page.events,
        next_cursor: page.next.map(|c| cursor(sort, &c)),
    })
}

/// The filtered set read whole (at most [`SORT_LIMIT`] events), sorted, and the page after `after`.
fn in_memory(
    daemon: &Daemon,
    mut q: EventQuery,
    sort: LogSort,
    after: Option<&GroupCursor>,
) -> Result<EventPage, AdminError> {
    let limit = q.limit;
    q.limit = SORT_LIMIT + 1;
    let all = daemon.store.query_events(&q)?;
    if all.next_cursor.is_some() || all.events.len() > SORT_LIMIT {
        return Err(too_many(sort));
    }
    let mut rows: Vec<(Vec<u8>, [u8; 16], Event)> = all
        .events
        .into_iter()
        .map(|e| (sort_key(sort.column, &e), event_key_of(&e), e))
        .collect();
    rows.sort_by(|a, b| {
        let by_value = if sort.descending {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        };
        by_value.then(b.1.cmp(&a.1))
    });
    let start = after.map_or(0, |c| {
        rows.partition_point(|r| {
            let value = if sort.descending {
                r.0 > c.group
            } else {
                r.0 < c.group
            };
            value || (r.0 == c.group && r.1 >= c.below)
        })
    });
    let rest = rows.len().saturating_sub(start);
    let shown: Vec<_> = rows.into_iter().skip(start).take(limit).collect();
    let next_cursor = (rest > limit)
        .then(|| shown.last())
        .flatten()
        .map(|(k, ek, _)| {
            cursor(
                sort,
                &GroupCursor {
                    group: k.clone(),
                    below: *ek,
                },
            )
        });
    Ok(EventPage {
        events: shown.into_iter().map(|r| r.2).collect(),
        next_cursor,
    })
}

/// Why a sort without an index was refused.
pub fn too_many(sort: LogSort) -> AdminError {
    AdminError::bad(
        "sort",
        format!(
            "sorting by {} orders at most {SORT_LIMIT} events and this filter matches more: narrow it to one recipient, a message, a status or a shorter period (time and status sort the whole log)",
            sort.word()
        ),
    )
}

/// A column's value as the bytes it sorts by (the status and recipient as their indexes key them).
fn sort_key(column: Column, e: &Event) -> Vec<u8> {
    let mut k = match column {
        Column::Time => return Vec::new(),
        Column::Status => e.status.as_str().as_bytes().to_vec(),
        Column::Recipient => e
            .recipient
            .as_deref()
            .map(|r| suppression_key(r).unwrap_or_else(|| r.to_lowercase()))
            .unwrap_or_default()
            .into_bytes(),
        Column::Message => {
            let id = e
                .queue_id
                .as_deref()
                .and_then(crate::store::queue::parse_queue_id);
            return id.map(|n| n.to_be_bytes().to_vec()).unwrap_or_default();
        }
        Column::Diagnostic => {
            let d = e.diagnostic.as_deref().unwrap_or("");
            let mut end = d.len().min(64);
            while !d.is_char_boundary(end) {
                end -= 1;
            }
            return d.as_bytes()[..end].to_vec();
        }
    };
    k.push(0);
    k
}

fn event_key_of(e: &Event) -> [u8; 16] {
    unhex(&e.id)
        .and_then(|k| k.try_into().ok())
        .unwrap_or([0; 16])
}

/// A cursor of a sorted page: `column.order.value.event`, the value and event key in hex.
fn cursor(sort: LogSort, c: &GroupCursor) -> String {
    format!(
        "{}.{}.{}.{}",
        sort.word(),
        sort.order_word(),
        hex(&c.group),
        hex(&c.below)
    )
}

/// Reads a cursor back; one from another order (or not a cursor) is refused.
pub fn parse_cursor(c: &str, sort: LogSort) -> Result<GroupCursor, AdminError> {
    let bad = || AdminError::bad("cursor", format!("{c:?} is not a cursor from this list"));
    let mut parts = c.split('.');
    let (Some(col), Some(ord), Some(v), Some(ek), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if col != sort.word() || ord != sort.order_word() {
        return Err(bad());
    }
    let group = if v.is_empty() {
        Vec::new()
    } else {
        unhex(v).ok_or_else(bad)?
    };
    let below = unhex(ek)
        .and_then(|k| <[u8; 16]>::try_from(k).ok())
        .ok_or_else(bad)?;
    Ok(GroupCursor { group, below })
}
