//! The server's side of the golden wire test: storage records, converted as the routes convert
//! them (`ToWire`, `file_info`, the error envelope, the JSON changes page), must give the bytes
//! checked in under `types/tests/golden/` — written by `main`'s serializers from these same
//! records before the wire types moved to `tideline-types`.

#[path = "../../types/tests/support/golden.rs"]
mod golden;
use axum::response::IntoResponse;
use golden::{check, ok};
use tideline_api::journal_json::JsonPage;
use tideline_api::wire::*;
use tideline_api::ApiError;
use tideline_storage::*;
use tideline_types::path::PathError;

const T0: i64 = 1_795_000_000_123;
const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn volume_full() -> VolumeRecord {
    VolumeRecord {
        id: "vol-0123456789abcdef01234567".into(),
        team_id: "team-a".into(),
        user_id: "user-1".into(),
        source_volume_id: Some("vol-parent".into()),
        config: Some(VolumeConfig {
            cache_size: "2G".into(),
            buffer_size: "64M".into(),
            prefetch: 4,
            writeback: true,
            access_mode: "ROX".into(),
            default_posix_uid: Some(1000),
            default_posix_gid: Some(1001),
        }),
        created_at_ms: T0,
        updated_at_ms: T0 + 60_333,
        head_seq: 9,
        floor_seq: 2,
        policy: None,
        conflict_count: 1,
        writer_replica_id: Some("laptop".into()),
        writer_lease_until_ms: T0,
    }
}

fn volume_plain() -> VolumeRecord {
    VolumeRecord {
        id: "vol-2".into(),
        team_id: "team-a".into(),
        user_id: "user-1".into(),
        config: Some(VolumeConfig {
            cache_size: "1G".into(),
            buffer_size: "32M".into(),
            access_mode: "RWO".into(),
            ..Default::default()
        }),
        created_at_ms: 0,
        updated_at_ms: 999,
        ..Default::default()
    }
}

fn file_node() -> NodeRecord {
    NodeRecord {
        kind: "file".into(),
        mode: 0o100644,
        size: 5,
        content_ref: Some(HELLO.into()),
        mtime_ms: T0,
        seq: 3,
        source: "sandbox".into(),
    }
}

fn dir_node() -> NodeRecord {
    NodeRecord {
        kind: "directory".into(),
        mode: 0o2755,
        size: 4096,
        content_ref: None,
        mtime_ms: T0 + 1,
        seq: 5,
        source: "replica".into(),
    }
}

fn entry(seq: u64, event: &str) -> JournalEntry {
    JournalEntry {
        seq,
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        source: "replica".into(),
        replica_id: Some("laptop".into()),
        event_type: event.into(),
        path: "/Docs/Readme.md".into(),
        normalized_path: "/docs/readme.md".into(),
        created_at_ms: T0 + seq as i64,
        ..Default::default()
    }
}

