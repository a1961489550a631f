//! heat-reconciler: a level-triggered controller that turns resource configuration stored in etcd
//! into OpenStack Heat stacks, speaking the etcd data contract of the ESI worker.
//!
//! How a config change flows through the modules:
//!
//! * [`protocol`] — the key layout and every record type (pure).
//! * [`mapping`] — `parameter_mappings` / `template_mappings`: which template a resource uses and
//!   which params its job carries (pure).
//! * [`conformance`] — reading the corpus layout and checking records against the contract.

pub mod bench;
pub mod chaos;
pub mod conformance;
pub mod demo;
pub mod election;
pub mod heat;
pub mod ids;
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
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod worker;
