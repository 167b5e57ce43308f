//! [`ByteStream`]: an answer's body as it arrives (file downloads, bootstrap archives), so
//! content up to 100 MiB goes to disk or stdout without being held in memory.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};

use crate::error::ClientError;

pub struct ByteStream {
    resp: reqwest::Response,
}

impl ByteStream {
    pub(crate) fn new(resp: reqwest::Response) -> ByteStream {
        ByteStream { resp }
    }

    /// The body's length, when the server said it.
    pub fn content_length(&self) -> Option<u64> {
        self.resp.content_length()
    }

    /// The next chunk; `None` at the end. A failure mid-body (reset, deadline) is an error
    /// whose message is the transport's cause.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.resp.chunk().await.map_err(|e| ClientError::body(&e))
    }

    /// The chunks as a `Stream`.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, ClientError>> + Send {
        self.resp.bytes_stream().map_err(|e| ClientError::body(&e))
    }
}
