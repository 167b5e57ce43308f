//! `sync/changes` in the compact framing (`Accept: application/vnd.tideline.journal+protobuf`):
//! a client decoding it gets the same entries, head and floor as the JSON pages; JSON stays the
//! default; errors stay JSON envelopes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tideline_api::journal_proto::{decode_page, MEDIA_TYPE};
use tideline_api::wire::ToWire;
use tideline_raft::CompactionConfig;
use tideline_test_support::wait_for;

mod common;
use common::*;

async fn get(app: &App, uri: &str, token: &str, accept: Option<&str>) -> Reply {
    let mut b = Request::builder().uri(uri).header("authorization", format!("Bearer {token}"));
    if let Some(a) = accept {
        b = b.header("accept", a);
    }
    app.send(b.body(Body::empty()).unwrap()).await
}

fn content_type(r: &Reply) -> &str {
    r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_pages_carry_the_same_entries_as_json() {
    let app = App::new().await;
    let v = Vol::new(&app).await;
    tracing::info!("--- a journal with every event type, metadata, renames and tombstones");
    v.replica("r1", json!({ "platform": "linux" })).await;
    let changes = json!([
        { "event_type": "create", "path": "/src", "entry_kind": "directory", "mode": 448 },
        { "event_type": "create", "path": "/src/a \"ü\".txt", "entry_kind": "file", "content_base64": b64("hello"),
          "size_bytes": 5, "metadata": { "editor": "vim", "n": [1, 2.5, null] } },
        { "event_type": "write", "path": "/src/b.txt", "content_base64": b64("bee") },
        { "event_type": "chmod", "path": "/src/b.txt", "mode": 493 },
        { "event_type": "rename", "old_path": "/src/b.txt", "path": "/src/c.txt" },
        { "event_type": "remove", "path": "/src/c.txt" },
        { "event_type": "invalidate" },
    ]);
    assert_eq!(v.append("r1", "req-1", 0, changes).await.data()["head_seq"], 7);
    for i in 0..6 {
        v.write(&format!("/w/{i}"), "x").await;
    }

    tracing::info!("--- page through both formats: same entries, head and floor");
    let (mut after, mut seen) = (0u64, 0usize);
    loop {
        let uri = v.url(&format!("/sync/changes?after={after}&limit=3"));
        let j = get(&app, &uri, &v.t, None).await;
        assert_eq!(j.status, StatusCode::OK);
        assert_eq!(content_type(&j), "application/json", "JSON is the default");
        let jd = j.data();
        let c = get(&app, &uri, &v.t, Some(MEDIA_TYPE)).await;
        assert_eq!(c.status, StatusCode::OK);
        assert_eq!(content_type(&c), MEDIA_TYPE);
        let (header, entries) = decode_page(&c.body).unwrap();
        assert_eq!(header.head_seq, jd["head_seq"].as_u64().unwrap());
        assert_eq!(header.retained_after_seq, jd["retained_after_seq"].as_u64().unwrap());
        assert_eq!(header.entries as usize, entries.len());
        let as_json: Vec<Value> = entries.iter().map(|e| serde_json::to_value(e.to_wire().unwrap()).unwrap()).collect();
        assert_eq!(&as_json, jd["changes"].as_array().unwrap());
        assert!(c.body.len() < j.body.len(), "compact is smaller: {} vs {}", c.body.len(), j.body.len());
        let Some(last) = entries.last() else { break };
        assert_eq!(entries[0].seq, after + 1);
        after = last.seq;
        seen += entries.len();
    }
    assert_eq!(seen, 13);
    assert!(seen > 0 && after == 13);

    tracing::info!("--- the alias type, and a client preferring JSON, by q");
    let uri = v.url("/sync/changes?after=0&limit=2");
    let c = get(&app, &uri, &v.t, Some("application/x-protobuf")).await;
    assert_eq!(decode_page(&c.body).unwrap().1.len(), 2);
    let j = get(&app, &uri, &v.t, Some("application/json, application/x-protobuf;q=0.5")).await;
    assert_eq!(j.data()["changes"].as_array().unwrap().len(), 2);
    let c = get(&app, &uri, &v.t, Some("application/json;q=0.5, application/vnd.tideline.journal+protobuf")).await;
    assert_eq!(content_type(&c), MEDIA_TYPE);

    tracing::info!("--- an empty page past the head: the header alone");
    let c = get(&app, &v.url("/sync/changes?after=13"), &v.t, Some(MEDIA_TYPE)).await;
    let (header, entries) = decode_page(&c.body).unwrap();
    assert_eq!((header.head_seq, header.entries, entries.len()), (13, 0, 0));

    tracing::info!("--- errors stay JSON envelopes");
    let r = get(&app, &v.url("/sync/changes?after=x"), &v.t, Some(MEDIA_TYPE)).await;
    assert_eq!(content_type(&r), "application/json");
    r.error(StatusCode::BAD_REQUEST, "bad_request");
    let r = get(&app, "/api/v1/sandboxvolumes/missing/sync/changes", &v.t, Some(MEDIA_TYPE)).await;
    r.error(StatusCode::NOT_FOUND, "not_found");
    let r = get(&app, &v.url("/sync/changes?consistency=eventually"), &v.t, Some(MEDIA_TYPE)).await;
    r.error(StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_reader_below_the_floor_gets_the_json_reseed() {
    let app =
        App::start(Some(CompactionConfig { retain_entries: 5, interval: std::time::Duration::from_millis(50) })).await;
    let v = Vol::new(&app).await;
    for i in 0..12 {
        v.write(&format!("/f{i}"), "x").await;
    }
    let r = wait_for("compaction to 7 (within 10 s)", std::time::Duration::from_secs(10), || async {
        let r = get(&app, &v.url("/sync/changes?after=0"), &v.t, Some(MEDIA_TYPE)).await;
        assert_eq!(content_type(&r), if r.status == StatusCode::OK { MEDIA_TYPE } else { "application/json" });
        (r.status == StatusCode::CONFLICT && r.json()["error"]["details"]["retained_after_seq"] == 7).then_some(r)
    })
    .await;
    assert_eq!(r.error(StatusCode::CONFLICT, "conflict"), "sync reseed required");
    assert_eq!(r.json()["error"]["details"]["reason"], "reseed_required");
    let r = get(&app, &v.url("/sync/changes?after=7"), &v.t, Some(MEDIA_TYPE)).await;
    let (header, entries) = decode_page(&r.body).unwrap();
    assert_eq!((header.head_seq, header.retained_after_seq), (12, 7));
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (8..=12).collect::<Vec<_>>());
}

/// A page is bounded in bytes as well as entries: past 8 MiB it ends after the entry that
/// crossed it, in either format, and the next page goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_cut_after_eight_mib() {
    const PAGE_BYTES_MAX: usize = 8 * 1024 * 1024;
    let app = App::new().await;
    let v = Vol::new(&app).await;
    v.replica("r1", json!({})).await;
    tracing::info!("--- 660 entries of about 15 KB each: about 10 MB of JSON");
    let pad = "p".repeat(15_000);
    let mut head = 0u64;
    for batch in 0..11 {
        let changes: Vec<Value> = (0..60)
            .map(|i| {
                json!({ "event_type": "write", "path": format!("/b{batch}/f{i}"), "content_base64": "",
                             "metadata": { "pad": pad } })
            })
            .collect();
        let r = v.append("r1", &format!("req-{batch}"), head as i64, json!(changes)).await;
        head = r.data()["head_seq"].as_u64().unwrap();
    }
    assert_eq!(head, 660);

    for accept in [None, Some(MEDIA_TYPE)] {
        let (mut after, mut pages) = (0u64, 0);
        while after < head {
            let r = get(&app, &v.url(&format!("/sync/changes?after={after}&limit=2048")), &v.t, accept).await;
            assert_eq!(r.status, StatusCode::OK);
            let seqs: Vec<u64> = match accept {
                None => r.data()["changes"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect(),
                Some(_) => decode_page(&r.body).unwrap().1.iter().map(|e| e.seq).collect(),
            };
            assert_eq!(seqs.first(), Some(&(after + 1)), "{accept:?}");
            assert!(r.body.len() < PAGE_BYTES_MAX + 20_000, "{accept:?}: a page of {} bytes", r.body.len());
            if accept.is_none() {
                assert!(seqs.len() < 660, "the JSON journal does not fit one page");
            }
            after = *seqs.last().unwrap();
            pages += 1;
        }
        assert_eq!(after, head);
        // JSON (~10 MB) needs two pages; compact (~10 MB of the same metadata text) too.
        assert_eq!(pages, 2, "{accept:?}");
    }
}
