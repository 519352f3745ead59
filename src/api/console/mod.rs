//! The web console (issue #20, README "Web console"): server-rendered HTML pages for office
//! staff on the admin listener under `/ui/` (`/` redirects there), working
//! without JavaScript and loading nothing from other hosts.
//!
//! - [`users`]: `[[api.users]]` (name, argon2 `password_hash`, role), password hashing and checking.
//! - [`session`]: signed-in sessions (cookie `HttpOnly; SameSite=Strict`, `Secure` when
//!   `api.url` is `https://`, idle expiry) and the CSRF token each one carries.
//! - [`csrf`]: the per-session and sign-in form tokens, compared in constant time.
//! - [`http`]: cookie header and form/query parsing (network bytes; fuzzed).
//! - [`html`]: the escaping helper every value goes through, the page layout and style sheet.
//! - [`auth`]: sign-in and sign-out pages and the request guard (viewer / operator).
//! - [`pages`]: dashboard, undelivered report (+ CSV), comms log, message, suppressions, queue.
//! - [`actions`]: the operator forms (resend, retry, delete, remove block), each through
//!   [`crate::admin`] like the JSON API, each written to the [`audit`] log with who did it.
//! - [`preview`]: a stored message's headers and body, the HTML body sanitised and served
//!   with a CSP that allows no script, no remote load (shown in a sandboxed iframe).

pub mod actions;
pub mod audit;
pub mod auth;
pub mod csrf;
pub mod html;
pub mod http;
pub mod pages;
pub mod preview;
pub mod session;
pub mod users;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::daemon::state::Daemon;

pub use users::{ConsoleUser, Role, UsersError, check_users, hash_password};

/// What every console handler shares.
#[derive(Debug)]
pub struct Console {
    pub daemon: Arc<Daemon>,
    pub sessions: session::Sessions,
    pub users: users::Users,
    /// Cookies get `Secure` (the console is reached over TLS: `api.url` is `https://...`).
    pub secure: bool,
    pub audit: audit::Audit,
    pub limiter: auth::Limiter,
}

impl Console {
    pub fn new(daemon: Arc<Daemon>) -> Console {
        let secure = daemon
            .cfg
            .api
            .url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
        let users = users::Users::new(&daemon.cfg);
        let audit = audit::Audit::new(daemon.cfg.server.data_dir.join(audit::FILE_NAME));
        Console {
            daemon,
            sessions: session::Sessions::default(),
            users,
            secure,
            audit,
            limiter: auth::Limiter::default(),
        }
    }
}

/// Shared console state in handlers.
pub type Con = axum::extract::State<Arc<Console>>;

/// The console's routes, for merging into the admin API router (behind its Host check, not
/// its bearer-token check: the console signs people in itself).
pub fn router<S: Clone + Send + Sync + 'static>(daemon: &Arc<Daemon>) -> Router<S> {
    let console = Arc::new(Console::new(daemon.clone()));
    Router::new()
        .route("/", get(auth::to_ui))
        .route("/ui", get(auth::to_ui))
        .route("/ui/console.css", get(html::stylesheet))
        .route("/ui/login", get(auth::login_page).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/", get(pages::dashboard::page))
        .route("/ui/undelivered", get(pages::undelivered::page))
        .route("/ui/undelivered.csv", get(pages::undelivered::csv))
        .route("/ui/log", get(pages::log::page))
        .route("/ui/messages/{id}", get(pages::message::page))
        .route("/ui/messages/{id}/preview", get(preview::serve))
        .route("/ui/suppressions", get(pages::suppressions::page))
        .route("/ui/queue", get(pages::queue::page))
        .route("/ui/actions/resend", post(actions::resend))
        .route("/ui/actions/retry", post(actions::retry))
        .route("/ui/actions/delete", post(actions::delete))
        .route("/ui/actions/unblock", post(actions::unblock))
        .with_state(console)
}
