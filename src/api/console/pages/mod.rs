//! The console's pages (GET only), one file each. Every handler signs the
//! request in, reads through [`crate::admin`] (the same calls the JSON API
//! makes) off the async workers, and renders with [`super::html`]. Rendering is
//! split from reading so tests can render hostile data.

pub mod dashboard;
pub mod log;
pub mod message;
pub mod queue;
pub mod suppressions;
pub mod undelivered;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::Console;
use super::session::Who;
use crate::admin::AdminError;
use crate::daemon::state::Daemon;

/// One heavy console read at a time (reports, log pages), beside the API's own limit.
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Runs `f` on the blocking pool, one at a time; an admin error becomes an error page.
pub async fn read<T: Send + 'static>(
    con: &Arc<Console>,
    who: &Who,
    f: impl FnOnce(&Daemon) -> Result<T, AdminError> + Send + 'static,
) -> Result<T, Response> {
    let Ok(_permit) = HEAVY.acquire().await else {
        return Err(super::html::error_page(
            who,
            StatusCode::SERVICE_UNAVAILABLE,
            "The daemon is stopping.",
        ));
    };
    let daemon = con.daemon.clone();
    match tokio::task::spawn_blocking(move || f(&daemon)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(admin_error(who, &e)),
        Err(e) => Err(super::html::error_page(
            who,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The page could not be built: {e}"),
        )),
    }
}

/// An admin failure as a page: 404 for missing things, 400 for bad input, 409 for refusals.
pub fn admin_error(who: &Who, e: &AdminError) -> Response {
    let status = match e {
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::BadInput { .. } => StatusCode::BAD_REQUEST,
        AdminError::Refused { .. } => StatusCode::CONFLICT,
        AdminError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    super::html::error_page(who, status, &e.to_string())
}

/// A date field (`YYYY-MM-DD` from a date input, or any time the admin functions accept) as
/// the bound it means: `end_of_day` makes a bare date its last second.
pub fn date_bound(v: Option<&str>, end_of_day: bool) -> Option<String> {
    let v = v?.trim();
    if v.len() == 10 && v.as_bytes().get(4) == Some(&b'-') && end_of_day {
        return Some(format!("{v}T23:59:59Z"));
    }
    Some(v.to_string())
}

/// The date part of a time, for a date input's value.
pub fn day(t: crate::model::time::Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

/// `<option>`s for `words`, `current` selected, led by an "any" option.
pub fn options(words: &[&str], current: Option<&str>, any: &str) -> String {
    let mut s = format!("<option value=\"\">{}</option>", super::html::esc(any));
    for w in words {
        let sel = if current == Some(*w) { " selected" } else { "" };
        s.push_str(&format!(
            "<option value=\"{0}\"{sel}>{0}</option>",
            super::html::esc(w)
        ));
    }
    s
}

/// The statuses the undelivered report shows (README "What happens to each recipient", all but delivered).
pub const UNDELIVERED: [&str; 8] = [
    "bounced",
    "failed",
    "expired",
    "dropped",
    "complained",
    "unsubscribed",
    "deferred",
    "queued",
];
/// Every event name the communications log filters on.
pub const EVENTS: [&str; 14] = [
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
    "suppression_added",
    "suppression_removed",
];
