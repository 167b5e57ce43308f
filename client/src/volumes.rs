//! Volumes and their snapshots: `/sandboxvolumes[/{id}[/fork|/snapshots…]]`.

use reqwest::Method;
use tideline_types::wire::{Deleted, Restored, SandboxVolume, Snapshot, SnapshotRequest, VolumeRequest};

use crate::call::Call;
use crate::client::Client;
use crate::error::ClientError;

impl Client {
    /// Creates a volume (201); `VolumeRequest::default()` takes the server's defaults.
    pub async fn create_volume(&self, req: &VolumeRequest) -> Result<SandboxVolume, ClientError> {
        self.json(Call::api(Method::POST, ["sandboxvolumes"]).json(req)?).await
    }

    /// The team's volumes, newest first.
    pub async fn list_volumes(&self) -> Result<Vec<SandboxVolume>, ClientError> {
        self.json(Call::api(Method::GET, ["sandboxvolumes"])).await
    }

    pub async fn get_volume(&self, volume: &str) -> Result<SandboxVolume, ClientError> {
        self.json(Call::api(Method::GET, ["sandboxvolumes", volume])).await
    }

    /// Deletes a volume (idempotent); `force` even while replicas or mounts are attached.
    pub async fn delete_volume(&self, volume: &str, force: bool) -> Result<Deleted, ClientError> {
        let call = Call::api(Method::DELETE, ["sandboxvolumes", volume]);
        self.json(if force { call.query("force", "true") } else { call }).await
    }

    /// A new volume with the same files; config inherited unless `req` says otherwise.
    pub async fn fork_volume(&self, volume: &str, req: &VolumeRequest) -> Result<SandboxVolume, ClientError> {
        self.json(Call::api(Method::POST, ["sandboxvolumes", volume, "fork"]).json(req)?).await
    }

    pub async fn create_snapshot(&self, volume: &str, req: &SnapshotRequest) -> Result<Snapshot, ClientError> {
        self.json(Call::api(Method::POST, ["sandboxvolumes", volume, "snapshots"]).json(req)?).await
    }

    /// The volume's snapshots, newest first.
    pub async fn list_snapshots(&self, volume: &str) -> Result<Vec<Snapshot>, ClientError> {
        self.json(Call::api(Method::GET, ["sandboxvolumes", volume, "snapshots"])).await
    }

    pub async fn get_snapshot(&self, volume: &str, snapshot: &str) -> Result<Snapshot, ClientError> {
        self.json(Call::api(Method::GET, ["sandboxvolumes", volume, "snapshots", snapshot])).await
    }

    /// Restores the volume to `snapshot` (as journal entries every replica replays).
    pub async fn restore_snapshot(&self, volume: &str, snapshot: &str) -> Result<Restored, ClientError> {
        self.json(Call::api(Method::POST, ["sandboxvolumes", volume, "snapshots", snapshot, "restore"])).await
    }

    /// Deletes a snapshot (idempotent).
    pub async fn delete_snapshot(&self, volume: &str, snapshot: &str) -> Result<Deleted, ClientError> {
        self.json(Call::api(Method::DELETE, ["sandboxvolumes", volume, "snapshots", snapshot])).await
    }
}
