//! `POST /api/v1/tokens` (admin only): create a team token; it is shown once, stored hashed.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tideline_storage::command::CreateToken;
use tideline_storage::{CommandKind, TokenRecord};

use super::apply;
use crate::auth::{is_known_permission, token_sha256, Principal, PERMISSIONS};
use crate::envelope::created;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use crate::wire::{new_id, now_ms, rfc3339};

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
    let id = new_id("tok-");
    let subject = body.subject.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| id.clone());
    let secret: [u8; 32] = rand::random();
    let token = format!("tl_{}", hex::encode(secret));
    let record = TokenRecord {
        id: id.clone(),
        team_id: team_id.clone(),
        subject: subject.clone(),
        permissions: body.permissions.clone(),
        created_at_ms: now_ms(),
    };
    let created_at = rfc3339(record.created_at_ms);
    let cmd = CreateToken { token_sha256: token_sha256(&token).to_vec(), token: Some(record) };
    apply(&st, CommandKind::CreateToken(cmd)).await?;
    Ok(created(json!({
        "id": id,
        "token": token,
        "team_id": team_id,
        "subject": subject,
        "permissions": body.permissions,
        "created_at": created_at,
    })))
}
