//! The one error type of the HTTP layer and its envelope:
//! `{"success":false,"error":{"code","message","details"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tideline_raft::ProposeError;
use tideline_storage::blob::BlobError;
use tideline_storage::{ApplyError, ApplyErrorKind, StorageError};
use tideline_types::path::PathError;
use tideline_types::wire::ErrorEnvelope;
use tideline_types::{ErrorCode, Reason};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: None }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    /// Says which refusal this is: `details.reason`, merged into the details there are (an
    /// object) or as the only detail.
    pub fn because(mut self, reason: Reason) -> Self {
        match &mut self.details {
            Some(Value::Object(map)) => {
                map.insert("reason".into(), Value::String(reason.as_str().into()));
            }
            _ => self.details = Some(json!({ "reason": reason })),
        }
        self
    }
    /// The refusal's `details.reason`, if it is one of [`Reason`].
    pub fn reason(&self) -> Option<Reason> {
        self.details.as_ref()?.get("reason")?.as_str()?.parse().ok()
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError, m)
    }
    /// The reseed refusal of API.md: the cursor is below what the journal still holds.
    pub fn reseed_required(retained_after_seq: u64, head_seq: u64) -> Self {
        ApiError::conflict("sync reseed required").with_details(json!({
            "reason": Reason::ReseedRequired,
            "retained_after_seq": retained_after_seq,
            "head_seq": head_seq,
        }))
    }
    /// 413 keeps the `bad_request` code, as Sandbox0 does.
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BadRequest, m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorEnvelope::new(self.code, self.message, self.details))).into_response()
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        let reason = e.known_reason();
        let refusal = match e.error_kind() {
            ApplyErrorKind::NotFound => ApiError::not_found(e.message),
            ApplyErrorKind::Conflict => ApiError::conflict(e.message),
            ApplyErrorKind::BadRequest => ApiError::bad_request(e.message),
            ApplyErrorKind::Unavailable => ApiError::unavailable(e.message),
            ApplyErrorKind::Reseed => {
                ApiError::reseed_required(e.retained_after_seq.unwrap_or(0), e.head_seq.unwrap_or(0))
            }
            ApplyErrorKind::Unspecified => ApiError::internal(e.message),
        };
        match reason {
            Some(r) => refusal.because(r),
            None => refusal,
        }
    }
}

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        tracing::error!(error = %e, "storage failure while serving a request");
        ApiError::internal("internal storage error")
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Unavailable(m) => ApiError::unavailable(format!("object store unavailable: {m}")),
            corrupt @ BlobError::Corrupt { .. } => {
                tracing::error!(error = %corrupt, "corrupt blob");
                ApiError::internal("stored content is corrupt")
            }
        }
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Required => ApiError::bad_request("path is required"),
            PathError::Invalid(why) => ApiError::bad_request("invalid path").with_details(json!({ "reason": why })),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
