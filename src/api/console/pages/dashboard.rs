//! `/ui/`: the dashboard. Undelivered in the last 30 days by status (the
//! undelivered report's summary, from the current-status index), messages waiting and the oldest due, deliveries
//! per hour over the last 24 hours (inline SVG, counted from the log's status
//! index without reading the events), recent bounces and complaints, the webhook
//! backlog, and the latest operator actions.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::read;
use crate::admin::AdminError;
use crate::api::console::audit::Entry;
use crate::api::console::html::{self, esc, status, time};
use crate::api::console::{Con, auth};
use crate::daemon::state::Daemon;
use crate::model::Event;
use crate::model::time::Timestamp;
use crate::store::TreeId;
use crate::store::events::{EventQuery, event_key};

/// Waiting messages counted at most (beyond it the page says "more than").
const COUNT_CAP: usize = 100_000;
/// Recent bounces and complaints shown.
const RECENT: usize = 10;
const HOUR_MS: i64 = 3_600_000;

/// What the dashboard shows.
#[derive(Debug, Clone, Default)]
pub struct Dash {
    pub summary: Vec<(String, usize)>,
    pub undelivered: usize,
    pub waiting: usize,
    pub oldest_due: Option<Timestamp>,
    /// Deliveries in each of the last 24 hours, oldest first; the last is the current hour.
    pub hourly: Vec<u64>,
    pub recent: Vec<Event>,
    pub backlog: usize,
    pub webhooks_on: bool,
    pub actions: Vec<Entry>,
    pub now: Timestamp,
}

/// Reads everything but the audit entries.
pub fn gather(daemon: &Daemon) -> Result<Dash, AdminError> {
    let now = daemon.now();
    let report = super::undelivered::by_index(daemon, &super::undelivered::Filters::default())?;
    let waiting = daemon
        .store
        .tree(TreeId::Schedule)
        .iter()
        .keys()
        .take(COUNT_CAP)
        .count();
    let mut recent = Vec::new();
    for st in ["bounced", "complained"] {
        recent.extend(
            daemon
                .store
                .query_events(&EventQuery {
                    statuses: vec![st.into()],
                    limit: RECENT,
                    ..Default::default()
                })?
                .events,
        );
    }
    recent.sort_by(|a, b| b.id.cmp(&a.id));
    recent.truncate(RECENT);
    Ok(Dash {
        summary: report.summary,
        undelivered: report.total,
        waiting,
        oldest_due: daemon.store.next_due()?,
        hourly: hourly_deliveries(daemon, now)?,
        recent,
        backlog: daemon.store.outbox_len(),
        webhooks_on: daemon.cfg.webhooks.url.is_some(),
        actions: Vec::new(),
        now,
    })
}

