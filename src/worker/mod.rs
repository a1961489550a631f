//! The worker role (the original's HeatWorker).

pub mod render;
pub mod resolve;
