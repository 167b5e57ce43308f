//! File content by address: staging it for a command (inline, or durable in the object store
//! first) and reading it back.
//!
//! ```text
//!  stage: bytes ─▶ sha256 ─▶ ≤ inline limit and may inline? ─▶ rides inside the command
//!                                   └ otherwise ─▶ blob store put (durable) ─▶ only the address
//! ```

use axum::body::Bytes;
use tideline_storage::ContentRef;

use super::context::Ops;
use crate::error::ApiResult;

impl Ops {
    /// Readies file content for a command: small content (when `may_inline`) rides inside it;
    /// anything else is made durable in the object store first, so no committed entry can point
    /// at missing bytes. Returns the content's address and the bytes to inline, if any.
    pub async fn stage(&self, body: Bytes, may_inline: bool) -> ApiResult<(ContentRef, Option<Vec<u8>>)> {
        let r = ContentRef::of(&body);
        if may_inline && body.len() <= tideline_storage::INLINE_BYTES_MAX {
            return Ok((r, Some(body.to_vec())));
        }
        self.blobs().put(&r, body, self.now_ms()).await?;
        Ok((r, None))
    }

    /// The bytes behind a content ref: kept inline by the state machine, or in the blob store.
    pub async fn content(&self, r: &ContentRef) -> ApiResult<Option<Bytes>> {
        if let Some(b) = self.node().state_machine().inline_blob(r)? {
            return Ok(Some(b.into()));
        }
        Ok(self.blobs().get(r).await?)
    }
}
