//! The state machine gives the same state however openraft groups committed entries into
//! `apply` calls: each node groups them its own way, so any difference is a divergence.
//!
//! A fork reads the source volume's committed rows; a write to the source in the same `apply`
//! call, not yet written, must still be in the fork.

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload};
use tideline_raft::typ::{Entry, LogId};
use tideline_raft::StateMachineStore;
use tideline_storage::command::{CreateVolume, ForkVolume, Origin, WriteFile};
use tideline_storage::{CommandKind, ContentRef, Db, VolumeRecord};

const TEAM: &str = "team";

fn entry(index: u64, kind: CommandKind) -> Entry {
    Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(kind.into()) }
}

fn volume(id: &str) -> VolumeRecord {
    VolumeRecord { id: id.into(), team_id: TEAM.into(), ..Default::default() }
}

/// create v1, write /a to v1, fork v1 → v2, write /b to v1: four entries.
fn entries() -> Vec<Entry> {
    let write = |path: &str, data: &[u8]| {
        CommandKind::WriteFile(WriteFile {
            origin: Some(Origin {
                volume_id: "v1".into(),
                team_id: TEAM.into(),
                source: "api".into(),
                replica_id: None,
                at_ms: 1,
            }),
            path: path.into(),
            content_ref: ContentRef::of(data).to_string(),
            size: data.len() as u64,
            inline: Some(data.to_vec()),
            mode: 0,
            exclusive: false,
        })
    };
    vec![
        entry(1, CommandKind::CreateVolume(CreateVolume { volume: Some(volume("v1")) })),
        entry(2, write("/a", b"a")),
        entry(
            3,
            CommandKind::ForkVolume(ForkVolume {
                source_volume_id: "v1".into(),
                team_id: TEAM.into(),
                volume: Some(volume("v2")),
            }),
        ),
        entry(4, write("/b", b"b")),
    ]
}

/// Applies `entries()` in `apply` calls of the given sizes; returns (v1, v2) journals' paths
/// and the store's verification result.
async fn apply_in_groups(sizes: &[usize]) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let mut store = StateMachineStore::open(db, &dir.path().join("snapshots")).unwrap();
    let mut rest = entries();
    for &n in sizes {
        let now: Vec<Entry> = rest.drain(..n).collect();
        for r in store.apply(now).await.unwrap() {
            assert!(r.error.is_none(), "{r:?}");
        }
    }
    assert!(rest.is_empty());
    let sm = store.state_machine();
    sm.verify().unwrap_or_else(|e| panic!("verify after apply calls of {sizes:?}: {e}"));
    let paths = |v: &str| sm.changes(v, 0, 100).unwrap().into_iter().map(|e| e.path).collect::<Vec<_>>();
    (paths("v1"), paths("v2"))
}

#[tokio::test]
async fn a_fork_sees_the_writes_before_it_however_entries_are_grouped() {
    let one_by_one = apply_in_groups(&[1, 1, 1, 1]).await;
    assert_eq!(one_by_one, (vec!["/a".to_string(), "/b".to_string()], vec!["/a".to_string()]));
    for sizes in [&[4][..], &[1, 3], &[2, 2], &[3, 1]] {
        assert_eq!(apply_in_groups(sizes).await, one_by_one, "apply calls of {sizes:?}");
    }
}
