//! The planner role (the original's ResourceReader + JobManager): turns `/config` changes into
//! jobs, releases waiting jobs when their dependencies finish, cancels the dependents of failed
//! jobs, and cleans up after logical deletes. Only the elected leader plans.
//!
//! Flow: the watch feeds `View`; each `Change` is reconciled by `Planner::react`, which asks
//! `reactions` (pure: the view in, `Writes` out) what to write, commits it as one guarded etcd
//! transaction and applies it to the view as soon as it commits. Planned jobs are gathered into
//! transactions sent without waiting, several in flight (`pipeline`), the view assuming them
//! meanwhile.
//! Start-up, relists and single events take the same path.

pub(crate) mod decide;
pub(crate) mod live;
pub mod notes;
pub(crate) mod pipeline;
pub(crate) mod reactions;
pub(crate) mod retry;
pub(crate) mod view;
pub(crate) mod writes;

use crate::election::{Election, lead_while_elected};
use crate::handoff::Handoff;
use crate::protocol::Job;
use crate::protocol::keys::JOB_MANAGER_ID_KEY;
use crate::protocol::{Action, Body, ConfigRecord};
use crate::schema::Schema;
use crate::store::{Leadership, Store, StoreError, WatchEvent, watch_listing};
use crate::telemetry::metrics::{JobLabels, QueueLabels, metrics};
use crate::telemetry::{Heartbeat, Pulse};
use pipeline::{Landed, Pipeline, PlannedClaim, Sent};
use retry::Retries;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use view::{Change, ListedView, ResourceId, View};
use writes::Writes;

/// How the planner runs.
#[derive(Debug, Clone)]
pub struct PlannerOptions {
    /// This process's id, written into the leader key.
    pub id: String,
    pub leader_key: String,
    pub lease_ttl: Duration,
    /// How often resources whose planning failed are tried again.
    pub retry_interval: Duration,
    /// How often everything is reconciled again from the planner's view, whatever the events.
    pub resync_interval: Duration,
    /// Backoff of a resource whose job failed: doubles from `retry_base` up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How many planned jobs' transactions may be in flight at once ([`pipeline`]).
    pub pipeline_depth: usize,
    /// How many planned jobs one transaction may hold ([`pipeline`]): 1 sends each alone.
    pub batch_size: usize,
    /// The worker of this process, if it runs one: a job ready to run is claimed for it in the
    /// transaction that plans it while it has a free slot ([`crate::handoff`]).
    pub handoff: Option<Handoff>,
}

impl PlannerOptions {
    pub fn new(id: impl Into<String>) -> Self {
        PlannerOptions {
            id: id.into(),
            leader_key: JOB_MANAGER_ID_KEY.to_owned(),
            lease_ttl: Duration::from_secs(15),
            retry_interval: Duration::from_secs(2),
            resync_interval: Duration::from_secs(60),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(300),
            pipeline_depth: 64,
            batch_size: 16,
            handoff: None,
        }
    }
}

/// Runs the planner until `shutdown` turns true: campaign for leadership, plan while leading,
/// campaign again after losing it. `progress` receives the etcd revision processed so far.
pub async fn run(
    store: Store,
    schema: Schema,
    options: PlannerOptions,
    progress: watch::Sender<i64>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let election = Election {
        role: "planner".into(),
        key: options.leader_key.clone(),
        id: options.id.clone(),
        ttl: options.lease_ttl,
    };
    lead_while_elected(&store, &election, shutdown, |leadership, heartbeat| {
        let (store, schema, progress, options) = (store.clone(), schema.clone(), progress.clone(), options.clone());
        Box::pin(async move {
            let pipeline = Pipeline::new(options.pipeline_depth, options.batch_size);
            let mut planner = Planner::new(store, schema, leadership, progress, pipeline, heartbeat.pulse());
            planner.handoff = options.handoff.clone();
            planner.lead(&options, heartbeat).await
        })
    })
    .await
}

