//! [`Call`]: one request as data — method, path, query, body, deadline and whether it is
//! idempotent — so the client can send it again at a leader or after a retry-safe failure.
//! [`Upload`] is a file body: bytes in memory (sendable again) or a stream sent once, never
//! buffered.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;

use crate::error::{ClientError, ErrorKind};

/// Where a call goes.
pub(crate) enum Target {
    /// `/api/v1/` followed by these segments, each percent-encoded.
    Api(Vec<String>),
    /// A path (and query) from the server root, as the server handed it out
    /// (`archive_download_path`) or an operations route (`/healthz`).
    Root(String),
}

pub(crate) enum Payload {
    Empty,
    /// Serialized once; sent again as the same bytes.
    Json(Bytes),
    Upload(Upload),
}

/// A file body for `write_file`.
pub struct Upload {
    inner: UploadBody,
    len: Option<u64>,
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
        Upload { len: Some(content.len() as u64), inner: UploadBody::Bytes(content) }
    }

    /// Content read as it is sent, `len` bytes long (sent as `Content-Length`): a local file
    /// of up to 100 MiB is never held in memory.
    pub fn stream(body: impl Into<reqwest::Body>, len: u64) -> Upload {
        Upload { len: Some(len), inner: UploadBody::Stream(Mutex::new(Some(body.into()))) }
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

    fn resendable(&self) -> bool {
        matches!(self.inner, UploadBody::Bytes(_))
    }

    fn take(&self) -> Result<reqwest::Body, ClientError> {
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

/// How long a call may take.
#[derive(Clone, Copy)]
pub(crate) enum Deadline {
    /// The client's request timeout.
    Request,
    /// The request timeout plus a long poll's wait.
    RequestPlus(Duration),
    /// The client's transfer timeout (uploads, downloads).
    Transfer,
}

pub(crate) struct Call {
    pub method: Method,
    pub target: Target,
    pub query: Vec<(&'static str, String)>,
    pub payload: Payload,
    /// `Accept: application/json` (the file read's base64 form).
    pub accept_json: bool,
    pub deadline: Deadline,
    /// May be sent again after a retry-safe failure (see the crate header).
    pub idempotent: bool,
}

impl Call {
    fn new(method: Method, target: Target) -> Call {
        let idempotent = matches!(method, Method::GET | Method::PUT);
        Call {
            method,
            target,
            query: Vec::new(),
            payload: Payload::Empty,
            accept_json: false,
            deadline: Deadline::Request,
            idempotent,
        }
    }

    /// A call to `/api/v1/<segments…>`.
    pub fn api<S: Into<String>>(method: Method, segments: impl IntoIterator<Item = S>) -> Call {
        Call::new(method, Target::Api(segments.into_iter().map(Into::into).collect()))
    }

    /// A call to a path from the server root.
    pub fn root(method: Method, path: &str) -> Call {
        Call::new(method, Target::Root(path.to_string()))
    }

    pub fn query(mut self, key: &'static str, value: impl ToString) -> Call {
        self.query.push((key, value.to_string()));
        self
    }

    pub fn json<T: Serialize>(mut self, body: &T) -> Result<Call, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::new(ErrorKind::Request, format!("encode request body: {e}")))?;
        self.payload = Payload::Json(Bytes::from(bytes));
        Ok(self)
    }

    pub fn upload(mut self, upload: Upload) -> Call {
        self.payload = Payload::Upload(upload);
        self
    }

    pub fn deadline(mut self, deadline: Deadline) -> Call {
        self.deadline = deadline;
        self
    }

    pub fn accept_json(mut self) -> Call {
        self.accept_json = true;
        self
    }

    /// A POST that carries a `request_id` the server deduplicates: safe to send again.
    pub fn idempotent(mut self) -> Call {
        self.idempotent = true;
        self
    }

    /// Sent once whatever the answer (a probe whose 503 is the answer wanted).
    pub fn once(mut self) -> Call {
        self.idempotent = false;
        self
    }

    /// Whether the body can be sent again (anything but a streamed upload).
    pub fn resendable(&self) -> bool {
        match &self.payload {
            Payload::Upload(u) => u.resendable(),
            _ => true,
        }
    }

    /// The body for one send, with its headers.
    pub fn body(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, ClientError> {
        Ok(match &self.payload {
            Payload::Empty => req,
            Payload::Json(b) => req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone()),
            Payload::Upload(u) => {
                let req = req.header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
                let req = match u.len {
                    Some(n) => req.header(reqwest::header::CONTENT_LENGTH, n),
                    None => req,
                };
                req.body(u.take()?)
            }
        })
    }
}
