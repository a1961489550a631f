//! Benchmarks: commands that print figures, never timed tests. Each compares what it measures
//! with the ceiling of the real part underneath (etcd, the SNMP agent), measured in the same run.

mod monitor;
mod planner;

pub use monitor::monitor;
pub use planner::planner;
