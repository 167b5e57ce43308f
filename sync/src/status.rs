//! What the worker is doing, written to `status.json` for `tideline sync status` and `list`.

use serde::{Deserialize, Serialize};

use super::home::{AttachDir, Attachment};

/// The worker's own report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `starting`, `idle`, `syncing`, `paused` (open conflicts hold uploads back) or `error`.
    pub state: String,
    pub cursor: u64,
    pub head_seq: u64,
    /// Local changes found but not yet on the volume.
    pub pending_local: usize,
    pub open_conflicts: usize,
    /// Paths that cannot be synced and the last failure, each a sentence naming its subject.
    pub errors: Vec<String>,
    /// Volume paths this file system cannot hold beside an existing name (not written here).
    #[serde(default)]
    pub local_conflicts: Vec<LocalConflict>,
}

/// A volume entry that cannot exist in this directory: listed by `sync conflicts list` beside the
/// server's conflicts. It stays unwritten until the volume renames or removes one of the names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalConflict {
    pub path: String,
    /// `casefold_collision`: the name folds (case, Unicode normalization) onto `existing_path`.
    pub reason: String,
    pub existing_path: String,
    /// The journal entry that was not applied.
    pub seq: u64,
}

impl Status {
    pub fn save(&self, ad: &AttachDir) -> std::io::Result<()> {
        tideline_durable::write(&ad.status(), &serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?, 0o600)
    }

    pub fn load(ad: &AttachDir) -> Option<Status> {
        std::fs::read(ad.status()).ok().and_then(|raw| serde_json::from_slice(&raw).ok())
    }
}

/// The status of one attachment as `sync status --json` prints it: the attachment, the
/// worker's report, and whether a worker is alive (`stopped` when none is, unless it stopped on
/// an error).
pub fn report(ad: &AttachDir, att: &Attachment) -> serde_json::Value {
    let st = Status::load(ad).unwrap_or_default();
    let pid = ad.worker_pid();
    let state = match (pid, st.state.as_str()) {
        (Some(_), s) if !s.is_empty() => s.to_string(),
        (Some(_), _) => "starting".to_string(),
        (None, "error") => "error".to_string(),
        (None, _) => "stopped".to_string(),
    };
    serde_json::json!({
        "volume_id": att.volume_id,
        "dir": att.dir,
        "replica_id": att.replica_id,
        "server": att.server,
        "state": state,
        "cursor": st.cursor,
        "head_seq": st.head_seq,
        "pending_local": st.pending_local,
        "open_conflicts": st.open_conflicts,
        "worker_pid": pid,
        "errors": st.errors,
        "local_conflicts": st.local_conflicts,
    })
}
