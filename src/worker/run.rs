//! The worker loop: watch `/jobs/ready`, claim jobs with a leased `/jobs/working` key (at most
//! `slots` at once), run each against Heat and write its results in the protocol's order.

use super::execute::{Outcome, Patience, execute};
use super::prepare::{Prepared, prepare};
use crate::heat::HeatClient;
use crate::protocol::DecodeError;
use crate::protocol::keys::UnknownType;
use crate::protocol::{Job, JobQueue, JobState, Record, ResourceRoot};
use crate::schema::Schema;
use crate::store::{Lease, Store, StoreError, Txn, WatchEvent, watch_prefix};
use crate::telemetry::metrics::{FinishedLabels, JobLabels};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The handler whose jobs this worker runs.
    pub handler: String,
    /// How many jobs run at once.
    pub slots: usize,
    /// TTL of the lease that holds this worker's `/jobs/working` keys.
    pub lease_ttl: Duration,
    pub patience: Patience,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            handler: "heat_worker".into(),
            slots: 8,
            lease_ttl: Duration::from_secs(60),
            patience: Patience::default(),
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
    let context = Arc::new(Context { store: store.clone(), schema, heat, options: options.clone() });
    let slots = Arc::new(Semaphore::new(options.slots.max(1)));
    let (done_tx, mut done) = mpsc::channel::<()>(options.slots.max(1));
    let mut heartbeat = crate::telemetry::health().register("worker");
    'lease: loop {
        heartbeat.not_ready("getting a worker lease");
        let lease = match Lease::grant(&store, options.lease_ttl).await {
            Ok(lease) => Arc::new(lease),
            Err(e) => {
                tracing::warn!(error = %e, "cannot get a worker lease; retrying");
                heartbeat.beat();
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut events = watch_prefix(store.clone(), JobQueue::Ready.dir().to_owned() + "/");
        let mut ready: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { continue 'lease };
                    if matches!(event, WatchEvent::Listed { .. }) {
                        heartbeat.ready();
                    }
                    apply_ready(&mut ready, event, &options.handler);
                }
                _ = done.recv() => {}
                _ = heartbeat.tick() => {}
                _ = lease.lost() => {
                    tracing::warn!("worker lease lost; running jobs lose their claims");
                    continue 'lease;
                }
                _ = crate::shutdown::shut_down(&mut shutdown) => {
                    // Waiting for every slot means every running job has finished.
                    let _ = slots.acquire_many(options.slots.max(1) as u32).await;
                    return Ok(());
                }
            }
            while !ready.is_empty() {
                let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                let Some(job_id) = ready.pop_first() else { break };
                match context.claim(&job_id, lease.id()).await {
                    Ok(Some(reservation)) => {
                        let context = context.clone();
                        let done = done_tx.clone();
                        tokio::spawn(async move {
                            context.run_to_end(&job_id, &reservation).await;
                            drop(permit);
                            let _ = done.send(()).await;
                        });
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(job = %job_id, error = %e, "claim failed"),
                }
            }
        }
    }
}

fn apply_ready(ready: &mut BTreeSet<String>, event: WatchEvent, handler: &str) {
    let id_of = |key: &str| JobQueue::parse(key).filter(|(q, _)| *q == JobQueue::Ready).map(|(_, id)| id.to_owned());
    match event {
        WatchEvent::Listed { items, .. } => {
            ready.clear();
            ready.extend(items.iter().filter(|kv| kv.value == handler.as_bytes()).filter_map(|kv| id_of(&kv.key)));
        }
        WatchEvent::Put(kv) if kv.value == handler.as_bytes() => ready.extend(id_of(&kv.key)),
        WatchEvent::Deleted { key, .. } => {
            if let Some(id) = id_of(&key) {
                ready.remove(&id);
            }
        }
        _ => {}
    }
}

/// Why running a job stopped before its result was written. A lost claim ends the job here
/// (another worker has it); anything else runs it again while the claim is ours.
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

struct Context {
    store: Store,
    schema: Schema,
    heat: HeatClient,
    options: WorkerOptions,
}

