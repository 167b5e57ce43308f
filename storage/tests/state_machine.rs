//! The state machine through its public surface: semantics of each command, gapless seqs,
//! replay equivalence (property test), fork, delete, verification of corrupt stores.

use proptest::prelude::*;
use tideline_storage::command::*;
use tideline_storage::replay::{replay, ReplayNode};
use tideline_storage::*;

struct Fixture {
    _dir: tempfile::TempDir,
    sm: StateMachine,
    index: u64,
}

const TEAM: &str = "team-a";

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        Fixture { _dir: dir, sm: StateMachine::new(db), index: 0 }
    }

    fn apply(&mut self, kind: CommandKind) -> Response {
        self.index += 1;
        let pos = AppliedMeta { index: self.index, term: 1, leader_id: 1, membership: vec![] };
        self.sm.apply(&pos, &kind.into()).unwrap()
    }

    fn create_volume(&mut self, id: &str, mode: &str) {
        let vol = VolumeRecord {
            id: id.into(),
            team_id: TEAM.into(),
            user_id: "u".into(),
            config: Some(VolumeConfig { access_mode: mode.into(), ..Default::default() }),
            created_at_ms: 1,
            updated_at_ms: 1,
            ..Default::default()
        };
        let r = self.apply(CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }));
        assert!(r.error.is_none(), "{r:?}");
    }

    fn origin(&self, vol: &str) -> Option<Origin> {
        Some(Origin {
            volume_id: vol.into(),
            team_id: TEAM.into(),
            source: "sandbox".into(),
            replica_id: None,
            at_ms: 1000 + self.index as i64,
        })
    }

    fn write(&mut self, vol: &str, path: &str, data: &[u8]) -> Response {
        let c = WriteFile {
            origin: self.origin(vol),
            path: path.into(),
            content_ref: ContentRef::of(data).to_string(),
            size: data.len() as u64,
            inline: Some(data.to_vec()),
            mode: 0,
            exclusive: false,
        };
        self.apply(CommandKind::WriteFile(c))
    }

    fn mkdir(&mut self, vol: &str, path: &str, recursive: bool) -> Response {
        let c = MakeDir { origin: self.origin(vol), path: path.into(), recursive, mode: 0 };
        self.apply(CommandKind::MakeDir(c))
    }

    fn remove(&mut self, vol: &str, path: &str) -> Response {
        let c = RemovePath { origin: self.origin(vol), path: path.into() };
        self.apply(CommandKind::Remove(c))
    }

    fn mv(&mut self, vol: &str, from: &str, to: &str) -> Response {
        let c = MovePath { origin: self.origin(vol), source: from.into(), destination: to.into() };
        self.apply(CommandKind::Move(c))
    }

    fn journal(&self, vol: &str) -> Vec<JournalEntry> {
        self.sm.changes(vol, 0, usize::MAX).unwrap()
    }

    /// The namespace as the state machine holds it, in replay's terms.
    fn namespace(&self, vol: &str) -> replay::Namespace {
        self.sm
            .namespace(vol)
            .unwrap()
            .into_iter()
            .map(|(p, n)| {
                let node = ReplayNode {
                    kind: n.kind,
                    mode: n.mode,
                    size: n.size,
                    content_ref: n.content_ref,
                    mtime_ms: n.mtime_ms,
                };
                (p, node)
            })
            .collect()
    }
}

fn kind(r: &Response) -> Option<ApplyErrorKind> {
    r.error.as_ref().map(ApplyError::error_kind)
}

#[test]
fn each_mutation_appends_one_gapless_entry() {
    let mut f = Fixture::new();
    f.create_volume("v1", "RWO");
    assert_eq!(f.write("v1", "/a/b/c.txt", b"hi").seq, 1);
    assert_eq!(f.mkdir("v1", "/d", false).seq, 2);
    assert_eq!(f.mv("v1", "/a", "/d/a").seq, 3);
    assert_eq!(f.remove("v1", "/d").seq, 4);
    // No-ops and refusals append nothing.
    assert_eq!(f.remove("v1", "/nothing").seq, 0);
    assert_eq!(kind(&f.mkdir("v1", "/x/y", false)), Some(ApplyErrorKind::NotFound));
    assert_eq!(f.write("v1", "/e", b"").seq, 5);
    let seqs: Vec<u64> = f.journal("v1").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(f.sm.volume("v1").unwrap().unwrap().head_seq, 5);
    let events: Vec<String> = f.journal("v1").iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(events, vec!["write", "create", "rename", "remove", "write"]);
    assert!(f.journal("v1").iter().filter(|e| e.event_type == "write").all(|e| e.content_ref.is_some()));
}

