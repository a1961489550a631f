//! The target registration API, compatible with the Collector Agent front end the
//! `MonitoringTarget` resources talk to: `POST /targets`, `GET|PUT|DELETE /targets/<id>`,
//! `GET /targets`. Every call but `GET /healthz` needs the configured token, as `X-Auth-Token`
//! (what OpenStack clients send) or `Authorization: Bearer`.

use super::registry::{Registry, RegistryError};
use super::target::TargetSpec;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

struct Api {
    registry: Registry,
    token: String,
}

/// The API's routes; serve them with `axum::serve`.
pub fn router(registry: Registry, token: String) -> Router {
    let api = Arc::new(Api { registry, token });
    Router::new()
        .route("/targets", get(list).post(create))
        .route("/targets/{id}", get(show).put(update).delete(remove))
        .route_layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(api)
}

async fn authenticate(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    if presented_token(request.headers()).is_some_and(|token| constant_time_eq(token.as_bytes(), api.token.as_bytes()))
    {
        next.run(request).await
    } else {
        error(StatusCode::UNAUTHORIZED, "a valid X-Auth-Token is required")
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

async fn create(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let spec = match TargetSpec::from_json(&body) {
        Ok(spec) => spec,
        Err(invalid) => return error(StatusCode::BAD_REQUEST, &invalid.0),
    };
    match api.registry.create(spec).await {
        Ok(target) => {
            tracing::info!(id = %target.id, kind = %target.spec.kind, key = %target.spec.monitoring_key(), version = target.spec.version, "target registered");
            (StatusCode::CREATED, axum::Json(target.masked())).into_response()
        }
        Err(e) => registry_error(e),
    }
}

async fn show(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match api.registry.get(&id).await {
        Ok(Some(target)) => axum::Json(target.masked()).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => registry_error(e),
    }
}

async fn list(State(api): State<Arc<Api>>) -> Response {
    match api.registry.list().await {
        Ok(targets) => axum::Json(targets.iter().map(|t| t.masked()).collect::<Vec<_>>()).into_response(),
        Err(e) => registry_error(e),
    }
}

async fn update(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) -> Response {
    let spec = match TargetSpec::from_json(&body) {
        Ok(spec) => spec,
        Err(invalid) => return error(StatusCode::BAD_REQUEST, &invalid.0),
    };
    match api.registry.update(&id, spec).await {
        Ok(Some(target)) => {
            tracing::info!(id = %target.id, version = target.spec.version, "target updated");
            axum::Json(target.masked()).into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => registry_error(e),
    }
}

async fn remove(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match api.registry.delete(&id).await {
        Ok(true) => {
            tracing::info!(%id, "target deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => not_found(&id),
        Err(e) => registry_error(e),
    }
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("no target {id}"))
}

fn registry_error(e: RegistryError) -> Response {
    let status = match e {
        RegistryError::Conflict(_) => StatusCode::CONFLICT,
        RegistryError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        RegistryError::Corrupt { .. } | RegistryError::Unencodable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(error = %e, "target API call failed");
    error(status, &e.to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    token: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    tracing::info!(address = ?listener.local_addr().ok(), "target API listening");
    axum::serve(listener, router(registry, token))
        .with_graceful_shutdown(async move { crate::shutdown::shut_down(&mut shutdown).await })
        .await
}
