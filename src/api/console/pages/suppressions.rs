//! `/ui/suppressions`: the suppression list ([`crate::admin::list_suppressions`])
//! searched (`q`: part of an address) and filtered by reason, paged by the
//! store's cursor. Bounced and manual entries show a red cross, complaint and
//! unsubscribe entries are struck through; each links to the event that caused
//! it and to its comms log. Operators get "Remove block"; removing a complaint
//! or unsubscribe entry needs the consent confirmation box ticked (the `--force`
//! path), and the confirmation is recorded.

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::{options, read};
use crate::admin::{self, AdminError};
use crate::api::console::html::{self, action_form, esc, esc_opt, next_link, time};
use crate::api::console::http::{Form, query_string};
use crate::api::console::session::Who;
use crate::api::console::{Con, auth};
use crate::daemon::state::Daemon;
use crate::model::{Suppression, SuppressionReason};

/// Rows per page.
pub const PAGE: usize = 50;
/// Most entries read for one page of a search.
const SCAN: usize = 50_000;

/// The page's parameters (README "Web console": `q`, `reason`; plus `cursor`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub q: Option<String>,
    pub reason: Option<String>,
    pub cursor: Option<String>,
}

impl Filters {
    pub fn of(f: &Form) -> Filters {
        Filters {
            q: f.owned("q"),
            reason: f.owned("reason"),
            cursor: f.owned("cursor"),
        }
    }

    fn query(&self, cursor: Option<&str>) -> String {
        query_string(&[
            ("q", self.q.as_deref()),
            ("reason", self.reason.as_deref()),
            ("cursor", cursor),
        ])
    }
}

/// One page: an exact address is looked up; part of one is searched for page by page.
pub fn gather(
    daemon: &Daemon,
    f: &Filters,
) -> Result<(Vec<Suppression>, Option<String>), AdminError> {
    let reason = f
        .reason
        .as_deref()
        .map(|r| {
            r.parse::<SuppressionReason>()
                .map_err(|e| AdminError::bad("reason", e))
        })
        .transpose()?;
    let needle = f.q.as_deref().map(str::to_lowercase);
    if let Some(n) = needle.as_deref().filter(|n| n.contains('@')) {
        let found = daemon
            .store
            .suppression(n)?
            .filter(|s| reason.is_none_or(|r| r == s.reason));
        if found.is_some() || !n.starts_with('@') {
            return Ok((found.into_iter().collect(), None));
        }
    }
    let mut out = Vec::new();
    let mut cursor = f.cursor.clone();
    let mut scanned = 0;
    loop {
        let page = admin::list_suppressions(daemon, reason, cursor.as_deref(), 1000)?;
        for s in page.items {
            scanned += 1;
            let key = crate::model::address::suppression_key(&s.address)
                .unwrap_or_else(|| s.address.to_lowercase());
            cursor = Some(key);
            if needle
                .as_deref()
                .is_none_or(|n| s.address.to_lowercase().contains(n))
            {
                out.push(s);
                if out.len() == PAGE {
                    return Ok((out, cursor));
                }
            }
        }
        if page.next_cursor.is_none() {
            return Ok((out, None));
        }
        if scanned >= SCAN {
            return Ok((out, cursor));
        }
    }
}

/// `GET /ui/suppressions`.
pub async fn page(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let f = Filters::of(&Form::query(&uri));
    let f2 = f.clone();
    let (items, next) = match read(&con, &who, move |daemon| gather(daemon, &f2)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let total = con.daemon.store.suppression_count();
    let back = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/ui/suppressions".into());
    html::respond(
        StatusCode::OK,
        html::page(
            &who,
            "/ui/suppressions",
            "Suppression list",
            &render(&who, &f, &items, next.as_deref(), total, &back),
        ),
    )
}

/// The page body.
pub fn render(
    who: &Who,
    f: &Filters,
    items: &[Suppression],
    next: Option<&str>,
    total: usize,
    back: &str,
) -> String {
    let reasons: Vec<&str> = SuppressionReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut s = format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/suppressions\"><label>Search <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"address or part of one\"></label><label>Reason <select name=\"reason\">{}</select></label><button type=\"submit\">Show</button></form><p class=\"muted\">{total} addresses on the list. <span class=\"cross\">✖</span> bounced or blocked; <span class=\"struck\">struck through</span>: complained or unsubscribed (removing these needs the recipient's consent).</p>",
        esc(f.q.as_deref().unwrap_or("")),
        options(&reasons, f.reason.as_deref(), "any reason")
    );
    if items.is_empty() {
        s.push_str("<p class=\"muted\">No suppressed address matches.</p>");
        return s;
    }
    s.push_str("<div class=\"scroll\"><table><thead><tr><th>Address</th><th>Reason</th><th>Added</th><th>Diagnostic</th><th>Cause</th>");
    if auth::shows_actions(who) {
        s.push_str("<th>Remove block</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for e in items {
        s.push_str(&row(who, e, back));
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&next_link(
        "/ui/suppressions",
        next.map(|c| f.query(Some(c))),
        "More",
    ));
    s
}

/// The address as marked: a red cross (bounced, manual) or struck through (consent reasons).
pub fn marked(e: &Suppression) -> String {
    if e.reason.needs_consent_to_remove() {
        format!(
            "<s class=\"struck\" title=\"{}\">{}</s>",
            esc(e.reason.as_str()),
            esc(&e.address)
        )
    } else {
        format!(
            "<span class=\"cross\" aria-label=\"blocked\">✖</span> {}",
            esc(&e.address)
        )
    }
}

fn row(who: &Who, e: &Suppression, back: &str) -> String {
    let log = query_string(&[("recipient", Some(&e.address))]);
    let cause = match &e.event_id {
        Some(id) => format!(
            "<a href=\"/ui/log?{}\" title=\"event {}\">comms log</a>",
            esc(&log),
            esc(id)
        ),
        None => format!("<a href=\"/ui/log?{}\">comms log</a>", esc(&log)),
    };
    let mut r = format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"diag\">{}</td><td>{cause}</td>",
        marked(e),
        esc(e.reason.as_str()),
        time(e.time),
        esc_opt(e.diagnostic.as_deref())
    );
    if auth::shows_actions(who) {
        let extra = if e.reason.needs_consent_to_remove() {
            format!(
                "<label class=\"consent\"><input type=\"checkbox\" name=\"consent\" value=\"yes\" required> {} has agreed to be mailed again</label>",
                esc(&e.address)
            )
        } else {
            String::new()
        };
        r.push_str(&format!(
            "<td>{}</td>",
            action_form(
                who,
                "/ui/actions/unblock",
                &[("address", &e.address), ("back", back)],
                &extra,
                "Remove block",
                "unblock"
            )
        ));
    }
    r.push_str("</tr>");
    r
}
