//! Success envelope: `{"success":true,"data":<value>}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

pub struct Envelope<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "success": true, "data": self.1 }))).into_response()
    }
}

pub fn ok<T: Serialize>(data: T) -> Envelope<T> {
    Envelope(StatusCode::OK, data)
}

pub fn created<T: Serialize>(data: T) -> Envelope<T> {
    Envelope(StatusCode::CREATED, data)
}
