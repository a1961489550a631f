//! The worker loop: watch `/jobs` (the ready queue, and the job records a claim reads the job's
//! needs by), claim jobs with a leased `/jobs/working` key (at most `slots` at once; `claim`),
//! or take those the planner of this process claimed for it as it planned them
//! (`crate::handoff`), run each against Heat and write its results in the protocol's order.

use super::claim::{Claim, Claimed, claim};
use super::execute::{Outcome, Patience, execute};
use super::pace::Pace;
use super::prepare::{needed_keys, prepare, prepare_from};
use super::queue::Queue;
use crate::handoff::{self, Handed, Handoff, NeededKeys};
use crate::heat::HeatClient;
use crate::protocol::DecodeError;
use crate::protocol::keys::UnknownType;
use crate::protocol::{Job, JobQueue, JobState, Record, ResourceRoot};
use crate::schema::Schema;
use crate::store::watcher::Backoff;
use crate::store::{ErrorLog, Lease, Store, StoreError, Txn, WatchEvent, retried, watch_listing};
use crate::telemetry::metrics::{FinishedLabels, JobLabels};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The handler whose jobs this worker runs.
    pub handler: String,
    /// How many jobs are in Heat at once.
    pub slots: usize,
    /// TTL of the lease that holds this worker's `/jobs/working` keys.
    pub lease_ttl: Duration,
    pub patience: Patience,
    /// The planner of this process, if it runs one: it may claim jobs for this worker in the
    /// transactions that plan them ([`crate::handoff`]).
    pub handoff: Option<Handoff>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            handler: "heat_worker".into(),
            slots: 8,
            lease_ttl: Duration::from_secs(60),
            patience: Patience::default(),
            handoff: None,
        }
    }
}

/// Runs the worker until `shutdown` turns true. Jobs already claimed finish first.
pub async fn run(
    store: Store,
    schema: Schema,
    heat: HeatClient,
    options: WorkerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let context =
        Arc::new(Context { store: store.clone(), schema, heat, options: options.clone(), pace: Pace::default() });
    let slots = Arc::new(Semaphore::new(options.slots.max(1)));
    let (done_tx, mut done) = mpsc::channel::<()>(options.slots.max(1));
    let mut jobs = tokio::task::JoinSet::new();
    let mut heartbeat = crate::telemetry::health().register("worker");
    let mut lease_errors = ErrorLog::default();
    'lease: loop {
        heartbeat.not_ready("getting a worker lease");
        let lease = match Lease::grant(&store, options.lease_ttl).await {
            Ok(lease) => {
                lease_errors.succeeded("get a lease");
                Arc::new(lease)
            }
            Err(e) => {
                retried!(lease_errors, &store, &e, "get a lease", "cannot get a worker lease; retrying");
                heartbeat.beat();
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // The whole of `/jobs`: the ready queue, and the records the claims read their needs by.
        // Only the ready queue is listed: listing every record of a large backlog at start-up
        // would hold them all in memory at once; records arrive as jobs are planned.
        let ready_dir = JobQueue::Ready.dir().to_owned() + "/";
        let mut events = watch_listing(store.clone(), "/jobs/".to_owned(), vec![ready_dir], Vec::new);
        let mut queue = Queue::default();
        let mut handed = options.handoff.as_ref().map(|handoff| {
            let schema = context.schema.clone();
            let needs: NeededKeys = Arc::new(move |job: &Job| needed_keys(&schema, job));
            handoff.open(&options.handler, lease.id(), slots.clone(), needs)
        });
        let close = || options.handoff.as_ref().map(Handoff::close);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else {
                        close();
                        continue 'lease;
                    };
                    if matches!(event, WatchEvent::Listed { .. }) {
                        heartbeat.ready();
                    }
                    queue.apply(event, &options.handler);
                }
                Some(handed) = next_handed(&mut handed) => {
                    if let Some((job_id, claim, permit)) = from_handoff(handed) {
                        let (context, slot) = (context.clone(), Slot { permit: Some(permit), done: done_tx.clone() });
                        jobs.spawn(async move { context.run_handed(&job_id, claim, slot).await });
                    }
                }
                _ = done.recv() => {}
                _ = heartbeat.tick() => {}
                _ = lease.lost() => {
                    tracing::warn!("worker lease lost; running jobs lose their claims");
                    close();
                    continue 'lease;
                }
                _ = crate::shutdown::shut_down(&mut shutdown) => {
                    close();
                    // Every claimed job runs to its finished marker first.
                    while jobs.join_next().await.is_some() {}
                    return Ok(());
                }
            }
            while jobs.try_join_next().is_some() {}
            // One claim per free slot, all sent at once: when a burst of jobs arrives with every
            // slot free, the last claim does not wait for the commits of all the others.
            while !queue.ready.is_empty() {
                let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                let Some(job_id) = queue.ready.pop_first() else { break };
                let slot = Slot { permit: Some(permit), done: done_tx.clone() };
                let (context, lease_id, known) =
                    (context.clone(), lease.id(), queue.record(&job_id).map(<[u8]>::to_vec));
                tracing::debug!(job = %job_id, "claiming");
                jobs.spawn(async move {
                    // A claim another worker won, or one that failed, frees its slot on the way.
                    match claim(&context.store, &context.schema, &job_id, lease_id, known.as_deref()).await {
                        Ok(Some(claim)) => context.run_to_end(&job_id, claim, slot).await,
                        Ok(None) => {}
                        Err(e) => {
                            let cause = context.store.describe(&e, &format!("claim {job_id}"));
                            tracing::warn!(job = %job_id, error = %cause, "claim failed");
                        }
                    }
                });
            }
        }
    }
}

