//! Which volume a caller may work on, and how current a read must be: the lookups every
//! operation starts from. Another team's volume is indistinguishable from a missing one.

use tideline_storage::VolumeRecord;
use tideline_types::Reason;

use super::context::Ops;
use crate::auth::TeamCaller;
use crate::error::{ApiError, ApiResult};

/// How current a read must be (`consistency=linearizable|local`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Reflects every write committed before the request (a read barrier).
    #[default]
    Linearizable,
    /// Whatever this node has applied.
    Local,
}

impl Ops {
    /// Unless `consistency` is local, waits until this node reflects every write committed
    /// before the call.
    pub async fn read_barrier(&self, consistency: Consistency) -> ApiResult<()> {
        match consistency {
            Consistency::Linearizable => Ok(self.node().read_barrier().await?),
            Consistency::Local => Ok(()),
        }
    }

    /// The caller's volume after a read barrier (unless local).
    pub async fn team_volume(
        &self,
        caller: &TeamCaller,
        id: &str,
        consistency: Consistency,
    ) -> ApiResult<VolumeRecord> {
        self.read_barrier(consistency).await?;
        self.owned_volume(caller, id)
    }

    /// The caller's volume for a write: this node's view, without a read barrier. A write needs
    /// none: apply checks the volume, its team and its access mode again against the committed
    /// state, in log order. Only a volume this node has not applied yet (just created through
    /// another node) costs a barrier.
    pub async fn write_volume(&self, caller: &TeamCaller, id: &str) -> ApiResult<VolumeRecord> {
        match self.owned_volume(caller, id) {
            Ok(v) => Ok(v),
            Err(_) => {
                self.node().read_barrier().await?;
                self.owned_volume(caller, id)
            }
        }
    }

    /// The caller's volume as this node has applied it (no barrier); another team's is 404.
    pub fn owned_volume(&self, caller: &TeamCaller, id: &str) -> ApiResult<VolumeRecord> {
        match self.node().state_machine().volume(id)? {
            Some(v) if v.team_id == caller.team_id => Ok(v),
            _ => Err(ApiError::not_found("not found").because(Reason::VolumeNotFound)),
        }
    }
}
