//! The admin API's TCP server: hyper's HTTP/1 connection driver instead of
//! `axum::serve`, so every connection is bounded.
//!
//! - at most `api.max_connections` connections are served; beyond that, up to
//!   [`OVERFLOW`] more are answered one request each, `/healthz` only (anything
//!   else gets `503 too_many_connections`), and the rest are closed at once;
//! - a request's headers, and an idle keep-alive connection's next request, must
//!   arrive within `api.header_timeout` (hyper closes the connection otherwise;
//!   overflow connections get at most [`OVERFLOW_HEADER_TIMEOUT`]);
//! - a request's body must have arrived `api.body_timeout` after its headers
//!   (`408 request_timeout`, connection closed).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ApiError;
use crate::config::ApiConfig;

/// Connections served `/healthz` only once `api.max_connections` are open.
pub const OVERFLOW: usize = 4;
/// Longest header wait on an overflow connection.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for open connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// The bounds, from [`ApiConfig`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Limits {
    pub fn from_config(cfg: &ApiConfig) -> Self {
        Limits {
            max_connections: cfg.max_connections,
            header_timeout: cfg.header_timeout.0,
            body_timeout: cfg.body_timeout.0,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let full = with_body_deadline(app.clone(), limits.body_timeout);
    let overflow_app = with_body_deadline(
        app.layer(axum::middleware::from_fn(healthz_only)),
        limits.body_timeout,
    );
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(OVERFLOW));
    let tracker = TaskTracker::new();
    loop {
        let tcp = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "api: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            tracker.spawn(connection(
                tcp,
                full.clone(),
                limits.header_timeout,
                true,
                permit,
                shutdown.clone(),
            ));
        } else if let Ok(permit) = spare.clone().try_acquire_owned() {
            tracing::debug!("api: connection cap reached; serving /healthz only");
            let header_timeout = limits.header_timeout.min(OVERFLOW_HEADER_TIMEOUT);
            tracker.spawn(connection(
                tcp,
                overflow_app.clone(),
                header_timeout,
                false,
                permit,
                shutdown.clone(),
            ));
        } else {
            tracing::debug!("api: connection cap reached; closing a connection");
        }
    }
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!(
            open = tracker.len(),
            "api: connections still open at shutdown; leaving them"
        );
    }
    Ok(())
}

/// Drives one connection; `keep_alive` false answers a single request.
async fn connection(
    tcp: TcpStream,
    app: Router,
    header_timeout: Duration,
    keep_alive: bool,
    permit: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(keep_alive);
    let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "api: connection ended with an error");
    }
    drop(permit);
}

/// The overflow connections' router: `/healthz` goes through, the rest is 503.
async fn healthz_only(req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "too many open API connections; try again",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    resp
}

/// Wraps every request body in a deadline of `limit` from the headers' arrival.
fn with_body_deadline(app: Router, limit: Duration) -> Router {
    app.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| body_deadline(req, next, limit),
    ))
}

async fn body_deadline(req: Request, next: Next, limit: Duration) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        Body::new(TimedBody {
            inner: body,
            sleep: Box::pin(tokio::time::sleep(limit)),
            expired: expired.clone(),
        })
    });
    let resp = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return resp;
    }
    tracing::info!(timeout = ?limit, "api: request body not received in time");
    let mut resp = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body did not arrive in time",
    )
    .into_response();
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}

/// A request body that fails once its deadline has passed.
struct TimedBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error a [`TimedBody`] yields.
#[derive(Debug, thiserror::Error)]
#[error("request body timed out")]
pub struct BodyTimeout;

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