/// The next job the planner of this process claimed for this worker; never, without one.
async fn next_handed(handed: &mut Option<mpsc::UnboundedReceiver<Handed>>) -> Option<Handed> {
    match handed {
        Some(handed) => handed.recv().await,
        None => std::future::pending().await,
    }
}

/// A job claimed in its plan, as a claim of this worker's own (`None`: a slot given back).
fn from_handoff(handed: Handed) -> Option<(String, Claim, OwnedSemaphorePermit)> {
    match handed {
        Handed::Claimed(claimed) => {
            let handoff::Claimed { job_id, reservation, permit, revision, record, started, needs } = *claimed;
            tracing::debug!(job = %job_id, "claimed in its plan");
            let first = Claimed { revision, started: Some(started), record: Some(record), needs };
            Some((job_id, Claim { reservation, first: Some(first) }, permit))
        }
        // Whether the claim was written is known from its key ([`Context::run_handed`]).
        Handed::Unknown { job_id, reservation, permit } => Some((job_id, Claim { reservation, first: None }, permit)),
        Handed::Returned => None,
    }
}

/// Why a step of a job (running it, reporting it, marking it finished) stopped. A lost claim
/// ends the job here (another worker has it); anything else runs that step again while the claim
/// is ours.
#[derive(Debug, thiserror::Error)]
enum JobError {
    /// The job's `/jobs/working` claim is no longer ours.
    #[error("lost the claim {0}")]
    LostClaim(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} is not a job record")]
    NotAJob(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    UnknownType(#[from] UnknownType),
    #[error("encoding a result: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Whether to try a step of job `job_id` again after `error` (logged, in the operator's terms:
/// [`Store::describe`]) at `attempt`: not once the claim is lost (another worker has the job),
/// nor after ten attempts (the claim expires and the job runs again).
fn again(store: &Store, job_id: &str, error: &JobError, attempt: u32, next: &str) -> bool {
    let cause = || store.describe(error, &format!("write the records of job {job_id}"));
    match error {
        JobError::LostClaim(when) => {
            tracing::warn!(job = %job_id, when, "claim lost; another worker will run the job");
            false
        }
        _ if attempt >= 10 => {
            tracing::error!(job = %job_id, error = %cause(), "job interrupted; it runs again once the claim expires");
            false
        }
        _ => {
            tracing::warn!(job = %job_id, error = %cause(), attempt, "job interrupted; {next}");
            true
        }
    }
}

/// A worker slot held by a running job; freed (and the worker loop woken to claim the next job)
/// by [`Slot::free`] or when dropped.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    done: mpsc::Sender<()>,
}

impl Slot {
    fn free(&mut self) {
        if self.permit.take().is_some() {
            // One wake-up is enough to claim for every free slot; a full channel has one.
            let _ = self.done.try_send(());
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.free();
    }
}

struct Context {
    store: Store,
    schema: Schema,
    heat: HeatClient,
    options: WorkerOptions,
    /// How long Heat usually takes, learnt from this worker's jobs (when to poll).
    pace: Pace,
}

/// A job Heat is done with: what to report for it.
struct Ran {
    job: Job,
    job_state_key: String,
    outcome: Outcome,
    /// When the job started running, for its duration metric.
    began: std::time::Instant,
}

impl Context {
    /// Runs a job the planner claimed for this worker. When the plan's answer was lost
    /// (`claim.first` is `None`), only while its claim holds our reservation: it may not have
    /// been written, and then the planner plans the job again. That is read until etcd answers,
    /// since a claim of ours that nobody ran would hold the job until this process ends.
    async fn run_handed(&self, job_id: &str, claim: Claim, slot: Slot) {
        if claim.first.is_none() {
            let working = JobQueue::Working.key(job_id);
            let (mut backoff, mut errors) = (Backoff::default(), ErrorLog::default());
            let what = format!("read {working}");
            let ours = loop {
                match self.store.get(&working).await {
                    Ok(kv) => {
                        errors.succeeded(&what);
                        break kv.is_some_and(|kv| kv.value == claim.reservation.as_bytes());
                    }
                    Err(e) => {
                        retried!(errors, &self.store, &e, &what, job = %job_id, "cannot tell whether the plan claimed the job; reading again");
                        backoff.wait().await;
                    }
                }
            };
            if !ours {
                return;
            }
        }
        self.run_to_end(job_id, claim, slot).await
    }

    /// Runs a claimed job until it is reported and marked finished, or the claim is lost. Each
    /// step is retried alone while etcd fails: a job is run against Heat again only if etcd
    /// failed before Heat was asked (every step is safe to repeat, but Heat's is the slow one).
    /// The slot is freed as soon as Heat is done with the job: the slots bound the work in Heat,
    /// and the next job's claim need not wait for this one's results and finished marker.
    async fn run_to_end(&self, job_id: &str, claim: Claim, mut slot: Slot) {
        let mut backoff = Backoff::default();
        let mut first = claim.first;
        let reservation = &claim.reservation;
        let running =
            self.step(job_id, "running it again", &mut backoff, || self.run(job_id, reservation, first.take()));
        let Some(Some(ran)) = running.await else { return };
        slot.free();
        let reporting = self.step(job_id, "reporting it again", &mut backoff, || self.report(&ran, reservation));
        let Some(finish) = reporting.await else { return };
        let finishing = self.step(job_id, "marking it finished again", &mut backoff, || async {
            Ok(self.store.commit(finish.clone()).await?)
        });
        if let Some(None) = finishing.await {
            tracing::warn!(job = %job_id, "claim lost before marking the job finished; another worker will run it");
        }
    }

    /// One step of [`Self::run_to_end`], tried again while [`again`] says so; `None` once it
    /// gives up (it has said why).
    async fn step<T, F, Fut>(&self, job_id: &str, next: &str, backoff: &mut Backoff, mut once: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, JobError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match once().await {
                Ok(done) => return Some(done),
                Err(e) if again(&self.store, job_id, &e, attempt, next) => backoff.wait().await,
                Err(_) => return None,
            }
        }
    }

    /// Runs the job against Heat once: from what its claim read and wrote (`claimed`, on its
    /// first run), else reading everything again. `None` when there is nothing to do.
    async fn run(&self, job_id: &str, reservation: &str, claimed: Option<Claimed>) -> Result<Option<Ran>, JobError> {
        let working = JobQueue::Working.key(job_id);
        let (record, started, needs) = match claimed {
            Some(c) => (c.record, c.started.map(|key| (key, c.revision)), c.needs),
            None => (self.store.get(&JobQueue::All.key(job_id)).await?, None, None),
        };
        let Some(kv) = record else {
            tracing::warn!(job = %job_id, "claimed job has no record; releasing it");
            let mut release = Txn::new().if_value(&working, reservation).delete(&working);
            if let Some((key, revision)) = &started {
                // The claim marked it started; undo that unless something wrote the key since.
                release = release.nested(Txn::new().if_mod_revision(key, *revision).delete(key));
            }
            self.store.commit_nested(release).await?;
            return Ok(None);
        };
        let Record::Job(record) = Record::from_etcd(&kv.key, &kv.value)? else {
            return Err(JobError::NotAJob(kv.key));
        };
        let job = record.job;
        let spec = &job.spec;
        let types = &self.schema.resource_types;
        let job_state_key = types.key(ResourceRoot::JobState, &spec.resource_type, &spec.resource_id)?;
        tracing::info!(job = %job_id, "Checking job status");
        if started.as_ref().map(|(key, _)| key) != Some(&job_state_key) {
            let started = serde_json::to_vec(&JobState::Started)?;
            let start = Txn::new().if_value(&working, reservation).put(&job_state_key, started);
            if self.store.commit(start).await?.is_none() {
                return Err(JobError::LostClaim("before starting"));
            }
        }
        let began = std::time::Instant::now();
        // How long the job waited on Heat (its calls and the pauses between polls), apart from
        // the controller's own work: `bench-e2e` reads it from this log line.
        let mut in_heat = std::time::Duration::ZERO;
        let prepared = match &needs {
            Some(needs) => prepare_from(&self.schema, &job, needs),
            None => prepare(&self.store, &self.schema, &job).await,
        };
        let outcome = match prepared {
            Ok(prepared) => {
                let calling = std::time::Instant::now();
                let outcome =
                    execute(&self.heat, &prepared.stack, self.options.patience, &prepared.secrets, &self.pace).await;
                in_heat = calling.elapsed();
                outcome
            }
            Err(failure) => *failure,
        };
        let heat_ms = in_heat.as_secs_f64() * 1000.0;
        match &outcome.failure {
            None => {
                let status = outcome.state.state.orchestration_state.as_deref().unwrap_or("");
                tracing::info!(job = %job_id, %status, heat_ms, "job finished")
            }
            Some(reason) => tracing::warn!(job = %job_id, %reason, heat_ms, "job failed"),
        }
        Ok(Some(Ran { job, job_state_key, outcome, began }))
    }

    /// Writes heat_stacks → job_state → state in one transaction while the claim is ours; returns
    /// the next one: the finished marker with the removal of the working claim and the job state,
    /// also only while the claim is ours.
    async fn report(&self, ran: &Ran, reservation: &str) -> Result<Txn, JobError> {
        let Ran { job, job_state_key, outcome, began } = ran;
        let spec = &job.spec;
        let types = &self.schema.resource_types;
        let working = JobQueue::Working.key(&job.id);
        let mut results = Txn::new().if_value(&working, reservation);
        if let Some(record) = &outcome.heat_stack {
            let key = types.key(ResourceRoot::HeatStacks, &spec.resource_type, &spec.resource_id)?;
            results = results.put(&key, serde_json::to_vec(record)?);
        }
        results = results.put(job_state_key, serde_json::to_vec(&outcome.job_state)?);
        let state_key = types.key(ResourceRoot::State, &spec.resource_type, &spec.resource_id)?;
        results = results.put(&state_key, serde_json::to_vec(&outcome.state)?);
        if self.store.commit(results).await?.is_none() {
            return Err(JobError::LostClaim("before reporting"));
        }
        let (r#type, action) = (spec.resource_type.clone(), spec.action.as_str().to_owned());
        let result = if outcome.failure.is_none() { "success" } else { "failure" };
        let metrics = crate::telemetry::metrics();
        metrics
            .job_duration
            .get_or_create(&JobLabels { r#type: r#type.clone(), action: action.clone() })
            .observe(began.elapsed().as_secs_f64());
        metrics.jobs_finished.get_or_create(&FinishedLabels { r#type, action, result: result.to_owned() }).inc();
        let marker = outcome.failure.clone().unwrap_or_default();
        Ok(Txn::new()
            .if_value(&working, reservation)
            .put(&JobQueue::Finished.key(&job.id), marker)
            .delete(&working)
            .delete(job_state_key))
    }
}