fn entries() -> Vec<JournalEntry> {
    vec![
        JournalEntry {
            source: "sandbox".into(),
            replica_id: None,
            entry_kind: Some("file".into()),
            mode: Some(0o644),
            content_ref: Some(HELLO.into()),
            size_bytes: Some(5),
            metadata_json: Some(r#"{"mount_session_id":"ms-1","b":[1,true,null]}"#.into()),
            ..entry(3, "write")
        },
        JournalEntry {
            old_path: Some("/Docs/Old \"quoted\" é.md".into()),
            normalized_old_path: Some("/docs/old \"quoted\" e\u{301}.md".into()),
            entry_kind: Some("file".into()),
            ..entry(4, "rename")
        },
        JournalEntry {
            path: "/d".into(),
            normalized_path: "/d".into(),
            entry_kind: Some("directory".into()),
            mode: Some(0o755),
            ..entry(5, "create")
        },
        JournalEntry { mode: Some(0o600), ..entry(6, "chmod") },
        JournalEntry { tombstone: true, entry_kind: Some("file".into()), ..entry(7, "remove") },
        JournalEntry {
            path: "/".into(),
            normalized_path: "/".into(),
            metadata_json: Some("{not json".into()),
            ..entry(8, "invalidate")
        },
    ]
}

fn conflict_open() -> ConflictRecord {
    ConflictRecord {
        id: "conf-1".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        replica_id: Some("laptop".into()),
        path: "/Docs/Readme.md".into(),
        normalized_path: "/docs/readme.md".into(),
        artifact_path: "/Docs/Readme.conflict-laptop-seq-3.md".into(),
        incoming_path: Some("/Docs/Readme.md".into()),
        incoming_old_path: Some("/Docs/Old.md".into()),
        existing_seq: Some(3),
        reason: "concurrent_update".into(),
        status: "open".into(),
        metadata_json: Some(r#"{"client":"vim"}"#.into()),
        created_at_ms: T0,
        updated_at_ms: T0,
        ordinal: 1,
    }
}

fn conflict_resolved() -> ConflictRecord {
    ConflictRecord {
        id: "conf-2".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        path: "/x".into(),
        normalized_path: "/x".into(),
        reason: "casefold_collision".into(),
        status: "resolved".into(),
        created_at_ms: T0,
        updated_at_ms: T0 + 5_000,
        ordinal: 2,
        ..Default::default()
    }
}

fn replica_full() -> ReplicaRecord {
    ReplicaRecord {
        id: "laptop".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        display_name: Some("my laptop".into()),
        platform: Some("darwin".into()),
        root_path: Some("/Users/me/work".into()),
        capabilities: Some(tideline_storage::Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: false,
        }),
        last_applied_seq: 7,
        last_seen_at_ms: T0 + 10_000,
        created_at_ms: T0,
        updated_at_ms: T0 + 10_000,
    }
}

fn replica_plain() -> ReplicaRecord {
    ReplicaRecord { id: "r2".into(), volume_id: "vol-1".into(), team_id: "team-a".into(), ..Default::default() }
}

fn snapshot_full() -> SnapshotRecord {
    SnapshotRecord {
        id: "snap-1".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        name: "before refactor".into(),
        description: Some("a snapshot".into()),
        seq: 9,
        state: "ready".into(),
        size_bytes: 12345,
        files: 3,
        directories: 1,
        manifest_sha256: "ab".into(),
        created_at_ms: T0 + 999,
        kind: "bootstrap".into(),
        expires_at_ms: Some(T0 + 86_400_000),
    }
}

fn snapshot_plain() -> SnapshotRecord {
    SnapshotRecord {
        id: "snap-2".into(),
        volume_id: "vol-1".into(),
        name: "n".into(),
        kind: "user".into(),
        created_at_ms: T0,
        ..Default::default()
    }
}

async fn error_body(e: ApiError) -> String {
    let resp = e.into_response();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap() + "\n"
}

#[test]
fn volumes() {
    check("volume.json", ok(&volume_full().to_wire().unwrap()));
    check("volume_list.json", ok(&to_wire_all(&[volume_full(), volume_plain()]).unwrap()));
}

#[test]
fn files() {
    check("file_stat.json", ok(&file_info("/docs/readme.md", &file_node())));
    check("file_stat_root.json", ok(&file_info("/", &dir_node())));
    let entries = vec![file_info("/docs/img", &dir_node()), file_info("/docs/readme.md", &file_node())];
    check("file_list.json", ok(&FileList { entries }));
}

#[test]
fn journal() {
    let changes = to_wire_all(&entries()).unwrap();
    check("changes_page.json", ok(&ChangesPage { changes, head_seq: 9, retained_after_seq: 2 }));
    // The route writes pages without the wire structs: the same bytes.
    let mut page = JsonPage::with_capacity(0);
    for e in &entries() {
        page.push(&JournalEntryRef::of(e));
    }
    check("changes_page.json", String::from_utf8(page.finish(9, 2)).unwrap() + "\n");
    let append = AppendResponse {
        accepted: vec![entries()[1].to_wire().unwrap()],
        conflicts: vec![conflict_open().to_wire().unwrap()],
        head_seq: 9,
    };
    check("append.json", ok(&append));
}

#[test]
fn conflicts() {
    check("conflict.json", ok(&conflict_open().to_wire().unwrap()));
    let conflicts = to_wire_all(&[conflict_open(), conflict_resolved()]).unwrap();
    check("conflict_list.json", ok(&ConflictList { conflicts }));
}

#[test]
fn replicas() {
    check("replica.json", ok(&ReplicaResponse { head_seq: 9, replica: replica_full().to_wire().unwrap() }));
    check("replica_plain.json", ok(&ReplicaResponse { head_seq: 0, replica: replica_plain().to_wire().unwrap() }));
}

#[test]
fn snapshots() {
    check("snapshot.json", ok(&snapshot_full().to_wire().unwrap()));
    check("snapshot_list.json", ok(&to_wire_all(&[snapshot_full(), snapshot_plain()]).unwrap()));
}

#[tokio::test]
async fn errors() {
    check("error_reseed.json", error_body(ApiError::reseed_required(2, 9)).await);
    check("error_invalid_path.json", error_body(ApiError::from(PathError::Invalid("a component is \"..\""))).await);
    check("error_not_found.json", error_body(ApiError::not_found("not found")).await);
}
