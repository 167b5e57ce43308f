//! Replay equivalence of the sync plane: random interleavings of replica appends (several
//! replicas, stale `base_seq`s, conflicts) and files-API mutations. Then
//! (a) a bootstrap manifest frozen mid-run plus the entries after its seq, and
//! (b) the whole journal from seq 1,
//! each reproduce the live namespace exactly (content is compared by its sha256 address).
//! Also: the replica lease on append.

use proptest::prelude::*;
use tideline_storage::command::*;
use tideline_storage::manifest;
use tideline_storage::replay::{replay, replay_entry, Namespace, ReplayNode};
use tideline_storage::*;

const TEAM: &str = "team-a";
const VOL: &str = "v";
const REPLICAS: [(&str, Capabilities); 3] = [
    (
        "linux",
        Capabilities {
            case_sensitive: true,
            unicode_normalization_insensitive: false,
            windows_compatible_paths: false,
        },
    ),
    (
        "mac",
        Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: false,
        },
    ),
    (
        "agent",
        Capabilities {
            case_sensitive: true,
            unicode_normalization_insensitive: false,
            windows_compatible_paths: false,
        },
    ),
];

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
    sm: StateMachine,
    index: u64,
    requests: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let mut f = Fixture { _dir: dir, sm: StateMachine::new(db.clone()), db, index: 0, requests: 0 };
        let vol = VolumeRecord {
            id: VOL.into(),
            team_id: TEAM.into(),
            config: Some(VolumeConfig { access_mode: "RWX".into(), ..Default::default() }),
            ..Default::default()
        };
        f.ok(CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }));
        for (id, caps) in REPLICAS {
            let r = ReplicaRecord {
                id: id.into(),
                volume_id: VOL.into(),
                team_id: TEAM.into(),
                capabilities: Some(caps),
                last_seen_at_ms: f.now(),
                ..Default::default()
            };
            f.ok(CommandKind::UpsertReplica(UpsertReplica { replica: Some(r) }));
        }
        f
    }

    fn now(&self) -> i64 {
        1_000 + self.index as i64
    }

    fn apply(&mut self, kind: CommandKind) -> Response {
        self.index += 1;
        let pos = AppliedMeta { index: self.index, term: 1, leader_id: 1, membership: vec![] };
        self.sm.apply(&pos, &kind.into()).unwrap()
    }

    fn ok(&mut self, kind: CommandKind) -> Response {
        let r = self.apply(kind);
        assert!(r.error.is_none(), "{r:?}");
        r
    }

    fn origin(&self, replica: Option<&str>) -> Option<Origin> {
        Some(Origin {
            volume_id: VOL.into(),
            team_id: TEAM.into(),
            source: if replica.is_some() { "replica" } else { "sandbox" }.into(),
            replica_id: replica.map(str::to_string),
            at_ms: self.now(),
        })
    }

    fn head(&self) -> u64 {
        self.sm.volume(VOL).unwrap().unwrap().head_seq
    }

    fn append(&mut self, replica: &str, base_seq: u64, changes: Vec<ReplicaChange>) -> Response {
        self.requests += 1;
        let c = AppendChanges {
            origin: self.origin(Some(replica)),
            request_id: format!("req-{}", self.requests),
            fingerprint: vec![1],
            base_seq,
            changes,
        };
        self.apply(CommandKind::AppendChanges(c))
    }

    fn live(&self) -> Namespace {
        self.sm
            .namespace(VOL)
            .unwrap()
            .into_iter()
            .map(|(p, n)| (p, node(n.kind, n.mode, n.size, n.content_ref, n.mtime_ms)))
            .collect()
    }
}

fn node(kind: String, mode: u32, size: u64, content_ref: Option<String>, mtime_ms: i64) -> ReplayNode {
    ReplayNode { kind, mode, size, content_ref, mtime_ms }
}

fn content(data: &[u8]) -> (Option<String>, u64, Option<Vec<u8>>) {
    (Some(ContentRef::of(data).to_string()), data.len() as u64, Some(data.to_vec()))
}

#[derive(Debug, Clone)]
enum Change {
    Write(String, Vec<u8>),
    Mkdir(String),
    Remove(String),
    Rename(String, String),
    Chmod(String, u32),
    Invalidate,
}