/// The planner while it leads.
pub struct Planner<'l> {
    store: Store,
    schema: Schema,
    leadership: &'l Leadership,
    progress: watch::Sender<i64>,
    view: View,
    /// Resources whose planning failed; tried again on every config change and periodically.
    blocked: HashSet<ResourceId>,
    /// The error last reported in each blocked resource's `/state`, so it is written once.
    reported: BTreeMap<ResourceId, (u64, String)>,
    /// Resources whose job failed (or was cancelled), to be planned again with backoff.
    retries: Retries,
    /// Planned jobs' transactions in flight.
    pipeline: Pipeline,
    /// A transaction sent ahead failed, so the view assumed writes that did not happen: nothing
    /// more is written until it is listed again.
    diverged: bool,
    /// The watch. It is read while transactions are in flight too ([`Planner::land_one`]): a
    /// watcher that falls behind costs etcd dearly, as it replays the backlog from its disk.
    events: mpsc::Receiver<WatchEvent<View>>,
    /// What events read meanwhile changed, to react to once the current reaction is done.
    deferred: VecDeque<Change>,
    /// A full list read meanwhile: it replaces the view only once the current reaction is done,
    /// and nothing after it is read before.
    held_list: Option<WatchEvent<View>>,
    /// The revision up to which every change has been read, not yet published as progress.
    synced: Option<i64>,
    /// Beaten as transactions land: a long reaction that makes progress is alive.
    pulse: Pulse,
    /// The worker of this process, which jobs ready to run are claimed for in their plans.
    handoff: Option<Handoff>,
}

impl<'l> Planner<'l> {
    fn new(
        store: Store,
        schema: Schema,
        leadership: &'l Leadership,
        progress: watch::Sender<i64>,
        pipeline: Pipeline,
        pulse: Pulse,
    ) -> Self {
        Planner {
            events: watch_view(store.clone(), &schema),
            store,
            schema,
            leadership,
            progress,
            view: View::default(),
            blocked: HashSet::new(),
            reported: BTreeMap::new(),
            retries: Retries::new(Duration::from_secs(5), Duration::from_secs(300)),
            pipeline,
            diverged: false,
            deferred: VecDeque::new(),
            held_list: None,
            synced: None,
            pulse,
            handoff: None,
        }
    }

    async fn lead(&mut self, options: &PlannerOptions, heartbeat: &mut Heartbeat) -> anyhow::Result<()> {
        self.retries = Retries::new(options.retry_base, options.retry_cap);
        let mut retry = tokio::time::interval(options.retry_interval);
        let mut resync = tokio::time::interval(options.resync_interval);
        resync.tick().await;
        loop {
            tokio::select! {
                event = next_event(&mut self.held_list, &mut self.events) => {
                    let event = event.ok_or_else(|| anyhow::anyhow!("watch ended"))?;
                    let listed = matches!(event, WatchEvent::Listed { .. });
                    self.take_in(event);
                    if self.catch_up().await? && listed {
                        heartbeat.ready();
                    }
                }
                _ = heartbeat.tick() => {}
                _ = retry.tick() => {
                    for resource in self.blocked.clone() {
                        self.reconcile_resource(&resource).await?;
                    }
                    let due = self.retries.due();
                    for (resource, action) in reactions::providers_first(&self.view, &self.schema, due) {
                        self.retry_resource(&resource, action).await?;
                    }
                    self.catch_up().await?;
                }
                _ = resync.tick() => {
                    tracing::debug!("periodic resync");
                    self.react(Change::Relisted).await?;
                    self.catch_up().await?;
                }
            }
        }
    }

    /// Applies a watch event to the view; what it changed is reacted to by [`Planner::catch_up`].
    fn take_in(&mut self, event: WatchEvent<View>) {
        // Progress is published only once a whole transaction has been seen.
        if let WatchEvent::Listed { revision, .. } | WatchEvent::Synced { revision } = &event {
            self.synced = Some(*revision);
        }
        let changes = self.view.apply(&self.schema, event);
        self.deferred.extend(changes);
    }

