//! Planned jobs in flight: the planner sends up to `depth` guarded transactions at once instead of
//! waiting for each round trip, and gathers up to `batch` planned jobs into one transaction,
//! which is what bounds a start-up over thousands of resources (etcd's cost is per commit far
//! more than per key). A decision made while nothing is in flight goes at once: gathering only
//! pays while etcd is busy, and a burst's first jobs should not wait for the rest of it.
//!
//! One at a time was safe because each decision saw every earlier write committed. Four rules
//! keep that true with several in flight (the planner enforces them with what this tracks):
//! - a resource with a transaction in flight or gathered is not decided about again until it
//!   lands, so two writes of one resource are never reordered and a guard never names a revision
//!   still changing;
//! - a job whose dependency's transaction is in flight waits for it to land, so no job reaches
//!   etcd before a job it waits for (a crash in between would otherwise release it too early); a
//!   dependency gathered into the same transaction lands with it, atomically;
//! - decisions share a transaction only when none writes a key another guards or writes: etcd
//!   checks every guard of a transaction before any of its writes, not after the decisions
//!   gathered before it;
//! - once a transaction fails (its conditions did not hold), nothing more is sent until the
//!   planner has listed etcd again: decisions made meanwhile assumed it would succeed.
//!
//! Every transaction keeps its leadership guard, so a lost leadership writes nothing.

use super::view::ResourceId;
use super::writes::Writes;
use crate::handoff::Reservation;
use crate::protocol::Job;
use crate::store::{KeyValue, Leadership, Store, StoreError};
use std::collections::{HashMap, HashSet};
use tokio::task::JoinSet;

/// etcd refuses a transaction with more than `--max-txn-ops` compares or operations (128 by
/// default); the leadership guard is one more compare.
const MAX_OPS: usize = 120;
/// etcd refuses a request over `--max-request-bytes` (1.5 MiB by default). A single decision
/// larger than this still goes, alone.
const MAX_BYTES: usize = 512 * 1024;

/// One decision gathered or sent and not yet known to have landed.
#[derive(Debug)]
pub(crate) struct Sent {
    pub resource: ResourceId,
    pub writes: Writes,
    pub job: Option<Box<Job>>,
    /// The job's claim for this process's worker, made in the same transaction.
    pub claim: Option<PlannedClaim>,
}

/// A job claimed in its plan (`crate::handoff`): the worker's reservation, and the job_state key
/// marked started.
#[derive(Debug)]
pub(crate) struct PlannedClaim {
    pub reservation: Reservation,
    pub started: String,
}

/// A transaction that came back: the decisions it held, and the revision it committed at with
/// what its reads found, in order (`None`: its conditions did not hold, and none of them was
/// written).
#[derive(Debug)]
pub(crate) struct Landed {
    pub sent: Vec<Sent>,
    pub outcome: Outcome,
}

/// What committing a transaction came to: [`Landed::outcome`].
pub(crate) type Outcome = Result<Option<(i64, Vec<Option<KeyValue>>)>, StoreError>;

/// The decisions gathered for the next transaction.
#[derive(Default)]
struct Batch {
    sent: Vec<Sent>,
    guarded: HashSet<String>,
    changed: HashSet<String>,
    guards: usize,
    changes: usize,
    bytes: usize,
}

impl Batch {
    /// Whether `sent` may join without breaking the rules above or etcd's limits.
    fn admits(&self, sent: &Sent, size: usize) -> bool {
        let writes = &sent.writes;
        self.sent.is_empty()
            || (self.sent.len() < size
                && self.guards + writes.guards.len() <= MAX_OPS
                && self.changes + writes.operations() <= MAX_OPS
                && self.bytes + writes.value_bytes() <= MAX_BYTES
                && writes.changed_keys().all(|key| !self.guarded.contains(key) && !self.changed.contains(key))
                && writes.guarded_keys().all(|key| !self.changed.contains(key)))
    }

    fn add(&mut self, sent: Sent) {
        let writes = &sent.writes;
        self.guarded.extend(writes.guarded_keys().map(str::to_owned));
        self.changed.extend(writes.changed_keys().map(str::to_owned));
        self.guards += writes.guards.len();
        self.changes += writes.operations();
        self.bytes += writes.value_bytes();
        self.sent.push(sent);
    }
}

/// A claim on its way to the worker with the transaction that makes it.
struct Claiming {
    claim: PlannedClaim,
    job_id: String,
    /// The job's record as written.
    record: Option<(String, Vec<u8>)>,
    /// Where the job's reads are among the transaction's.
    reads: std::ops::Range<usize>,
}