#[test]
fn type_clashes_are_conflicts_and_change_nothing() {
    let mut f = Fixture::new();
    f.create_volume("v1", "RWO");
    f.write("v1", "/f", b"x");
    assert_eq!(kind(&f.write("v1", "/f/child", b"y")), Some(ApplyErrorKind::Conflict));
    assert_eq!(kind(&f.mkdir("v1", "/f", true)), Some(ApplyErrorKind::Conflict));
    f.mkdir("v1", "/dir", false);
    assert_eq!(kind(&f.write("v1", "/dir", b"z")), Some(ApplyErrorKind::Conflict));
    assert_eq!(kind(&f.mkdir("v1", "/dir", false)), Some(ApplyErrorKind::Conflict));
    assert_eq!(f.mkdir("v1", "/dir", true).seq, 0, "recursive mkdir of an existing dir is a no-op");
    assert_eq!(kind(&f.mv("v1", "/dir", "/dir/sub")), Some(ApplyErrorKind::BadRequest));
    assert_eq!(kind(&f.mv("v1", "/missing", "/x")), Some(ApplyErrorKind::NotFound));
    assert_eq!(kind(&f.mv("v1", "/f", "/dir")), Some(ApplyErrorKind::Conflict));
    assert_eq!(f.journal("v1").len(), 2);
    assert_eq!(kind(&f.write("nope", "/a", b"")), Some(ApplyErrorKind::NotFound));
}

#[test]
fn read_only_volumes_refuse_writes() {
    let mut f = Fixture::new();
    f.create_volume("ro", "ROX");
    let r = f.write("ro", "/a", b"x");
    assert_eq!(kind(&r), Some(ApplyErrorKind::Conflict));
    assert_eq!(r.error.unwrap().message, "volume is read-only");
}

#[test]
fn fork_copies_namespace_and_journal_and_delete_removes_everything() {
    let mut f = Fixture::new();
    f.create_volume("v1", "RWO");
    f.write("v1", "/a/one", b"1");
    f.write("v1", "/two", b"2");
    let fork = VolumeRecord { id: "v2".into(), team_id: TEAM.into(), created_at_ms: 5, ..Default::default() };
    let r = f.apply(CommandKind::ForkVolume(ForkVolume {
        source_volume_id: "v1".into(),
        team_id: TEAM.into(),
        volume: Some(fork),
    }));
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(f.namespace("v2"), f.namespace("v1"));
    assert_eq!(f.journal("v2").len(), 2);
    assert!(f.journal("v2").iter().all(|e| e.volume_id == "v2"));
    // Diverge: the source is untouched by writes to the fork.
    f.write("v2", "/three", b"3");
    assert_eq!(f.namespace("v1").len(), 3);
    assert_eq!(f.namespace("v2").len(), 4);

    let r = f.apply(CommandKind::DeleteVolume(DeleteVolume {
        volume_id: "v1".into(),
        team_id: TEAM.into(),
        force: true,
        ..Default::default()
    }));
    assert!(r.error.is_none());
    assert!(f.sm.volume("v1").unwrap().is_none());
    assert!(f.journal("v1").is_empty());
    assert!(f.namespace("v1").is_empty());
    assert_eq!(f.namespace("v2").len(), 4);
    let other_team = f.apply(CommandKind::DeleteVolume(DeleteVolume {
        volume_id: "v2".into(),
        team_id: "other".into(),
        force: true,
        ..Default::default()
    }));
    assert_eq!(kind(&other_team), Some(ApplyErrorKind::NotFound));
    f.sm.verify().unwrap();
}

#[test]
fn corrupt_journal_value_fails_verification_with_a_typed_error() {
    let mut f = Fixture::new();
    f.create_volume("v1", "RWO");
    for i in 0..5 {
        f.write("v1", &format!("/f{i}"), b"data");
    }
    assert_eq!(f.sm.verify().unwrap().journal_entries, 5);
    let db = f.sm.db();
    db.raw().put_cf(db.cf(Cf::Journal), keys::journal("v1", 3), [1u8, 0xff, 0xff, 0xff]).unwrap();
    match f.sm.verify() {
        Err(StorageError::Corrupt { cf: "journal", .. }) => {}
        other => panic!("expected a corrupt journal error, got {other:?}"),
    }
    // A gap is an invariant violation, not an empty journal.
    db.raw().delete_cf(db.cf(Cf::Journal), keys::journal("v1", 3)).unwrap();
    assert!(matches!(f.sm.verify(), Err(StorageError::Invariant(_))));
}

