//! The OpenAPI 3.1 document of the client API, served at `GET /openapi.json`.
//!
//! It is generated, not written: each handler carries a `#[utoipa::path]` attribute, the wire
//! types in `tideline-types` derive their schemas (feature `openapi`), and the router registers
//! handlers through `utoipa_axum::routes!`, which adds the route and its description together
//! (`routes::router`). A route cannot be served without being described, nor described at a path
//! it is not served on. What is written by hand here: the document's header, the bearer scheme,
//! the success envelope and the error responses every operation shares.
//!
//! Not described: the node-to-node routes under `/raft/` (peers only, authenticated by the
//! cluster secret or the peer certificate, not a client contract).

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, RefOr, Schema};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::wire::ErrorEnvelope;

/// The header of the document; paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tideline API",
        description = "Workspace volumes over a Raft-replicated journal. Wire-compatible with the \
                       Sandbox0 Volume API; extensions are additive. Human reference: docs/API.md.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorEnvelope)),
    security(("bearerAuth" = [])),
    tags(
        (name = "sandbox-volumes", description = "Create, list, fork and delete volumes"),
        (name = "files", description = "Direct file operations on a volume"),
        (name = "snapshots", description = "Point-in-time snapshots and restore"),
        (name = "volume-sync", description = "The journal: replicas, replay, appends, bootstrap, conflicts"),
        (name = "tokens", description = "Team tokens (admin)"),
        (name = "cluster", description = "Membership and status (admin)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// `{"success":true,"data":…}`: every JSON success answer.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema, never built
pub struct Success<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
}

/// Raw bytes (`application/octet-stream`, `application/gzip`).
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Binary")
    }
}

/// What every operation shares: the bearer scheme, and the error envelope as the answer of any
/// refused request (`4XX`) or failed one (`5XX`, e.g. 503 while no leader is known).
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorEnvelope")))),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let ops: [&mut Option<Operation>; 5] =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                responses
                    .entry("4XX".into())
                    .or_insert_with(|| error("Refused: the error envelope names the code").into());
                responses
                    .entry("5XX".into())
                    .or_insert_with(|| error("Failed or unavailable (503 while no leader is known)").into());
            }
        }
    }
}

/// The whole document: the header above plus every route the router registered.
pub fn document(paths: Document) -> Document {
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    Shared.modify(&mut doc);
    doc
}

/// `GET /openapi.json`: the document, generated once per process.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub async fn serve() -> ApiResult<impl IntoResponse> {
    static DOC: OnceLock<Result<String, String>> = OnceLock::new();
    let doc = DOC.get_or_init(|| crate::routes::openapi().to_pretty_json().map_err(|e| e.to_string()));
    match doc {
        Ok(doc) => Ok(([(header::CONTENT_TYPE, "application/json")], doc.as_str())),
        Err(e) => Err(ApiError::internal(format!("encoding the OpenAPI document: {e}"))),
    }
}

/// `consistency=linearizable|local` of the read routes.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // a schema; routes parse the string themselves (`routes::consistency`)
pub enum Consistency {
    /// Confirmed with a quorum first (the default).
    Linearizable,
    /// This node's applied state, possibly behind the leader.
    Local,
}

/// `{id}`: a volume.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct VolumeId {
    /// The volume's id.
    id: String,
}

/// `{id}/…/{snapshot_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SnapshotPath {
    /// The volume's id.
    id: String,
    /// The snapshot's id.
    snapshot_id: String,
}

/// `{id}/…/{replica_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ReplicaPath {
    /// The volume's id.
    id: String,
    /// The replica's id, chosen by the sync client.
    replica_id: String,
}

/// `{id}/…/{conflict_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ConflictPath {
    /// The volume's id.
    id: String,
    /// The conflict's id.
    conflict_id: String,
}

/// `?consistency=` of a read.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReadQuery {
    /// `linearizable` (default) or `local`.
    #[param(inline)]
    consistency: Option<Consistency>,
}

/// `?path=` of the files routes, and the read's `consistency`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FilePath {
    /// The path inside the volume, e.g. `/src/main.rs`.
    path: String,
    /// `linearizable` (default) or `local`.
    #[param(inline)]
    consistency: Option<Consistency>,
}