impl Context {
    /// Claims a ready job: `/jobs/working/<id>` bound to our lease, `/jobs/ready/<id>` deleted,
    /// in one transaction. `None` when another worker was first.
    async fn claim(&self, job_id: &str, lease: i64) -> Result<Option<String>, StoreError> {
        let reservation = crate::ids::random_id().replace("heat-reconciler-", "");
        let ready = JobQueue::Ready.key(job_id);
        let working = JobQueue::Working.key(job_id);
        let txn = Txn::new()
            .if_present(&ready)
            .if_absent(&working)
            .put_leased(&working, reservation.clone(), lease)
            .delete(&ready);
        match self.store.commit(txn).await {
            Ok(applied) => Ok(applied.map(|_| reservation)),
            // The answer was lost, not necessarily the write: the claim is ours if it holds our id.
            Err(e) => match self.store.get(&working).await {
                Ok(Some(kv)) if kv.value == reservation.as_bytes() => Ok(Some(reservation)),
                _ => Err(e),
            },
        }
    }

    /// Runs a claimed job until it is reported or the claim is lost. A failure to reach etcd
    /// mid-job is retried: every step is safe to repeat.
    async fn run_to_end(&self, job_id: &str, reservation: &str) {
        let mut backoff = crate::store::watcher::Backoff::default();
        for attempt in 1.. {
            match self.process(job_id, reservation).await {
                Ok(()) => return,
                Err(JobError::LostClaim(_)) => {
                    tracing::warn!(job = %job_id, "claim lost; another worker will run the job");
                    return;
                }
                Err(e) if attempt >= 10 => {
                    tracing::error!(job = %job_id, error = %e, "job interrupted; it runs again once the claim expires");
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = %job_id, error = %e, attempt, "job interrupted; running it again");
                    backoff.wait().await;
                }
            }
        }
    }

    async fn process(&self, job_id: &str, reservation: &str) -> Result<(), JobError> {
        let working = JobQueue::Working.key(job_id);
        let Some(kv) = self.store.get(&JobQueue::All.key(job_id)).await? else {
            tracing::warn!(job = %job_id, "claimed job has no record; releasing it");
            self.store.commit(Txn::new().if_value(&working, reservation).delete(&working)).await?;
            return Ok(());
        };
        let Record::Job(record) = Record::from_etcd(&kv.key, &kv.value)? else {
            return Err(JobError::NotAJob(kv.key));
        };
        let job = record.job;
        let spec = &job.spec;
        let types = &self.schema.resource_types;
        let job_state_key = types.key(ResourceRoot::JobState, &spec.resource_type, &spec.resource_id)?;
        tracing::info!(job = %job_id, "Checking job status");
        let started = serde_json::to_vec(&JobState::Started)?;
        if self.store.commit(Txn::new().if_value(&working, reservation).put(&job_state_key, started)).await?.is_none() {
            return Err(JobError::LostClaim("before starting"));
        }
        let began = std::time::Instant::now();
        let outcome = match self.prepare(&job).await {
            Ok(prepared) => execute(&self.heat, &prepared.stack, self.options.patience, &prepared.secrets).await,
            Err(failure) => failure,
        };
        match &outcome.failure {
            None => {
                tracing::info!(job = %job_id, status = %outcome.state.state.orchestration_state.as_deref().unwrap_or(""), "job finished")
            }
            Some(reason) => tracing::warn!(job = %job_id, %reason, "job failed"),
        }
        let result = if outcome.failure.is_none() { "success" } else { "failure" };
        self.report(&job, reservation, &job_state_key, outcome).await?;
        let (r#type, action) = (spec.resource_type.clone(), spec.action.as_str().to_owned());
        let metrics = crate::telemetry::metrics();
        metrics
            .job_duration
            .get_or_create(&JobLabels { r#type: r#type.clone(), action: action.clone() })
            .observe(began.elapsed().as_secs_f64());
        metrics.jobs_finished.get_or_create(&FinishedLabels { r#type, action, result: result.to_owned() }).inc();
        Ok(())
    }

    /// Everything the Heat call needs; a failure outcome when something is missing or broken.
    async fn prepare(&self, job: &Job) -> Result<Prepared, Outcome> {
        prepare(&self.store, &self.schema, job).await
    }

    /// Writes heat_stacks → job_state → state in one transaction, then the finished marker with
    /// the removal of the working claim and the job state — each only while the claim is ours.
    async fn report(
        &self,
        job: &Job,
        reservation: &str,
        job_state_key: &str,
        outcome: Outcome,
    ) -> Result<(), JobError> {
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
        let marker = outcome.failure.unwrap_or_default();
        let finish = Txn::new()
            .if_value(&working, reservation)
            .put(&JobQueue::Finished.key(&job.id), marker)
            .delete(&working)
            .delete(job_state_key);
        if self.store.commit(finish).await?.is_none() {
            return Err(JobError::LostClaim("before marking the job finished"));
        }
        Ok(())
    }
}
