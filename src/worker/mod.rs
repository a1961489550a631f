//! The worker role (the original's HeatWorker): claim ready jobs, render their templates, drive
//! Heat, and report heat_stacks → job_state → state, then the finished marker.

pub(crate) mod claim;
pub mod drift;
pub mod execute;
pub mod pace;
pub(crate) mod prepare;
pub(crate) mod queue;
pub mod render;
pub mod resolve;
pub(crate) mod run;

pub use run::{WorkerOptions, run};
