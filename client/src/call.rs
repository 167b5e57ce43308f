//! [`Call`]: one request as data — method, path, query, body, deadline and whether it is
//! idempotent — so the client can send it again at a leader or after a retry-safe failure.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;

use crate::error::{ClientError, ErrorKind};
use crate::upload::Upload;

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
            Payload::Upload(u) => req
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, u.content_length())
                .body(u.take()?),
        })
    }
}