/// Deliveries per hour for the 24 hours up to `now`, from the `delivered` status index keys.
pub fn hourly_deliveries(daemon: &Daemon, now: Timestamp) -> Result<Vec<u64>, AdminError> {
    let first_hour = now.millis().div_euclid(HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
    let prefix = b"delivered\0";
    let mut lo = prefix.to_vec();
    lo.extend_from_slice(&event_key(Timestamp(first_hour), 0));
    let mut hi = prefix.to_vec();
    hi.extend_from_slice(&event_key(now, u64::MAX));
    let mut hours = vec![0u64; 24];
    for k in daemon.store.tree(TreeId::EvStatus).range(lo..=hi).keys() {
        let k = k.map_err(crate::store::StoreError::from)?;
        let Some(ms) = k
            .get(prefix.len()..prefix.len() + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        let slot = (ms as i64 - first_hour).div_euclid(HOUR_MS);
        if let Some(h) = usize::try_from(slot).ok().and_then(|s| hours.get_mut(s)) {
            *h += 1;
        }
    }
    Ok(hours)
}

/// `GET /ui/`.
pub async fn page(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut d = match read(&con, &who, gather).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    d.actions = con.audit.recent(10);
    html::respond(
        StatusCode::OK,
        html::page(&who, "/ui/", "Dashboard", &render(&d)),
    )
}

/// The page body.
pub fn render(d: &Dash) -> String {
    let by_status = by_status(&d.summary);
    let oldest = next_due(d.oldest_due, d.now);
    let waiting = if d.waiting >= COUNT_CAP {
        format!("more than {COUNT_CAP}")
    } else {
        d.waiting.to_string()
    };
    let hooks = if d.webhooks_on {
        format!("{} events waiting to be posted", d.backlog)
    } else {
        "webhooks are off (no [webhooks] url)".into()
    };
    let delivered: u64 = d.hourly.iter().sum();
    let mut s = format!(
        "<div class=\"cards\"><section class=\"card\"><h2>Undelivered, last 30 days</h2><p class=\"big\"><a href=\"/ui/undelivered\">{}</a></p><ul>{by_status}</ul></section>\
         <section class=\"card\"><h2>Waiting for delivery</h2><p class=\"big\"><a href=\"/ui/queue\">{waiting}</a></p><p class=\"muted\">{oldest}</p></section>\
         <section class=\"card\"><h2>Webhook backlog</h2><p class=\"big\">{}</p><p class=\"muted\">{}</p></section></div>\
         <section class=\"card\"><h2>Deliveries per hour, last 24 hours ({delivered})</h2>{}</section>",
        d.undelivered,
        d.backlog,
        esc(&hooks),
        chart(&d.hourly)
    );
    s.push_str(&recent(&d.recent));
    s.push_str(&actions(&d.actions));
    s
}

/// The undelivered count of each status, as list items linking to the report.
fn by_status(summary: &[(String, usize)]) -> String {
    let mut by_status = String::new();
    for (st, n) in summary {
        by_status.push_str(&format!(
            "<li><a href=\"/ui/undelivered?status={}\">{}</a> {n}</li>",
            esc(st),
            status(st)
        ));
    }
    if by_status.is_empty() {
        by_status.push_str("<li class=\"muted\">none</li>");
    }
    by_status
}

/// The earliest due time: how overdue it is, or how soon it comes.
fn next_due(oldest_due: Option<Timestamp>, now: Timestamp) -> String {
    match oldest_due {
        Some(t) if t <= now => format!(
            "oldest due {} (overdue by {})",
            time(t),
            esc(&crate::model::time::format_duration(Duration::from_millis(
                (now.millis() - t.millis()) as u64
            )))
        ),
        Some(t) => format!(
            "next attempt {} (in {})",
            time(t),
            esc(&crate::model::time::format_duration(Duration::from_secs(
                ((t.millis() - now.millis()) / 1000) as u64
            )))
        ),
        None => "nothing scheduled".into(),
    }
}

/// The recent bounces and complaints, as a log table.
fn recent(events: &[Event]) -> String {
    let mut s = String::from("<h2>Recent bounces and complaints</h2>");
    if events.is_empty() {
        s.push_str("<p class=\"muted\">None.</p>");
    } else {
        s.push_str(&format!(
            "<div class=\"scroll\"><table><thead>{}</thead><tbody>",
            super::log::ROW_HEAD
        ));
        for e in events {
            s.push_str(&super::log::row(e));
        }
        s.push_str("</tbody></table></div>");
    }
    s
}

fn actions(entries: &[Entry]) -> String {
    let mut s = String::from("<h2>Latest operator actions</h2>");
    if entries.is_empty() {
        s.push_str("<p class=\"muted\">None yet.</p>");
        return s;
    }
    s.push_str("<div class=\"scroll\"><table><thead><tr><th>Time</th><th>Who</th><th>Action</th><th>On</th><th>Outcome</th></tr></thead><tbody>");
    for e in entries {
        s.push_str(&format!("<tr><td>{}</td><td>{} <small>{}</small></td><td>{}</td><td>{}</td><td class=\"diag\">{}</td></tr>", time(e.time), esc(&e.user), esc(&e.role), esc(&e.action), esc(&e.target), esc(&e.outcome)));
    }
    s.push_str("</tbody></table></div>");
    s
}

/// A bar chart of `hours` as inline SVG (presentation attributes only: no style, no script).
pub fn chart(hours: &[u64]) -> String {
    let max = hours.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, bar) = (480u64, 120u64, 20u64);
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"Deliveries per hour over the last 24 hours\" xmlns=\"http://www.w3.org/2000/svg\">",
        h + 16
    );
    for (i, n) in hours.iter().enumerate() {
        let bh = n * h / max;
        let x = i as u64 * bar;
        s.push_str(&format!("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{bh}\" fill=\"#1f5fbf\"><title>{n} delivered, {} h ago</title></rect>", x + 2, h - bh, bar - 4, hours.len() - 1 - i));
    }
    s.push_str(&format!("<line x1=\"0\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" stroke=\"#999\"/><text x=\"0\" y=\"{}\" font-size=\"11\" fill=\"#555\">24 h ago</text><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">now · max {max}/h</text></svg>", h + 13, w, h + 13));
    s
}
