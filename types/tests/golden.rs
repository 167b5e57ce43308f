//! The wire shapes, byte for byte: representative responses built from these types and
//! encoded as the server encodes them (through `success_body` and `ErrorEnvelope`) must equal
//! the JSON checked in under `tests/golden/`. Those files were written by the serializers of
//! `main` before the types moved here (the `api` crate's `wire` module, fed storage records),
//! so a difference is a change to what clients receive. `api/tests/wire_golden.rs` holds the
//! server's conversions from storage records to the same files.

#[path = "support/golden.rs"]
mod golden;
use golden::{check, golden, ok};
use serde_json::json;
use tideline_types::wire::*;
use tideline_types::{AccessMode, ConflictStatus, EntryKind, ErrorCode, EventType, FileType, Source};

const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const HELLO_HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn err(e: &ErrorEnvelope) -> String {
    serde_json::to_string(e).unwrap() + "\n"
}

fn volume_full() -> SandboxVolume {
    SandboxVolume {
        id: "vol-0123456789abcdef01234567".into(),
        team_id: "team-a".into(),
        user_id: "user-1".into(),
        source_volume_id: Some("vol-parent".into()),
        default_posix_uid: Some(1000),
        default_posix_gid: Some(1001),
        cache_size: "2G".into(),
        prefetch: 4,
        buffer_size: "64M".into(),
        writeback: true,
        access_mode: AccessMode::Rox,
        created_at: "2026-11-18T11:06:40.123Z".into(),
        updated_at: "2026-11-18T11:07:40.456Z".into(),
    }
}

fn volume_plain() -> SandboxVolume {
    SandboxVolume {
        id: "vol-2".into(),
        team_id: "team-a".into(),
        user_id: "user-1".into(),
        source_volume_id: None,
        default_posix_uid: None,
        default_posix_gid: None,
        cache_size: "1G".into(),
        prefetch: 0,
        buffer_size: "32M".into(),
        writeback: false,
        access_mode: AccessMode::Rwo,
        created_at: "1970-01-01T00:00:00.000Z".into(),
        updated_at: "1970-01-01T00:00:00.999Z".into(),
    }
}

fn file_info() -> FileInfo {
    FileInfo {
        name: "readme.md".into(),
        path: "/docs/readme.md".into(),
        kind: FileType::File,
        size: 5,
        mode: "0644".into(),
        mod_time: "2026-11-18T11:06:40.123Z".into(),
        is_link: false,
        link_target: None,
        seq: Some(3),
        content_ref: Some("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into()),
    }
}

fn dir_info(path: &str, name: &str) -> FileInfo {
    FileInfo {
        name: name.into(),
        path: path.into(),
        kind: FileType::Dir,
        size: 0,
        mode: "2755".into(),
        mod_time: "2026-11-18T11:06:40.124Z".into(),
        is_link: false,
        link_target: None,
        seq: Some(5),
        content_ref: None,
    }
}

fn entry(seq: u64, event_type: EventType) -> SyncJournalEntry {
    SyncJournalEntry {
        seq,
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        source: Source::Replica,
        replica_id: Some("laptop".into()),
        event_type,
        path: "/Docs/Readme.md".into(),
        normalized_path: "/docs/readme.md".into(),
        old_path: None,
        normalized_old_path: None,
        tombstone: false,
        entry_kind: None,
        mode: None,
        content_ref: None,
        content_sha256: None,
        size_bytes: None,
        metadata: None,
        created_at: format!("2026-11-18T11:06:40.{}Z", 123 + seq),
    }
}

fn entries() -> Vec<SyncJournalEntry> {
    vec![
        SyncJournalEntry {
            source: Source::Sandbox,
            replica_id: None,
            entry_kind: Some(EntryKind::File),
            mode: Some(0o644),
            content_ref: Some(HELLO.into()),
            content_sha256: Some(HELLO_HEX.into()),
            size_bytes: Some(5),
            metadata: Some(json!({ "mount_session_id": "ms-1", "b": [1, true, null] })),
            ..entry(3, EventType::Write)
        },
        SyncJournalEntry {
            old_path: Some("/Docs/Old \"quoted\" é.md".into()),
            normalized_old_path: Some("/docs/old \"quoted\" e\u{301}.md".into()),
            entry_kind: Some(EntryKind::File),
            ..entry(4, EventType::Rename)
        },
        SyncJournalEntry {
            path: "/d".into(),
            normalized_path: "/d".into(),
            entry_kind: Some(EntryKind::Directory),
            mode: Some(0o755),
            ..entry(5, EventType::Create)
        },
        SyncJournalEntry { mode: Some(0o600), ..entry(6, EventType::Chmod) },
        SyncJournalEntry { tombstone: true, entry_kind: Some(EntryKind::File), ..entry(7, EventType::Remove) },
        // Stored metadata that is not JSON is left out.
        SyncJournalEntry { path: "/".into(), normalized_path: "/".into(), ..entry(8, EventType::Invalidate) },
    ]
}

fn conflict_open() -> SyncConflict {
    SyncConflict {
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
        status: ConflictStatus::Open,
        metadata: Some(json!({ "client": "vim" })),
        created_at: "2026-11-18T11:06:40.123Z".into(),
        updated_at: "2026-11-18T11:06:40.123Z".into(),
    }
}

fn conflict_resolved() -> SyncConflict {
    SyncConflict {
        id: "conf-2".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        replica_id: None,
        path: "/x".into(),
        normalized_path: "/x".into(),
        artifact_path: String::new(),
        incoming_path: None,
        incoming_old_path: None,
        existing_seq: None,
        reason: "casefold_collision".into(),
        status: ConflictStatus::Resolved,
        metadata: None,
        created_at: "2026-11-18T11:06:40.123Z".into(),
        updated_at: "2026-11-18T11:06:45.123Z".into(),
    }
}

fn replica_full() -> SyncReplica {
    SyncReplica {
        id: "laptop".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        display_name: Some("my laptop".into()),
        platform: Some("darwin".into()),
        root_path: Some("/Users/me/work".into()),
        case_sensitive: false,
        capabilities: Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: false,
        },
        last_seen_at: "2026-11-18T11:06:50.123Z".into(),
        last_applied_seq: 7,
        lease_expires_at: "2026-11-18T11:11:50.123Z".into(),
        created_at: "2026-11-18T11:06:40.123Z".into(),
        updated_at: "2026-11-18T11:06:50.123Z".into(),
    }
}