impl Change {
    fn to_replica(&self) -> ReplicaChange {
        let base =
            |event: &str, p: &str| ReplicaChange { event_type: event.into(), path: p.into(), ..Default::default() };
        match self {
            Change::Write(p, d) => {
                let (content_ref, size, inline) = content(d);
                // A replica may create a file with its content, or write it.
                let event = if d.len() % 2 == 1 { "create" } else { "write" };
                ReplicaChange { entry_kind: Some(KIND_FILE.into()), content_ref, size, inline, ..base(event, p) }
            }
            Change::Mkdir(p) => ReplicaChange { entry_kind: Some(KIND_DIR.into()), ..base("create", p) },
            Change::Remove(p) => base("remove", p),
            Change::Rename(a, b) => ReplicaChange { old_path: Some(a.clone()), ..base("rename", b) },
            Change::Chmod(p, m) => ReplicaChange { mode: Some(*m), ..base("chmod", p) },
            Change::Invalidate => base("invalidate", "/"),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A files-API mutation (`source: sandbox`).
    Sandbox(Change),
    /// A replica's batch with `base_seq = head - lag`.
    Append { replica: usize, lag: u64, changes: Vec<Change> },
    /// Freeze a bootstrap manifest here.
    Freeze,
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "A", "c.txt"]), 1..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn arb_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (arb_path(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(p, d)| Change::Write(p, d)),
        2 => arb_path().prop_map(Change::Mkdir),
        1 => arb_path().prop_map(Change::Remove),
        2 => (arb_path(), arb_path()).prop_filter("a rename moves somewhere else", |(a, b)| a != b && !b.starts_with(&format!("{a}/"))).prop_map(|(a, b)| Change::Rename(a, b)),
        1 => (arb_path(), prop::sample::select(vec![0o600u32, 0o644, 0o755])).prop_map(|(p, m)| Change::Chmod(p, m)),
        1 => Just(Change::Invalidate),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => arb_change().prop_filter("the files API has no chmod or invalidate", |c| !matches!(c, Change::Chmod(..) | Change::Invalidate)).prop_map(Op::Sandbox),
        4 => (0..REPLICAS.len(), 0u64..6, prop::collection::vec(arb_change(), 1..5))
            .prop_map(|(replica, lag, changes)| Op::Append { replica, lag, changes }),
        1 => Just(Op::Freeze),
    ]
}

fn run_sandbox(f: &mut Fixture, c: &Change) {
    let origin = f.origin(None);
    let kind = match c {
        Change::Write(p, d) => {
            let (content_ref, size, inline) = content(d);
            CommandKind::WriteFile(WriteFile {
                origin,
                path: p.clone(),
                content_ref: content_ref.unwrap(),
                size,
                inline,
                mode: 0,
                exclusive: false,
            })
        }
        Change::Mkdir(p) => CommandKind::MakeDir(MakeDir { origin, path: p.clone(), recursive: true, mode: 0 }),
        Change::Remove(p) => CommandKind::Remove(RemovePath { origin, path: p.clone() }),
        Change::Rename(a, b) => CommandKind::Move(MovePath { origin, source: a.clone(), destination: b.clone() }),
        Change::Chmod(..) | Change::Invalidate => unreachable!(),
    };
    f.apply(kind); // refusals (a file in the way, …) are fine: they change nothing
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn bootstrap_plus_changes_and_full_replay_equal_the_live_namespace(ops in prop::collection::vec(arb_op(), 1..40)) {
        let mut f = Fixture::new();
        let mut frozen: Option<(u64, Vec<manifest::ManifestEntry>)> = None;
        let mut conflicts = 0;
        for op in &ops {
            match op {
                Op::Sandbox(c) => run_sandbox(&mut f, c),
                Op::Append { replica, lag, changes } => {
                    let base = f.head().saturating_sub(*lag);
                    let head_before = f.head();
                    let r = f.append(REPLICAS[*replica].0, base, changes.iter().map(Change::to_replica).collect());
                    prop_assert!(r.error.is_none(), "{:?}", r.error);
                    let result = r.append.unwrap();
                    prop_assert_eq!(result.accepted.len() + result.conflicts.len() <= changes.len(), true);
                    conflicts += result.conflicts.len();
                    // What the response lists is exactly what was journaled.
                    let journaled = f.sm.changes(VOL, head_before, usize::MAX).unwrap();
                    let artifacts = result.conflicts.iter().filter(|c| !c.artifact_path.is_empty()).count();
                    prop_assert_eq!(journaled.len(), result.accepted.len() + artifacts);
                    for e in &result.accepted {
                        prop_assert!(journaled.contains(e));
                        if e.event_type == "write" || (e.event_type == "create" && e.entry_kind.as_deref() == Some(KIND_FILE)) {
                            prop_assert!(e.content_ref.is_some(), "every write has a content_ref");
                        }
                    }
                }
                Op::Freeze => {
                    let snap = f.db.raw().snapshot();
                    let entries = manifest::collect(&f.db, &snap, VOL).unwrap();
                    frozen = Some((f.head(), entries));
                }
            }
        }
        let journal = f.sm.changes(VOL, 0, usize::MAX).unwrap();
        for (i, e) in journal.iter().enumerate() {
            prop_assert_eq!(e.seq, i as u64 + 1, "gapless");
        }
        let live = f.live();
        prop_assert_eq!(&replay(&journal), &live, "(b) replay from seq 1");
        if let Some((seq, entries)) = frozen {
            let mut ns: Namespace = entries
                .into_iter()
                .map(|e| (e.path, node(e.kind, e.mode, e.size, e.content_ref, e.mtime_ms)))
                .collect();
            for e in journal.iter().filter(|e| e.seq > seq) {
                replay_entry(&mut ns, e);
            }
            prop_assert_eq!(&ns, &live, "(a) bootstrap at {} + later changes", seq);
        }
        f.sm.verify().unwrap();
        let _ = conflicts;
    }
}