#[derive(Debug, Clone)]
enum Op {
    Write(String, Vec<u8>),
    Mkdir(String, bool),
    Remove(String),
    Move(String, String),
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "A"]), 1..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (arb_path(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(p, d)| Op::Write(p, d)),
        2 => (arb_path(), any::<bool>()).prop_map(|(p, r)| Op::Mkdir(p, r)),
        1 => arb_path().prop_map(Op::Remove),
        2 => (arb_path(), arb_path()).prop_map(|(a, b)| Op::Move(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Applying random operations gives the namespace that replaying the journal from seq 1
    /// into an empty namespace gives.
    #[test]
    fn namespace_equals_replayed_journal(ops in prop::collection::vec(arb_op(), 1..40)) {
        let mut f = Fixture::new();
        f.create_volume("v", "RWX");
        for op in &ops {
            match op {
                Op::Write(p, d) => { f.write("v", p, d); }
                Op::Mkdir(p, r) => { f.mkdir("v", p, *r); }
                Op::Remove(p) => { f.remove("v", p); }
                Op::Move(a, b) => { f.mv("v", a, b); }
            }
        }
        let journal = f.journal("v");
        for (i, e) in journal.iter().enumerate() {
            prop_assert_eq!(e.seq, i as u64 + 1);
        }
        prop_assert_eq!(f.namespace("v"), replay(&journal));
        f.sm.verify().unwrap();
    }
}

#[test]
fn compaction_only_moves_the_floor_forward_and_keeps_verification_green() {
    let mut f = Fixture::new();
    f.create_volume("v1", "RWO");
    for i in 0..10 {
        f.write("v1", &format!("/f{i}"), b"x");
    }
    let compact = |through| CommandKind::Compact(Compact { volume_id: "v1".into(), through_seq: through });
    f.apply(compact(6));
    let vol = f.sm.volume("v1").unwrap().unwrap();
    assert_eq!((vol.floor_seq, vol.head_seq), (6, 10));
    assert_eq!(f.journal("v1").iter().map(|e| e.seq).collect::<Vec<_>>(), vec![7, 8, 9, 10]);
    // Stale, repeated and past-the-head proposals change nothing.
    for through in [3, 6, 11] {
        f.apply(compact(through));
        assert_eq!(f.sm.volume("v1").unwrap().unwrap().floor_seq, 6);
    }
    assert_eq!(f.sm.compaction_candidates(2, 10).unwrap(), vec![("v1".to_string(), 8)]);
    assert!(f.sm.compaction_candidates(4, 10).unwrap().is_empty());
    assert_eq!(f.namespace("v1").len(), 10, "compaction never touches the namespace");
    assert_eq!(f.write("v1", "/after", b"y").seq, 11, "seqs stay gapless across compaction");
    f.sm.verify().unwrap();
}

#[test]
fn replica_leases_expire_and_capabilities_merge_into_the_volume_policy() {
    let mut f = Fixture::new();
    f.create_volume("v1", "RWO");
    let caps = |cs, u, w| Capabilities {
        case_sensitive: cs,
        unicode_normalization_insensitive: u,
        windows_compatible_paths: w,
    };
    let upsert = |id: &str, c: Capabilities, at: i64| {
        CommandKind::UpsertReplica(UpsertReplica {
            replica: Some(ReplicaRecord {
                id: id.into(),
                volume_id: "v1".into(),
                team_id: TEAM.into(),
                capabilities: Some(c),
                last_seen_at_ms: at,
                created_at_ms: at,
                updated_at_ms: at,
                ..Default::default()
            }),
        })
    };
    f.apply(upsert("linux", caps(true, false, false), 1_000));
    assert_eq!(f.sm.volume("v1").unwrap().unwrap().policy, Some(caps(true, false, false)));
    f.apply(upsert("win", caps(false, true, true), 1_000));
    assert_eq!(f.sm.volume("v1").unwrap().unwrap().policy, Some(caps(false, true, true)));
    f.apply(upsert("linux2", caps(true, false, false), 1_000));
    assert_eq!(f.sm.volume("v1").unwrap().unwrap().policy, Some(caps(false, true, true)), "a policy never loosens");

    f.write("v1", "/a", b"x");
    let cursor = |seq, at| {
        CommandKind::UpdateCursor(UpdateCursor {
            volume_id: "v1".into(),
            team_id: TEAM.into(),
            replica_id: "linux".into(),
            last_applied_seq: seq,
            at_ms: at,
        })
    };
    let lease_end = 1_000 + REPLICA_LEASE_MS;
    assert!(f.apply(cursor(1, lease_end)).error.is_none(), "the last millisecond of the lease still counts");
    let r = f.apply(cursor(1, lease_end + REPLICA_LEASE_MS + 1));
    assert_eq!(r.error.map(|e| e.message), Some("sync replica lease expired".into()));
    // An upsert renews the lease and keeps the cursor.
    f.apply(upsert("linux", caps(true, false, false), lease_end + REPLICA_LEASE_MS + 2));
    assert_eq!(f.sm.replica("v1", "linux").unwrap().unwrap().last_applied_seq, 1);
    assert!(f.apply(cursor(1, lease_end + REPLICA_LEASE_MS + 3)).error.is_none());
    f.sm.verify().unwrap();
}

/// `op` as a command on volume `vol`, made at `at_ms`.
fn op_command(vol: &str, op: &Op, at_ms: i64) -> Command {
    let origin =
        Some(Origin { volume_id: vol.into(), team_id: TEAM.into(), source: "sandbox".into(), replica_id: None, at_ms });
    let kind = match op {
        Op::Write(p, d) => CommandKind::WriteFile(WriteFile {
            origin,
            path: p.clone(),
            content_ref: ContentRef::of(d).to_string(),
            size: d.len() as u64,
            inline: Some(d.clone()),
            mode: 0,
            exclusive: false,
        }),
        Op::Mkdir(p, r) => CommandKind::MakeDir(MakeDir { origin, path: p.clone(), recursive: *r, mode: 0 }),
        Op::Remove(p) => CommandKind::Remove(RemovePath { origin, path: p.clone() }),
        Op::Move(a, b) => CommandKind::Move(MovePath { origin, source: a.clone(), destination: b.clone() }),
    };
    kind.into()
}

fn batch(commands: Vec<Command>) -> CommandKind {
    CommandKind::Batch(CommandBatch { commands })
}

#[test]
fn a_refusal_inside_a_batch_affects_only_its_own_command() {
    let mut f = Fixture::new();
    f.create_volume("v", "RWX");
    assert!(f.mkdir("v", "/d", false).error.is_none());
    let r = f.apply(batch(vec![
        op_command("v", &Op::Write("/a".into(), b"one".to_vec()), 10),
        // a directory is in the way: refused
        op_command("v", &Op::Write("/d".into(), b"two".to_vec()), 11),
        // no such volume: refused
        op_command("missing", &Op::Write("/x".into(), b"three".to_vec()), 12),
        // renames /a, then a refused write below the renamed file, then a remove of it
        op_command("v", &Op::Move("/a".into(), "/b".into()), 13),
        op_command("v", &Op::Write("/b/c".into(), b"four".to_vec()), 14),
        op_command("v", &Op::Write("/e".into(), b"five".to_vec()), 15),
    ]));
    assert!(r.error.is_none(), "the batch itself is not refused: {r:?}");
    let kinds: Vec<Option<i32>> = r.batch.iter().map(|b| b.error.as_ref().map(|e| e.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            None,
            Some(ApplyErrorKind::Conflict as i32),
            Some(ApplyErrorKind::NotFound as i32),
            None,
            Some(ApplyErrorKind::Conflict as i32),
            None
        ],
        "{r:?}"
    );
    // Refused commands take no seq: the accepted ones are gapless after the mkdir (seq 1).
    let seqs: Vec<u64> = r.batch.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, vec![2, 0, 0, 3, 0, 4]);
    let journal: Vec<(u64, String, String)> =
        f.journal("v").into_iter().map(|e| (e.seq, e.event_type, e.path)).collect();
    assert_eq!(
        journal,
        vec![
            (1, "create".into(), "/d".into()),
            (2, "write".into(), "/a".into()),
            (3, "rename".into(), "/b".into()),
            (4, "write".into(), "/e".into()),
        ]
    );
    let ns = f.namespace("v");
    assert_eq!(ns.keys().cloned().collect::<Vec<_>>(), vec!["/b", "/d", "/e"]);
    assert_eq!(ns, replay(&f.journal("v")));
    assert!(f.sm.volume("missing").unwrap().is_none(), "a refused command created nothing");
}

#[test]
fn a_batch_refuses_a_nested_batch_and_a_snapshot_but_applies_the_rest() {
    let mut f = Fixture::new();
    f.create_volume("v", "RWX");
    let snapshot = CommandKind::CreateSnapshot(CreateSnapshot {
        snapshot: Some(SnapshotRecord {
            id: "s1".into(),
            volume_id: "v".into(),
            team_id: TEAM.into(),
            ..Default::default()
        }),
    });
    let r = f.apply(batch(vec![
        batch(vec![op_command("v", &Op::Write("/inner".into(), b"x".to_vec()), 1)]).into(),
        snapshot.into(),
        op_command("v", &Op::Write("/kept".into(), b"y".to_vec()), 2),
    ]));
    assert_eq!(r.batch.len(), 3);
    assert_eq!(r.batch[0].error.as_ref().map(|e| e.kind), Some(ApplyErrorKind::BadRequest as i32));
    assert_eq!(r.batch[1].error.as_ref().map(|e| e.kind), Some(ApplyErrorKind::BadRequest as i32));
    assert!(r.batch[2].error.is_none());
    assert_eq!(f.journal("v").iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), vec!["/kept"]);
}

