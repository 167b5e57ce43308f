//! openraft glue for Tideline: the type configuration, the RocksDB log store, the adapter that
//! drives `tideline_storage::StateMachine`, and [`RaftNode`], the handle the API proposes through.
//!
//! ```text
//!  api ──propose(Command)──▶ RaftNode ──Proposer (group commit)──client_write──▶ openraft
//!                                                        │ append ─▶ LogStore (raft_log cf) ─▶ flusher: WAL sync ─▶ callback
//!                                                        │ apply  ─▶ StateMachineStore ─▶ storage::StateMachine::apply
//!  api ◀────────────── Response ◀───────────────────────┘
//!
//!  peers ◀── HttpNetwork (prost over HTTP, cluster secret) ──▶ /raft/* on every node
//! ```

pub mod clock;
pub mod codec;
pub mod collector;
pub mod compactor;
pub mod http_network;
pub mod log_store;
pub mod node;
pub mod peer_client;
pub mod proposer;
pub mod read_index;
pub mod rpc;
pub mod snapshot_policy;
pub mod state_machine;
pub mod tls;
pub mod typ;

pub use clock::{Clock, ManualClock, SystemClock};
pub use collector::{GcConfig, GcReport};
pub use compactor::CompactionConfig;
pub use log_store::LogStore;
pub use node::{ProposeError, RaftNode, RaftNodeConfig};
pub use state_machine::StateMachineStore;
pub use typ::TypeConfig;
