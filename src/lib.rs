//! heat-reconciler: a level-triggered controller that turns resource configuration stored in etcd
//! into OpenStack Heat stacks, speaking the etcd data contract of the ESI worker
//! (`docs/PROTOCOL.md`).
//!
//! A config change, top to bottom: Gohan writes `/config/...`; the [`planner`]'s watch sees it
//! in its view, `planner::reactions` decides the job (pure) and the planner commits it to
//! `/jobs/...`; a [`worker`] claims it, renders the template, drives [`heat`] and writes
//! `/esi-worker/heat_stacks`, `/esi-worker/job_state` and `/state`; the [`monitor`] probes what
//! the stack registered and writes `/monitoring`; the [`mirror`] shows it all in Kubernetes.
//!
//! The modules, lowest layer first (a module uses only those above it in this list):
//!
//! * [`protocol`] — the etcd data contract: key layout, job ids, every record type (pure).
//! * [`mapping`] — `parameter_mappings` / `template_mappings`: parse, evaluate, select (pure).
//! * [`schema`] — resource types, relations and template mappings as configuration.
//! * [`secrets`] — the secret-key rule every role masks with (pure).
//! * [`standing`] — where a resource stands, read from its records (pure; `status`, `why` and
//!   the mirror share it).
//! * [`ids`], [`tls`], `shutdown` — process ids, the one TLS provider, the shutdown signal.
//! * [`telemetry`] — logs, Prometheus metrics, health and readiness, their HTTP listener.
//! * [`store`] — etcd v3: consistent lists, resuming watches, transactions, leases, election.
//! * [`heat`] — the Heat v1 REST client and Keystone v3 authentication.
//! * `election` — how an elected role campaigns, leads and resigns.
//! * [`handoff`] — how the planner claims a job for the worker of its own process in the
//!   transaction that plans it (neither role sees more of the other).
//! * [`planner`] — the planner role: its view of etcd, pure reactions, the loop committing them
//!   (planned jobs several in flight).
//! * [`worker`] — the worker role: claim, resolve outputs, render, drive Heat, report.
//! * [`monitor`] — the monitor role: target API, etcd registry, probes, `/monitoring` writes.
//! * [`mirror`] — the mirror role: the LoadBalancer CRD, records → custom resource, the writes.
//! * [`inspect`] — the operator's read-only commands: `status`, `why`, `plan` (a dry run).
//! * [`local`] — real local services (etcd, snmpd, Heat, Keystone, kube-apiserver) for tests,
//!   benchmarks and the demo.
//! * [`conformance`] — the corpus layout and the checks run against it.
//! * [`replay`], [`demo`], [`chaos`], [`bench`](mod@bench) — commands built from all of the above.

pub mod bench;
pub mod chaos;
pub mod conformance;
pub mod demo;
pub(crate) mod election;
pub mod handoff;
pub mod heat;
pub mod ids;
pub mod inspect;
pub mod local;
pub mod mapping;
pub mod mirror;
pub mod monitor;
pub mod planner;
pub mod protocol;
pub mod replay;
pub mod schema;
pub mod secrets;
pub mod shutdown;
pub mod standing;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod worker;
