//! Admin and operations routes: tokens, cluster status and membership, health, readiness,
//! metrics.

use reqwest::Method;
use serde_json::Value;
use tideline_types::wire::{AddNodeRequest, ClusterStatus, TokenCreated, TokenInfo, TokenList, TokenRequest};

use crate::call::Call;
use crate::client::Client;
use crate::error::ClientError;

/// The largest `/metrics` text read.
const METRICS_BYTES_MAX: usize = 16 * 1024 * 1024;

impl Client {
    /// Creates a team token (admin token); the token is in the answer, this once.
    pub async fn create_token(&self, req: &TokenRequest) -> Result<TokenCreated, ClientError> {
        self.json(Call::api(Method::POST, ["tokens"]).json(req)?).await
    }

    /// One page of tokens (admin token): of `team` if given, after the cursor `after` (the
    /// previous page's `next_cursor`), at most `limit` (0: the server's default).
    pub async fn list_tokens(
        &self,
        team: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TokenList, ClientError> {
        let mut call = Call::api(Method::GET, ["tokens"]);
        if let Some(team) = team {
            call = call.query("team_id", team);
        }
        if let Some(after) = after {
            call = call.query("after", after);
        }
        if limit > 0 {
            call = call.query("limit", limit);
        }
        self.json(call).await
    }

    /// Revokes a token by id (admin token); answers the revoked token.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, ClientError> {
        self.json(Call::api(Method::DELETE, ["tokens", id])).await
    }

    /// The cluster as the configured node sees it (admin token).
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.json(Call::api(Method::GET, ["cluster"])).await
    }

    /// Adds a node (learner, then voter). Runs on the leader: another node's refusal names
    /// it and the request is sent there.
    pub async fn add_node(&self, req: &AddNodeRequest) -> Result<ClusterStatus, ClientError> {
        self.json(Call::api(Method::POST, ["cluster", "nodes"]).json(req)?).await
    }

    /// Removes a node from the membership (on the leader, like [`Client::add_node`]).
    pub async fn remove_node(&self, node_id: u64) -> Result<ClusterStatus, ClientError> {
        self.json(Call::api(Method::DELETE, ["cluster".to_string(), "nodes".to_string(), node_id.to_string()])).await
    }

    /// `GET /healthz`: the process is up.
    pub async fn healthz(&self) -> Result<Value, ClientError> {
        self.json(Call::root(Method::GET, "/healthz")).await
    }

    /// `GET /readyz`: a cluster member with a leader, caught up (503 with the reason
    /// otherwise). Sent once: the 503 is the answer.
    pub async fn readyz(&self) -> Result<Value, ClientError> {
        self.json(Call::root(Method::GET, "/readyz").once()).await
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let bytes = self.bytes(Call::root(Method::GET, "/metrics"), METRICS_BYTES_MAX).await?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| ClientError::new(crate::error::ErrorKind::Decode, format!("metrics are not UTF-8: {e}")))
    }
}