/// A fork reads the source's committed rows, so it never shares a batch with the writes before
/// it: inside a `CommandBatch` it is refused, and an `ApplyBatch` holding other commands will
/// not take it (the Raft adapter commits first, `raft/tests/apply_grouping.rs`).
#[test]
fn a_fork_never_shares_a_batch() {
    let mut f = Fixture::new();
    f.create_volume("v", "RWX");
    let fork = || -> Command {
        CommandKind::ForkVolume(ForkVolume {
            source_volume_id: "v".into(),
            team_id: TEAM.into(),
            volume: Some(VolumeRecord { id: "v2".into(), team_id: TEAM.into(), ..Default::default() }),
        })
        .into()
    };
    let r = f.apply(batch(vec![op_command("v", &Op::Write("/a".into(), b"x".to_vec()), 1), fork()]));
    assert!(r.batch[0].error.is_none());
    assert_eq!(r.batch[1].error.as_ref().map(|e| e.kind), Some(ApplyErrorKind::BadRequest as i32));
    assert!(f.sm.volume("v2").unwrap().is_none());

    let mut b = f.sm.begin();
    b.apply(&op_command("v", &Op::Write("/b".into(), b"y".to_vec()), 2)).unwrap();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.apply(&fork())));
    let message = refused.expect_err("a fork after a write in one ApplyBatch must panic");
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("starts its own batch"), "{message}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Commands applied as batches (of random sizes) give exactly what applying them one by
    /// one gives: the same responses, journal and namespace.
    #[test]
    fn batches_apply_as_their_commands_one_by_one(
        ops in prop::collection::vec(arb_op(), 1..40),
        cuts in prop::collection::vec(1usize..8, 1..40),
    ) {
        let commands: Vec<Command> =
            ops.iter().enumerate().map(|(i, op)| op_command("v", op, 1000 + i as i64)).collect();
        let mut one = Fixture::new();
        one.create_volume("v", "RWX");
        let singles: Vec<Response> = commands.iter().map(|c| {
            one.index += 1;
            let pos = AppliedMeta { index: one.index, term: 1, leader_id: 1, membership: vec![] };
            one.sm.apply(&pos, c).unwrap()
        }).collect();

        let mut batched = Fixture::new();
        batched.create_volume("v", "RWX");
        let mut responses = Vec::new();
        let mut rest = commands.as_slice();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*cut).min(rest.len()));
            rest = later;
            responses.extend(batched.apply(batch(now.to_vec())).batch);
        }
        prop_assert_eq!(responses, singles);
        prop_assert_eq!(batched.journal("v"), one.journal("v"));
        prop_assert_eq!(batched.namespace("v"), one.namespace("v"));
    }
}
