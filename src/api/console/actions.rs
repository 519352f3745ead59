//! The operator forms (POST, CSRF token, `operator` role: see [`auth::operator_form`]).
//! Each calls the [`crate::admin`] function the JSON API calls, writes an audit
//! entry with who did it and the outcome, leaves a notice for the next page and
//! redirects back (303) to the page the form was on.

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::html::see_other;
use super::http::{Form, local_path};
use super::session::Who;
use super::{Con, Console, auth};
use crate::admin::{self, AdminError};

/// What an action did: the notice and the audit outcome.
fn finish(
    con: &Console,
    who: &Who,
    form: &Form,
    fallback: &str,
    action: &str,
    target: &str,
    res: Result<String, AdminError>,
) -> Response {
    let (notice, outcome) = match res {
        Ok(done) => ((false, done), "done".to_string()),
        Err(e) => ((true, e.to_string()), format!("refused: {e}")),
    };
    auth::record(con, &who.user, who.role.as_str(), action, target, &outcome);
    con.sessions.notify(&who.id, notice);
    see_other(local_path(form.get("back"), fallback), &[])
}

fn required<'a>(form: &'a Form, field: &'static str) -> Result<&'a str, AdminError> {
    form.get(field)
        .ok_or_else(|| AdminError::bad(field, "is required"))
}

/// `POST /ui/actions/resend`: `id`, `to` (empty: the original recipients).
pub async fn resend(
    axum::extract::State(con): Con,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (who, form) = match auth::operator_form(&con, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = form.get("id").unwrap_or("").to_string();
    let res = async {
        let id = required(&form, "id")?;
        let to = form
            .get("to")
            .map(|t| admin::parse_address("to", t))
            .transpose()?;
        let r = admin::resend(&con.daemon, id, to).await?;
        Ok(format!(
            "Message {} resent to {} as {}.",
            r.resent_from,
            r.recipients.join(", "),
            r.queue_id
        ))
    }
    .await;
    let target = match form.get("to") {
        Some(to) => format!("{id} to {to}"),
        None => id.clone(),
    };
    finish(&con, &who, &form, "/ui/undelivered", "resend", &target, res)
}

/// `POST /ui/actions/retry`: `id`.
pub async fn retry(
    axum::extract::State(con): Con,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (who, form) = match auth::operator_form(&con, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let res = async {
        let id = required(&form, "id")?;
        let m = admin::retry(&con.daemon, id).await?;
        Ok(format!("Message {} will be tried again now.", m.queue_id))
    }
    .await;
    finish(
        &con,
        &who,
        &form,
        "/ui/queue",
        "retry",
        form.get("id").unwrap_or(""),
        res,
    )
}

/// `POST /ui/actions/delete`: `id`.
pub async fn delete(
    axum::extract::State(con): Con,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (who, form) = match auth::operator_form(&con, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let res = async {
        let id = required(&form, "id")?;
        let events = admin::delete(&con.daemon, id).await?;
        Ok(format!(
            "Message {} deleted; {} waiting recipient(s) recorded as dropped.",
            id.to_ascii_uppercase(),
            events.len()
        ))
    }
    .await;
    finish(
        &con,
        &who,
        &form,
        "/ui/queue",
        "delete",
        form.get("id").unwrap_or(""),
        res,
    )
}

/// `POST /ui/actions/unblock`: `address`, and `consent=yes` for a complaint or unsubscribe
/// entry (without it such an entry stays, and the refusal is recorded).
pub async fn unblock(
    axum::extract::State(con): Con,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (who, form) = match auth::operator_form(&con, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let consent = form.get("consent") == Some("yes");
    let res = async {
        let address = admin::parse_address("address", required(&form, "address")?)?;
        let old = admin::remove_suppression(&con.daemon, &address, consent).await.map_err(|e| match e {
            AdminError::Refused { code: "consent_required", .. } => AdminError::refused(
                "consent_required",
                format!("{address} asked not to be mailed (a complaint or unsubscribe), so the block was not removed: tick \"has agreed to be mailed again\" only if they gave their consent."),
            ),
            e => e,
        })?;
        let how = if old.reason.needs_consent_to_remove() { format!(" (its {} entry removed with the recipient's consent, confirmed by {})", old.reason, who.user) } else { String::new() };
        Ok(format!("{} is no longer suppressed{how}; it will be mailed again.", old.address))
    }
    .await;
    let action = if consent {
        "unblock_with_consent"
    } else {
        "unblock"
    };
    finish(
        &con,
        &who,
        &form,
        "/ui/suppressions",
        action,
        form.get("address").unwrap_or(""),
        res,
    )
}
