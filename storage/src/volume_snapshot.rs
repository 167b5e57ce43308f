//! Volume snapshots (user and bootstrap): records and the commands that create, seal and
//! delete them.
//!
//! ```text
//!  CreateSnapshot ─▶ record (state pending, seq = head) ─▶ the requesting node freezes the
//!                    namespace at exactly that point (Freezer), writes the manifest to the
//!                    object store ─▶ SealSnapshot (state ready, size, checksum)
//! ```
//!
//! The record is part of Raft state; the manifest lives in the object store under
//! `snapshots/<volume>/<snapshot>/manifest`. A snapshot whose builder died stays `pending`.

use serde::{Deserialize, Serialize};

use crate::command::{ApplyError, Response};
use crate::db::Cf;
use crate::keys;
use crate::state_machine::{refuse, team_volume, Applied};
use crate::txn::Txn;

pub const SNAPSHOT_PENDING: &str = "pending";
pub const SNAPSHOT_READY: &str = "ready";

/// `snapshots` family, keyed `<volume> 0 <snapshot id>`.
#[derive(Clone, PartialEq, Eq, prost::Message, Serialize, Deserialize)]
pub struct SnapshotRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub volume_id: String,
    #[prost(string, tag = "3")]
    pub team_id: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, optional, tag = "5")]
    pub description: Option<String>,
    /// The journal seq the namespace is frozen at (`replay_after_seq` of a bootstrap).
    #[prost(uint64, tag = "6")]
    pub seq: u64,
    /// `pending` until the manifest is written, then `ready`.
    #[prost(string, tag = "7")]
    pub state: String,
    /// Total bytes of every file in the snapshot.
    #[prost(uint64, tag = "8")]
    pub size_bytes: u64,
    #[prost(uint64, tag = "9")]
    pub files: u64,
    #[prost(uint64, tag = "10")]
    pub directories: u64,
    /// sha256 (hex) of the manifest object.
    #[prost(string, tag = "11")]
    pub manifest_sha256: String,
    #[prost(int64, tag = "12")]
    pub created_at_ms: i64,
    /// `bootstrap` or `user`.
    #[prost(string, tag = "13")]
    pub kind: String,
    /// When the snapshot is deleted by the leader (bootstrap snapshots: a day after creation).
    #[prost(int64, optional, tag = "14")]
    pub expires_at_ms: Option<i64>,
}

/// How long a bootstrap snapshot (and its archive) stays downloadable.
pub const BOOTSTRAP_SNAPSHOT_TTL_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct CreateSnapshot {
    /// Complete but for `seq`, `state` and the totals, which apply and seal fill in.
    #[prost(message, optional, tag = "1")]
    pub snapshot: Option<SnapshotRecord>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SealSnapshot {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub snapshot_id: String,
    #[prost(uint64, tag = "3")]
    pub size_bytes: u64,
    #[prost(uint64, tag = "4")]
    pub files: u64,
    #[prost(uint64, tag = "5")]
    pub directories: u64,
    #[prost(string, tag = "6")]
    pub manifest_sha256: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct DeleteSnapshot {
    #[prost(string, tag = "1")]
    pub volume_id: String,
    #[prost(string, tag = "2")]
    pub team_id: String,
    #[prost(string, tag = "3")]
    pub snapshot_id: String,
}

pub(crate) fn create_snapshot(txn: &mut Txn, c: &CreateSnapshot) -> Applied {
    let mut s = c.snapshot.clone().ok_or_else(|| ApplyError::bad_request("create_snapshot without a snapshot"))?;
    let vol = team_volume(txn, &s.volume_id, &s.team_id)?;
    if s.id.is_empty() || s.id.contains('\0') {
        return refuse(ApplyError::bad_request("invalid snapshot id"));
    }
    let key = keys::snapshot(&vol.id, &s.id);
    if txn.get::<SnapshotRecord>(Cf::Snapshots, &key)?.is_some() {
        return refuse(ApplyError::conflict("snapshot already exists"));
    }
    s.seq = vol.head_seq;
    s.state = SNAPSHOT_PENDING.into();
    s.size_bytes = 0;
    s.files = 0;
    s.directories = 0;
    s.manifest_sha256.clear();
    txn.put(Cf::Snapshots, &key, &s);
    Ok(Response { head_seq: vol.head_seq, snapshot: Some(s), ..Default::default() })
}

pub(crate) fn seal_snapshot(txn: &mut Txn, c: &SealSnapshot) -> Applied {
    let key = keys::snapshot(&c.volume_id, &c.snapshot_id);
    let Some(mut s) = txn.get::<SnapshotRecord>(Cf::Snapshots, &key)? else {
        return refuse(ApplyError::not_found("snapshot not found"));
    };
    if s.state == SNAPSHOT_READY {
        // Idempotent: a retried seal of the same manifest changes nothing.
        if s.manifest_sha256 == c.manifest_sha256 {
            return Ok(Response { snapshot: Some(s), ..Default::default() });
        }
        return refuse(ApplyError::conflict("snapshot already sealed with another manifest"));
    }
    s.state = SNAPSHOT_READY.into();
    s.size_bytes = c.size_bytes;
    s.files = c.files;
    s.directories = c.directories;
    s.manifest_sha256 = c.manifest_sha256.clone();
    txn.put(Cf::Snapshots, &key, &s);
    Ok(Response { snapshot: Some(s), ..Default::default() })
}

pub(crate) fn delete_snapshot(txn: &mut Txn, c: &DeleteSnapshot) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    let key = keys::snapshot(&vol.id, &c.snapshot_id);
    let Some(s) = txn.get::<SnapshotRecord>(Cf::Snapshots, &key)? else {
        return refuse(ApplyError::not_found("snapshot not found"));
    };
    txn.delete(Cf::Snapshots, &key);
    Ok(Response { snapshot: Some(s), ..Default::default() })
}
