//! The monitor role (the Collector Agent of PROTOCOL.md §8): an HTTP API where Heat's
//! `ESI::Monitoring::MonitoringTarget` resources register targets, kept in etcd; probes of the
//! devices behind them; and the `/monitoring/v2.0/<plural>/<id>` records Gohan reads.
//!
//! A registration flows: [`api`] (checked [`target`]) → [`registry`] (etcd) → watched by the
//! leader's [`run`] loop → [`plan`] (which probe) → [`read`] ([`probe`]) → [`status`] (write or
//! hold) → `/monitoring`.

pub mod api;
pub mod plan;
pub mod probe;
pub mod read;
pub mod registry;
pub mod run;
pub mod snmpd;
pub mod status;
pub mod target;

pub use run::{MonitorOptions, run};
