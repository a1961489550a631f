//! The operator's view: commands that look at a resource across etcd and Heat and write nothing.
//! Each is an engine returning a pure data report, with its text form for printing; `main.rs`
//! wires them to subcommands.
//!
//! * [`snapshot`] — one list of the store, sorted into resources, jobs, queues and the planner's
//!   notes.
//! * [`status`] — `status`: a row per resource and how many are converged, in progress, failed.
//! * [`why`] — `why TYPE/ID`: the tree from a resource down to the root cause of its state.
//! * [`dry_run`] — `plan TYPE/ID`: what applying the resource's current config would do, rendered
//!   as the worker would and previewed by Heat.

pub mod dry_run;
pub mod snapshot;
pub mod status;
pub mod why;
