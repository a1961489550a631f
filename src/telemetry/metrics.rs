//! The process's Prometheus metrics: one registry, filled by every role as it works and served as
//! text on `/metrics`. One process-wide instance ([`metrics`]), as a process has one `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The ESI resource type (`load_balancer`).
    pub r#type: String,
    /// `create`, `modify` or `logical_delete`.
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishedLabels {
    pub r#type: String,
    pub action: String,
    /// `success` or `failure`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeatCallLabels {
    /// The HTTP method: `GET` (find, show, outputs, list), `POST` (create), `PUT` (update),
    /// `DELETE`.
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeatErrorLabels {
    /// The HTTP status; `untrusted` when the server's certificate was refused, `unreachable` when
    /// no answer came otherwise.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EtcdRequestLabels {
    /// `range` (a get or a list page), `put`, `delete` or `txn`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    /// `planner`, `monitor` or `mirror`.
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `waiting`, `ready`, `working` or `finished`.
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The probe: `snmp_device`, `snmp_port`, `tcp`, `http`.
    pub probe: String,
    /// What it read: `UP`, `DOWN`, `FAIL`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MirrorWriteLabels {
    /// The custom resource's kind.
    pub kind: String,
    /// `apply`, `apply_status`, `patch`, `patch_status`, `delete`.
    pub write: String,
}

/// A histogram family whose histograms share buckets.
#[derive(Clone)]
pub struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

/// Seconds, from 5 ms to ~40 min (an etcd round trip to a long Heat job).
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 3.0, 13))
}

/// Seconds, from 0.5 ms to ~3 s (etcd transactions).
fn short_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.5, 10))
}

pub struct Metrics {
    registry: Registry,
    pub jobs_planned: Family<JobLabels, Counter>,
    pub jobs_finished: Family<FinishedLabels, Counter>,
    pub job_duration: Family<JobLabels, Histogram, Buckets>,
    pub heat_call_duration: Family<HeatCallLabels, Histogram, Buckets>,
    pub heat_errors: Family<HeatErrorLabels, Counter>,
    pub etcd_txn_duration: Histogram,
    pub etcd_requests: Family<EtcdRequestLabels, Counter>,
    pub leader: Family<RoleLabels, Gauge>,
    pub live_jobs: Family<QueueLabels, Gauge>,
    pub probes: Family<ProbeLabels, Counter>,
    pub mirror_writes: Family<MirrorWriteLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("heat_reconciler"),
            jobs_planned: Family::default(),
            jobs_finished: Family::default(),
            job_duration: Family::new_with_constructor(Buckets(seconds)),
            heat_call_duration: Family::new_with_constructor(Buckets(seconds)),
            heat_errors: Family::default(),
            etcd_txn_duration: short_seconds(),
            etcd_requests: Family::default(),
            leader: Family::default(),
            live_jobs: Family::default(),
            probes: Family::default(),
            mirror_writes: Family::default(),
        };
        let r = &mut metrics.registry;
        r.register("jobs_planned", "Jobs the planner wrote, by resource type and action", metrics.jobs_planned.clone());
        r.register(
            "jobs_finished",
            "Jobs the worker finished, by type, action and result",
            metrics.jobs_finished.clone(),
        );
        r.register("job_duration_seconds", "From a job's claim to its result", metrics.job_duration.clone());
        r.register("heat_call_duration_seconds", "Heat API calls, by HTTP method", metrics.heat_call_duration.clone());
        r.register("heat_errors", "Heat calls that failed, by HTTP status", metrics.heat_errors.clone());
        r.register("etcd_txn_duration_seconds", "etcd transactions", metrics.etcd_txn_duration.clone());
        r.register(
            "etcd_requests",
            "Requests sent to etcd (round trips; watches and lease keep-alives are streams, not counted), by kind",
            metrics.etcd_requests.clone(),
        );
        r.register("leader", "1 while this process leads the role", metrics.leader.clone());
        r.register("live_jobs", "Live jobs by queue, as the leading planner sees them", metrics.live_jobs.clone());
        r.register("probes", "Monitor probes, by probe and result", metrics.probes.clone());
        r.register("mirror_writes", "Writes of the mirror to the Kubernetes API", metrics.mirror_writes.clone());
        metrics
    }

    /// The registry in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Sets the role's leader gauge to 1 until the guard is dropped.
pub struct Leading(RoleLabels);

pub fn leading(role: &str) -> Leading {
    let labels = RoleLabels { role: role.to_owned() };
    metrics().leader.get_or_create(&labels).set(1);
    Leading(labels)
}

impl Drop for Leading {
    fn drop(&mut self) {
        metrics().leader.get_or_create(&self.0).set(0);
    }
}

/// Records `elapsed` in a histogram.
pub fn observe(histogram: &Histogram, elapsed: Duration) {
    histogram.observe(elapsed.as_secs_f64());
}
