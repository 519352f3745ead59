//! `/ui/log`: the communications log for one address or for all
//! ([`crate::admin::events`], what `rebound events` prints), filtered by status,
//! period (last 7 days, 30 days, a date range) and message, newest first by
//! default, paged by cursor. Every column header is a plain link that sorts by it
//! (again: the other direction) and shows the current direction. Time and status
//! order the whole filtered log across every page (their indexes); recipient,
//! message and diagnostic order the filtered events when they are at most
//! [`SORT_LIMIT`] (one address, a message, a status or a short period): a filter
//! that matches more is shown newest first with a notice saying what to narrow
//! (see [`crate::admin::log`]). Each row opens (`<details>`, no script) to the whole
//! event and a link to its message and preview.

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::{EVENTS, date_bound, options, read};
use crate::admin::log::{COLUMNS, Column, LogSort, SORT_LIMIT};
use crate::admin::{self, AdminError, EventFilter};
use crate::api::console::html::{self, esc, esc_opt, next_link, status, time};
use crate::api::console::http::{Form, query_string};
use crate::api::console::{Con, auth};
use crate::daemon::state::Daemon;
use crate::model::Event;

/// Rows per page.
pub const PAGE: usize = 50;
/// The periods offered: (value, label).
const PERIODS: [(&str, &str); 4] = [
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("all", "All kept"),
    ("range", "Dates below"),
];
/// The table's sortable columns: (sort word, header).
const HEADERS: [(&str, &str); 5] = [
    ("time", "Time"),
    ("status", "Status"),
    ("recipient", "Recipient"),
    ("message", "Message"),
    ("diagnostic", "Diagnostic"),
];

/// The page's parameters (README "Web console": `recipient`, `status`, `since`, `message`,
/// `sort`, `order`; plus `from`/`to` for a range and `cursor`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub message: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub cursor: Option<String>,
}

/// One page as shown: its events, the next cursor, the order used, and a notice when the
/// order asked for could not be used.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub events: Vec<Event>,
    pub next: Option<String>,
    pub sort: LogSort,
    pub notice: Option<String>,
}

impl Filters {
    pub fn of(f: &Form) -> Filters {
        let g = |k| f.owned(k);
        Filters {
            recipient: g("recipient"),
            status: g("status"),
            since: g("since"),
            from: g("from"),
            to: g("to"),
            message: g("message"),
            sort: g("sort"),
            order: g("order"),
            cursor: g("cursor"),
        }
    }

