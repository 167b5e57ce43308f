//! The token lifecycle through the router: create with a name and a time to live, list a page
//! at a time (the admin every team's, a team its own; never a secret), expire by the clock, revoke by id.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::*;

async fn create(app: &App, body: Value) -> Value {
    let r = app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    r.data()
}

async fn list(app: &App, query: &str) -> Value {
    app.call("GET", &format!("/api/v1/tokens{query}"), Some(ADMIN), None).await.data()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_a_ttl_works_until_its_expiry_then_is_refused_as_expired() {
    let app = App::new().await;
    let t = create(&app, json!({ "team_id": "team-a", "permissions": ["*"], "name": "ci", "ttl_seconds": 60 })).await;
    assert_eq!(t["name"], "ci");
    let token = t["token"].as_str().unwrap();
    let created = epoch_ms(t["created_at"].as_str().unwrap());
    assert_eq!(epoch_ms(t["expires_at"].as_str().unwrap()) - created, 60_000);
    let forever = create(&app, json!({ "team_id": "team-a", "permissions": ["*"] })).await;
    assert_eq!(forever["expires_at"], Value::Null);

    let r = app.call("GET", "/api/v1/sandboxvolumes", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    app.clock.advance(Duration::from_secs(59));
    assert_eq!(app.call("GET", "/api/v1/sandboxvolumes", Some(token), None).await.status, StatusCode::OK);
    app.clock.advance(Duration::from_secs(1));
    let r = app.call("GET", "/api/v1/sandboxvolumes", Some(token), None).await;
    assert_eq!(r.error(StatusCode::UNAUTHORIZED, "unauthorized"), "token expired");
    assert_eq!(r.json()["error"]["details"]["reason"], "token_expired");
    // The token without a ttl is not affected, and the listing says which one expired.
    let r = app.call("GET", "/api/v1/sandboxvolumes", Some(forever["token"].as_str().unwrap()), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let listed = list(&app, "").await;
    let expired: Vec<(&str, bool)> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["expired"].as_bool().unwrap()))
        .collect();
    assert!(expired.contains(&(t["id"].as_str().unwrap(), true)), "{listed}");
    assert!(expired.contains(&(forever["id"].as_str().unwrap(), false)), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_a_page_at_a_time_a_team_sees_its_own_and_never_a_secret() {
    let app = App::new().await;
    let mut made = Vec::new();
    for (team, name) in [("team-a", "one"), ("team-a", "two"), ("team-b", "three")] {
        made.push(create(&app, json!({ "team_id": team, "permissions": ["sandboxvolume:read"], "name": name })).await);
    }
    // limit=1 walks every token exactly once through next_cursor.
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_string();
    loop {
        let page = list(&app, &query).await;
        let tokens = page["tokens"].as_array().unwrap();
        assert!(tokens.len() <= 1);
        for t in tokens {
            assert!(t.get("token").is_none(), "a listing never carries a secret: {t}");
            seen.push(t["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => query = format!("?limit=1&after={next}"),
            None => break,
        }
    }
    let mut want: Vec<String> = made.iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    seen.sort();
    want.sort();
    assert_eq!(seen, want);

    let b = list(&app, "?team_id=team-b").await;
    assert_eq!(b["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(b["tokens"][0]["name"], "three");
    assert_eq!(b["tokens"][0]["permissions"], json!(["sandboxvolume:read"]));

    // A team token lists its own team's tokens only, whatever team it asks for.
    let team = made[0]["token"].as_str().unwrap();
    let own = app.call("GET", "/api/v1/tokens?team_id=team-b", Some(team), None).await.data();
    let names: Vec<&str> = own["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{own}");
    assert!(names.contains(&"one") && names.contains(&"two"), "{own}");
    app.call("GET", "/api/v1/tokens?after=zz", Some(ADMIN), None).await.error(StatusCode::BAD_REQUEST, "bad_request");
    app.call("GET", "/api/v1/tokens?limit=-1", Some(ADMIN), None).await.error(StatusCode::BAD_REQUEST, "bad_request");
    for bad in [json!(0), json!(316_224_001u64), json!("soon")] {
        let body = json!({ "team_id": "x", "permissions": ["*"], "ttl_seconds": bad });
        let r = app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(body)).await;
        r.error(StatusCode::BAD_REQUEST, "bad_request");
    }
    let long = json!({ "team_id": "x", "permissions": ["*"], "name": "n".repeat(129) });
    app.call("POST", "/api/v1/tokens", Some(ADMIN), Some(long)).await.error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(list(&app, "").await["tokens"].as_array().unwrap().len(), 3, "a refused create adds nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_and_only_it() {
    let app = App::new().await;
    let gone = create(&app, json!({ "team_id": "team-a", "permissions": ["*"] })).await;
    let kept = create(&app, json!({ "team_id": "team-a", "permissions": ["*"] })).await;
    let (gone_token, kept_token) = (gone["token"].as_str().unwrap(), kept["token"].as_str().unwrap());
    assert_eq!(app.call("GET", "/api/v1/sandboxvolumes", Some(gone_token), None).await.status, StatusCode::OK);

    let id = gone["id"].as_str().unwrap();
    app.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(kept_token), None)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let r = app.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(ADMIN), None).await;
    assert_eq!(r.data()["id"], id);
    let r = app.call("GET", "/api/v1/sandboxvolumes", Some(gone_token), None).await;
    assert_eq!(r.error(StatusCode::UNAUTHORIZED, "unauthorized"), "invalid token");
    assert_eq!(app.call("GET", "/api/v1/sandboxvolumes", Some(kept_token), None).await.status, StatusCode::OK);
    let left: Vec<Value> = list(&app, "").await["tokens"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
    assert_eq!(left, vec![kept["id"].clone()]);
}

/// Milliseconds since the epoch of an RFC 3339 time the server wrote.
fn epoch_ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}
