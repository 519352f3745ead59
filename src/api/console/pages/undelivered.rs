//! `/ui/undelivered`: the undelivered report ([`crate::admin::undelivered`], what
//! `rebound report undelivered` prints) over a date range (default: the last 30
//! days), by status, searched by recipient, newest first, paged by a cursor;
//! each row links to its message and (for operators) has a Resend form with a
//! corrected address. A row whose recipient was resent and whose resend was
//! delivered leaves the report, as it leaves `rebound report undelivered` and the
//! API's ([`admin::resolved_by_resend`]; its own status stays in the log). CSV export at
//! `/ui/undelivered.csv` with the same parameters. Without a search a page is read
//! index first ([`by_index`]), so it costs the 50 rows it shows, not the whole report.

use std::collections::HashSet;

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{UNDELIVERED, date_bound, day, options, read};
use crate::admin::{self, AdminError, UndeliveredItem, csv_cell};
use crate::api::console::html::{self, action_form, esc, esc_opt, next_link, status, time};
use crate::api::console::http::{Form, query_string};
use crate::api::console::session::Who;
use crate::api::console::{Con, auth};
use crate::daemon::state::Daemon;
use crate::model::Status;
use crate::model::time::Timestamp;
use crate::store::events::EventQuery;

/// Rows per page.
pub const PAGE: usize = 50;

/// The page's parameters (README "Web console": `from`, `to`, `status`, `q`, plus `cursor`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
    pub cursor: Option<String>,
}

impl Filters {
    pub fn of(f: &Form) -> Filters {
        Filters {
            from: f.owned("from"),
            to: f.owned("to"),
            status: f.owned("status"),
            q: f.owned("q"),
            cursor: f.owned("cursor"),
        }
    }

    fn query(&self, cursor: Option<&str>) -> String {
        query_string(&[
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("status", self.status.as_deref()),
            ("q", self.q.as_deref()),
            ("cursor", cursor),
        ])
    }
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct View {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Count per status of every matching row (all pages).
    pub summary: Vec<(String, usize)>,
    pub total: usize,
    /// Rows left out because a resend of them was delivered.
    pub resolved: usize,
    pub rows: Vec<UndeliveredItem>,
    pub next_cursor: Option<String>,
}

/// Every matching row, newest first, and how many were resolved by a delivered resend
/// ([`admin::undelivered`] leaves those out, for the CLI and the API as well).
pub fn rows(
    daemon: &Daemon,
    f: &Filters,
) -> Result<(Timestamp, Timestamp, Vec<UndeliveredItem>, usize), AdminError> {
    let since = date_bound(f.from.as_deref(), false);
    let until = date_bound(f.to.as_deref(), true);
    let report = admin::undelivered(
        daemon,
        None,
        since.as_deref(),
        until.as_deref(),
        f.status.as_deref(),
    )?;
    let needle = f.q.as_deref().map(str::to_lowercase);
    let mut items = report.items;
    if let Some(n) = &needle {
        items.retain(|i| i.recipient.to_lowercase().contains(n.as_str()));
    }
    items.reverse();
    Ok((report.since, report.until, items, report.resolved))
}

/// The cursor of a row: its time, queue id and recipient.
fn cursor_of(i: &UndeliveredItem) -> String {
    format!(
        "{}.{}.{}",
        i.time.millis(),
        i.queue_id.as_deref().unwrap_or(""),
        i.recipient
    )
}

/// Builds the view: one page after `f.cursor`. A recipient search reads the whole report
/// ([`rows`]); otherwise the page is read index first (see [`by_index`]).
pub fn gather(daemon: &Daemon, f: &Filters) -> Result<View, AdminError> {
    if f.q.is_none() {
        return by_index(daemon, f);
    }
    let (since, until, all, resolved) = rows(daemon, f)?;
    let mut counts = std::collections::BTreeMap::new();
    for i in &all {
        *counts
            .entry(i.status.as_str().to_string())
            .or_insert(0usize) += 1;
    }
    let start = match &f.cursor {
        Some(c) => all
            .iter()
            .position(|i| &cursor_of(i) == c)
            .map(|p| p + 1)
            .ok_or_else(|| {
                AdminError::bad(
                    "cursor",
                    "this page no longer exists; start again from the first page",
                )
            })?,
        None => 0,
    };
    let rows: Vec<UndeliveredItem> = all.iter().skip(start).take(PAGE).cloned().collect();
    let next_cursor = (start + rows.len() < all.len())
        .then(|| rows.last().map(cursor_of))
        .flatten();
    Ok(View {
        since,
        until,
        summary: counts.into_iter().collect(),
        total: all.len(),
        resolved,
        rows,
        next_cursor,
    })
}

/// The window and statuses asked for, checked as [`admin::undelivered`] checks them.
fn window(daemon: &Daemon, f: &Filters) -> Result<(Timestamp, Timestamp, Vec<Status>), AdminError> {
    let now = daemon.now();
    let bound = |param: &'static str, v: Option<String>| match v {
        Some(s) => admin::parse_since(&s, now)
            .map(Some)
            .ok_or_else(|| AdminError::bad(param, format!("{s:?} is not a date"))),
        None => Ok(None),
    };
    let until = bound("to", date_bound(f.to.as_deref(), true))?.unwrap_or(now);
    let since = bound("from", date_bound(f.from.as_deref(), false))?
        .unwrap_or_else(|| until.minus(std::time::Duration::from_secs(30 * 86_400)));
    if since > until {
        return Err(AdminError::bad("from", "the first day is after the last"));
    }
    let wanted = match f.status.as_deref() {
        Some(w) => vec![
            Status::ALL
                .into_iter()
                .find(|s| s.as_str() == w && *s != Status::Delivered)
                .ok_or_else(|| {
                    AdminError::bad(
                        "status",
                        format!("{w:?} is not one of {}", UNDELIVERED.join(", ")),
                    )
                })?,
        ],
        None => Status::ALL
            .into_iter()
            .filter(|s| *s != Status::Delivered)
            .collect(),
    };
    Ok((since, until, wanted))
}

