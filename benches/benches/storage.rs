//! Criterion micro-benchmarks of the storage layer, no Raft and no HTTP.
//!
//! ```text
//!   apply/write_file/size=N    StateMachine::apply of one WriteFile (inline content, new path)
//!   apply/mkdir                StateMachine::apply of one non-recursive MakeDir (new directory)
//!   journal/encode/size=N      codec::encode of the JournalEntry a write of N bytes appends
//!   journal/decode/size=N      codec::decode of the same bytes
//!   command/encode/size=N      codec::encode of a WriteFile command carrying N inline bytes
//!   command/decode/size=N      (what a Raft entry carries; N matters here, the journal holds a ref)
//! ```
//!
//! Each benchmark applies or codes one element per iteration and reports
//! `Throughput::Elements(1)`. The apply benchmarks run against a fresh RocksDB in a tempdir,
//! commands built the way `storage/tests/state_machine.rs` builds them; building a command is
//! outside the measured time (`iter_batched`).
//!
//! Run with the dev profile only (see benches/Cargo.toml):
//! `cargo bench --profile dev -p tideline-benches -- --warm-up-time 1 --measurement-time 3`

use std::cell::Cell;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tideline_storage::codec;
use tideline_storage::command::*;
use tideline_storage::*;

const TEAM: &str = "team-bench";
const VOLUME: &str = "vol-bench";
/// File sizes the write benchmarks run with: a small file, and the largest that rides inline.
const WRITE_SIZES: [usize; 2] = [256, INLINE_BYTES_MAX];
/// Directories the written files are spread over, so no directory grows without bound.
const DIRS: u64 = 64;

/// A state machine over a tempdir RocksDB holding one volume.
struct Fixture {
    _dir: tempfile::TempDir,
    sm: StateMachine,
    index: Cell<u64>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db")).expect("open RocksDB");
        let f = Fixture { _dir: dir, sm: StateMachine::new(db), index: Cell::new(0) };
        let vol = VolumeRecord {
            id: VOLUME.into(),
            team_id: TEAM.into(),
            user_id: "bench".into(),
            config: Some(VolumeConfig { access_mode: "RWX".into(), ..Default::default() }),
            created_at_ms: 1,
            updated_at_ms: 1,
            ..Default::default()
        };
        let r = f.apply(&CommandKind::CreateVolume(CreateVolume { volume: Some(vol) }).into());
        assert!(r.error.is_none(), "create volume: {r:?}");
        f
    }

    /// The next log position (and the counter paths and times derive from).
    fn next(&self) -> u64 {
        let i = self.index.get() + 1;
        self.index.set(i);
        i
    }

    fn pos(&self) -> AppliedMeta {
        AppliedMeta { index: self.index.get(), term: 1, leader_id: 1, membership: vec![] }
    }

    fn apply(&self, cmd: &Command) -> Response {
        self.next();
        self.sm.apply(&self.pos(), cmd).expect("apply")
    }
}

fn origin(i: u64) -> Option<Origin> {
    Some(Origin {
        volume_id: VOLUME.into(),
        team_id: TEAM.into(),
        source: "sandbox".into(),
        replica_id: None,
        at_ms: 1_000 + i as i64,
    })
}

