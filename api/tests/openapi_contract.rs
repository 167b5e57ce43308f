//! Our OpenAPI document against the facts of Sandbox0's published spec
//! (`contract/sandbox0.json`, extracted by `scripts/sandbox0-contract-facts` from
//! `pkg/apispec/openapi.yaml` of sandbox0-ai/sandbox0 at 467fc707): for every volume, file,
//! snapshot and sync operation Sandbox0 publishes, we serve the same path and method, accept
//! what it accepts (no parameter or field required that it leaves optional, same types), and
//! answer what it promises (same success statuses and content types, every field it names with
//! the same type). Both documents are reduced to *shapes* by the same rules as the script:
//! `$ref`, `allOf` and nullability resolved into `{type, required, properties, items}`.
//!
//! The differences we intend are listed in [`INTENDED`] with the reason (docs/API.md marks them
//! **[better]** or **[ext]**); the test fails on any other difference, and on an entry of the list
//! that no longer occurs.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

mod common;
use common::*;

/// (where, what differs, why). `where` is `METHOD path` plus the location inside it.
const INTENDED: &[(&str, &str, &str)] = &[
    (
        "POST /api/v1/sandboxvolumes request",
        "body optional",
        "[better] an empty body creates a volume with the defaults, as an empty JSON object does",
    ),
    (
        "PUT /api/v1/sandboxvolumes/{id}/sync/replicas/{replica_id} request",
        "body optional",
        "[better] every field of a replica registration is optional, so is the body",
    ),
];

fn facts() -> Value {
    serde_json::from_str(include_str!("contract/sandbox0.json")).expect("contract/sandbox0.json")
}

fn ours() -> Value {
    serde_json::to_value(tideline_api::openapi()).expect("our document as JSON")
}

fn resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    while let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let pointer = r.strip_prefix('#').expect("a local $ref");
        node = doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    node
}