/// One page read index first: the current-status index entries of the window (what
/// [`admin::undelivered`] reads, without their events) give the counts and the order, and
/// only the events of the rows shown are read, so a page costs what it shows.
pub fn by_index(daemon: &Daemon, f: &Filters) -> Result<View, AdminError> {
    let (since, until, wanted) = window(daemon, f)?;
    let mut entries = daemon
        .store
        .current_between(since, until, |s| wanted.contains(&s))?;
    entries.sort_by_key(|c| std::cmp::Reverse((c.time, c.event)));
    let resolved = admin::resolved_by_resend(daemon, since)?;
    let mut counts = std::collections::BTreeMap::new();
    for c in &entries {
        *counts
            .entry(c.status.as_str().to_string())
            .or_insert(0usize) += 1;
    }
    let hidden = uncount_resolved(daemon, &resolved, since, until, &wanted, &mut counts)?;
    let after = f.cursor.as_deref().map(parse_index_cursor).transpose()?;
    let start = after
        .map(|(t, e)| entries.partition_point(|c| (c.time, c.event) >= (t, e)))
        .unwrap_or(0);
    let mut rows = Vec::new();
    let mut next_cursor = None;
    for (n, c) in entries.iter().enumerate().skip(start) {
        if rows.len() == PAGE {
            next_cursor = entries
                .get(n - 1)
                .map(|p| format!("{}.{}", p.time.millis(), crate::store::hex(&p.event)));
            break;
        }
        let Some(item) = daemon.store.row_of(c)?.and_then(item_of) else {
            continue;
        };
        if !resolved.contains(&admin::row_id(&item)) {
            rows.push(item);
        }
    }
    let total = counts.values().sum();
    Ok(View {
        since,
        until,
        summary: counts.into_iter().filter(|(_, n)| *n > 0).collect(),
        total,
        resolved: hidden,
        rows,
        next_cursor,
    })
}

fn parse_index_cursor(c: &str) -> Result<(Timestamp, [u8; 16]), AdminError> {
    let bad = || AdminError::bad("cursor", "this is not a cursor from this page");
    let (ms, key) = c.split_once('.').ok_or_else(bad)?;
    let key: [u8; 16] = crate::store::unhex(key)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(bad)?;
    Ok((Timestamp(ms.parse().map_err(|_| bad())?), key))
}

/// An event as a report row (the fields [`admin::undelivered`] shows).
fn item_of(e: crate::model::Event) -> Option<UndeliveredItem> {
    Some(UndeliveredItem {
        status: e.status.status()?,
        recipient: e.recipient?,
        queue_id: e.queue_id,
        message_id: e.message_id,
        time: e.time,
        class: e.class,
        reason: e.reason,
        reply_code: e.reply_code,
        enhanced_status: e.enhanced_status,
        diagnostic: e.diagnostic,
    })
}

/// Takes the rows resolved by a delivered resend out of `counts`; how many were in the window.
fn uncount_resolved(
    daemon: &Daemon,
    resolved: &HashSet<(String, String)>,
    since: Timestamp,
    until: Timestamp,
    wanted: &[Status],
    counts: &mut std::collections::BTreeMap<String, usize>,
) -> Result<usize, AdminError> {
    let mut hidden = 0;
    for (qid, rcpt) in resolved {
        let Some(id) = crate::store::queue::parse_queue_id(qid) else {
            continue;
        };
        let q = EventQuery {
            queue_id: Some(id),
            recipient: Some(rcpt.clone()),
            limit: 1000,
            ..Default::default()
        };
        let latest = daemon
            .store
            .query_events(&q)?
            .events
            .into_iter()
            .find(|e| e.status.status().is_some());
        let Some((st, t)) = latest.and_then(|e| e.status.status().map(|s| (s, e.time))) else {
            continue;
        };
        if t >= since
            && t <= until
            && wanted.contains(&st)
            && let Some(n) = counts.get_mut(st.as_str())
        {
            *n = n.saturating_sub(1);
            hidden += 1;
        }
    }
    Ok(hidden)
}

