//! The one HTTP listener of a process (`--metrics-listen`): `/healthz` (its loops are alive),
//! `/readyz` (its loops are ready and what they depend on answers) and `/metrics`.

use super::{health, metrics};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long one dependency check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A dependency `/readyz` checks when asked: `Err` says why it is not usable.
pub type Check = Box<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The named dependency checks of this process (etcd, Heat for a worker, the apiserver for the
/// mirror).
#[derive(Default)]
pub struct Checks(Vec<(String, Check)>);

impl Checks {
    pub fn add<F, Fut>(&mut self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.0.push((name.to_owned(), Box::new(move || Box::pin(check()))));
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    checks: Checks,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(checks));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { crate::shutdown::shut_down(&mut shutdown).await })
        .await?;
    Ok(())
}

async fn healthz() -> impl IntoResponse {
    let stuck = health().stuck();
    if stuck.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", stuck.join("\n")))
    }
}

async fn readyz(State(checks): State<Arc<Checks>>) -> impl IntoResponse {
    let mut problems = health().not_ready();
    let results = futures::future::join_all(checks.0.iter().map(|(name, check)| async move {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, check()).await;
        match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(format!("{name}: {why}")),
            Err(_) => Some(format!("{name}: no answer within {} s", CHECK_TIMEOUT.as_secs())),
        }
    }))
    .await;
    problems.extend(results.into_iter().flatten());
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", problems.join("\n")))
    }
}

async fn metrics_text() -> impl IntoResponse {
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics().encode())
}
