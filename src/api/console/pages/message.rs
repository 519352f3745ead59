//! `/ui/messages/{id}`: one message ([`crate::admin::show`], what `rebound queue
//! show` prints): its envelope, recipients and their statuses, its events, its
//! headers as text, a preview of its body in a sandboxed iframe, and (for
//! operators) retry now, delete and resend.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::read;
use crate::admin::{self, MessageView};
use crate::api::console::html::{self, action_form, esc, esc_opt, status, time};
use crate::api::console::session::Who;
use crate::api::console::{Con, auth, preview};

/// What the page shows beside the message view.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub headers: Option<String>,
    pub subject: Option<String>,
}

/// `GET /ui/messages/{id}`.
pub async fn page(
    axum::extract::State(con): Con,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let who = match auth::signed_in(&con, &headers, &uri) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let got = read(&con, &who, move |daemon| {
        let view = admin::show(daemon, &id)?;
        let body = crate::admin::parse_id(&view.queue_id)
            .ok()
            .and_then(|n| daemon.store.body(n).ok().flatten());
        let extra = Extra {
            headers: body.as_deref().map(preview::header_text),
            subject: body.as_deref().and_then(preview::subject),
        };
        Ok((view, extra))
    })
    .await;
    let (view, extra) = match got {
        Ok(v) => v,
        Err(r) => return r,
    };
    let back = format!("/ui/messages/{}", view.queue_id);
    html::respond(
        StatusCode::OK,
        html::page(
            &who,
            "",
            &format!("Message {}", view.queue_id),
            &render(&who, &view, &extra, &back),
        ),
    )
}

/// The page body.
pub fn render(who: &Who, m: &MessageView, extra: &Extra, back: &str) -> String {
    let mut s = format!(
        "<dl><dt>Subject</dt><dd>{}</dd><dt>From (envelope)</dt><dd>{}</dd><dt>Message-ID</dt><dd>{}</dd><dt>Received</dt><dd>{}</dd><dt>Client</dt><dd>{}</dd><dt>Size</dt><dd>{} bytes</dd><dt>Attempts</dt><dd>{}</dd><dt>Next attempt</dt><dd>{}</dd>",
        esc_opt(extra.subject.as_deref()),
        esc(&m.sender),
        esc_opt(m.message_id.as_deref()),
        time(m.received),
        esc(&m.client),
        m.size,
        m.attempts,
        m.next_attempt.map(time).unwrap_or_else(|| "-".into())
    );
    if let Some(from) = &m.resent_from {
        s.push_str(&format!(
            "<dt>Resent from</dt><dd><a href=\"/ui/messages/{0}\">{0}</a></dd>",
            esc(from)
        ));
    }
    s.push_str("</dl>");
    if auth::shows_actions(who) {
        s.push_str(&actions(who, m, back));
    }
    s.push_str("<h2>Recipients</h2><div class=\"scroll\"><table><thead><tr><th>Recipient</th><th>Status</th><th>Attempts</th><th>Last diagnostic</th></tr></thead><tbody>");
    for r in &m.recipients {
        let log = crate::api::console::http::query_string(&[("recipient", Some(&r.address))]);
        s.push_str(&format!(
            "<tr><td><a href=\"/ui/log?{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"diag\">{}</td></tr>",
            esc(&log),
            esc(&r.address),
            status(r.status.as_str()),
            r.attempts,
            esc_opt(r.last_diagnostic.as_deref())
        ));
    }
    s.push_str(&format!("</tbody></table></div><h2>Events</h2><div class=\"scroll\"><table><thead>{}</thead><tbody>", super::log::ROW_HEAD));
    for e in m.events.as_deref().unwrap_or_default() {
        s.push_str(&super::log::row(e));
    }
    s.push_str("</tbody></table></div><h2>Preview</h2>");
    match &extra.headers {
        Some(h) => {
            s.push_str(&format!(
                "<details><summary>Headers</summary><pre>{}</pre></details>",
                esc(h)
            ));
            s.push_str(&format!(
                "<iframe class=\"preview\" sandbox src=\"/ui/messages/{}/preview\" title=\"Preview of the message body (no scripts, no remote images)\" referrerpolicy=\"no-referrer\" loading=\"lazy\"></iframe>",
                esc(&m.queue_id)
            ));
        }
        None => s.push_str("<p class=\"muted\">The body of this message is no longer stored.</p>"),
    }
    s
}

fn actions(who: &Who, m: &MessageView, back: &str) -> String {
    let mut s = String::from("<h2>Actions</h2><p>");
    if !m.finished {
        s.push_str(&action_form(
            who,
            "/ui/actions/retry",
            &[("id", &m.queue_id), ("back", back)],
            "",
            "Retry now",
            "retry",
        ));
        s.push(' ');
        s.push_str(&action_form(
            who,
            "/ui/actions/delete",
            &[("id", &m.queue_id), ("back", "/ui/queue")],
            "",
            "Delete from the queue",
            "danger delete",
        ));
    }
    if m.body_kept {
        let input = "<input type=\"email\" name=\"to\" placeholder=\"corrected address (empty: the same recipients)\" aria-label=\"Resend to\">";
        s.push_str(&action_form(
            who,
            "/ui/actions/resend",
            &[("id", &m.queue_id), ("back", back)],
            input,
            "Resend",
            "resend",
        ));
    }
    s.push_str("</p>");
    s
}
