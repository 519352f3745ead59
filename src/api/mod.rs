//! The admin API (README "Admin API and webhooks") over axum: routes, the bearer-token and Host guards,
//! and the server loop. Handlers live in [`handlers`]; every route but
//! `/healthz` needs `Authorization: Bearer <token>` (from `api.token`, or
//! generated in `data_dir/api.token`); requests whose `Host` is not the
//! configured address or loopback are refused (DNS rebinding). The TCP
//! listener bounds connections and read times ([`conn`]).

mod conn;
mod error;
mod guard;
mod handlers;
mod ingest;

pub mod console;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use guard::{Guard, api_token};

use crate::daemon::state::Daemon;

/// The OpenAPI 3.1 description of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Most bytes accepted in a suppression import.
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// The authenticated admin routes, without guards or state. Add routes to this (or pass
/// them to [`router_with`]) to put them behind the same token check.
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/v1/openapi.json", get(handlers::openapi))
        .route("/v1/queue", get(handlers::queue_list))
        .route(
            "/v1/messages/{id}",
            get(handlers::message_show).delete(handlers::message_delete),
        )
        .route("/v1/messages/{id}/retry", post(handlers::message_retry))
        .route("/v1/messages/{id}/resend", post(handlers::message_resend))
        .route("/v1/events", get(handlers::events))
        .route("/v1/unverified", get(handlers::unverified))
        .route("/v1/reports/undelivered", get(handlers::undelivered))
        .route("/v1/suppressions", get(handlers::suppressions_list))
        .route(
            "/v1/suppressions/{address}",
            put(handlers::suppression_put).delete(handlers::suppression_delete),
        )
        .route(
            "/v1/suppressions/import",
            post(handlers::suppressions_import)
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route(
            "/v1/suppressions/export",
            get(handlers::suppressions_export),
        )
        .route("/v1/erase", post(handlers::erase))
        .route(
            "/v1/ingest",
            post(handlers::ingest)
                .layer(axum::extract::DefaultBodyLimit::max(ingest::INGEST_LIMIT)),
        )
        .route("/metrics", get(handlers::metrics))
}

/// The whole API for `relay`: [`routes`] behind the token, `/healthz` open, all behind the Host check.
pub fn router(daemon: Arc<Daemon>) -> Router {
    router_with(daemon, Router::new())
}

/// Like [`router`], with `extra` routes (e.g. `/v1/ingest`, `/metrics`) behind the same token check.
pub fn router_with(daemon: Arc<Daemon>, extra: Router<Arc<Daemon>>) -> Router {
    let guard = Guard::new(&daemon.cfg);
    routes()
        .merge(extra)
        .route_layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::require_token,
        ))
        .route("/healthz", get(handlers::healthz))
        .merge(crate::api::console::router(&daemon)) // the web console (`/`, `/ui/...`): its own sign-in, not the token
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::require_host,
        ))
        .with_state(daemon)
}

/// The API for the unix socket: the same routes without the token and Host checks (the
/// socket's file permissions decide who may connect).
pub fn unix_router(daemon: Arc<Daemon>) -> Router {
    routes()
        .route("/healthz", get(handlers::healthz))
        .fallback(handlers::not_found)
        .with_state(daemon)
}

/// Serves [`unix_router`] on a unix socket at `path` (replacing a stale one), mode 0600.
pub async fn serve_unix(
    daemon: Arc<Daemon>,
    path: std::path::PathBuf,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let app = unix_router(daemon);
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    let _ = std::fs::remove_file(&path);
    res
}

/// Serves the admin API on `listener` until `shutdown`, within `api.max_connections`,
/// `api.header_timeout` and `api.body_timeout` (see [`conn`]).
pub async fn serve(
    daemon: Arc<Daemon>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    api_token(&daemon.cfg).map_err(|e| std::io::Error::other(e.to_string()))?;
    let limits = conn::Limits::from_config(&daemon.cfg.api);
    let app = router(daemon);
    conn::serve(listener, app, limits, shutdown).await
}

#[cfg(test)]
mod tests {
    /// Every route registered in [`super::routes`] is described in the OpenAPI document.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value =
            serde_json::from_str(super::OPENAPI).expect("openapi.json is JSON");
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
            Some(true)
        );
        let paths = doc["paths"].as_object().expect("paths");
        // The file's source with whitespace collapsed, so a `.route(` call reads the same on
        // one line or across several; each call ends at the end of its statement or block.
        let src = include_str!("mod.rs")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(");
        let mut seen = std::collections::BTreeSet::new();
        for call in src.split(".route(\"").skip(1) {
            let line = call.split(';').next().unwrap_or_default();
            let line = line.split(" }").next().unwrap_or_default();
            let path = call.split('"').next().unwrap_or_default();
            let entry = paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is missing from openapi.json"));
            for method in ["get", "post", "put", "delete"] {
                let used = line.contains(&format!(" {method}(handlers::"))
                    || line.contains(&format!("({method}(handlers::"))
                    || line.contains(&format!(".{method}(handlers::"));
                assert_eq!(
                    used,
                    entry.get(method).is_some(),
                    "{method} {path}: router and openapi.json disagree"
                );
            }
            seen.insert(path);
        }
        assert!(seen.len() >= 13, "found only {} routes", seen.len());
        assert_eq!(
            paths.len(),
            seen.len(),
            "openapi.json describes routes the router does not have"
        );
    }
}
