//! Team tokens: a new secret (shown once), stored by its sha256 with the team, subject,
//! permissions, a name and an optional expiry; listed a page at a time and revoked by id.

use tideline_storage::command::{CreateToken, RevokeToken};
use tideline_storage::{CommandKind, TokenRecord};
use tideline_types::Reason;

use super::context::Ops;
use crate::auth::token_sha256;
use crate::error::{ApiError, ApiResult};
use crate::wire::new_id;

/// A token to create (fields checked by the caller).
pub struct NewToken {
    pub team_id: String,
    pub permissions: Vec<String>,
    /// Default: the token's id.
    pub subject: Option<String>,
    /// A label for people; may be empty.
    pub name: String,
    /// How long the token works, from now; `None`: until revoked.
    pub ttl_ms: Option<i64>,
}

/// The created token: its record and the secret, which is never stored.
pub struct CreatedToken {
    pub record: TokenRecord,
    pub token: String,
}

pub async fn create(ops: &Ops, t: NewToken) -> ApiResult<CreatedToken> {
    let id = new_id("tok-");
    let subject = t.subject.unwrap_or_else(|| id.clone());
    let secret: [u8; 32] = rand::random();
    let token = format!("tl_{}", hex::encode(secret));
    let now = ops.now_ms();
    let record = TokenRecord {
        id,
        team_id: t.team_id,
        subject,
        permissions: t.permissions,
        created_at_ms: now,
        name: t.name,
        expires_at_ms: t.ttl_ms.map_or(0, |ttl| now.saturating_add(ttl)),
    };
    let cmd = CreateToken { token_sha256: token_sha256(&token).to_vec(), token: Some(record.clone()) };
    ops.propose(CommandKind::CreateToken(cmd)).await?;
    Ok(CreatedToken { record, token })
}

/// One page of tokens, linearizable: the records, and the cursor of the next page if this one
/// is full.
pub async fn list(
    ops: &Ops,
    after: Option<&[u8]>,
    team: Option<&str>,
    limit: usize,
) -> ApiResult<(Vec<TokenRecord>, Option<Vec<u8>>)> {
    ops.node().read_barrier().await?;
    let rows = ops.node().state_machine().tokens(after, team, limit)?;
    let next = if rows.len() == limit { rows.last().map(|(sha, _)| sha.clone()) } else { None };
    Ok((rows.into_iter().map(|(_, t)| t).collect(), next))
}

/// Revokes the token with id `id`: from the entry's application on, every node refuses it.
pub async fn revoke(ops: &Ops, id: &str) -> ApiResult<TokenRecord> {
    ops.node().read_barrier().await?;
    let Some((sha, record)) = ops.node().state_machine().token_by_id(id)? else {
        return Err(ApiError::not_found("token not found").because(Reason::TokenNotFound));
    };
    ops.propose(CommandKind::RevokeToken(RevokeToken { token_sha256: sha, id: id.to_string() })).await?;
    Ok(record)
}
