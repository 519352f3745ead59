//! Route handlers: parse and check parameters (a bad one is a 400 naming it),
//! call [`crate::admin`], answer JSON. Lists answer `{"items", "next_cursor"}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::ApiError;
pub use super::ingest::{ingest, metrics};
use crate::admin::{self, EventFilter, ExportFormat, limit_param, parse_address};
use crate::daemon::state::Daemon;
use crate::model::SuppressionReason;

type Rel = State<Arc<Daemon>>;
type Raw = Result<Query<Vec<(String, String)>>, QueryRejection>;
type ApiResult = Result<Response, ApiError>;

/// Query parameters, checked against the names a route accepts.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(raw: Raw, allowed: &[&str]) -> Result<Params, ApiError> {
        let Query(pairs) = raw.map_err(|e| ApiError::bad("query", e.body_text()))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad(
                    &k,
                    format!("unknown parameter (accepted: {})", allowed.join(", ")),
                ));
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad(&k, "given more than once"));
            }
        }
        Ok(Params(map))
    }

    /// The value of `k`; an empty value (`?reason=`) is passed on, so it is refused as invalid
    /// rather than silently meaning "no filter".
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    fn owned(&self, k: &str) -> Option<String> {
        self.get(k).map(str::to_string)
    }

    fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.get(k) {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(v) => Err(ApiError::bad(k, format!("{v:?} is not true or false"))),
        }
    }
}

/// Parses an optional JSON body; a body must come as `application/json` (415 otherwise).
fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a request body must be sent as Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::bad("body", e))
}

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

pub async fn healthz(State(daemon): Rel) -> Response {
    if daemon.shutting_down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    if !daemon.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response();
    }
    if let Some(f) = daemon.committer.health().fault() {
        let body = json!({"status": "storage_failed", "reason": f.reason, "since": f.since, "restart_needed": f.restart_needed});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let min = daemon.cfg.smtp.min_free_space.0;
    if let Some(free) =
        crate::records::enqueue::free_space(&daemon.cfg.server.data_dir).filter(|f| *f < min)
    {
        let reason = format!(
            "{free} bytes free in data_dir, below smtp.min_free_space ({min}): MAIL gets 452 4.3.1"
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "insufficient_storage", "reason": reason})),
        )
            .into_response();
    }
    Json(json!({"status": "ok"})).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::OPENAPI).into_response()
}

pub async fn queue_list(State(daemon): Rel, q: Raw) -> ApiResult {
    let p = Params::parse(q, &["all", "limit", "cursor"])?;
    let limit = limit_param(p.get("limit"), 100, 1000)?;
    ok(admin::list_queue(
        &daemon,
        p.flag("all")?,
        p.get("cursor"),
        limit,
    )?)
}

pub async fn message_show(State(daemon): Rel, Path(id): Path<String>) -> ApiResult {
    ok(admin::show(&daemon, &id)?)
}

pub async fn message_retry(State(daemon): Rel, Path(id): Path<String>) -> ApiResult {
    ok(admin::retry(&daemon, &id).await?)
}

