//! `POST /api/v1/tokens` (admin only): create a team token; it is shown once, stored hashed.

use crate::auth::{is_known_permission, Principal, PERMISSIONS};
use crate::envelope::created;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::ops::tokens::{self, NewToken};
use crate::state::AppState;
use crate::wire::rfc3339;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use tideline_types::limits::TEAM_ID_BYTES_MAX;

#[derive(Deserialize)]
pub struct TokenBody {
    team_id: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    subject: Option<String>,
}

pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    Json(body): Json<TokenBody>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    let team_id = body.team_id.map(|t| t.trim().to_string()).unwrap_or_default();
    if team_id.is_empty() || team_id.len() > TEAM_ID_BYTES_MAX || team_id.contains('\0') {
        return Err(ApiError::bad_request("team_id is required (at most 128 bytes)"));
    }
    if body.permissions.is_empty() {
        return Err(ApiError::bad_request("permissions are required"));
    }
    if let Some(bad) = body.permissions.iter().find(|p| !is_known_permission(p)) {
        return Err(ApiError::bad_request(format!("unknown permission {bad:?}"))
            .with_details(json!({ "known": PERMISSIONS, "all": "*" })));
    }
    let subject = body.subject.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let made = tokens::create(&st.ops, NewToken { team_id, permissions: body.permissions, subject }).await?;
    let t = made.record;
    Ok(created(json!({
        "id": t.id,
        "token": made.token,
        "team_id": t.team_id,
        "subject": t.subject,
        "permissions": t.permissions,
        "created_at": rfc3339(t.created_at_ms),
    })))
}
