//! Routes the daemon adds to the admin API: `POST /v1/ingest` (a raw returned
//! message, processed exactly like one arriving by SMTP at the bounce domain)
//! and `GET /metrics` (Prometheus text).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiError;
use crate::daemon::state::Daemon;
use crate::records::metrics::{SmtpGauges, render};
use crate::store::WriteSet;

/// Largest returned message accepted by `/v1/ingest`.
pub const INGEST_LIMIT: usize = 10 * 1024 * 1024;

pub async fn ingest(State(daemon): State<Arc<Daemon>>, body: Bytes) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "body: expected a raw RFC 5322 message",
        ));
    }
    let mut ws = WriteSet::new();
    let done = crate::feedback::returned::ingest(
        &daemon,
        &body,
        crate::feedback::returned::Origin::Api,
        &mut ws,
    )?;
    daemon.commit(ws, &done.events).await?;
    crate::inbound::accept::notify_late_failures(&daemon, &done.failed, &done.events).await;
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "events": done.events, "unverified": done.unverified })),
    )
        .into_response())
}

pub async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    let gauges = daemon
        .smtp_stats
        .get()
        .map(|s| SmtpGauges {
            sessions_total: s.sessions_total.load(Ordering::Relaxed),
            sessions_active: s.sessions_active.load(Ordering::Relaxed),
            connections_refused: s.connections_refused.load(Ordering::Relaxed),
            connections_refused_per_ip: s.connections_refused_per_ip.load(Ordering::Relaxed),
            auth_lockouts: s.auth_lockouts.load(Ordering::Relaxed),
        })
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&daemon, gauges),
    )
        .into_response()
}
