//! Signing in and out, and the checks every page and form goes through: a live
//! session (else a redirect to the sign-in page), and for forms that change
//! something the session's CSRF token (403 without it) and the `operator` role
//! (403 for viewers).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::html::{esc, respond, see_other, shell};
use super::http::{Form, cookie_from, local_path};
use super::session::{COOKIE, Who, set_cookie};
use super::{Con, Console, Role, audit, csrf};

/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "rebound_login";
/// Failed sign-ins allowed per [`FAIL_WINDOW`] before every sign-in waits.
const MAX_FAILS: usize = 10;
const FAIL_WINDOW: Duration = Duration::from_secs(60);

/// Recent failed sign-ins (all names together: one console, few people).
#[derive(Debug, Default)]
pub struct Limiter(Mutex<VecDeque<Instant>>);

impl Limiter {
    fn blocked(&self, now: Instant) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= FAIL_WINDOW)
        {
            q.pop_front();
        }
        q.len() >= MAX_FAILS
    }

    fn fail(&self, now: Instant) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(now);
    }
}

/// `GET /` and `GET /ui`: to the dashboard.
pub async fn to_ui() -> Response {
    see_other("/ui/", &[])
}

/// The signed-in person, or a redirect to the sign-in page (coming back here after).
// The error is the response handlers return as is (a redirect or a 403 page).
#[allow(clippy::result_large_err)]
pub fn signed_in(con: &Console, headers: &HeaderMap, uri: &Uri) -> Result<Who, Response> {
    if let Some(who) =
        cookie_from(headers, COOKIE).and_then(|id| con.sessions.get(&id, Instant::now()))
    {
        return Ok(who);
    }
    let back = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui/");
    let next = super::http::query_string(&[("next", Some(local_path(Some(back), "/ui/")))]);
    Err(see_other(&format!("/ui/login?{next}"), &[]))
}

/// For a form that changes something: the session, its CSRF token, the operator role.
// The error is the response handlers return as is (a redirect or a 403 page).
#[allow(clippy::result_large_err)]
pub fn operator_form(
    con: &Console,
    headers: &HeaderMap,
    uri: &Uri,
    body: &Bytes,
) -> Result<(Who, Form), Response> {
    let who = signed_in(con, headers, uri)?;
    let form = Form::parse(body);
    if !csrf::matches(&who.csrf, form.get(csrf::FIELD)) {
        let msg = "This form's security token is missing or out of date, so nothing was changed. Reload the page and try again.";
        return Err(super::html::error_page(&who, StatusCode::FORBIDDEN, msg));
    }
    if !who.role.can_act() {
        let msg = format!(
            "{} is a viewer: viewers can read every page but cannot change anything. Ask an operator.",
            who.user
        );
        return Err(super::html::error_page(&who, StatusCode::FORBIDDEN, &msg));
    }
    Ok((who, form))
}

/// `GET /ui/login`.
pub async fn login_page(axum::extract::State(con): Con, uri: Uri) -> Response {
    let q = Form::query(&uri);
    login_form(&con, q.get("next"), None, StatusCode::OK)
}

fn login_form(
    con: &Console,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let token = csrf::new_token();
    let next = local_path(next, "/ui/");
    let error = error
        .map(|e| format!("<p class=\"notice error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<main><form class=\"login\" method=\"post\" action=\"/ui/login\"><h1>Sign in to rebound</h1>{error}\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>Name <input name=\"name\" autocomplete=\"username\" autocapitalize=\"none\"></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <p class=\"muted\"><small>Leave the name empty to sign in with the API token (data_dir/api.token) as the password.</small></p>\
         <button type=\"submit\">Sign in</button></form></main>",
        esc(&token),
        esc(next)
    );
    let mut r = respond(status, shell("Sign in", &body));
    if let Ok(v) = axum::http::HeaderValue::from_str(&set_cookie(
        LOGIN_COOKIE,
        &token,
        "/ui/login",
        con.secure,
        None,
    )) {
        r.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    r
}

/// `POST /ui/login`: name (empty for the API token) and password.
pub async fn login(axum::extract::State(con): Con, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let next = local_path(form.get("next"), "/ui/").to_string();
    let expected = cookie_from(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !csrf::matches(&expected, form.get(csrf::FIELD)) {
        return login_form(
            &con,
            Some(&next),
            Some("The sign-in form had expired. Please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let now = Instant::now();
    if con.limiter.blocked(now) {
        return login_form(
            &con,
            Some(&next),
            Some("Too many failed sign-ins in the last minute. Wait a minute and try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let name = form.get("name").unwrap_or("").to_string();
    let password = form.raw("password").unwrap_or("").to_string();
    let c = con.clone();
    let checked = tokio::task::spawn_blocking(move || c.users.check(&name, &password))
        .await
        .ok()
        .flatten();
    match checked {
        Some((user, role)) => start_session(&con, &user, role, now, &next),
        None => {
            let typed = form.get("name").unwrap_or(super::users::TOKEN_USER);
            refuse_sign_in(&con, typed, now, &next)
        }
    }
}

/// A good sign-in: a new session, its cookie (the login form's cookie cleared), an audit
/// entry, and on to `next`.
fn start_session(con: &Console, user: &str, role: Role, now: Instant, next: &str) -> Response {
    let id = con.sessions.start(user, role, now);
    record(con, user, role.as_str(), "sign_in", "", "done");
    let cookies = [
        set_cookie(COOKIE, &id, "/ui", con.secure, None),
        set_cookie(LOGIN_COOKIE, "", "/ui/login", con.secure, Some(0)),
    ];
    see_other(next, &cookies)
}

/// A failed sign-in: counted by the limiter, audited under the name typed, and the form again.
fn refuse_sign_in(con: &Console, typed: &str, now: Instant, next: &str) -> Response {
    con.limiter.fail(now);
    record(
        con,
        typed,
        "",
        "sign_in_failed",
        "",
        "wrong name, password or token",
    );
    login_form(
        con,
        Some(next),
        Some("That name and password (or API token) did not match."),
        StatusCode::UNAUTHORIZED,
    )
}

/// `POST /ui/logout`.
pub async fn logout(
    axum::extract::State(con): Con,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Ok(who) = signed_in(&con, &headers, &uri) else {
        return see_other("/ui/login", &[]);
    };
    if !csrf::matches(&who.csrf, Form::parse(&body).get(csrf::FIELD)) {
        return super::html::error_page(
            &who,
            StatusCode::FORBIDDEN,
            "This form's security token is missing or out of date. Reload the page and try again.",
        );
    }
    con.sessions.end(&who.id);
    record(&con, &who.user, who.role.as_str(), "sign_out", "", "done");
    see_other(
        "/ui/login",
        &[set_cookie(COOKIE, "", "/ui", con.secure, Some(0))],
    )
}

/// Writes one audit entry.
pub fn record(con: &Console, user: &str, role: &str, action: &str, target: &str, outcome: &str) {
    con.audit.record(&audit::Entry {
        time: con.daemon.now(),
        user: user.into(),
        role: role.into(),
        action: action.into(),
        target: target.into(),
        outcome: outcome.into(),
    });
}

/// The role a session needs to see the action forms.
pub fn shows_actions(who: &Who) -> bool {
    who.role == Role::Operator
}