/// The claims of a batch's decisions, taken out of them, each with what it hands over.
fn take_claims(sent: &mut [Sent]) -> Vec<Claiming> {
    let mut claims = Vec::new();
    let mut reads = 0;
    for sent in sent {
        let first = reads;
        reads += sent.writes.reads.len();
        let (Some(claim), Some(job)) = (sent.claim.take(), &sent.job) else { continue };
        let key = crate::protocol::JobQueue::All.key(&job.id);
        let record =
            sent.writes.changes.iter().find(|(k, _)| *k == key).and_then(|(k, v)| Some((k.clone(), v.clone()?)));
        claims.push(Claiming { claim, job_id: job.id.clone(), record, reads: first..reads });
    }
    claims
}

impl Claiming {
    /// Gives the claim to the worker: the job when the transaction committed, the doubt when its
    /// answer was lost; when its conditions failed, the reservation returns the slot.
    fn hand_over(self, outcome: &Outcome) {
        let Claiming { claim, job_id, record, reads } = self;
        match outcome {
            Ok(Some((revision, found))) => match record {
                Some((key, value)) => {
                    let record = KeyValue { key, value, mod_revision: *revision, create_revision: *revision, lease: 0 };
                    let found = found.get(reads).map(<[_]>::to_vec);
                    claim.reservation.claimed(record, claim.started, *revision, found);
                }
                // Not made by `claim_in_plan`; the worker reads what it needs after the claim.
                None => claim.reservation.unknown(&job_id),
            },
            Ok(None) => {}
            Err(_) => claim.reservation.unknown(&job_id),
        }
    }
}

/// The transactions in flight, the batch being gathered, and what they touch.
pub(crate) struct Pipeline {
    depth: usize,
    batch_size: usize,
    /// Each task commits one transaction and gives back what it held with its outcome.
    tasks: JoinSet<Landed>,
    gathered: Batch,
    /// How many gathered or in-flight decisions write each resource.
    resources: HashMap<ResourceId, usize>,
    /// The jobs whose records are being written (in flight, not gathered).
    jobs: HashSet<String>,
}

impl Pipeline {
    pub fn new(depth: usize, batch_size: usize) -> Pipeline {
        Pipeline {
            depth: depth.max(1),
            batch_size: batch_size.max(1),
            tasks: JoinSet::new(),
            gathered: Batch::default(),
            resources: HashMap::new(),
            jobs: HashSet::new(),
        }
    }

    /// Whether no more transactions may be sent until one lands.
    pub fn is_full(&self) -> bool {
        self.tasks.len() >= self.depth
    }

