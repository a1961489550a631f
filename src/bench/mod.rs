//! Benchmarks: commands that print figures, never timed tests. Each compares what it measures
//! with the ceiling of the real part underneath (etcd, the SNMP agent, the kube-apiserver), measured in the same run.

mod drift;
mod e2e;
mod host;
pub mod mirror;
mod monitor;
mod planner;
mod resync;
mod run_dir;
mod status;

pub use drift::drift;
pub use e2e::e2e;
pub use mirror::mirror;
pub use monitor::monitor;
pub use planner::planner;
pub use resync::resync;
pub use status::status;