    /// The query string of this page with another cursor, or (`sort` given) another order.
    pub fn query(&self, cursor: Option<&str>, sort: Option<LogSort>) -> String {
        let (s, o) = match sort {
            Some(s) => (Some(s.word()), Some(s.order_word())),
            None => (self.sort.as_deref(), self.order.as_deref()),
        };
        query_string(&[
            ("recipient", self.recipient.as_deref()),
            ("status", self.status.as_deref()),
            ("since", self.since.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("message", self.message.as_deref()),
            ("sort", s),
            ("order", o),
            ("cursor", cursor),
        ])
    }

    /// The admin filter: the period (default 30 days) or the dates.
    fn event_filter(&self) -> EventFilter {
        let (since, until) = match self.since.as_deref().unwrap_or("30d") {
            "range" => (
                date_bound(self.from.as_deref(), false),
                date_bound(self.to.as_deref(), true),
            ),
            "all" => (None, None),
            p => (Some(p.to_string()), None),
        };
        EventFilter {
            recipient: self.recipient.clone(),
            status: self.status.clone(),
            message: self.message.clone(),
            since,
            until,
            limit: Some(PAGE.to_string()),
            cursor: self.cursor.clone(),
            sort: self.sort.clone(),
            order: self.order.clone(),
        }
    }
}

/// One page of events in the order asked for. A sort the filter is too wide for
/// ([`crate::admin::log::too_many`]) falls back to newest first, with a notice.
pub fn gather(daemon: &Daemon, f: &Filters) -> Result<LogPage, AdminError> {
    let sort = LogSort::parse(f.sort.as_deref(), f.order.as_deref())?;
    let filter = f.event_filter();
    match admin::events(daemon, &filter) {
        Ok(page) => Ok(LogPage {
            events: page.events,
            next: page.next_cursor,
            sort,
            notice: None,
        }),
        Err(AdminError::BadInput { param: "sort", .. }) if f.cursor.is_none() => {
            let newest = EventFilter {
                sort: None,
                order: None,
                ..filter
            };
            let page = admin::events(daemon, &newest)?;
            Ok(LogPage {
                events: page.events,
                next: page.next_cursor,
                sort: LogSort::default(),
                notice: Some(format!(
                    "Sorting by {} orders at most {SORT_LIMIT} events, and this filter matches more: shown newest first. Narrow it to one recipient, a message, a status or a shorter period to sort by {0}.",
                    sort.word()
                )),
            })
        }
        Err(e) => Err(e),
    }
}

/// `GET /ui/log`.
pub async fn page(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let f = Filters::of(&Form::query(&uri));
    let f2 = f.clone();
    let shown = match read(&con, &who, move |daemon| gather(daemon, &f2)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let title = match &f.recipient {
        Some(r) => format!("Comms log of {r}"),
        None => "Comms log".to_string(),
    };
    html::respond(
        StatusCode::OK,
        html::page(&who, "/ui/log", &title, &render(&f, &shown)),
    )
}

/// The page body.
pub fn render(f: &Filters, p: &LogPage) -> String {
    let mut s = filter_form(f, p.sort);
    if let Some(n) = &p.notice {
        s.push_str(&format!(
            "<p class=\"notice error\" role=\"status\">{}</p>",
            esc(n)
        ));
    }
    if p.events.is_empty() {
        s.push_str("<p class=\"muted\">No event matches.</p>");
        return s;
    }
    let heads: String = HEADERS
        .iter()
        .map(|(w, l)| header(f, p.sort, w, l))
        .collect();
    s.push_str(&format!(
        "<div class=\"scroll\"><table><thead><tr>{heads}<th>Details</th></tr></thead><tbody>"
    ));
    for e in &p.events {
        s.push_str(&row(e));
    }
    s.push_str("</tbody></table></div>");
    if !matches!(p.sort.column, Column::Time | Column::Status) {
        s.push_str(&format!("<p class=\"muted\">Sorted by {} within the filtered events (at most {SORT_LIMIT}); ties newest first.</p>", p.sort.word()));
    }
    s.push_str(&next_link(
        "/ui/log",
        p.next.as_deref().map(|c| f.query(Some(c), Some(p.sort))),
        "More",
    ));
    s
}

/// A column header: a link sorting by the column (the other direction when it is the
/// current one), with the current direction shown (▲ ascending, ▼ descending).
fn header(f: &Filters, current: LogSort, word: &str, label: &str) -> String {
    let column = COLUMNS
        .iter()
        .find(|(w, _)| *w == word)
        .map_or(Column::Time, |(_, c)| *c);
    let is_current = current.column == column;
    let next = LogSort {
        column,
        descending: if is_current {
            !current.descending
        } else {
            column == Column::Time
        },
    };
    let (mark, aria) = match (is_current, current.descending) {
        (false, _) => ("", String::new()),
        (true, true) => (" ▼", " aria-sort=\"descending\"".to_string()),
        (true, false) => (" ▲", " aria-sort=\"ascending\"".to_string()),
    };
    format!(
        "<th{aria}><a href=\"/ui/log?{}\" title=\"Sort by {}\">{}{mark}</a></th>",
        esc(&f.query(None, Some(next))),
        esc(&label.to_lowercase()),
        esc(label)
    )
}

fn filter_form(f: &Filters, sort: LogSort) -> String {
    let period = f.since.as_deref().unwrap_or("30d");
    let mut periods = String::new();
    for (v, label) in PERIODS {
        let sel = if v == period { " selected" } else { "" };
        periods.push_str(&format!("<option value=\"{v}\"{sel}>{label}</option>"));
    }
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/log\"><label>Recipient <input type=\"search\" name=\"recipient\" value=\"{}\" placeholder=\"an address\"></label>\
         <label>Status <select name=\"status\">{}</select></label><label>Period <select name=\"since\">{periods}</select></label>\
         <label>From <input type=\"date\" name=\"from\" value=\"{}\"></label><label>To <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>Message <input name=\"message\" value=\"{}\" placeholder=\"queue id or &lt;Message-ID&gt;\"></label>\
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"order\" value=\"{}\">\
         <button type=\"submit\">Show</button></form>",
        v(&f.recipient),
        options(&EVENTS, f.status.as_deref(), "any status"),
        v(&f.from),
        v(&f.to),
        v(&f.message),
        sort.word(),
        sort.order_word()
    )
}

/// The header of a table of [`row`]s where it is not sortable (a message's events, the dashboard).
pub const ROW_HEAD: &str = "<tr><th>Time</th><th>Status</th><th>Recipient</th><th>Message</th><th>Diagnostic</th><th>Details</th></tr>";

/// One event: the summary columns and the whole event in a `<details>`.
pub fn row(e: &Event) -> String {
    let rcpt = match &e.recipient {
        Some(r) => format!(
            "<a href=\"/ui/log?{}\">{}</a>",
            esc(&query_string(&[("recipient", Some(r))])),
            esc(r)
        ),
        None => "-".into(),
    };
    let msg = match &e.queue_id {
        Some(q) => format!("<a href=\"/ui/messages/{0}\">{0}</a>", esc(q)),
        None => "-".into(),
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{rcpt}</td><td>{msg}</td><td class=\"diag\">{}</td><td>{}</td></tr>",
        time(e.time),
        status(e.status.as_str()),
        esc_opt(e.diagnostic.as_deref()),
        details(e)
    )
}

/// The whole event as a definition list inside `<details>`.
pub fn details(e: &Event) -> String {
    let num = |n: Option<u32>| n.map(|n| n.to_string());
    let fields: [(&str, Option<String>); 14] = [
        ("Event id", Some(e.id.clone())),
        ("Queue id", e.queue_id.clone()),
        ("Message-ID", e.message_id.clone()),
        ("Class", e.class.map(|c| c.as_str().to_string())),
        ("Reason", e.reason.map(|r| r.as_str().to_string())),
        ("Reply code", e.reply_code.map(|c| c.to_string())),
        ("Enhanced status", e.enhanced_status.clone()),
        ("Rule", e.rule.clone()),
        ("Remote host", e.remote_host.clone()),
        ("Attempt", num(e.attempt)),
        ("Next attempt", e.next_attempt.map(|t| t.to_rfc3339())),
        ("Linked message", e.linked_queue_id.clone()),
        ("Feedback type", e.feedback_type.clone()),
        ("Action", e.action.map(|a| a.as_str().to_string())),
    ];
    let mut dl = String::from("<details><summary>More</summary><dl>");
    for (k, v) in fields {
        if let Some(v) = v {
            dl.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v)));
        }
    }
    dl.push_str(&format!(
        "<dt>Diagnostic</dt><dd>{}</dd></dl>",
        esc_opt(e.diagnostic.as_deref())
    ));
    if let Some(q) = &e.queue_id {
        dl.push_str(&format!(
            "<p><a href=\"/ui/messages/{0}\">Message {0} and its preview</a></p>",
            esc(q)
        ));
    }
    dl.push_str("</details>");
    dl
}
