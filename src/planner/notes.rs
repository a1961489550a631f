//! What the planner notes for operators beside the protocol's records, under `/heat-reconciler/`
//! (a prefix of the project's own, which no ESI component reads): when each live job was
//! planned, and when a resource whose job failed will be tried again. `status` and `why` read
//! them; the planner never does (its own state is rebuilt from the protocol's records).

use super::view::ResourceId;
use crate::protocol::Action;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// `<prefix><job id>`: the Unix time (seconds) the job was planned. Written in the job's own
/// transaction, deleted in the one that removes the job.
pub const JOB_TIMES_PREFIX: &str = "/heat-reconciler/job_planned_at/";

/// `<prefix><type>/<id>`: a [`RetryNote`] while a failed resource waits for its retry; deleted
/// once a job of the resource succeeds.
pub const RETRIES_PREFIX: &str = "/heat-reconciler/retries/";

pub fn job_time_key(job_id: &str) -> String {
    format!("{JOB_TIMES_PREFIX}{job_id}")
}

pub fn retry_key(resource: &ResourceId) -> String {
    format!("{RETRIES_PREFIX}{}/{}", resource.0, resource.1)
}

/// When a failed resource is planned again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryNote {
    /// Failures in a row so far.
    pub attempts: u32,
    /// The action of the failed job.
    pub action: Action,
    /// Unix time (seconds) of the next attempt.
    pub next_at: u64,
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
