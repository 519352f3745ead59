//! `/ui/log`: the communications log for one address or for all
//! ([`crate::admin::events`], what `rebound events` prints), filtered by status,
//! period (last 7 days, 30 days, a date range) and message, newest first (or
//! oldest first), paged by the store's cursor. Time is the one sort order: it is
//! the log's own key, so it orders the whole filtered result across every page
//! and the cursor pages through it. A sort by recipient or status would order only
//! the page shown (or read the whole log first), so it is not offered: filter by
//! status or recipient instead. Each row opens (`<details>`, no script) to the
//! whole event and a link to its message and preview.

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::{EVENTS, date_bound, options, read};
use crate::admin::{self, AdminError, EventFilter};
use crate::api::console::html::{self, esc, esc_opt, next_link, status, time};
use crate::api::console::http::{Form, query_string};
use crate::api::console::{Con, auth};
use crate::daemon::state::Daemon;
use crate::model::Event;

/// Rows per page.
pub const PAGE: usize = 50;
/// The orders offered: (value, label).
const SORTS: [(&str, &str); 2] = [("newest", "Newest first"), ("oldest", "Oldest first")];
/// The periods offered: (value, label).
const PERIODS: [(&str, &str); 4] = [
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("all", "All kept"),
    ("range", "Dates below"),
];

/// The page's parameters (README "Web console": `recipient`, `status`, `since`, `message`, `sort`; plus
/// `from`/`to` for a range and `cursor`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub message: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
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
            cursor: g("cursor"),
        }
    }

    pub fn query(&self, cursor: Option<&str>, sort: Option<&str>) -> String {
        query_string(&[
            ("recipient", self.recipient.as_deref()),
            ("status", self.status.as_deref()),
            ("since", self.since.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("message", self.message.as_deref()),
            ("sort", sort.or(self.sort.as_deref())),
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
        }
    }
}

/// One page of events in the order asked for, and the next page's cursor.
pub fn gather(daemon: &Daemon, f: &Filters) -> Result<(Vec<Event>, Option<String>), AdminError> {
    let mut filter = f.event_filter();
    let sort = f.sort.as_deref().unwrap_or("newest");
    if !SORTS.iter().any(|(v, _)| *v == sort) {
        return Err(AdminError::bad(
            "sort",
            format!(
                "{sort:?} is not one of newest, oldest (the log is sorted by time across every page; filter by status or recipient instead)"
            ),
        ));
    }
    let page = if sort == "oldest" {
        if let Some(m) = filter
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| m.starts_with('<'))
        {
            let id = daemon
                .store
                .message_by_message_id(m)?
                .ok_or_else(|| AdminError::NotFound(format!("no message with Message-ID {m}")))?;
            filter.message = Some(crate::store::queue::format_queue_id(id));
        }
        let mut q = filter.to_query(daemon.now())?;
        q.ascending = true;
        daemon.store.query_events(&q)?
    } else {
        admin::events(daemon, &filter)?
    };
    Ok((page.events, page.next_cursor))
}

/// `GET /ui/log`.
pub async fn page(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let f = Filters::of(&Form::query(&uri));
    let f2 = f.clone();
    let (events, next) = match read(&con, &who, move |daemon| gather(daemon, &f2)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let title = match &f.recipient {
        Some(r) => format!("Comms log of {r}"),
        None => "Comms log".to_string(),
    };
    html::respond(
        StatusCode::OK,
        html::page(
            &who,
            "/ui/log",
            &title,
            &render(&f, &events, next.as_deref()),
        ),
    )
}

/// The page body.
pub fn render(f: &Filters, events: &[Event], next: Option<&str>) -> String {
    let mut s = filter_form(f);
    if events.is_empty() {
        s.push_str("<p class=\"muted\">No event matches.</p>");
        return s;
    }
    let time_sort = if f.sort.as_deref() == Some("oldest") {
        "newest"
    } else {
        "oldest"
    };
    let head = |label: &str, sort: &str| {
        format!(
            "<th><a href=\"/ui/log?{}\">{}</a></th>",
            esc(&f.query(None, Some(sort))),
            esc(label)
        )
    };
    s.push_str(&format!("<div class=\"scroll\"><table><thead><tr>{}<th>Status</th><th>Recipient</th><th>Diagnostic</th><th>Details</th></tr></thead><tbody>", head("Time", time_sort)));
    for e in events {
        s.push_str(&row(e));
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&next_link(
        "/ui/log",
        next.map(|c| f.query(Some(c), None)),
        "More",
    ));
    s
}

fn filter_form(f: &Filters) -> String {
    let period = f.since.as_deref().unwrap_or("30d");
    let mut periods = String::new();
    for (v, label) in PERIODS {
        let sel = if v == period { " selected" } else { "" };
        periods.push_str(&format!("<option value=\"{v}\"{sel}>{label}</option>"));
    }
    let mut sorts = String::new();
    for (v, label) in SORTS {
        let sel = if Some(v) == f.sort.as_deref() {
            " selected"
        } else {
            ""
        };
        sorts.push_str(&format!("<option value=\"{v}\"{sel}>{label}</option>"));
    }
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/log\"><label>Recipient <input type=\"search\" name=\"recipient\" value=\"{}\" placeholder=\"an address\"></label>\
         <label>Status <select name=\"status\">{}</select></label><label>Period <select name=\"since\">{periods}</select></label>\
         <label>From <input type=\"date\" name=\"from\" value=\"{}\"></label><label>To <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>Message <input name=\"message\" value=\"{}\" placeholder=\"queue id or &lt;Message-ID&gt;\"></label><label>Order <select name=\"sort\">{sorts}</select></label>\
         <button type=\"submit\">Show</button></form>",
        v(&f.recipient),
        options(&EVENTS, f.status.as_deref(), "any status"),
        v(&f.from),
        v(&f.to),
        v(&f.message)
    )
}

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
    format!(
        "<tr><td>{}</td><td>{}</td><td>{rcpt}</td><td class=\"diag\">{}</td><td>{}</td></tr>",
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
