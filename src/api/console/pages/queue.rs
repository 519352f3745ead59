//! `/ui/queue`: the messages waiting for delivery ([`crate::admin::list_queue`],
//! what `rebound queue list` prints), with each recipient's status, the next
//! attempt and last diagnostic, paged by the queue's cursor; operators can retry
//! now or delete.

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::read;
use crate::admin::{self, MessageView, QueuePage};
use crate::api::console::html::{self, action_form, esc, esc_opt, next_link, status, time};
use crate::api::console::http::{Form, query_string};
use crate::api::console::session::Who;
use crate::api::console::{Con, auth};

/// Messages per page.
pub const PAGE: usize = 50;

/// `GET /ui/queue`.
pub async fn page(axum::extract::State(con): Con, headers: HeaderMap, uri: Uri) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let cursor = Form::query(&uri).owned("cursor");
    let q = match read(&con, &who, move |daemon| {
        admin::list_queue(daemon, false, cursor.as_deref(), PAGE)
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let back = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/ui/queue".into());
    html::respond(
        StatusCode::OK,
        html::page(&who, "/ui/queue", "Queue", &render(&who, &q, &back)),
    )
}

/// The page body.
pub fn render(who: &Who, q: &QueuePage, back: &str) -> String {
    if q.items.is_empty() {
        return "<p class=\"muted\">Nothing is waiting for delivery.</p>".into();
    }
    let mut s = String::from(
        "<div class=\"scroll\"><table><thead><tr><th>Message</th><th>Received</th><th>Recipients</th><th>Attempts</th><th>Next attempt</th><th>Last diagnostic</th>",
    );
    if auth::shows_actions(who) {
        s.push_str("<th>Actions</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for m in &q.items {
        s.push_str(&row(who, m, back));
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&next_link(
        "/ui/queue",
        q.next_cursor
            .as_deref()
            .map(|c| query_string(&[("cursor", Some(c))])),
        "More",
    ));
    s
}

/// One message: its recipients with their statuses, attempts, next attempt, the latest
/// diagnostic, and the retry and delete buttons for those allowed to act.
fn row(who: &Who, m: &MessageView, back: &str) -> String {
    let rcpts: Vec<String> = m
        .recipients
        .iter()
        .map(|r| format!("{} {}", esc(&r.address), status(r.status.as_str())))
        .collect();
    let diag = m
        .recipients
        .iter()
        .filter_map(|r| r.last_diagnostic.as_deref())
        .next_back();
    let mut s = format!(
        "<tr><td><a href=\"/ui/messages/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td class=\"diag\">{5}</td>",
        esc(&m.queue_id),
        time(m.received),
        rcpts.join("<br>"),
        m.attempts,
        m.next_attempt.map(time).unwrap_or_else(|| "-".into()),
        esc_opt(diag)
    );
    if auth::shows_actions(who) {
        let retry = action_form(
            who,
            "/ui/actions/retry",
            &[("id", &m.queue_id), ("back", back)],
            "",
            "Retry now",
            "retry",
        );
        let delete = action_form(
            who,
            "/ui/actions/delete",
            &[("id", &m.queue_id), ("back", back)],
            "",
            "Delete",
            "danger delete",
        );
        s.push_str(&format!("<td>{retry} {delete}</td>"));
    }
    s.push_str("</tr>");
    s
}