    /// Reacts to every change read so far (reading more while transactions are in flight) until
    /// none is left and nothing is in flight, then publishes the progress; lists again when the
    /// view diverged. False when it did.
    async fn catch_up(&mut self) -> anyhow::Result<bool> {
        loop {
            while let Some(change) = self.deferred.pop_front() {
                self.react(change).await?;
            }
            if self.land_all().await? {
                self.relist().await?;
                return Ok(false);
            }
            if self.deferred.is_empty() {
                break;
            }
        }
        if let Some(revision) = self.synced.take() {
            self.progress.send_replace(revision);
        }
        self.publish_queues();
        Ok(true)
    }

    /// A fresh watch, which starts with a full list that replaces the view; an error when the
    /// failure was a lost leadership (the leader key no longer holds our id), so that the
    /// planner stands down rather than list again and again.
    async fn relist(&mut self) -> anyhow::Result<()> {
        let leader = self.store.get(&self.leadership.key).await?.map(|kv| kv.value);
        anyhow::ensure!(
            leader.as_deref() == Some(self.leadership.id.as_bytes()),
            "no longer the leader: {} holds another id",
            self.leadership.key
        );
        tracing::warn!("the view assumed writes that failed; listing etcd again");
        self.diverged = false;
        self.events = watch_view(self.store.clone(), &self.schema);
        self.deferred.clear();
        self.held_list = None;
        self.synced = None;
        Ok(())
    }

    /// The live jobs by queue, for the `live_jobs` gauge.
    fn publish_queues(&self) {
        let view = &self.view;
        for (queue, count) in [
            ("waiting", view.waiting.len()),
            ("ready", view.ready.len()),
            ("working", view.working.len()),
            ("finished", view.finished.len()),
        ] {
            metrics().live_jobs.get_or_create(&QueueLabels { queue: queue.to_owned() }).set(count as i64);
        }
    }

