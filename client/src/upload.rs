//! [`Upload`]: a file body for `write_file` — bytes in memory (sendable again, e.g. at a
//! leader) or a stream read as it is sent and sent once: a file of up to 100 MiB is never
//! buffered by the client.

use std::sync::Mutex;

use bytes::Bytes;

use crate::error::{ClientError, ErrorKind};

/// A file body for `write_file`.
pub struct Upload {
    inner: UploadBody,
    len: u64,
}

enum UploadBody {
    Bytes(Bytes),
    /// Taken by the first send: a stream is never buffered, so it cannot be sent twice.
    Stream(Mutex<Option<reqwest::Body>>),
}

impl Upload {
    /// Content in memory (it can be sent again after a leader hint).
    pub fn bytes(content: impl Into<Bytes>) -> Upload {
        let content = content.into();
        Upload { len: content.len() as u64, inner: UploadBody::Bytes(content) }
    }

    /// Content read as it is sent, `len` bytes long (sent as `Content-Length`): a local file
    /// of up to 100 MiB is never held in memory.
    pub fn stream(body: impl Into<reqwest::Body>, len: u64) -> Upload {
        Upload { len, inner: UploadBody::Stream(Mutex::new(Some(body.into()))) }
    }

    /// A stream of chunks (e.g. counted for a progress bar as they go), `len` bytes in all.
    pub fn chunks<S>(chunks: S, len: u64) -> Upload
    where
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        Upload::stream(reqwest::Body::wrap_stream(chunks), len)
    }

    /// The body's length, sent as `Content-Length`.
    pub(crate) fn content_length(&self) -> u64 {
        self.len
    }

    pub(crate) fn resendable(&self) -> bool {
        matches!(self.inner, UploadBody::Bytes(_))
    }

    pub(crate) fn take(&self) -> Result<reqwest::Body, ClientError> {
        match &self.inner {
            UploadBody::Bytes(b) => Ok(reqwest::Body::from(b.clone())),
            UploadBody::Stream(s) => s
                .lock()
                .map_err(|_| ClientError::new(ErrorKind::Request, "upload body lock poisoned"))?
                .take()
                .ok_or_else(|| ClientError::new(ErrorKind::Request, "a streamed upload cannot be sent twice")),
        }
    }
}
