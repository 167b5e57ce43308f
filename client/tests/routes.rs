//! Every route family through the typed client against a real in-process node: the envelope's
//! `data` decodes into the `types::wire` shapes, and re-encoding a decoded answer gives the
//! server's JSON back (nothing dropped, so a CLI printing typed answers prints what it got).

mod common;

use std::time::Duration;

use base64::Engine;
use common::Node;
use futures::TryStreamExt;
use serde_json::json;
use tideline_client::types::wire::{
    AddNodeRequest, AppendRequest, BootstrapRequest, ConflictUpdate, MoveRequest, ReplicaChange, ReplicaRequest,
    SnapshotRequest, VolumeRequest,
};
use tideline_client::types::{AccessMode, ConflictStatus, EntryKind, EventType, FileType};
use tideline_client::{ChangesQuery, Consistency, Upload};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_snapshots_decode_and_round_trip() {
    let node = Node::start().await;
    let c = node.team("team-a").await;

    tracing::info!("--- create, get, list, fork");
    let vol = c.create_volume(&VolumeRequest::with_access_mode(AccessMode::Rox)).await.unwrap();
    assert_eq!((vol.access_mode, vol.team_id.as_str()), (AccessMode::Rox, "team-a"));
    assert_eq!(c.get_volume(&vol.id).await.unwrap(), vol);
    let raw = node.raw_data(c.token(), &format!("/api/v1/sandboxvolumes/{}", vol.id)).await;
    assert_eq!(serde_json::to_value(&vol).unwrap(), raw, "nothing of the volume is dropped");
    let fork = c.fork_volume(&vol.id, &VolumeRequest::default()).await.unwrap();
    assert_eq!((fork.source_volume_id.as_deref(), fork.access_mode), (Some(vol.id.as_str()), AccessMode::Rwo));
    let listed = c.list_volumes().await.unwrap();
    assert_eq!(listed.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [fork.id.as_str(), vol.id.as_str()]);

    tracing::info!("--- snapshots: create, get, list, restore, delete");
    c.write_file(&fork.id, "/a.txt", Upload::bytes("one")).await.unwrap();
    let req = SnapshotRequest { name: "s1".into(), description: Some("first".into()) };
    let snap = c.create_snapshot(&fork.id, &req).await.unwrap();
    assert_eq!((snap.name.as_str(), snap.description.as_deref(), snap.size_bytes), ("s1", Some("first"), 3));
    assert_eq!(c.get_snapshot(&fork.id, &snap.id).await.unwrap(), snap);
    let raw = node.raw_data(c.token(), &format!("/api/v1/sandboxvolumes/{}/snapshots", fork.id)).await;
    assert_eq!(serde_json::to_value(c.list_snapshots(&fork.id).await.unwrap()).unwrap(), raw);
    c.write_file(&fork.id, "/a.txt", Upload::bytes("two")).await.unwrap();
    assert_eq!(c.restore_snapshot(&fork.id, &snap.id).await.unwrap().status, "restored");
    assert_eq!(c.read_file(&fork.id, "/a.txt").await.unwrap(), "one");
    assert!(c.delete_snapshot(&fork.id, &snap.id).await.unwrap().deleted);
    assert!(c.list_snapshots(&fork.id).await.unwrap().is_empty());

    tracing::info!("--- delete (idempotent)");
    assert!(c.delete_volume(&fork.id, false).await.unwrap().deleted);
    assert!(c.delete_volume(&fork.id, true).await.unwrap().deleted);
    assert!(c.get_volume(&fork.id).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_decode_and_stream() {
    let node = Node::start().await;
    let (c, vol) = node.team_volume("team-f").await;

    tracing::info!("--- write from memory and from a stream; read whole, streamed and as JSON");
    assert!(c.write_file(&vol, "/d/a.txt", Upload::bytes("hello")).await.unwrap().written);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let chunks =
        futures::stream::iter(big.chunks(65_536).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    c.write_file(&vol, "/d/big.bin", Upload::chunks(chunks, big.len() as u64)).await.unwrap();
    assert_eq!(c.read_file(&vol, "/d/big.bin").await.unwrap(), big);
    let stream = c.read_file_stream(&vol, "/d/big.bin").await.unwrap();
    assert_eq!(stream.content_length(), Some(big.len() as u64));
    let streamed: Vec<u8> = stream.into_stream().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(streamed, big);
    let doc = c.read_file_json(&vol, "/d/a.txt").await.unwrap();
    assert_eq!((doc.content.as_str(), doc.encoding.as_str()), (b64(b"hello").as_str(), "base64"));

    tracing::info!("--- mkdir, stat, list, move, delete");
    assert!(c.mkdir(&vol, "/e/f", true).await.unwrap().created);
    let stat = c.stat(&vol, "/d/a.txt").await.unwrap();
    assert_eq!((stat.kind, stat.size, stat.mode.as_str()), (FileType::File, 5, "0644"));
    let list = c.list_dir(&vol, "/d").await.unwrap();
    assert_eq!(list.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a.txt", "big.bin"]);
    let raw = node.raw_data(c.token(), &format!("/api/v1/sandboxvolumes/{vol}/files/list?path=/d")).await;
    assert_eq!(serde_json::to_value(&list).unwrap(), raw);
    let mv = MoveRequest { source: "/d/a.txt".into(), destination: "/e/f/b.txt".into() };
    assert!(c.move_path(&vol, &mv).await.unwrap().moved);
    assert_eq!(c.read_file(&vol, "/e/f/b.txt").await.unwrap(), "hello");
    assert!(c.delete_path(&vol, "/e").await.unwrap().deleted);
    assert!(c.stat(&vol, "/e/f/b.txt").await.unwrap_err().is_not_found());

    tracing::info!("--- the watch endpoint is the files route over ws://");
    let ws = c.watch_endpoint(&vol).unwrap();
    assert_eq!(ws.url, format!("{}/api/v1/sandboxvolumes/{vol}/files/watch", node.url.replace("http://", "ws://")));
    assert_eq!(ws.authorization, format!("Bearer {}", c.token()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_plane_decodes() {
    let node = Node::start().await;
    let (c, vol) = node.team_volume("team-s").await;

    tracing::info!("--- register, append, changes, payload, cursor");
    let reg =
        ReplicaRequest { display_name: Some("laptop".into()), platform: Some("linux".into()), ..Default::default() };
    let r = c.put_replica(&vol, "r1", &reg).await.unwrap();
    assert_eq!((r.replica.id.as_str(), r.head_seq), ("r1", 0));
    let req = AppendRequest {
        request_id: "req-1".into(),
        base_seq: 0,
        changes: vec![
            ReplicaChange::write("/x.txt", b64(b"x1")),
            ReplicaChange { entry_kind: Some(EntryKind::Directory), ..ReplicaChange::at(EventType::Create, "/dir") },
        ],
    };
    let answer = c.append(&vol, "r1", &req).await.unwrap();
    assert_eq!((answer.head_seq, answer.accepted.len(), answer.conflicts.len()), (2, 2, 0));
    assert_eq!(c.append(&vol, "r1", &req).await.unwrap(), answer, "a repeated request id gets the same answer");
    let page = c.changes(&vol, &ChangesQuery::page(0, 10)).await.unwrap();
    assert_eq!(page.changes, answer.accepted);
    let raw = node.raw_data(c.token(), &format!("/api/v1/sandboxvolumes/{vol}/sync/changes?after=0&limit=10")).await;
    assert_eq!(serde_json::to_value(&page).unwrap(), raw);
    let content_ref = page.changes[0].content_ref.clone().unwrap();
    assert_eq!(c.replay_payload(&vol, &content_ref).await.unwrap(), "x1");
    let r = c.put_cursor(&vol, "r1", 2).await.unwrap();
    assert_eq!(r.replica.last_applied_seq, 2);
    assert_eq!(c.get_replica(&vol, "r1").await.unwrap().replica.last_applied_seq, 2);

    tracing::info!("--- a long poll wakes on a write, local consistency reads the same");
    let poll = {
        let c = c.clone();
        let vol = vol.clone();
        tokio::spawn(async move {
            let q = ChangesQuery { after: 2, limit: Some(5), wait: Some(Duration::from_secs(20)), consistency: None };
            c.changes(&vol, &q).await
        })
    };
    c.write_file(&vol, "/y.txt", Upload::bytes("y")).await.unwrap();
    let woke = poll.await.unwrap().unwrap();
    assert_eq!(woke.changes.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    let q = ChangesQuery { consistency: Some(Consistency::Local), ..ChangesQuery::page(0, 100) };
    assert_eq!(c.changes(&vol, &q).await.unwrap().head_seq, 3);

    tracing::info!("--- bootstrap and its archive, streamed");
    let boot = c.bootstrap(&vol, &BootstrapRequest { case_sensitive: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(boot.replay_after_seq, 3);
    let archive = c.bootstrap_archive(&boot.archive_download_path).await.unwrap();
    let gz: Vec<u8> = archive.into_stream().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(&gz[..2], [0x1f, 0x8b], "a gzip stream");

    tracing::info!("--- a conflict, listed and marked");
    c.write_file(&vol, "/x.txt", Upload::bytes("from the sandbox")).await.unwrap();
    let stale = AppendRequest {
        request_id: "req-2".into(),
        base_seq: 2,
        changes: vec![ReplicaChange::write("/x.txt", b64(b"x2"))],
    };
    let answer = c.append(&vol, "r1", &stale).await.unwrap();
    assert_eq!(answer.conflicts.len(), 1, "{answer:?}");
    let open = c.conflicts(&vol, Some(ConflictStatus::Open), None).await.unwrap();
    assert_eq!(open.conflicts, answer.conflicts);
    let raw = node.raw_data(c.token(), &format!("/api/v1/sandboxvolumes/{vol}/sync/conflicts?status=open")).await;
    assert_eq!(serde_json::to_value(&open).unwrap(), raw);
    let mark = ConflictUpdate { status: ConflictStatus::Resolved, resolution: Some("kept both".into()), note: None };
    let marked = c.update_conflict(&vol, &open.conflicts[0].id, &mark).await.unwrap();
    assert_eq!(marked.status, ConflictStatus::Resolved);
    assert!(c.conflicts(&vol, Some(ConflictStatus::Open), Some(10)).await.unwrap().conflicts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_operations_routes_decode() {
    let node = Node::start().await;
    let status = node.admin.cluster_status().await.unwrap();
    assert_eq!((status.node_id, status.leader_id, status.nodes.len()), (1, Some(1), 1));
    let raw = node.raw_data(common::ADMIN, "/api/v1/cluster").await;
    let typed = serde_json::to_value(&status).unwrap();
    // Indexes move between two reads; every field is there with the same type.
    assert_eq!(
        typed.as_object().unwrap().keys().collect::<Vec<_>>(),
        raw.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!(typed["nodes"][0].as_object().unwrap().len(), raw["nodes"][0].as_object().unwrap().len());
    assert_eq!(node.admin.healthz().await.unwrap(), json!({ "status": "ok" }));
    assert!(node.admin.metrics().await.unwrap().contains("tideline_raft_term"));

    tracing::info!("--- a membership change the node refuses is a typed refusal");
    let e = node.admin.add_node(&AddNodeRequest { node_id: 0, addr: String::new() }).await.unwrap_err();
    assert_eq!(e.status, Some(tideline_client::StatusCode::BAD_REQUEST), "{e}");
    let token = node.team("team-t").await;
    assert_eq!(token.get_volume("nope").await.unwrap_err().status.map(|s| s.as_u16()), Some(404));
}
