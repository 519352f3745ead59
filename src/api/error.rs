//! API errors as JSON: `{"error": {"code": "not_found", "message": "..."}}`,
//! with the HTTP status each admin failure maps to.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::admin::AdminError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 naming the parameter.
    pub fn bad(param: &str, message: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{param}: {message}"),
        )
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            AdminError::BadInput { param, message } => ApiError::bad(param, message),
            AdminError::Refused { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "admin API storage error");
        let status = match e {
            StoreError::Poisoned | StoreError::Flush(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, "storage_error", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}
