//! API tokens: stored by the sha256 of the token, never the token itself.

use tideline_types::Reason;

use crate::command::{CreateToken, RevokeToken};
use crate::db::Cf;
use crate::records::TokenRecord;
use crate::response::{ApplyError, Response};
use crate::rules::{refuse, Applied};
use crate::txn::Txn;

pub(crate) fn create_token(txn: &mut Txn, c: &CreateToken) -> Applied {
    let token = c.token.as_ref().ok_or_else(|| ApplyError::bad_request("create_token without a token"))?;
    if c.token_sha256.len() != 32 {
        return refuse(ApplyError::bad_request("token hash must be 32 bytes"));
    }
    txn.put(Cf::Tokens, &c.token_sha256, token);
    Ok(Response::default())
}

/// Deletes a token: every node refuses it from the entry's application on.
pub(crate) fn revoke_token(txn: &mut Txn, c: &RevokeToken) -> Applied {
    match txn.get::<TokenRecord>(Cf::Tokens, &c.token_sha256)? {
        Some(t) if t.id == c.id => {
            txn.delete(Cf::Tokens, &c.token_sha256);
            Ok(Response::default())
        }
        _ => refuse(ApplyError::not_found("token not found").because(Reason::TokenNotFound)),
    }
}