    /// Whether no transaction is in flight (or none has been learnt of since it landed).
    pub fn is_idle(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether a transaction in flight or the batch writes `resource`.
    pub fn touches(&self, resource: &ResourceId) -> bool {
        self.resources.contains_key(resource)
    }

    /// Whether any of `job`'s dependencies is being written by a transaction in flight.
    pub fn holds_dependency_of(&self, job: &Job) -> bool {
        job.dependency.iter().any(|id| self.jobs.contains(id))
    }

    /// Whether `sent` may join the batch; when not, the batch must be sent first.
    pub fn admits(&self, sent: &Sent) -> bool {
        self.gathered.admits(sent, self.batch_size)
    }

    /// Adds `sent` to the batch (the caller checked [`Pipeline::admits`]).
    pub fn gather(&mut self, sent: Sent) {
        *self.resources.entry(sent.resource.clone()).or_default() += 1;
        self.gathered.add(sent);
    }

    pub fn has_gathered(&self) -> bool {
        !self.gathered.sent.is_empty()
    }

    pub fn batch_is_full(&self) -> bool {
        self.gathered.sent.len() >= self.batch_size
    }

    /// Sends the batch as one transaction guarded by `leadership`; the caller makes room first
    /// (`is_full`).
    pub fn send(&mut self, store: &Store, leadership: &Leadership) {
        let batch = std::mem::take(&mut self.gathered);
        if batch.sent.is_empty() {
            return;
        }
        let all: Vec<&Writes> = batch.sent.iter().map(|sent| &sent.writes).collect();
        let txn = leadership.guard(Writes::txn_of(&all));
        let jobs = || batch.sent.iter().filter_map(|sent| sent.job.as_ref()).map(|job| job.id.as_str());
        tracing::debug!(jobs = ?jobs().collect::<Vec<_>>(), decisions = all.len(), in_flight = self.tasks.len(), "transaction sent");
        self.jobs.extend(jobs().map(str::to_owned));
        let (store, mut sent) = (store.clone(), batch.sent);
        let claims = take_claims(&mut sent);
        // The commit and the hand-over run in a task of their own, to the end even if the
        // planner stops waiting for them (a lost leadership drops the pipeline, and its tasks
        // with it): a claim committed and never handed over would hold its job as long as this
        // process lives. The claims go to the worker as soon as the answer is in, not when the
        // planner next looks.
        let commit = tokio::spawn(async move {
            let outcome = store.commit_reading(txn).await;
            for claim in claims {
                claim.hand_over(&outcome);
            }
            outcome
        });
        self.tasks.spawn(async move {
            let outcome = match commit.await {
                Ok(outcome) => outcome,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            Landed { outcome, sent }
        });
    }

    /// Drops the batch unsent (the view it was decided on is wrong); its resources.
    pub fn discard(&mut self) -> Vec<ResourceId> {
        let batch = std::mem::take(&mut self.gathered);
        batch.sent.into_iter().map(|sent| self.release(sent.resource)).collect()
    }

    /// The next transaction to come back, in whatever order they land; `None` when none is in
    /// flight.
    pub async fn land(&mut self) -> Option<Landed> {
        let joined = self.tasks.join_next().await?;
        Some(self.joined(joined))
    }

    /// A transaction that has come back already, without waiting; `None` when none has.
    pub fn landed(&mut self) -> Option<Landed> {
        let joined = self.tasks.try_join_next()?;
        Some(self.joined(joined))
    }

    fn joined(&mut self, joined: Result<Landed, tokio::task::JoinError>) -> Landed {
        let landed = match joined {
            Ok(landed) => landed,
            // A commit task never panics or is cancelled while the pipeline owns it.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        for sent in &landed.sent {
            self.release(sent.resource.clone());
            if let Some(job) = &sent.job {
                self.jobs.remove(&job.id);
            }
        }
        landed
    }

    fn release(&mut self, resource: ResourceId) -> ResourceId {
        if let Some(count) = self.resources.get_mut(&resource) {
            *count -= 1;
            if *count == 0 {
                self.resources.remove(&resource);
            }
        }
        resource
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(resource: &str, guarded: &[&str], changed: &[&str]) -> Sent {
        let mut writes = Writes::default();
        for key in guarded {
            writes.require_present(key);
        }
        for key in changed {
            writes.put((*key).to_owned(), b"{}".to_vec());
        }
        Sent { resource: ("network".to_owned(), resource.to_owned()), writes, job: None, claim: None }
    }

    fn gathered(pipeline: &mut Pipeline, decisions: Vec<Sent>) -> usize {
        let mut joined = 0;
        for sent in decisions {
            if !pipeline.admits(&sent) {
                break;
            }
            pipeline.gather(sent);
            joined += 1;
        }
        joined
    }

    #[test]
    fn decisions_share_a_transaction_only_when_their_keys_are_apart() {
        // Two guards on one key are fine: neither writes it.
        let mut pipeline = Pipeline::new(4, 16);
        let apart = vec![decision("a", &["/g"], &["/a"]), decision("b", &["/g"], &["/b"])];
        assert_eq!(gathered(&mut pipeline, apart), 2);
        // A write of a key already written, a write of a key already guarded, and a guard on a
        // key already written each wait for the next transaction.
        for clash in [decision("c", &[], &["/a"]), decision("c", &[], &["/g"]), decision("c", &["/b"], &["/c"])] {
            assert!(!pipeline.admits(&clash), "{:?}", clash.writes);
        }
        assert!(pipeline.touches(&("network".to_owned(), "a".to_owned())));
        assert_eq!(pipeline.discard().len(), 2);
        assert!(!pipeline.touches(&("network".to_owned(), "a".to_owned())), "discarded decisions touch nothing");
    }

    #[test]
    fn a_batch_stays_within_its_size_and_etcds_limits() {
        let mut pipeline = Pipeline::new(4, 3);
        let three = (0..5).map(|i| decision(&format!("n{i}"), &[], &[&format!("/k{i}")])).collect();
        assert_eq!(gathered(&mut pipeline, three), 3);
        assert!(pipeline.batch_is_full());

        // 30 decisions of 5 puts each would be 150 operations: etcd allows 128.
        let mut pipeline = Pipeline::new(4, 100);
        let wide = (0..30)
            .map(|i| {
                let keys: Vec<String> = (0..5).map(|k| format!("/n{i}/{k}")).collect();
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                decision(&format!("n{i}"), &[], &keys)
            })
            .collect();
        assert_eq!(gathered(&mut pipeline, wide), MAX_OPS / 5);

        // A decision over the byte limit still goes, alone.
        let mut pipeline = Pipeline::new(4, 100);
        let mut big = decision("big", &[], &[]);
        big.writes.put("/big".to_owned(), vec![b'x'; MAX_BYTES + 1]);
        let small = decision("small", &[], &["/small"]);
        assert!(pipeline.admits(&big));
        pipeline.gather(big);
        assert!(!pipeline.admits(&small));
    }
}