fn write_file(i: u64, data: &[u8], content_ref: &str) -> Command {
    CommandKind::WriteFile(WriteFile {
        origin: origin(i),
        path: format!("/d{}/f{i}", i % DIRS),
        content_ref: content_ref.to_owned(),
        size: data.len() as u64,
        inline: Some(data.to_vec()),
        mode: 0,
        exclusive: false,
    })
    .into()
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

fn bench_apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(1));
    for size in WRITE_SIZES {
        let f = Fixture::new();
        let data = payload(size);
        let content_ref = ContentRef::of(&data).to_string();
        g.bench_function(BenchmarkId::new("write_file", format!("size={size}")), |b| {
            b.iter_batched(
                || {
                    let i = f.next();
                    (f.pos(), write_file(i, &data, &content_ref))
                },
                |(pos, cmd)| {
                    let r = f.sm.apply(&pos, &cmd).expect("apply");
                    debug_assert!(r.error.is_none(), "{r:?}");
                    r
                },
                BatchSize::SmallInput,
            )
        });
    }

    // The proposer's group commit: one entry holding BATCH writes, applied as one WriteBatch.
    const BATCH: u64 = 32;
    g.throughput(Throughput::Elements(BATCH));
    let f = Fixture::new();
    let data = payload(256);
    let content_ref = ContentRef::of(&data).to_string();
    g.bench_function(BenchmarkId::new("write_file_batch", format!("size=256/commands={BATCH}")), |b| {
        b.iter_batched(
            || {
                let commands = (0..BATCH).map(|_| write_file(f.next(), &data, &content_ref)).collect();
                (f.pos(), Command::from(CommandKind::Batch(CommandBatch { commands })))
            },
            |(pos, cmd)| f.sm.apply(&pos, &cmd).expect("apply"),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1));

    let f = Fixture::new();
    // Parents that every measured mkdir lands in, so each one is a plain one-level create.
    for d in 0..DIRS {
        let cmd =
            CommandKind::MakeDir(MakeDir { origin: origin(0), path: format!("/d{d}"), recursive: false, mode: 0 });
        let r = f.apply(&cmd.into());
        assert!(r.error.is_none(), "{r:?}");
    }
    g.bench_function("mkdir", |b| {
        b.iter_batched(
            || {
                let i = f.next();
                let path = format!("/d{}/m{i}", i % DIRS);
                (
                    f.pos(),
                    Command::from(CommandKind::MakeDir(MakeDir { origin: origin(i), path, recursive: false, mode: 0 })),
                )
            },
            |(pos, cmd)| {
                let r = f.sm.apply(&pos, &cmd).expect("apply");
                debug_assert!(r.error.is_none(), "{r:?}");
                r
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The entry a write of `size` bytes appends (the entry holds the content's address, not its bytes).
fn journal_entry(size: usize) -> JournalEntry {
    let data = payload(size);
    JournalEntry {
        seq: 123_456,
        volume_id: VOLUME.into(),
        team_id: TEAM.into(),
        source: "sandbox".into(),
        replica_id: None,
        event_type: "write".into(),
        path: "/workspace/src/module/file_0042.rs".into(),
        normalized_path: "/workspace/src/module/file_0042.rs".into(),
        old_path: None,
        normalized_old_path: None,
        tombstone: false,
        entry_kind: Some(KIND_FILE.into()),
        mode: Some(0o644),
        content_ref: Some(ContentRef::of(&data).to_string()),
        size_bytes: Some(size as u64),
        metadata_json: None,
        created_at_ms: 1_767_225_600_000,
    }
}

fn bench_codec(c: &mut Criterion) {
    let size = 256;
    let label = format!("size={size}");

    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1));
    let entry = journal_entry(size);
    let bytes = codec::encode(&entry);
    assert_eq!(codec::decode::<JournalEntry>("journal", b"k", &bytes).expect("round trip"), entry);
    g.bench_function(BenchmarkId::new("encode", &label), |b| b.iter(|| codec::encode(black_box(&entry))));
    g.bench_function(BenchmarkId::new("decode", &label), |b| {
        b.iter(|| codec::decode::<JournalEntry>("journal", b"k", black_box(&bytes)).expect("decode"))
    });
    g.finish();

    let mut g = c.benchmark_group("command");
    g.throughput(Throughput::Elements(1));
    let data = payload(size);
    let cmd = write_file(42, &data, &ContentRef::of(&data).to_string());
    let bytes = codec::encode(&cmd);
    assert_eq!(codec::decode::<Command>("raft_log", b"k", &bytes).expect("round trip"), cmd);
    g.bench_function(BenchmarkId::new("encode", &label), |b| b.iter(|| codec::encode(black_box(&cmd))));
    g.bench_function(BenchmarkId::new("decode", &label), |b| {
        b.iter(|| codec::decode::<Command>("raft_log", b"k", black_box(&bytes)).expect("decode"))
    });
    g.finish();
}

criterion_group!(benches, bench_apply, bench_codec);
criterion_main!(benches);
