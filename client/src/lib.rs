//! The typed async client of Tideline's HTTP API (docs/API.md): the one way Rust code in this
//! workspace talks to a server — the CLI, the sync worker, the benchmarks and the tests.
//! (`jepsen/` stays on raw HTTP on purpose: a black-box checker must not share the code it
//! checks.)
//!
//! ```text
//!  Client::builder(url, token) ─▶ Client (cheap clone) ─▶ typed methods per route
//!     volumes, snapshots, files, sync (replicas, append, changes, cursor, bootstrap +
//!     archive, conflicts), tokens, cluster, health
//!        │ requests: tideline_types::wire request structs; answers: the envelope's `data`
//!        ▼ as tideline_types::wire shapes, or a ByteStream for file and archive bodies
//!  ClientError { kind, status, code, reason, message, details }
//! ```
//!
//! # Failures
//! A refusal keeps the envelope's `code` and `details.reason` as values ([`ClientError`]);
//! callers decide on those (`e.reason() == Some(Reason::ReseedRequired)`, `e.is_not_found()`),
//! never on the message.
//!
//! # Leader hints
//! A node that cannot serve a request itself (membership changes run on the leader) refuses it
//! with `details.leader_addr`; the client sends the same request there, at most
//! [`LEADER_HOPS_MAX`] hops, before anything counts as a failure. Other routes need no hint:
//! any node serves them and forwards writes itself.
//!
//! # When a request is sent again
//! Only where that cannot apply a change twice:
//! - the failure left nothing done or asks to come back: no connection could be made (the
//!   request was never sent), or the server answered 503 `unavailable`; never after a timeout
//!   or any other answer;
//! - and the request is idempotent: a GET, a PUT (it sets a state: a replica's registration,
//!   a cursor, a conflict's status), or a POST carrying a `request_id` the server
//!   deduplicates (a replica's changes). Other POSTs and DELETEs are sent once;
//! - and its body can be sent again (a streamed upload cannot).
//!
//! Retries back off exponentially with full jitter (`backon`), bounded by [`RetryPolicy`] in
//! tries and in total sleep; each try has its own deadline ([`Timeouts`]), so a call takes at
//! most `attempts_max × deadline + total_delay_max`.

mod admin;
mod builder;
mod call;
mod client;
mod error;
mod files;
mod retry;
mod stream;
mod sync;
mod upload;
mod volumes;

pub use builder::{ClientBuilder, Timeouts, CA_CERT_ENV, LEADER_HOPS_MAX};
pub use client::{Client, JSON_ANSWER_BYTES_MAX};
pub use error::{ClientError, ErrorKind};
pub use files::WatchEndpoint;
pub use reqwest::StatusCode;
pub use retry::RetryPolicy;
pub use stream::ByteStream;
pub use sync::{ChangesQuery, Consistency};
pub use tideline_types as types;
pub use upload::Upload;