pub async fn message_delete(State(daemon): Rel, Path(id): Path<String>) -> ApiResult {
    let events = admin::delete(&daemon, &id).await?;
    ok(json!({"deleted": id.to_ascii_uppercase(), "events": events}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendBody {
    to: Option<String>,
}

pub async fn message_resend(
    State(daemon): Rel,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: Option<ResendBody> = json_body(&headers, &body)?;
    let to = match b.and_then(|b| b.to).filter(|s| !s.is_empty()) {
        Some(t) => Some(parse_address("to", &t)?),
        None => None,
    };
    let r = admin::resend(&daemon, &id, to).await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

pub async fn events(State(daemon): Rel, q: Raw) -> ApiResult {
    let p = Params::parse(
        q,
        &[
            "recipient",
            "status",
            "message",
            "since",
            "until",
            "limit",
            "cursor",
            "sort",
            "order",
        ],
    )?;
    let f = EventFilter {
        recipient: p.owned("recipient"),
        status: p.owned("status"),
        message: p.owned("message"),
        since: p.owned("since"),
        until: p.owned("until"),
        limit: p.owned("limit"),
        cursor: p.owned("cursor"),
        sort: p.owned("sort"),
        order: p.owned("order"),
    };
    let body = off_the_workers(&daemon, move |daemon| {
        let page = admin::events(daemon, &f)?;
        Ok(to_json(
            &json!({"items": page.events, "next_cursor": page.next_cursor}),
        ))
    })
    .await?;
    Ok(json_bytes(body))
}

/// The security log: untrusted returned reports, newest first.
pub async fn unverified(State(daemon): Rel, q: Raw) -> ApiResult {
    let p = Params::parse(q, &["limit", "cursor"])?;
    let limit = limit_param(p.get("limit"), 100, 1000)?;
    let cursor = p.get("cursor");
    if let Some(c) = cursor
        && (c.len() != 32 || crate::store::unhex(c).is_none())
    {
        return Err(ApiError::bad(
            "cursor",
            "expected the next_cursor of a previous page",
        ));
    }
    let (items, next) = daemon.store.unverified(cursor, limit)?;
    ok(json!({"items": items, "next_cursor": next}))
}

pub async fn undelivered(State(daemon): Rel, q: Raw) -> ApiResult {
    let p = Params::parse(q, &["days", "status", "since", "until"])?;
    let (days, since, until, status) = (
        p.owned("days"),
        p.owned("since"),
        p.owned("until"),
        p.owned("status"),
    );
    let body = off_the_workers(&daemon, move |daemon| {
        Ok(to_json(&admin::undelivered(
            daemon,
            days.as_deref(),
            since.as_deref(),
            until.as_deref(),
            status.as_deref(),
        )?))
    })
    .await?;
    Ok(json_bytes(body))
}

/// Serialised on the blocking pool too: a page of 1,000 events is megabytes of JSON.
fn to_json(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| {
        format!("{{\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}").into_bytes()
    })
}

fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// At most this many heavy admin reads run at once: one, so on a small machine the other
/// cores are left to SMTP sessions and deliveries.
const HEAVY_READS: usize = 1;
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HEAVY_READS);

/// Runs a store read (and its serialisation) on the blocking pool, at most [`HEAVY_READS`] at a time, so reports and
/// log queries never occupy the async workers SMTP sessions run on.
async fn off_the_workers<T: Send + 'static>(
    daemon: &Arc<Daemon>,
    f: impl FnOnce(&Daemon) -> Result<T, admin::AdminError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = HEAVY.acquire().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the daemon is stopping",
        )
    })?;
    let daemon = daemon.clone();
    let joined = tokio::task::spawn_blocking(move || f(&daemon)).await;
    let done = joined.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the query failed: {e}"),
        )
    })?;
    Ok(done?)
}

fn reason_param(v: Option<&str>, param: &str) -> Result<Option<SuppressionReason>, ApiError> {
    v.map(|r| {
        r.parse::<SuppressionReason>()
            .map_err(|e| ApiError::bad(param, e))
    })
    .transpose()
}

pub async fn suppressions_list(State(daemon): Rel, q: Raw) -> ApiResult {
    let p = Params::parse(q, &["reason", "limit", "cursor"])?;
    let reason = reason_param(p.get("reason"), "reason")?;
    let limit = limit_param(p.get("limit"), 100, 1000)?;
    ok(admin::list_suppressions(
        &daemon,
        reason,
        p.get("cursor"),
        limit,
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    reason: Option<String>,
    diagnostic: Option<String>,
    #[serde(default)]
    force: bool,
}

pub async fn suppression_put(
    State(daemon): Rel,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let address = parse_address("address", &address)?;
    let b: PutBody = json_body(&headers, &body)?.unwrap_or(PutBody {
        reason: None,
        diagnostic: None,
        force: false,
    });
    let reason = reason_param(b.reason.as_deref(), "reason")?.unwrap_or(SuppressionReason::Manual);
    let (entry, changed) =
        admin::add_suppression(&daemon, &address, reason, b.diagnostic, b.force).await?;
    let status = if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)).into_response())
}

pub async fn suppression_delete(
    State(daemon): Rel,
    Path(address): Path<String>,
    q: Raw,
) -> ApiResult {
    let p = Params::parse(q, &["force"])?;
    let address = parse_address("address", &address)?;
    let removed = admin::remove_suppression(&daemon, &address, p.flag("force")?).await?;
    ok(json!({"removed": removed}))
}

pub async fn suppressions_import(
    State(daemon): Rel,
    q: Raw,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(q, &["format"])?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let from_type = match ct.as_str() {
        "text/csv" => ExportFormat::Csv,
        "application/x-ndjson" | "application/jsonl" | "application/json" => {
            ExportFormat::JsonLines
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send text/csv or application/x-ndjson",
            ));
        }
    };
    let format = match p.get("format") {
        Some(f) => ExportFormat::parse(f)?,
        None => from_type,
    };
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad("body", "not UTF-8"))?;
    ok(admin::import_suppressions(&daemon, format, text).await?)
}

pub async fn suppressions_export(State(daemon): Rel, q: Raw) -> ApiResult {
    let p = Params::parse(q, &["format"])?;
    let format = ExportFormat::parse(p.get("format").unwrap_or("csv"))?;
    let text = admin::export_suppressions(&daemon, format)?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    address: String,
}

pub async fn erase(State(daemon): Rel, headers: HeaderMap, body: Bytes) -> ApiResult {
    let b: EraseBody = json_body(&headers, &body)?
        .ok_or_else(|| ApiError::bad("address", "a JSON body {\"address\": ...} is required"))?;
    let address = parse_address("address", &b.address)?;
    let stats = admin::erase(&daemon, &address).await?;
    ok(stats)
}
