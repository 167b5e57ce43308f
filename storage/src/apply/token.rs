//! API tokens: stored by the sha256 of the token, never the token itself.

use crate::command::CreateToken;
use crate::db::Cf;
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
