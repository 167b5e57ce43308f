//! `/api/v1/tokens`: create a team token (admin; shown once, stored hashed), list them a page at
//! a time (admin: every team's; a team token: its own team's), revoke one by id (admin).

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tideline_storage::TokenRecord;
use tideline_types::limits::{
    TEAM_ID_BYTES_MAX, TOKENS_PAGE_DEFAULT, TOKENS_PAGE_MAX, TOKEN_NAME_BYTES_MAX, TOKEN_TTL_SECONDS_MAX,
};
use tideline_types::wire::{TokenCreated, TokenInfo, TokenList};

use super::page_limit;
use crate::auth::{is_known_permission, Principal, PERMISSIONS};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::openapi::Success;
use crate::ops::tokens::{self, NewToken};
use crate::state::AppState;
use crate::wire::rfc3339;
use crate::wire::TokenRequest;

#[derive(Deserialize)]
pub struct TokenBody {
    team_id: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    subject: Option<String>,
    name: Option<String>,
    ttl_seconds: Option<u64>,
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", summary = "Create a team token (admin)",
    request_body(content = TokenRequest),
    responses((status = 201, description = "The token; its secret is shown only here", body = Success<TokenCreated>)))]
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
    let name = body.name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.len() > TOKEN_NAME_BYTES_MAX || name.contains('\0') {
        return Err(ApiError::bad_request("name is at most 128 bytes"));
    }
    let ttl_ms = match body.ttl_seconds {
        None => None,
        Some(s) if (1..=TOKEN_TTL_SECONDS_MAX).contains(&s) => Some(s as i64 * 1000),
        Some(_) => return Err(ApiError::bad_request("ttl_seconds is from 1 to 316224000 (ten years)")),
    };
    let subject = body.subject.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let made =
        tokens::create(&st.ops, NewToken { team_id, permissions: body.permissions, subject, name, ttl_ms }).await?;
    let t = made.record;
    Ok(created(TokenCreated {
        id: t.id,
        token: made.token,
        team_id: t.team_id,
        subject: t.subject,
        permissions: t.permissions,
        created_at: rfc3339(t.created_at_ms),
        name: t.name,
        expires_at: (t.expires_at_ms > 0).then(|| rfc3339(t.expires_at_ms)),
    }))
}

#[derive(Deserialize)]
pub struct ListQuery {
    team_id: Option<String>,
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    after: Option<String>,
}

#[utoipa::path(get, path = "/tokens", tag = "tokens", summary = "List tokens (admin: all; a team token: its team's), never their secrets",
    params(("team_id" = Option<String>, Query, description = "Admin: only this team's"),
        ("limit" = Option<u32>, Query, description = "Page size"),
        ("after" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "A page of tokens", body = Success<TokenList>)))]
pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    let limit = page_limit(q.limit.as_deref(), TOKENS_PAGE_DEFAULT, TOKENS_PAGE_MAX)?;
    let after = match q.after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match hex::decode(s) {
            Ok(sha) if sha.len() == 32 => Some(sha),
            _ => return Err(ApiError::bad_request(format!("invalid cursor {s:?}: pass a next_cursor back"))),
        },
    };
    // The admin sees every team's tokens (or one team's); a team token sees its own team's.
    let asked = q.team_id.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let team = match &principal {
        Principal::Admin => asked,
        Principal::Team(caller) => Some(caller.team_id.as_str()),
    };
    let (found, next) = tokens::list(&st.ops, after.as_deref(), team, limit).await?;
    let now = st.ops.now_ms();
    let tokens = found.into_iter().map(|t| info(t, now)).collect();
    Ok(ok(TokenList { tokens, next_cursor: next.map(hex::encode) }))
}

#[utoipa::path(delete, path = "/tokens/{token_id}", tag = "tokens", summary = "Revoke a token on every node (admin)",
    params(("token_id" = String, Path, description = "The token's id")),
    responses((status = 200, description = "The revoked token", body = Success<TokenInfo>)))]
pub async fn revoke(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    let revoked = tokens::revoke(&st.ops, id.trim()).await?;
    Ok(ok(info(revoked, st.ops.now_ms())))
}

fn info(t: TokenRecord, now_ms: i64) -> TokenInfo {
    TokenInfo {
        expired: t.expired_at(now_ms),
        expires_at: (t.expires_at_ms > 0).then(|| rfc3339(t.expires_at_ms)),
        id: t.id,
        team_id: t.team_id,
        subject: t.subject,
        name: t.name,
        permissions: t.permissions,
        created_at: rfc3339(t.created_at_ms),
    }
}
