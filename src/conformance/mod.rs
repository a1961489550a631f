//! The conformance corpus layout and the checks run against it: record round trips
//! (`check-records`) and param re-evaluation. Reads files only; no etcd, no Heat.

pub mod check;
pub(crate) mod json_diff;
pub mod layout;
pub mod params;

pub use layout::{Sample, Scenario, TimelineEvent, WatchEvent};
