//! The smaller `data` shapes the server builds by hand (acknowledgements, the bootstrap and
//! token answers, the cluster status), typed for clients.
//!
//! Optional fields the server writes as `null` stay `Option`s without `skip_serializing_if`,
//! so re-encoding a decoded answer gives the server's JSON back (the CLI prints answers that
//! way); `client/tests/` checks each against the live server's bytes.

use serde::{Deserialize, Serialize};

use crate::wire::Snapshot;

/// `{"deleted":true}`: volume, file and snapshot deletes (idempotent).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deleted {
    pub deleted: bool,
}

/// `{"written":true}`: a file write.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Written {
    pub written: bool,
}

/// `{"created":true}`: a mkdir.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Created {
    pub created: bool,
}

/// `{"moved":true}`: a move.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Moved {
    pub moved: bool,
}

/// `{"changed":true}`: a chmod **[ext]**.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModeChanged {
    pub changed: bool,
}

/// `{"status":"restored"}`: a snapshot restore.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Restored {
    pub status: String,
}

/// A file read with `Accept: application/json`: `{"content":"<base64>","encoding":"base64"}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileContent {
    pub content: String,
    pub encoding: String,
}

/// `data` of `POST …/sync/bootstrap`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BootstrapResponse {
    pub snapshot: Snapshot,
    pub replay_after_seq: u64,
    /// Where the archive is, from the server root (`/api/v1/…/archive?snapshot_id=…`).
    pub archive_download_path: String,
}

/// `data` of `POST /tokens`: the token itself is shown this once.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCreated {
    pub id: String,
    pub token: String,
    pub team_id: String,
    pub subject: String,
    pub permissions: Vec<String>,
    pub created_at: String,
    /// The label given at creation (empty if none).
    #[serde(default)]
    pub name: String,
    /// When the token stops working (RFC 3339); `null`: until revoked.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// One token as `GET /tokens` lists it: everything but the secret, which is never stored.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: String,
    pub team_id: String,
    pub subject: String,
    #[serde(default)]
    pub name: String,
    pub permissions: Vec<String>,
    pub created_at: String,
    /// `null`: until revoked.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Whether `expires_at` has passed (the token is refused with `token_expired`).
    #[serde(default)]
    pub expired: bool,
}

/// `data` of `GET /tokens`: one page, and the cursor of the next (`?after=`) if there may be more.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `data` of `GET /cluster` and of the membership changes: the cluster as one node sees it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterStatus {
    pub node_id: u64,
    /// openraft's server state as text (`Leader`, `Follower`, `Candidate`, `Learner`, …).
    pub state: String,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub last_log_index: u64,
    /// Known on the leader only (`null` elsewhere).
    pub committed_index: Option<u64>,
    pub applied_index: u64,
    pub apply_lag: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub nodes: Vec<ClusterNode>,
}

/// One member of a [`ClusterStatus`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterNode {
    pub node_id: u64,
    pub addr: String,
    pub voter: bool,
    pub leader: bool,
    /// Replication progress, known on the leader only (`null` elsewhere).
    pub matched_index: Option<u64>,
    pub lag: Option<u64>,
}
