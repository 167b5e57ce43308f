//! Request extractors whose failures use the error envelope: bounded JSON bodies, bounded raw
//! bodies, and query strings and path parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON request bodies are at most this large.
pub use tideline_types::limits::JSON_BODY_BYTES_MAX;

/// Reads the whole body, refusing (413) past `limit` bytes, checking `Content-Length` first.
pub async fn read_body(req: Request, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(format!("{what} too large (limit {limit} bytes)")));
    }
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::too_large(format!("{what} too large (limit {limit} bytes)"));
            }
            source = s.source();
        }
        ApiError::bad_request(format!("could not read request body: {e}"))
    })
}

/// A JSON body (≤ [`JSON_BODY_BYTES_MAX`]); malformed JSON is a 400 envelope.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, JSON_BODY_BYTES_MAX, "request body").await?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Like [`Json`], but an empty body is `T::default()` (routes whose body is optional).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, JSON_BODY_BYTES_MAX, "request body").await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// A query string; a malformed one is a 400 envelope.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(q).map(Query).map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    let uri: axum::http::Uri = format!("/?{q}").parse().map_err(|e| format!("{e}"))?;
    axum::extract::Query::<T>::try_from_uri(&uri).map(|axum::extract::Query(t)| t).map_err(|e| e.body_text())
}

/// Path parameters; one that does not decode (bad UTF-8, not a number) is a 400 envelope.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(Path(t)),
            Err(e) if e.status().is_client_error() => {
                Err(ApiError::bad_request(format!("invalid path: {}", e.body_text())))
            }
            Err(e) => Err(ApiError::internal(format!("path parameters: {}", e.body_text()))),
        }
    }
}
