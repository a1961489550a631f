//! The target registration API, compatible with the Collector Agent front end the
//! `MonitoringTarget` resources talk to: `POST /targets`, `GET|PUT|DELETE /targets/<id>`,
//! `GET /targets`. Every call but `GET /healthz` needs the configured token, as `X-Auth-Token`
//! (what OpenStack clients send) or `Authorization: Bearer`.
//!
//! Every refusal is `{"error": "<cause>"}`: 401 without the token, 413 for a body over
//! [`MAX_BODY`], 400 for a body that is not a target (naming the field or the type at fault),
//! 404, 405, 409, 503. No answer and no log line shows a secret the call carried: the token is
//! never repeated, and a refused body's values are never quoted (`TargetSpec::from_json`).

use super::plan::ProbeConfig;
use super::registry::{Registry, RegistryError, TARGETS_PREFIX, target_key};
use super::target::TargetSpec;
use crate::secrets::Secrets;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

/// The largest body the API reads. A target body is one `MonitoringTarget`'s HOT properties: the
/// corpus's largest (a firewall's, with seven `tsdb` metrics) is about 1.2 KiB, a pool's a few
/// hundred bytes per member; 64 KiB is some fifty times that. It also bounds what the API
/// buffers: a body is read only once the token has been checked, so a caller without the token
/// has none of its body read, and one with it at most this much per call in flight. (axum's
/// default is 2 MiB, refused in plain text.)
pub const MAX_BODY: usize = 64 * 1024;

struct Api {
    registry: Registry,
    token: String,
    /// Which target types are taken (`ProbeConfig::knows`).
    probes: ProbeConfig,
}

/// The API's routes; serve them with `axum::serve`.
pub fn router(registry: Registry, token: String, probes: ProbeConfig) -> Router {
    let api = Arc::new(Api { registry, token, probes });
    Router::new()
        .route("/targets", get(list).post(create))
        .route("/targets/{id}", get(show).put(update).delete(remove))
        .route_layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { Refusal::body_unread(StatusCode::NOT_FOUND, "no such path") })
        .method_not_allowed_fallback(|| async {
            Refusal::body_unread(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

async fn authenticate(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    if presented_token(request.headers()).is_some_and(|token| constant_time_eq(token.as_bytes(), api.token.as_bytes()))
    {
        next.run(request).await
    } else {
        Refusal::body_unread(StatusCode::UNAUTHORIZED, "a valid X-Auth-Token is required").into_response()
    }
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers.get("x-auth-token") {
        return token.to_str().ok();
    }
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")
}

/// So that how long a wrong token takes to refuse says nothing about the right one.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The target a POST or PUT body describes, or the refusal to answer.
fn target_spec(api: &Api, body: Result<Bytes, BytesRejection>) -> Result<TargetSpec, Refusal> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!("the body is larger than {} KiB", MAX_BODY / 1024);
            return Err(Refusal::body_unread(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        Err(rejection) => return Err(Refusal::body_unread(rejection.status(), rejection.body_text())),
    };
    let spec = TargetSpec::from_json(&body).map_err(|invalid| Refusal::new(StatusCode::BAD_REQUEST, invalid.0))?;
    if !api.probes.knows(&spec.kind) {
        let message = format!(
            "unknown target type `{}`: the types taken are {} (`--probe-config` gives another type a probe)",
            spec.kind.escape_debug(),
            api.probes.known_types().join(", ")
        );
        // The type is shown back; a secret of the body it happens to contain is not.
        let secrets = Secrets::collect([("properties", &serde_json::Value::Object(spec.properties.clone()))]);
        return Err(Refusal::new(StatusCode::BAD_REQUEST, secrets.mask(&message)));
    }
    Ok(spec)
}

async fn create(State(api): State<Arc<Api>>, body: Result<Bytes, BytesRejection>) -> Response {
    let spec = match target_spec(&api, body) {
        Ok(spec) => spec,
        Err(refusal) => return refusal.into_response(),
    };
    match api.registry.create(spec).await {
        Ok(target) => {
            tracing::info!(id = %target.id, kind = %target.spec.kind, key = %target.spec.monitoring_key(), version = target.spec.version, "target registered");
            (StatusCode::CREATED, axum::Json(target.masked())).into_response()
        }
        Err(e) => registry_error(&api, e, &format!("write {TARGETS_PREFIX}")),
    }
}

async fn show(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match api.registry.get(&id).await {
        Ok(Some(target)) => axum::Json(target.masked()).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => registry_error(&api, e, &format!("read {}", target_key(&id))),
    }
}

async fn list(State(api): State<Arc<Api>>) -> Response {
    match api.registry.list().await {
        Ok(targets) => axum::Json(targets.iter().map(|t| t.masked()).collect::<Vec<_>>()).into_response(),
        Err(e) => registry_error(&api, e, &format!("read {TARGETS_PREFIX}")),
    }
}

async fn update(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Result<Bytes, BytesRejection>) -> Response {
    let spec = match target_spec(&api, body) {
        Ok(spec) => spec,
        Err(refusal) => return refusal.into_response(),
    };
    match api.registry.update(&id, spec).await {
        Ok(Some(target)) => {
            tracing::info!(id = %target.id, version = target.spec.version, "target updated");
            axum::Json(target.masked()).into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => registry_error(&api, e, &format!("write {}", target_key(&id))),
    }
}

async fn remove(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match api.registry.delete(&id).await {
        Ok(true) => {
            tracing::info!(%id, "target deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => not_found(&id),
        Err(e) => registry_error(&api, e, &format!("write {}", target_key(&id))),
    }
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("no target {id}"))
}

/// A call refused for what the caller sent: answered `{"error": <reason>}`, and logged at debug
/// only (a caller can send as many as it likes; the log must not grow with them by default).
struct Refusal {
    status: StatusCode,
    reason: String,
    /// Refused before the body was read to its end: the answer says that the connection closes
    /// after it. hyper closes it anyway (RFC 9112, section 9.6: what is left of the body would be
    /// read as the next request), and without the header a client returns it to its pool and
    /// loses its next call on it (seen as `IncompleteMessage` from reqwest).
    body_unread: bool,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Refusal {
        Refusal { status, reason: reason.into(), body_unread: false }
    }

    fn body_unread(status: StatusCode, reason: impl Into<String>) -> Refusal {
        Refusal { body_unread: true, ..Refusal::new(status, reason) }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::debug!(status = self.status.as_u16(), reason = %self.reason, "target API call refused");
        let mut response = error(self.status, &self.reason);
        if self.body_unread {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A call the registry could not carry out. etcd failing is 503 with `Retry-After`, its cause
/// named as the operator would name it (`what` is what the call tried: `read <key>`), never
/// the client library's raw text.
fn registry_error(api: &Api, e: RegistryError, what: &str) -> Response {
    let (status, message) = match &e {
        RegistryError::Conflict(_) => (StatusCode::CONFLICT, e.to_string()),
        RegistryError::Store(store_error) => {
            let cause = api.registry.describe(store_error, what);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("etcd, which keeps the targets, could not {what}: {cause}; try again"),
            )
        }
        RegistryError::Corrupt { .. } | RegistryError::Unencodable { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    };
    tracing::warn!(error = %message, "target API call failed");
    let mut response = error(status, &message);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    token: String,
    probes: ProbeConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "target API listening");
    axum::serve(listener, router(registry, token, probes))
        .with_graceful_shutdown(async move { crate::shutdown::shut_down(&mut shutdown).await })
        .await
}