/// The schema reduced by the rules of `scripts/sandbox0-contract-facts`.
fn shape(doc: &Value, schema: &Value, depth: usize) -> Value {
    let null = Value::Null;
    let schema = resolve(doc, if schema.is_null() { &null } else { schema });
    if depth > 8 {
        return json!({ "type": "any" });
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> =
                options.iter().filter(|o| resolve(doc, o).get("type") != Some(&json!("null"))).collect();
            return if real.len() == 1 { shape(doc, real[0], depth + 1) } else { json!({ "type": "any" }) };
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut required = BTreeSet::new();
        let mut properties = Map::new();
        for part in parts {
            let s = shape(doc, part, depth + 1);
            required.extend(strings(&s["required"]));
            if let Some(p) = s["properties"].as_object() {
                properties.extend(p.clone());
            }
        }
        return json!({ "type": "object", "required": required, "properties": properties });
    }
    let t = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().find(|t| *t != "null").cloned(),
        other => other.cloned(),
    };
    if t == Some(json!("array")) {
        return json!({ "type": "array", "items": shape(doc, schema.get("items").unwrap_or(&null), depth + 1) });
    }
    if t == Some(json!("object")) || schema.get("properties").is_some() {
        let mut required: Vec<String> = strings(schema.get("required").unwrap_or(&null));
        required.sort();
        let properties: Map<String, Value> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().map(|(k, v)| (k.clone(), shape(doc, v, depth + 1))).collect())
            .unwrap_or_default();
        return json!({ "type": "object", "required": required, "properties": properties });
    }
    match t {
        None => json!({ "type": "any" }),
        Some(t) if schema.get("format") == Some(&json!("binary")) => json!({ "type": t, "format": "binary" }),
        Some(t) => json!({ "type": t }),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Our operation at `METHOD path`, reduced like the facts.
fn our_operation(doc: &Value, key: &str) -> Option<Value> {
    let (method, path) = key.split_once(' ')?;
    let item = doc["paths"].get(path)?;
    let op = item.get(method.to_ascii_lowercase())?;
    let mut params = Map::new();
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
    {
        let p = resolve(doc, p);
        params.insert(
            p["name"].as_str()?.to_string(),
            json!({ "in": p["in"], "required": p["required"].as_bool().unwrap_or(false),
                    "type": shape(doc, &p["schema"], 0)["type"] }),
        );
    }
    let content = |body: &Value| -> Value {
        let body = resolve(doc, body);
        let mut out = Map::new();
        for (ctype, media) in body.get("content").and_then(Value::as_object).into_iter().flatten() {
            out.insert(ctype.clone(), shape(doc, media.get("schema").unwrap_or(&Value::Null), 0));
        }
        Value::Object(out)
    };
    let request = op.get("requestBody").map(
        |rb| json!({ "required": resolve(doc, rb)["required"].as_bool().unwrap_or(false), "content": content(rb) }),
    );
    let mut responses = Map::new();
    for (code, r) in op["responses"].as_object().into_iter().flatten() {
        responses.insert(code.clone(), content(r));
    }
    Some(json!({ "params": params, "request": request, "responses": responses }))
}

/// Differences of `ours` from `theirs` where we must accept at least what they accept.
fn accepts(at: &str, theirs: &Value, ours: &Value, out: &mut Vec<(String, String)>) {
    compare(at, theirs, ours, out, Direction::Accepts);
}

/// Differences of `ours` from `theirs` where we must answer at least what they promise.
fn provides(at: &str, theirs: &Value, ours: &Value, out: &mut Vec<(String, String)>) {
    compare(at, theirs, ours, out, Direction::Provides);
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Accepts,
    Provides,
}

fn compare(at: &str, theirs: &Value, ours: &Value, out: &mut Vec<(String, String)>, dir: Direction) {
    let (t, o) = (&theirs["type"], &ours["type"]);
    if t == "any" || o == "any" {
        return; // free-form on one side (e.g. `metadata`): nothing to hold the other to
    }
    if t != o && !(t == "number" && o == "integer" && dir == Direction::Provides) {
        out.push((at.to_string(), format!("type {t} here, {o} ours")));
        return;
    }
    if theirs.get("format") != ours.get("format") {
        out.push((at.to_string(), format!("format {:?} here, {:?} ours", theirs.get("format"), ours.get("format"))));
    }
    if t == "array" {
        compare(&format!("{at}[]"), &theirs["items"], &ours["items"], out, dir);
    }
    if t == "object" {
        let their_req: BTreeSet<String> = strings(&theirs["required"]).into_iter().collect();
        let our_req: BTreeSet<String> = strings(&ours["required"]).into_iter().collect();
        match dir {
            Direction::Accepts => {
                for extra in our_req.difference(&their_req) {
                    out.push((format!("{at}.{extra}"), "required by us only".into()));
                }
            }
            Direction::Provides => {
                for missing in their_req.difference(&our_req) {
                    out.push((format!("{at}.{missing}"), "always sent there, optional ours".into()));
                }
            }
        }
        for (name, their_field) in theirs["properties"].as_object().into_iter().flatten() {
            match ours["properties"].get(name) {
                Some(our_field) => compare(&format!("{at}.{name}"), their_field, our_field, out, dir),
                None => out.push((format!("{at}.{name}"), "field missing".into())),
            }
        }
    }
}

fn differences(facts: &Value, doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, theirs) in facts["operations"].as_object().expect("operations") {
        let Some(ours) = our_operation(doc, key) else {
            out.push((key.clone(), "operation missing".into()));
            continue;
        };
        for (name, p) in theirs["params"].as_object().into_iter().flatten() {
            let at = format!("{key} param {name}");
            match ours["params"].get(name) {
                None => out.push((at, "parameter missing".into())),
                Some(q) => {
                    if q["in"] != p["in"] {
                        out.push((at.clone(), format!("in {} here, {} ours", p["in"], q["in"])));
                    }
                    if q["required"] == true && p["required"] == false {
                        out.push((at.clone(), "required by us only".into()));
                    }
                    if q["type"] != p["type"] {
                        out.push((at, format!("type {} here, {} ours", p["type"], q["type"])));
                    }
                }
            }
        }
        if let Some(req) = theirs["request"].as_object() {
            let at = format!("{key} request");
            match ours["request"].as_object() {
                None => out.push((at, "body not described".into())),
                Some(our_req) => {
                    if req["required"] != our_req["required"] {
                        out.push((
                            at.clone(),
                            format!("body {}", if our_req["required"] == true { "required" } else { "optional" }),
                        ));
                    }
                    for (ctype, schema) in req["content"].as_object().into_iter().flatten() {
                        match our_req["content"].get(ctype) {
                            None => out.push((format!("{at} {ctype}"), "content type missing".into())),
                            Some(our_schema) => accepts(&format!("{at} {ctype}"), schema, our_schema, &mut out),
                        }
                    }
                }
            }
        }
        for (code, contents) in theirs["responses"].as_object().into_iter().flatten() {
            let at = format!("{key} {code}");
            let class = format!("{}XX", &code[..1]);
            let ours_code = ours["responses"].get(code).or_else(|| ours["responses"].get(&class));
            let Some(our_contents) = ours_code else {
                out.push((at, "status missing".into()));
                continue;
            };
            if !code.starts_with('2') {
                continue; // errors: the envelope, checked once below
            }
            for (ctype, schema) in contents.as_object().into_iter().flatten() {
                match our_contents.get(ctype) {
                    None => out.push((format!("{at} {ctype}"), "content type missing".into())),
                    Some(our_schema) => provides(&format!("{at} {ctype}"), schema, our_schema, &mut out),
                }
            }
        }
    }
    out
}