#[test]
fn appends_renew_the_lease_and_an_expired_lease_is_refused() {
    let mut f = Fixture::new();
    let start = f.now();
    let write = || vec![Change::Write("/a".into(), b"x".to_vec()).to_replica()];
    // Jump the clock past the lease by moving the command index forward.
    f.index += REPLICA_LEASE_MS as u64 - 10;
    let at = f.now();
    let r = f.append("linux", 0, write());
    assert!(r.error.is_none(), "inside the lease: {r:?}");
    assert_eq!(f.sm.replica(VOL, "linux").unwrap().unwrap().last_seen_at_ms, at, "renewed");
    f.index += REPLICA_LEASE_MS as u64 + 1;
    let r = f.append("linux", 1, write());
    assert_eq!(r.error.map(|e| e.message), Some("sync replica lease expired".into()));
    let r = f.append("mac", 1, write());
    assert_eq!(r.error.map(|e| e.message), Some("sync replica lease expired".into()), "mac registered at {start}");
    assert_eq!(f.head(), 1, "nothing applied after expiry");
}

#[test]
fn request_ids_are_remembered_24_hours_then_pruned() {
    let mut f = Fixture::new();
    let change = || vec![Change::Write("/a".into(), b"x".to_vec()).to_replica()];
    let first_at = f.now();
    let c = |f: &Fixture, id: &str, base_seq: u64| AppendChanges {
        origin: f.origin(Some("linux")),
        request_id: id.into(),
        fingerprint: vec![7],
        base_seq,
        changes: change(),
    };
    let r = f.apply(CommandKind::AppendChanges(c(&f, "once", 0)));
    assert_eq!(r.append.unwrap().accepted.len(), 1);
    let r = f.apply(CommandKind::AppendChanges(c(&f, "once", 0)));
    assert_eq!(r.append.unwrap().accepted[0].seq, 1, "a retry gets the stored result");
    assert_eq!(f.head(), 1);
    assert!(!f.sm.requests_stored_before(first_at).unwrap());
    assert!(f.sm.requests_stored_before(first_at + 1).unwrap());
    // Pruning before the window ends keeps it; after, it is forgotten.
    f.apply(CommandKind::PruneRequests(PruneRequests { before_ms: first_at, limit: 100 }));
    let r = f.apply(CommandKind::AppendChanges(c(&f, "once", 0)));
    assert_eq!(f.head(), 1, "still remembered: {r:?}");
    f.apply(CommandKind::PruneRequests(PruneRequests { before_ms: first_at + 1, limit: 100 }));
    assert!(!f.sm.requests_stored_before(i64::MAX).unwrap(), "record and index are gone");
    let r = f.apply(CommandKind::AppendChanges(c(&f, "once", 1)));
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(f.head(), 2, "a forgotten id is a new request");
}

