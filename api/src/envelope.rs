//! Success envelope: `{"success":true,"data":<value>}` (built by
//! [`tideline_types::wire::success_body`], which the golden test of the wire shapes uses too).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tideline_types::wire::success_body;

use crate::error::ApiError;

pub struct Envelope<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        match success_body(&self.1) {
            Ok(body) => (self.0, axum::Json(body)).into_response(),
            Err(e) => ApiError::internal(format!("encoding the response: {e}")).into_response(),
        }
    }
}

pub fn ok<T: Serialize>(data: T) -> Envelope<T> {
    Envelope(StatusCode::OK, data)
}

pub fn created<T: Serialize>(data: T) -> Envelope<T> {
    Envelope(StatusCode::CREATED, data)
}
