//! Tideline's HTTP API: the Sandbox0 Volume API (see `docs/API.md`) over a [`RaftNode`].
//!
//! ```text
//!  request ─▶ routes: parse + validate ─▶ auth (Principal, the caller's volume)
//!          ─▶ ops: decide ids/times (injected clock)/hashes ─▶ (large content ─▶ blob store)
//!              ─▶ Propose (RaftNode::propose) ─▶ typed result ─▶ routes: envelope
//!  reads   ─▶ read_barrier (unless consistency=local) ─▶ state machine
//! ```
//!
//! `routes` never propose: every command is built and proposed in [`ops`]
//! (`scripts/check-routes` holds the rule).
//!
//! [`RaftNode`]: tideline_raft::RaftNode

pub mod auth;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod journal_json;
pub mod journal_proto;
pub mod observe;
pub mod openapi;
pub mod ops;
pub mod process;
pub mod request_log;
mod routes;
pub mod state;
pub mod tls;
pub mod wire;

pub use error::{ApiError, ApiResult};
pub use ops::Ops;
pub use routes::{openapi, router};
pub use state::AppState;