#[test]
fn rwo_passes_the_write_lease_on_only_after_it_lapses() {
    let mut f = Fixture::new();
    let mut vol = f.sm.volume(VOL).unwrap().unwrap();
    vol.config.as_mut().unwrap().access_mode = "RWO".into();
    // Switch the fixture's volume to RWO by recreating it under another id.
    vol.id = "rwo".into();
    vol.head_seq = 0;
    f.ok(CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }));
    let replica = |f: &Fixture, id: &str| ReplicaRecord {
        id: id.into(),
        volume_id: "rwo".into(),
        team_id: TEAM.into(),
        last_seen_at_ms: f.now(),
        ..Default::default()
    };
    for id in ["a", "b"] {
        let r = replica(&f, id);
        f.ok(CommandKind::UpsertReplica(UpsertReplica { replica: Some(r) }));
    }
    let append = |f: &mut Fixture, id: &str, base: u64| {
        let mut origin = f.origin(Some(id)).unwrap();
        origin.volume_id = "rwo".into();
        f.requests += 1;
        let c = AppendChanges {
            origin: Some(origin),
            request_id: format!("q{}", f.requests),
            fingerprint: vec![],
            base_seq: base,
            changes: vec![Change::Write(format!("/{id}"), b"x".to_vec()).to_replica()],
        };
        f.apply(CommandKind::AppendChanges(c))
    };
    assert!(append(&mut f, "a", 0).error.is_none());
    let r = append(&mut f, "b", 1);
    assert_eq!(r.error.map(|e| e.message), Some("volume is RWO and replica a holds the write lease".into()));
    // b keeps its own lease alive; a goes quiet until its write lease lapses.
    f.index += REPLICA_LEASE_MS as u64 / 2;
    let r = replica(&f, "b");
    f.ok(CommandKind::UpsertReplica(UpsertReplica { replica: Some(r) }));
    f.index += REPLICA_LEASE_MS as u64 / 2 + 1;
    assert!(append(&mut f, "b", 1).error.is_none(), "the lapsed lease passes to b");
    let r = append(&mut f, "a", 2);
    assert!(r.error.is_some(), "and now a waits");
}

#[test]
fn swept_content_cannot_be_referenced_until_the_sweep_is_done() {
    let mut f = Fixture::new();
    let big = vec![7u8; 100];
    let sha = ContentRef::of(&big);
    let write = |f: &mut Fixture| {
        let c = WriteFile {
            origin: f.origin(None),
            path: "/big".into(),
            content_ref: sha.to_string(),
            size: big.len() as u64,
            inline: None, // the object store holds it
            mode: 0,
            exclusive: false,
        };
        f.apply(CommandKind::WriteFile(c))
    };
    f.ok(CommandKind::MarkGarbage(MarkGarbage { refs: vec![sha.0.to_vec()], at_ms: 10, clear: vec![] }));
    assert_eq!(f.sm.garbage_marks().unwrap(), vec![(sha.0, 10)]);
    // A mark can be dropped again (the digest is no longer a candidate).
    f.ok(CommandKind::MarkGarbage(MarkGarbage { refs: vec![], at_ms: 11, clear: vec![sha.0.to_vec()] }));
    assert!(f.sm.garbage_marks().unwrap().is_empty());
    f.ok(CommandKind::MarkGarbage(MarkGarbage { refs: vec![sha.0.to_vec()], at_ms: 12, clear: vec![] }));
    let r = f.ok(CommandKind::SweepGarbage(SweepGarbage { refs: vec![sha.0.to_vec()], marked_before_ms: 11 }));
    assert!(r.swept.is_empty(), "marked after the cut-off: not swept");
    let r = f.ok(CommandKind::SweepGarbage(SweepGarbage { refs: vec![sha.0.to_vec()], marked_before_ms: 12 }));
    assert_eq!(r.swept, vec![sha.0.to_vec()]);
    assert_eq!(f.sm.swept_tombstones().unwrap(), vec![sha.0]);
    let r = write(&mut f);
    assert_eq!(r.error.as_ref().map(|e| e.error_kind()), Some(ApplyErrorKind::Unavailable), "{r:?}");
    assert_eq!(f.head(), 0, "nothing points at an object being deleted");
    f.ok(CommandKind::SweepDone(SweepDone { refs: vec![sha.0.to_vec()] }));
    assert!(f.sm.swept_tombstones().unwrap().is_empty());
    assert!(write(&mut f).error.is_none(), "after the sweep, a (re-uploaded) blob may be referenced");
    // A write un-marks what it references.
    f.ok(CommandKind::MarkGarbage(MarkGarbage { refs: vec![sha.0.to_vec()], at_ms: 20, clear: vec![] }));
    write(&mut f);
    assert!(f.sm.garbage_marks().unwrap().is_empty());
}
