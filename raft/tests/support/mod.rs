//! What the one-node proposer tests share: a node with one volume, and file writes to it.

use tideline_raft::{RaftNode, RaftNodeConfig};
use tideline_storage::command::{CreateVolume, Origin, WriteFile};
use tideline_storage::{Command, CommandKind, ContentRef, Db, VolumeRecord};

/// A fresh one-node cluster under `dir` holding volume `v` of team `t`.
pub async fn node_with_volume(dir: &std::path::Path) -> RaftNode {
    let db = Db::open(&dir.join("db")).unwrap();
    let node = RaftNode::start(RaftNodeConfig::single(1, "127.0.0.1:1".into(), dir.join("snap")), db).await.unwrap();
    let vol = VolumeRecord { id: "v".into(), team_id: "t".into(), ..Default::default() };
    let r = node.propose(CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }).into()).await.unwrap();
    assert!(r.error.is_none(), "{r:?}");
    node
}

/// A write of `data` to `path` on `volume` (team `t`), content inline.
pub fn write(volume: &str, path: &str, data: Vec<u8>) -> Command {
    CommandKind::WriteFile(WriteFile {
        origin: Some(Origin {
            volume_id: volume.into(),
            team_id: "t".into(),
            source: "sandbox".into(),
            replica_id: None,
            at_ms: 1,
        }),
        path: path.into(),
        content_ref: ContentRef::of(&data).to_string(),
        size: data.len() as u64,
        inline: Some(data),
        mode: 0,
        exclusive: false,
    })
    .into()
}
