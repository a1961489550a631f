//! Planned jobs in flight: the planner sends up to `depth` guarded transactions at once instead of
//! waiting for each round trip, which is what bounds a start-up over thousands of resources.
//!
//! One at a time was safe because each decision saw every earlier write committed. Three rules
//! keep that true with several in flight (the planner enforces them with what this tracks):
//! - a resource with a transaction in flight is not decided about again until it lands, so two
//!   writes of one resource are never reordered and a guard never names a revision still changing;
//! - a job whose dependency's transaction is in flight waits for it to land, so no job reaches
//!   etcd before a job it waits for (a crash in between would otherwise release it too early);
//! - once a transaction fails (its conditions did not hold), nothing more is sent until the
//!   planner has listed etcd again: decisions made meanwhile assumed it would succeed.
//!
//! Every transaction keeps its leadership guard, so a lost leadership writes nothing.

use super::view::ResourceId;
use super::writes::Writes;
use crate::protocol::Job;
use crate::store::{Store, StoreError, Txn};
use std::collections::{HashMap, HashSet};
use tokio::task::JoinSet;

/// One decision sent and not yet known to have landed.
#[derive(Debug)]
pub(crate) struct Sent {
    pub resource: ResourceId,
    pub writes: Writes,
    pub job: Option<Box<Job>>,
}

/// A transaction that came back: what was sent, and the revision it committed at (`None`: its
/// conditions did not hold).
#[derive(Debug)]
pub(crate) struct Landed {
    pub sent: Sent,
    pub outcome: Result<Option<i64>, StoreError>,
}

/// The transactions in flight and what they touch.
pub(crate) struct Pipeline {
    depth: usize,
    /// Each task commits one transaction and gives back what was sent with its outcome.
    tasks: JoinSet<Landed>,
    /// How many in-flight transactions write each resource.
    resources: HashMap<ResourceId, usize>,
    /// The jobs whose records are being written.
    jobs: HashSet<String>,
}

impl Pipeline {
    pub fn new(depth: usize) -> Pipeline {
        Pipeline { depth: depth.max(1), tasks: JoinSet::new(), resources: HashMap::new(), jobs: HashSet::new() }
    }

    pub fn is_full(&self) -> bool {
        self.tasks.len() >= self.depth
    }

    /// Whether a transaction in flight writes `resource`.
    pub fn touches(&self, resource: &ResourceId) -> bool {
        self.resources.contains_key(resource)
    }

    /// Whether any of `job`'s dependencies is being written.
    pub fn holds_dependency_of(&self, job: &Job) -> bool {
        job.dependency.iter().any(|id| self.jobs.contains(id))
    }

    /// Sends `txn` (already guarded) for `sent`; the caller makes room first (`is_full`).
    pub fn send(&mut self, store: &Store, txn: Txn, sent: Sent) {
        *self.resources.entry(sent.resource.clone()).or_default() += 1;
        if let Some(job) = &sent.job {
            self.jobs.insert(job.id.clone());
        }
        let store = store.clone();
        self.tasks.spawn(async move { Landed { outcome: store.commit(txn).await, sent } });
    }

    /// The next transaction to come back, in whatever order they land; `None` when none is in
    /// flight.
    pub async fn land(&mut self) -> Option<Landed> {
        let landed = match self.tasks.join_next().await? {
            Ok(landed) => landed,
            // A commit task never panics or is cancelled while the pipeline owns it.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let sent = &landed.sent;
        if let Some(count) = self.resources.get_mut(&sent.resource) {
            *count -= 1;
            if *count == 0 {
                self.resources.remove(&sent.resource);
            }
        }
        if let Some(job) = &sent.job {
            self.jobs.remove(&job.id);
        }
        Some(landed)
    }
}
