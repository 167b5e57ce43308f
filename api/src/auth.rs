//! Bearer-token authentication and permissions.
//!
//! A team token maps (by its sha256; the token itself is never stored) to a team, a subject
//! and permissions. The admin token — configured per node — may only manage tokens (and,
//! later, the cluster); it has no team and so no volumes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use tideline_types::Reason;

use crate::error::ApiError;
use crate::state::AppState;

/// Every permission a team token can hold.
pub const PERMISSIONS: [&str; 6] = [
    "sandboxvolume:create",
    "sandboxvolume:read",
    "sandboxvolume:write",
    "sandboxvolume:delete",
    "sandboxvolumefile:read",
    "sandboxvolumefile:write",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    VolumeCreate,
    VolumeRead,
    VolumeWrite,
    VolumeDelete,
    FileRead,
    FileWrite,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::VolumeCreate => PERMISSIONS[0],
            Permission::VolumeRead => PERMISSIONS[1],
            Permission::VolumeWrite => PERMISSIONS[2],
            Permission::VolumeDelete => PERMISSIONS[3],
            Permission::FileRead => PERMISSIONS[4],
            Permission::FileWrite => PERMISSIONS[5],
        }
    }
}

/// Whether `p` is a permission a token may be given (`*` and `*:*` grant all).
pub fn is_known_permission(p: &str) -> bool {
    p == "*" || p == "*:*" || PERMISSIONS.contains(&p)
}

pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Principal {
    Admin,
    Team(TeamCaller),
}

#[derive(Clone, Debug)]
pub struct TeamCaller {
    pub team_id: String,
    pub subject: String,
    pub permissions: Vec<String>,
}

impl Principal {
    /// The team caller, if it holds `p`; 403 otherwise.
    pub fn require(&self, p: Permission) -> Result<&TeamCaller, ApiError> {
        match self {
            Principal::Admin => Err(ApiError::forbidden("the admin token has no team; use a team token")),
            Principal::Team(t) if t.permissions.iter().any(|h| h == "*" || h == "*:*" || h == p.as_str()) => Ok(t),
            Principal::Team(_) => Err(ApiError::forbidden(format!("missing permission {}", p.as_str()))),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Team(_) => Err(ApiError::forbidden("admin token required")),
        }
    }
}

/// Extracts the bearer token from `Authorization` (scheme case-insensitive).
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed authorization header"))?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| ApiError::unauthorized("malformed authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("malformed authorization header"));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let sha = token_sha256(token);
        if sha == state.admin_token_sha256 {
            return Ok(Principal::Admin);
        }
        let sm = state.ops.node().state_machine();
        let mut found = sm.token(&sha)?;
        if found.is_none() {
            // A token just created through another node may not be applied here yet.
            state.ops.node().read_barrier().await?;
            found = sm.token(&sha)?;
        }
        match found {
            Some(t) if t.expired_at(state.ops.now_ms()) => {
                Err(ApiError::unauthorized("token expired").because(Reason::TokenExpired))
            }
            Some(t) => {
                Ok(Principal::Team(TeamCaller { team_id: t.team_id, subject: t.subject, permissions: t.permissions }))
            }
            None => Err(ApiError::unauthorized("invalid token")),
        }
    }
}
