//! Tideline's HTTP API: the Sandbox0 Volume API (see `shared/API.md`) over a [`RaftNode`].
//!
//! ```text
//!  request ─▶ auth (Principal) ─▶ validate + normalize ─▶ decide ids/times/hashes
//!          ─▶ (large content ─▶ blob store) ─▶ RaftNode::propose(Command) ─▶ envelope
//!  reads   ─▶ read_barrier (unless consistency=local) ─▶ state machine
//! ```
//!
//! [`RaftNode`]: tideline_raft::RaftNode

pub mod auth;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod journal_json;
pub mod journal_proto;
pub mod observe;
mod routes;
pub mod state;
pub mod wire;

pub use error::{ApiError, ApiResult};
pub use routes::router;
pub use state::AppState;