#[test]
fn our_spec_keeps_every_fact_of_sandbox0s_spec_but_the_intended_differences() {
    let facts = facts();
    assert!(facts["operations"].as_object().unwrap().len() >= 27, "every sandboxvolumes operation is claimed");
    let found = differences(&facts, &ours());
    let intended: BTreeSet<(String, String)> =
        INTENDED.iter().map(|(a, w, _)| (a.to_string(), w.to_string())).collect();
    let found_set: BTreeSet<(String, String)> = found.iter().cloned().collect();
    let unintended: Vec<_> = found_set.difference(&intended).collect();
    assert!(unintended.is_empty(), "unintended differences from Sandbox0's spec:\n{unintended:#?}");
    let stale: Vec<_> = intended.difference(&found_set).collect();
    assert!(stale.is_empty(), "listed as intended but no longer different (drop them from INTENDED):\n{stale:#?}");
}

#[test]
fn the_comparison_catches_a_missing_field_a_wrong_type_and_a_stricter_request() {
    let facts = facts();
    let mut doc = ours();
    let clean = differences(&facts, &doc).len();
    // Break our document three ways; each must show up.
    let schemas = doc["components"]["schemas"].as_object_mut().unwrap();
    // (a generic envelope's schema carries its `data` inline)
    schemas["Success_SandboxVolume"]["properties"]["data"]["properties"].as_object_mut().unwrap().remove("access_mode");
    schemas["Snapshot"]["properties"]["size_bytes"] = json!({ "type": "string" });
    schemas["MoveRequest"]["required"] = json!(["source", "destination", "overwrite"]);
    let found = differences(&facts, &doc);
    let has = |needle: &str, what: &str| found.iter().any(|(at, w)| at.contains(needle) && w.contains(what));
    assert!(has("data.access_mode", "field missing"), "{found:#?}");
    assert!(has("size_bytes", "type"), "{found:#?}");
    assert!(has("files/move request application/json.overwrite", "required by us only"), "{found:#?}");
    assert!(found.len() > clean);
}

#[test]
fn every_operation_is_described_with_errors_and_security() {
    let doc = ours();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        assert!(!path.starts_with("/raft"), "peer routes are not part of the client contract");
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("4XX") && responses.contains_key("5XX"), "{method} {path}: error envelope");
            let open = ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&path.as_str());
            let security = op.get("security").or(doc.get("security")).unwrap();
            assert_eq!(security == &json!([{}]), open, "{method} {path}: security {security}");
        }
    }
    assert!(operations >= 32, "{operations} operations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_served_without_a_token() {
    let app = App::new().await;
    let r = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.json(), ours());
}
