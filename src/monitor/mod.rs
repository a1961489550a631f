//! The monitor role (the Collector Agent of PROTOCOL.md §8): an HTTP API where Heat's
//! `ESI::Monitoring::MonitoringTarget` resources register targets, kept in etcd; probes of the
//! devices behind them; and the `/monitoring/v2.0/<plural>/<id>` records Gohan reads.
//!
//! A registration flows: `api` (checked [`target`]) → `registry` (etcd) → watched by the
//! leader's [`run`] loop → [`plan`] (which probe) → `read` ([`probe`]) → `status` (write or
//! hold) → [`batch`] (several writes per transaction) → [`write`] (guarded) → `/monitoring`.

pub(crate) mod api;
pub mod batch;
pub mod plan;
pub mod probe;
pub(crate) mod read;
pub(crate) mod registry;
pub(crate) mod run;
pub(crate) mod status;
pub mod target;
pub mod write;

pub use api::MAX_BODY;
pub use registry::target_key;
pub use run::{LEADER_KEY, MonitorOptions, run};

/// The monitor role until `shutdown`: the target API on `listener` (its public base `url`, for
/// the targets' links) and the prober.
pub async fn serve(
    store: crate::store::Store,
    listener: tokio::net::TcpListener,
    url: &str,
    token: String,
    options: MonitorOptions,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let registry = registry::Registry::new(store.clone(), url);
    let api = api::serve(listener, registry, token, options.probes.clone(), shutdown.clone());
    let (api, prober) = tokio::join!(api, run(store, options, shutdown));
    api?;
    prober
}
