//! Bad inputs the schemathesis run (`tests/api_fuzz.rs`) found, kept here so they stay fixed:
//! each is answered with the error envelope as JSON, never axum's plain-text rejection.

use axum::http::StatusCode;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_parameter_that_does_not_decode_is_a_400_envelope() {
    let app = App::new().await;
    let t = app.token("team-a", &["*"]).await;
    // A node id that is not a u64 (found: DELETE /api/v1/cluster/nodes/-1 answered text/plain).
    let r = app.call("DELETE", "/api/v1/cluster/nodes/-1", Some(ADMIN), None).await;
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.error(StatusCode::BAD_REQUEST, "bad_request").contains("invalid path"));
    // A volume id that is not UTF-8 once percent-decoded.
    for uri in [
        "/api/v1/sandboxvolumes/%FF",
        "/api/v1/sandboxvolumes/%FF/snapshots/%FE",
        "/api/v1/sandboxvolumes/%C3/files/stat?path=/a",
    ] {
        let r = app.call("GET", uri, Some(&t), None).await;
        assert_eq!(r.headers["content-type"], "application/json", "{uri}");
        r.error(StatusCode::BAD_REQUEST, "bad_request");
    }
}