/// `GET /ui/undelivered`.
pub async fn page(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let f = Filters::of(&Form::query(&uri));
    let f2 = f.clone();
    let view = match read(&con, &who, move |daemon| gather(daemon, &f2)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let back = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/ui/undelivered".into());
    html::respond(
        StatusCode::OK,
        html::page(
            &who,
            "/ui/undelivered",
            "Undelivered",
            &render(&who, &f, &view, &back),
        ),
    )
}

/// The page body.
pub fn render(who: &Who, f: &Filters, v: &View, back: &str) -> String {
    let mut s = filter_form(f, v);
    let mut summary = format!(
        "<p class=\"summary\"><strong>{}</strong> undelivered from {} to {}. ",
        v.total,
        time(v.since),
        time(v.until)
    );
    for (st, n) in &v.summary {
        let q = Filters {
            status: Some(st.clone()),
            cursor: None,
            ..f.clone()
        }
        .query(None);
        summary.push_str(&format!(
            "<a href=\"/ui/undelivered?{}\">{} {}</a>",
            esc(&q),
            status(st),
            n
        ));
    }
    if v.resolved > 0 {
        summary.push_str(&format!(
            " <span class=\"muted\">({} resolved by a delivered resend not shown)</span>",
            v.resolved
        ));
    }
    summary.push_str("</p>");
    s.push_str(&summary);
    if v.rows.is_empty() {
        s.push_str("<p class=\"muted\">Nothing undelivered matches.</p>");
        return s;
    }
    s.push_str("<div class=\"scroll\"><table><thead><tr><th>Time</th><th>Recipient</th><th>Status</th><th class=\"hide-narrow\">Reason</th><th>Diagnostic</th><th>Message</th>");
    if auth::shows_actions(who) {
        s.push_str("<th>Resend</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for i in &v.rows {
        s.push_str(&row(who, i, back));
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&next_link(
        "/ui/undelivered",
        v.next_cursor.as_deref().map(|c| f.query(Some(c))),
        "Older",
    ));
    s
}

fn filter_form(f: &Filters, v: &View) -> String {
    let csv = Filters {
        cursor: None,
        ..f.clone()
    }
    .query(None);
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/undelivered\"><label>From <input type=\"date\" name=\"from\" value=\"{}\"></label><label>To <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>Status <select name=\"status\">{}</select></label><label>Recipient <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"part of an address\"></label>\
         <button type=\"submit\">Show</button> <a href=\"/ui/undelivered.csv?{}\" download>Download CSV</a></form>",
        esc(&f.from.clone().unwrap_or_else(|| day(v.since))),
        esc(&f.to.clone().unwrap_or_else(|| day(v.until))),
        options(&UNDELIVERED, f.status.as_deref(), "any status"),
        esc(f.q.as_deref().unwrap_or("")),
        esc(&csv)
    )
}

fn row(who: &Who, i: &UndeliveredItem, back: &str) -> String {
    let msg = match &i.queue_id {
        Some(q) => format!("<a href=\"/ui/messages/{0}\">{0}</a>", esc(q)),
        None => "-".into(),
    };
    let log = format!(
        "<a href=\"/ui/log?{}\">{}</a>",
        esc(&query_string(&[("recipient", Some(&i.recipient))])),
        esc(&i.recipient)
    );
    let mut r = format!(
        "<tr><td>{}</td><td>{log}</td><td>{}</td><td class=\"hide-narrow\">{}</td><td class=\"diag\">{}</td><td>{msg}</td>",
        time(i.time),
        status(i.status.as_str()),
        esc_opt(i.reason.map(|r| r.as_str())),
        esc_opt(i.diagnostic.as_deref())
    );
    if auth::shows_actions(who) {
        let form = match &i.queue_id {
            Some(q) => {
                let input = format!(
                    "<input type=\"email\" name=\"to\" value=\"{}\" aria-label=\"Resend to\" required>",
                    esc(&i.recipient)
                );
                action_form(
                    who,
                    "/ui/actions/resend",
                    &[("id", q), ("back", back)],
                    &input,
                    "Resend",
                    "resend",
                )
            }
            None => String::new(),
        };
        r.push_str(&format!("<td>{form}</td>"));
    }
    r.push_str("</tr>");
    r
}

/// `GET /ui/undelivered.csv`: every matching row (not one page), newest first.
pub async fn csv(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let f = Filters {
        cursor: None,
        ..Filters::of(&Form::query(&uri))
    };
    let text = match read(&con, &who, move |daemon| {
        rows(daemon, &f).map(|(_, _, items, _)| csv_text(&items))
    })
    .await
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"undelivered.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// The rows as CSV (formula starts neutralised, like the suppression export).
pub fn csv_text(items: &[UndeliveredItem]) -> String {
    let mut out = String::from("time,recipient,status,reason,diagnostic,queue_id,message_id\r\n");
    for i in items {
        let cells = [
            i.time.to_rfc3339(),
            i.recipient.clone(),
            i.status.as_str().into(),
            i.reason.map(|r| r.as_str().to_string()).unwrap_or_default(),
            i.diagnostic.clone().unwrap_or_default(),
            i.queue_id.clone().unwrap_or_default(),
            i.message_id.clone().unwrap_or_default(),
        ];
        let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}