    async fn react(&mut self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Relisted => {
                let mut configs: Vec<(i64, ResourceId)> =
                    self.view.configs.iter().map(|(r, (_, rev))| (*rev, r.clone())).collect();
                configs.sort();
                for (_, resource) in configs {
                    self.reconcile_resource(&resource).await?;
                }
                let orphans: Vec<ResourceId> =
                    self.view.snapshots.keys().filter(|r| !self.view.configs.contains_key(*r)).cloned().collect();
                for resource in orphans {
                    self.reconcile_resource(&resource).await?;
                }
                let mut finished: Vec<String> = self.view.finished.keys().cloned().collect();
                finished.sort();
                for job in finished {
                    self.finish_job(&job).await?;
                }
                let mut live: Vec<String> = self.view.live.values().map(|j| j.id.clone()).collect();
                live.sort();
                for job in live {
                    self.requeue_if_orphaned(&job).await?;
                }
                // Failed resources nobody retries: the backoff of the leader that saw them fail
                // was lost with it (or the retry found a live job then). Retry with backoff.
                for (resource, action) in self.view.unhandled_failures() {
                    if !self.retries.is_scheduled(&resource) {
                        let delay = self.schedule_retry(resource.clone(), action).await?;
                        tracing::info!(resource = ?resource, ?delay, "failed resource found; it will be tried again");
                    }
                }
                self.release_waiting().await
            }
            Change::Config(resource) => {
                self.reconcile_resource(&resource).await?;
                // A resource that was missing may have just arrived.
                for other in self.blocked.clone() {
                    if other != resource {
                        self.reconcile_resource(&other).await?;
                    }
                }
                Ok(())
            }
            Change::Finished(job) => self.finish_job(&job).await,
            Change::JobGone(id) => self.release_waiters_of(&id).await,
            Change::ClaimGone(id) => self.requeue_if_orphaned(&id).await,
        }
    }

    /// A live job that is in no queue (its worker died and its claim expired with the worker's
    /// lease) goes back to ready, to be run again: every job step is safe to repeat.
    async fn requeue_if_orphaned(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(writes) = reactions::requeue(&self.view, id) else { return Ok(()) };
        tracing::warn!(job = %id, "job lost its worker; queued again");
        self.commit(writes).await.map(|_| ())
    }

    /// Plans a resource whose last job failed again, at its current config version, unless a
    /// newer job already handles it.
    async fn retry_resource(&mut self, resource: &ResourceId, action: Action) -> Result<(), StoreError> {
        if self.view.live_job_of(resource).is_some() {
            return Ok(());
        }
        let Some((Ok(config), _)) = self.view.configs.get(resource).cloned() else { return Ok(()) };
        let snapshot = self.view.snapshots.get(resource).cloned();
        let action = if config.marked_for_deletion { Action::LogicalDelete } else { action };
        tracing::info!(resource = ?resource, version = config.version, attempt = self.retries.attempts(resource), "retrying after a failed job");
        let previous = snapshot.as_ref().map(|(s, _)| s.body.clone());
        let revision = snapshot.as_ref().map_or(0, |(_, rev)| *rev);
        self.plan(resource, &config, action, previous.as_deref(), revision).await
    }

    /// Schedules the retry of a failed resource and notes when it will run (for `status` and
    /// `why`); returns the delay.
    async fn schedule_retry(&mut self, resource: ResourceId, action: Action) -> Result<Duration, StoreError> {
        let delay = self.retries.schedule(resource.clone(), action);
        let note = notes::RetryNote {
            attempts: self.retries.attempts(&resource),
            action,
            next_at: notes::unix_now() + delay.as_secs(),
        };
        let mut writes = Writes::default();
        writes.put_json(notes::retry_key(&resource), &note)?;
        self.commit(writes).await?;
        Ok(delay)
    }

    /// Commits guarded by leadership, after everything in flight has landed; on success the view
    /// learns the writes at once.
    async fn commit(&mut self, writes: Writes) -> Result<bool, StoreError> {
        if writes.is_empty() {
            return Ok(true);
        }
        if self.land_all().await? {
            return Ok(false);
        }
        let txn = writes.txn();
        let summary = txn.summary();
        let Some(revision) = self.store.commit(self.leadership.guard(txn)).await? else {
            tracing::warn!(writes = %summary, "transaction conditions failed; will retry from fresh data");
            return Ok(false);
        };
        tracing::debug!(revision, writes = %summary, "committed");
        self.pulse.beat();
        self.view.learn(&self.schema, writes.changes, revision);
        Ok(true)
    }

    /// Brings one resource's jobs and records in line with its `/config` ([`reactions::reconcile`]).
    async fn reconcile_resource(&mut self, resource: &ResourceId) -> Result<(), StoreError> {
        self.settle(resource).await?;
        match reactions::reconcile(&self.view, &self.schema, resource)? {
            reactions::Reconcile::Gone(gone) => self.config_gone(resource, gone).await,
            reactions::Reconcile::UpToDate => {
                self.unblock(resource);
                Ok(())
            }
            reactions::Reconcile::Unreadable(error) => {
                // Said once per change of the record, not at every resync.
                if self.reported.get(resource).is_none_or(|(_, said)| *said != error) {
                    tracing::error!(resource = ?resource, %error, "unreadable /config value without a version");
                    self.reported.insert(resource.clone(), (0, error));
                }
                Ok(())
            }
            reactions::Reconcile::Plan(plan) => self.commit_plan(resource, plan).await,
        }
    }

    /// Plans `action` for the body of `config` ([`reactions::plan`]) and commits it; a resource
    /// that cannot be planned is reported and tried again later.
    async fn plan(
        &mut self,
        resource: &ResourceId,
        config: &ConfigRecord,
        action: Action,
        previous: Option<&Body>,
        snapshot_revision: i64,
    ) -> Result<(), StoreError> {
        self.settle(resource).await?;
        let plan = reactions::plan(&self.view, &self.schema, resource, config, action, previous, snapshot_revision)?;
        self.commit_plan(resource, plan).await
    }

    async fn commit_plan(&mut self, resource: &ResourceId, plan: reactions::Plan) -> Result<(), StoreError> {
        match plan {
            reactions::Plan::Nothing => Ok(()),
            reactions::Plan::Blocked { action, version, error } => self.report(resource, action, version, error).await,
            reactions::Plan::Write { mut writes, job } => {
                let mut claim = None;
                if let Some(job) = &job {
                    writes.put(notes::job_time_key(&job.id), notes::unix_now().to_string().into_bytes());
                    claim = self.claim_for_worker(&mut writes, job)?;
                }
                self.send(Sent { resource: resource.clone(), writes, job, claim }).await
            }
        }
    }

    /// Claims a job ready to run for the worker of this process in the plan's transaction, if it
    /// has a free slot ([`crate::handoff`]); else the job goes to `/jobs/ready` for any worker.
    fn claim_for_worker(&self, writes: &mut Writes, job: &Job) -> Result<Option<PlannedClaim>, serde_json::Error> {
        // A job waiting for others is not ready to run.
        let handoff = self.handoff.as_ref().filter(|_| job.dependency.is_empty());
        let Some(reservation) = handoff.and_then(|handoff| handoff.reserve(job)) else {
            return Ok(None);
        };
        // A reservation dropped unused gives its slot back.
        Ok(reactions::claim_in_plan(writes, &self.schema, job, &reservation)?
            .map(|started| PlannedClaim { reservation, started }))
    }

    /// Gathers a planned job's writes into the next transaction, sent without waiting for it to
    /// land ([`pipeline`]); the view assumes them meanwhile. The batch goes when it is full, when
    /// nothing is in flight, or as soon as the planner waits for anything (`land_one`): a lone
    /// change, or the first of a burst, is not delayed.
    async fn send(&mut self, mut sent: Sent) -> Result<(), StoreError> {
        if !self.pipeline.admits(&sent) {
            self.flush().await?;
        }
        // After the flush: a dependency gathered until now is in flight, and must land first.
        let waits = |pipeline: &Pipeline| sent.job.as_ref().is_some_and(|job| pipeline.holds_dependency_of(job));
        while waits(&self.pipeline) {
            self.land_one().await?;
        }
        if self.diverged {
            // The view this was decided on assumed a write that failed.
            self.blocked.insert(sent.resource);
            return Ok(());
        }
        let records = std::mem::take(&mut sent.writes.records);
        self.view.assume(&self.schema, &sent.writes.changes, records);
        self.pipeline.gather(sent);
        while let Some(landed) = self.pipeline.landed() {
            self.learn(landed)?;
        }
        if self.pipeline.batch_is_full() || self.pipeline.is_idle() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the gathered batch, once a transaction slot is free.
    async fn flush(&mut self) -> Result<(), StoreError> {
        while self.pipeline.has_gathered() && self.pipeline.is_full() {
            self.land_one().await?;
        }
        self.send_gathered();
        Ok(())
    }

    /// Sends the gathered batch (a slot is free); drops it when the view it was decided on has
    /// diverged, its resources to be planned again after the list.
    fn send_gathered(&mut self) {
        if self.diverged {
            let dropped = self.pipeline.discard();
            self.blocked.extend(dropped);
        } else {
            self.pipeline.send(&self.store, self.leadership);
        }
    }

    /// Waits until no transaction writing `resource` is in flight, so that what is decided about
    /// it next sees them landed.
    async fn settle(&mut self, resource: &ResourceId) -> Result<(), StoreError> {
        while self.pipeline.touches(resource) {
            self.land_one().await?;
        }
        Ok(())
    }

    /// Waits for every transaction in flight; true when the view has diverged from etcd (one
    /// failed) and must be listed again.
    async fn land_all(&mut self) -> Result<bool, StoreError> {
        while self.land_one().await? {}
        Ok(self.diverged)
    }

    /// Sends the gathered batch if a slot is free, then waits for one transaction in flight to
    /// land and learns its outcome; false when none was in flight.
    async fn land_one(&mut self) -> Result<bool, StoreError> {
        if !self.pipeline.is_full() {
            self.send_gathered();
        }
        let landed = loop {
            tokio::select! {
                landed = self.pipeline.land() => break landed,
                Some(event) = self.events.recv(), if self.held_list.is_none() => {
                    if matches!(event, WatchEvent::Listed { .. }) {
                        self.held_list = Some(event);
                    } else {
                        self.take_in(event);
                    }
                }
            }
        };
        let Some(landed) = landed else {
            return Ok(false);
        };
        self.learn(landed)?;
        Ok(true)
    }

    /// What a transaction that came back means for the view: its revision, or, when its
    /// conditions failed, that the view diverged.
    fn learn(&mut self, Landed { sent, outcome }: Landed) -> Result<(), StoreError> {
        self.pulse.beat();
        let Some((revision, _)) = outcome? else {
            let all: Vec<&Writes> = sent.iter().map(|sent| &sent.writes).collect();
            let resources: Vec<&ResourceId> = sent.iter().map(|sent| &sent.resource).collect();
            tracing::warn!(?resources, writes = %Writes::txn_of(&all).summary(), "transaction conditions failed; will retry from fresh data");
            self.diverged = true;
            self.blocked.extend(sent.into_iter().map(|sent| sent.resource));
            return Ok(());
        };
        for Sent { resource, writes, job, .. } in sent {
            self.view.landed(&self.schema, &writes.changes, revision);
            if let Some(job) = job {
                tracing::info!(job = %job.id, dependencies = job.dependency.len(), "planned job");
                let action = job.spec.action.as_str().to_owned();
                let labels = JobLabels { r#type: resource.0.clone(), action };
                metrics().jobs_planned.get_or_create(&labels).inc();
            }
            self.unblock(&resource);
        }
        Ok(())
    }

    fn unblock(&mut self, resource: &ResourceId) {
        self.blocked.remove(resource);
        self.reported.remove(resource);
    }

    /// Reports why a resource cannot be planned in its `/state` (once per version and reason)
    /// and keeps trying it.
    async fn report(
        &mut self,
        resource: &ResourceId,
        action: Action,
        version: u64,
        error: String,
    ) -> Result<(), StoreError> {
        self.blocked.insert(resource.clone());
        if self.reported.get(resource) == Some(&(version, error.clone())) {
            return Ok(());
        }
        tracing::error!(resource = ?resource, version, %error, "cannot plan resource");
        let Some(writes) = reactions::report(&self.schema, resource, action, version, &error)? else { return Ok(()) };
        if self.commit(writes).await? {
            self.reported.insert(resource.clone(), (version, error));
        }
        Ok(())
    }

    /// Gohan removed the config: after a logical delete, drop the snapshot and heat_stacks record.
    async fn config_gone(&mut self, resource: &ResourceId, gone: reactions::Gone) -> Result<(), StoreError> {
        self.unblock(resource);
        match gone {
            reactions::Gone::Nothing | reactions::Gone::Wait => Ok(()),
            reactions::Gone::Deprovision { config, snapshot_revision } => {
                tracing::warn!(resource = ?resource, "config deleted without marked_for_deletion; deleting its stack");
                // The body must be in the index for its params to evaluate, as it was before.
                let body = config.shared_body().clone();
                self.view.index.insert(&resource.0, &resource.1, body.clone());
                let planned = self.plan(resource, &config, Action::LogicalDelete, Some(&body), snapshot_revision).await;
                self.view.index.remove(&resource.0, &resource.1);
                planned
            }
            reactions::Gone::CleanUp(writes) => {
                tracing::info!(resource = ?resource, "config cleaned up after logical delete; deleting snapshot and heat_stacks");
                self.commit(writes).await.map(|_| ())
            }
        }
    }

    /// A worker finished a job: remove it, cancel its dependents if it failed, release the
    /// waiting jobs it held back.
    async fn finish_job(&mut self, job_id: &str) -> Result<(), StoreError> {
        let Some(finish) = reactions::finish(&self.view, &self.schema, job_id)? else { return Ok(()) };
        let reactions::Finish { writes, job, reason, cancelled } = finish;
        if job.is_some() && !reason.is_empty() {
            tracing::warn!(job = %job_id, %reason, "job failed");
        }
        for dependent in &cancelled {
            tracing::warn!(job = %dependent.id, failed = %job_id, "cancelling dependent job");
        }
        if !self.commit(writes).await? {
            return Ok(());
        }
        if let Some(job) = job {
            let resource = (job.spec.resource_type.clone(), job.spec.resource_id.clone());
            if reason.is_empty() {
                self.retries.forget(&resource);
            } else {
                let delay = self.schedule_retry(resource.clone(), job.spec.action).await?;
                tracing::warn!(resource = ?resource, ?delay, "job failed; the resource will be tried again");
            }
            for dependent in &cancelled {
                let theirs = (dependent.spec.resource_type.clone(), dependent.spec.resource_id.clone());
                self.schedule_retry(theirs, dependent.spec.action).await?;
            }
            if !self.view.configs.contains_key(&resource) {
                let gone = reactions::config_gone(&self.view, &self.schema, &resource);
                self.config_gone(&resource, gone).await?;
            }
        }
        self.release_waiters_of(job_id).await
    }

    /// Releases the waiting jobs that were waiting for `gone` (among others).
    async fn release_waiters_of(&mut self, gone: &str) -> Result<(), StoreError> {
        let candidates: Vec<String> =
            self.view.live.waiters_of(gone).filter(|id| self.view.waiting.contains(*id)).cloned().collect();
        self.release(candidates).await
    }

    /// Moves every waiting job whose dependencies are all gone to ready.
    async fn release_waiting(&mut self) -> Result<(), StoreError> {
        let waiting: Vec<String> = self.view.waiting.iter().cloned().collect();
        self.release(waiting).await
    }

    /// Moves those of `candidates` whose dependencies are all gone from waiting to ready, one
    /// transaction each.
    async fn release(&mut self, mut candidates: Vec<String>) -> Result<(), StoreError> {
        candidates.sort();
        for id in candidates {
            let Some(writes) = reactions::release(&self.view, &id) else { continue };
            if self.view.live.contains(&id) {
                tracing::info!(job = %id, "released to ready");
            } else {
                tracing::warn!(job = %id, "waiting entry without a job record; removing it");
            }
            self.commit(writes).await?;
        }
        Ok(())
    }
}

/// Everything the view is made of, listed into a view page by page, then every change under `/`.
fn watch_view(store: Store, schema: &Schema) -> mpsc::Receiver<WatchEvent<View>> {
    let schema = schema.clone();
    watch_listing(store, "/".to_owned(), View::listed_prefixes(), move || ListedView::new(schema.clone()))
}

/// The next watch event: a full list held back first, then what the watch brings.
async fn next_event(
    held_list: &mut Option<WatchEvent<View>>,
    events: &mut mpsc::Receiver<WatchEvent<View>>,
) -> Option<WatchEvent<View>> {
    match held_list.take() {
        Some(list) => Some(list),
        None => events.recv().await,
    }
}
