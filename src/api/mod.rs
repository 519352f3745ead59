//! The admin API (SPEC §6) over axum; placeholder until the admin branch lands.
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::relay::Relay;

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(relay: Arc<Relay>, listener: tokio::net::TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" })).with_state(relay);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
