//! Team tokens: a new secret (shown once), stored by its sha256 with the team, subject and
//! permissions, created at the injected clock's reading.

use tideline_storage::command::CreateToken;
use tideline_storage::{CommandKind, TokenRecord};

use super::context::Ops;
use crate::auth::token_sha256;
use crate::error::ApiResult;
use crate::wire::new_id;

/// A token to create (fields checked by the caller).
pub struct NewToken {
    pub team_id: String,
    pub permissions: Vec<String>,
    /// Default: the token's id.
    pub subject: Option<String>,
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
    let record =
        TokenRecord { id, team_id: t.team_id, subject, permissions: t.permissions, created_at_ms: ops.now_ms() };
    let cmd = CreateToken { token_sha256: token_sha256(&token).to_vec(), token: Some(record.clone()) };
    ops.propose(CommandKind::CreateToken(cmd)).await?;
    Ok(CreatedToken { record, token })
}
