//! Every field of a refusal — status, code, reason, message, details — as a real node sends
//! them, and the transport kinds; decided by value, never by message text.

mod common;

use common::Node;
use tideline_client::types::wire::{AppendRequest, ReplicaChange, VolumeRequest};
use tideline_client::types::{AccessMode, ErrorCode, Reason};
use tideline_client::{Client, ErrorKind, RetryPolicy, StatusCode, Upload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_status_code_reason_and_details() {
    let node = Node::start().await;
    let (c, vol) = node.team_volume("team-e").await;

    tracing::info!("--- 404 with a reason");
    let e = c.get_volume("no-such-volume").await.unwrap_err();
    assert_eq!(
        (e.kind, e.status, e.code, e.reason()),
        (ErrorKind::Refused, Some(StatusCode::NOT_FOUND), Some(ErrorCode::NotFound), Some(Reason::VolumeNotFound))
    );
    assert!(e.is_not_found() && !e.is_conflict() && !e.is_transport());
    let e = c.stat(&vol, "/missing").await.unwrap_err();
    assert_eq!(e.reason(), Some(Reason::FileNotFound));

    tracing::info!("--- 409: a read-only volume, a cursor ahead of the head (details kept)");
    let rox = c.create_volume(&VolumeRequest::with_access_mode(AccessMode::Rox)).await.unwrap();
    let e = c.write_file(&rox.id, "/a", Upload::bytes("x")).await.unwrap_err();
    assert_eq!(
        (e.status, e.code, e.reason()),
        (Some(StatusCode::CONFLICT), Some(ErrorCode::Conflict), Some(Reason::VolumeReadOnly))
    );
    assert_eq!(e.details["reason"], "volume_read_only");
    c.put_replica(&vol, "r1", &Default::default()).await.unwrap();
    let e = c.put_cursor(&vol, "r1", 99).await.unwrap_err();
    assert_eq!(e.reason(), Some(Reason::CursorAheadOfHead), "{e}");
    let req = AppendRequest { request_id: "q".into(), base_seq: 0, changes: vec![ReplicaChange::write("/a", "aGk=")] };
    c.append(&vol, "r1", &req).await.unwrap();
    let reused = AppendRequest { changes: vec![ReplicaChange::write("/b", "aGk=")], ..req };
    assert_eq!(c.append(&vol, "r1", &reused).await.unwrap_err().reason(), Some(Reason::RequestIdReused));

    tracing::info!("--- 400 with a prose reason is no Reason; 401 and 403 are auth");
    let e = c.stat(&vol, "").await.unwrap_err();
    assert_eq!((e.status, e.code, e.reason()), (Some(StatusCode::BAD_REQUEST), Some(ErrorCode::BadRequest), None));
    let stranger = c.with_token("not-a-token");
    let e = stranger.list_volumes().await.unwrap_err();
    assert_eq!((e.status, e.code), (Some(StatusCode::UNAUTHORIZED), Some(ErrorCode::Unauthorized)));
    assert!(e.is_auth());
    let e = c.cluster_status().await.unwrap_err();
    assert_eq!((e.status, e.code), (Some(StatusCode::FORBIDDEN), Some(ErrorCode::Forbidden)), "{e}");
    assert!(e.is_auth());

    tracing::info!("--- another team's volume is not found");
    let other = node.team("team-other").await;
    assert_eq!(other.get_volume(&vol).await.unwrap_err().reason(), Some(Reason::VolumeNotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_have_a_kind() {
    tracing::info!("--- nobody listens: Connect, unavailable, no status");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let c = Client::builder(&url, "t").retry(RetryPolicy::none()).build().unwrap();
    let e = c.list_volumes().await.unwrap_err();
    assert_eq!((e.kind, e.status, e.code, e.reason()), (ErrorKind::Connect, None, None, None));
    assert!(e.is_unavailable() && e.is_transport());
    assert!(e.message.starts_with(&format!("reach {url}/api/v1/sandboxvolumes")), "{e}");

    tracing::info!("--- a 2xx whose body is not the route's shape: Decode");
    let stub =
        common::Stub::start(|_| (axum::http::StatusCode::OK, serde_json::json!({ "success": true, "data": 7 }))).await;
    let e = Client::new(&stub.url, "t").unwrap().list_volumes().await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Decode, None));
}
