//! The public unsubscribe listener (`unsubscribe.listen`): `POST /u/{token}` with
//! `List-Unsubscribe=One-Click` unsubscribes (RFC 8058); `GET /u/{token}` only shows
//! a confirmation page whose button POSTs, so link scanners that follow every URL
//! never unsubscribe anyone. No authentication: the signed token is the credential.
//! Bad signature or malformed token → 400, expired or no longer kept → 404,
//! and nothing changes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::{Applied, TokenError, UnsubToken, apply, verify_token};
use crate::daemon::state::Daemon;
use crate::store::WriteSet;

/// Largest request body read (a one-click POST is a few dozen bytes).
const BODY_LIMIT: usize = 16 * 1024;

/// Serialises unsubscribes so two concurrent POSTs of one link record it once.
static APPLY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The unsubscribe routes for `relay`.
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/u/{token}", get(confirm_page).post(one_click))
        .fallback(|| async { page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(daemon)
}

/// Serves the unsubscribe routes on `listener` until `shutdown`.
pub async fn serve(
    daemon: Arc<Daemon>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(daemon))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn check(daemon: &Daemon, token: &str) -> Result<UnsubToken, TokenError> {
    verify_token(
        &daemon.verp,
        token,
        daemon.now(),
        daemon.cfg.bounces.tag_validity.0,
    )
}

/// The page for a refused token: 404 when expired, 400 when malformed or forged.
fn refused(e: TokenError) -> Response {
    match e {
        TokenError::Expired => page(
            StatusCode::NOT_FOUND,
            "Link expired",
            "This unsubscribe link has expired.",
        ),
        TokenError::Malformed | TokenError::BadMac => page(
            StatusCode::BAD_REQUEST,
            "Invalid link",
            "This unsubscribe link is not valid.",
        ),
    }
}

async fn confirm_page(State(daemon): State<Arc<Daemon>>, Path(token): Path<String>) -> Response {
    let tok = match check(&daemon, &token) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let who = match daemon.store.message(tok.queue_id) {
        Ok(Some(rec)) => rec
            .recipients
            .get(tok.rcpt_index as usize)
            .map(|r| mask(&r.address)),
        Ok(None) => None,
        Err(_) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "The service is temporarily unavailable.",
            );
        }
    };
    let Some(who) = who else {
        return page(
            StatusCode::NOT_FOUND,
            "Link expired",
            "This unsubscribe link is no longer valid.",
        );
    };
    // The token verified, so it holds only base32 characters: safe in HTML and in the URL.
    let form = format!(
        "<p>Stop sending mail to {who}?</p>\n<form method=\"post\" action=\"/u/{}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>",
        token.to_ascii_lowercase()
    );
    html(StatusCode::OK, "Unsubscribe", &form)
}

async fn one_click(
    State(daemon): State<Arc<Daemon>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    if !is_one_click(&body) {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Expected List-Unsubscribe=One-Click.",
        );
    }
    let tok = match check(&daemon, &token) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let _serial = APPLY.lock().await;
    let mut ws = WriteSet::new();
    let applied = match apply(&daemon, &tok, "one-click", &mut ws) {
        Ok(a) => a,
        Err(e) => return unavailable(&e),
    };
    match applied {
        Applied::Done(events) => match daemon.commit(ws, &events).await {
            Ok(()) => page(
                StatusCode::OK,
                "Unsubscribed",
                "You have been unsubscribed.",
            ),
            Err(e) => unavailable(&e),
        },
        Applied::Already => page(
            StatusCode::OK,
            "Unsubscribed",
            "You were already unsubscribed.",
        ),
        Applied::Gone => page(
            StatusCode::NOT_FOUND,
            "Link expired",
            "This unsubscribe link is no longer valid.",
        ),
    }
}

fn unavailable(e: &crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "unsubscribe could not be recorded");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        "The unsubscribe could not be recorded; please try again.",
    )
}

/// True when the body carries `List-Unsubscribe=One-Click`, form-urlencoded or multipart (RFC 8058 §3.1).
pub fn is_one_click(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    if text
        .split('&')
        .any(|kv| kv.trim() == "List-Unsubscribe=One-Click")
    {
        return true;
    }
    match text.find("name=\"List-Unsubscribe\"") {
        Some(i) => text[i..]
            .split("\r\n\r\n")
            .nth(1)
            .is_some_and(|v| v.trim_start().starts_with("One-Click")),
        None => false,
    }
}

/// `jane@example.com` → `j***@example.com`: enough to recognise, not to harvest.
fn mask(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first: String = local
        .chars()
        .take(1)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    escape(&format!("{first}***@{domain}"))
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    html(status, title, &format!("<p>{}</p>", escape(text)))
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let doc = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <title>{t}</title></head>\n<body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    );
    (status, [("cache-control", "no-store")], Html(doc)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_click_bodies() {
        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(b"a=b&List-Unsubscribe=One-Click"));
        assert!(is_one_click(b"--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n"));
        assert!(!is_one_click(b""));
        assert!(!is_one_click(b"List-Unsubscribe=Other"));
    }

    #[test]
    fn masks_and_escapes() {
        assert_eq!(mask("jane@example.com"), "j***@example.com");
        assert_eq!(mask("<x>@a"), "***@a");
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
