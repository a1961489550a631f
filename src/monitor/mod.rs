//! The monitor role (the Collector Agent of PROTOCOL.md §8): an HTTP API where Heat's
//! `ESI::Monitoring::MonitoringTarget` resources register targets, kept in etcd; probes of the
//! devices behind them; and the `/monitoring/v2.0/<plural>/<id>` records Gohan reads.

pub mod probe;
pub mod snmpd;
