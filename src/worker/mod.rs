//! The worker role (the original's HeatWorker): claim ready jobs, render their templates, drive
//! Heat, and report heat_stacks → job_state → state, then the finished marker.

pub mod drift;
pub mod execute;
pub(crate) mod prepare;
pub mod render;
pub mod resolve;
pub(crate) mod run;

pub use run::{WorkerOptions, run};