fn replica_plain() -> SyncReplica {
    SyncReplica {
        id: "r2".into(),
        volume_id: "vol-1".into(),
        team_id: "team-a".into(),
        display_name: None,
        platform: None,
        root_path: None,
        case_sensitive: false,
        capabilities: Capabilities::default(),
        last_seen_at: "1970-01-01T00:00:00.000Z".into(),
        last_applied_seq: 0,
        lease_expires_at: "1970-01-01T00:05:00.000Z".into(),
        created_at: "1970-01-01T00:00:00.000Z".into(),
        updated_at: "1970-01-01T00:00:00.000Z".into(),
    }
}

fn snapshot_full() -> Snapshot {
    Snapshot {
        id: "snap-1".into(),
        volume_id: "vol-1".into(),
        name: "before refactor".into(),
        description: Some("a snapshot".into()),
        size_bytes: 12345,
        seq: 9,
        created_at: "2026-11-18T11:06:41Z".into(),
        expires_at: Some("2026-11-19T11:06:40Z".into()),
    }
}

fn snapshot_plain() -> Snapshot {
    Snapshot {
        id: "snap-2".into(),
        volume_id: "vol-1".into(),
        name: "n".into(),
        description: None,
        size_bytes: 0,
        seq: 0,
        created_at: "2026-11-18T11:06:40Z".into(),
        expires_at: None,
    }
}

#[test]
fn volumes() {
    check("volume.json", ok(&volume_full()));
    check("volume_list.json", ok(&vec![volume_full(), volume_plain()]));
}

#[test]
fn files() {
    check("file_stat.json", ok(&file_info()));
    check("file_stat_root.json", ok(&dir_info("/", "/")));
    check("file_list.json", ok(&FileList { entries: vec![dir_info("/docs/img", "img"), file_info()] }));
}

#[test]
fn journal() {
    check("changes_page.json", ok(&ChangesPage { changes: entries(), head_seq: 9, retained_after_seq: 2 }));
    let append = AppendResponse { accepted: vec![entries()[1].clone()], conflicts: vec![conflict_open()], head_seq: 9 };
    check("append.json", ok(&append));
}

#[test]
fn conflicts() {
    check("conflict.json", ok(&conflict_open()));
    check("conflict_list.json", ok(&ConflictList { conflicts: vec![conflict_open(), conflict_resolved()] }));
}

#[test]
fn replicas() {
    check("replica.json", ok(&ReplicaResponse { head_seq: 9, replica: replica_full() }));
    check("replica_plain.json", ok(&ReplicaResponse { head_seq: 0, replica: replica_plain() }));
}

#[test]
fn snapshots() {
    check("snapshot.json", ok(&snapshot_full()));
    check("snapshot_list.json", ok(&vec![snapshot_full(), snapshot_plain()]));
}

#[test]
fn errors() {
    let reseed = json!({ "reason": "reseed_required", "retained_after_seq": 2, "head_seq": 9 });
    check("error_reseed.json", err(&ErrorEnvelope::new(ErrorCode::Conflict, "sync reseed required", Some(reseed))));
    let path = json!({ "reason": "a component is \"..\"" });
    check("error_invalid_path.json", err(&ErrorEnvelope::new(ErrorCode::BadRequest, "invalid path", Some(path))));
    check("error_not_found.json", err(&ErrorEnvelope::new(ErrorCode::NotFound, "not found", None)));
}

/// What a client reads back is what was sent: every golden body parses into its type and
/// re-encodes to the same bytes.
#[test]
fn clients_read_the_shapes_back() {
    fn data<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let v: serde_json::Value = serde_json::from_str(&golden(name)).unwrap();
        assert_eq!(v["success"], true, "{name}");
        serde_json::from_value(v["data"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    assert_eq!(data::<SandboxVolume>("volume.json"), volume_full());
    assert_eq!(data::<Vec<SandboxVolume>>("volume_list.json"), vec![volume_full(), volume_plain()]);
    assert_eq!(data::<FileInfo>("file_stat.json"), file_info());
    assert_eq!(data::<ChangesPage>("changes_page.json").changes, entries());
    assert_eq!(data::<AppendResponse>("append.json").conflicts, vec![conflict_open()]);
    assert_eq!(data::<ConflictList>("conflict_list.json").conflicts[1], conflict_resolved());
    assert_eq!(data::<ReplicaResponse>("replica.json").replica, replica_full());
    assert_eq!(data::<Vec<Snapshot>>("snapshot_list.json"), vec![snapshot_full(), snapshot_plain()]);
    for name in ["error_reseed.json", "error_invalid_path.json", "error_not_found.json"] {
        let e: ErrorEnvelope = serde_json::from_str(&golden(name)).unwrap();
        assert!(!e.success);
        check(name, err(&e));
    }
}
