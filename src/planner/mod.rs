//! The planner role (the original's ResourceReader + JobManager): turns `/config` changes into
//! jobs, releases waiting jobs when their dependencies finish, cancels the dependents of failed
//! jobs, and cleans up after logical deletes. Only the elected leader plans.
//!
//! Flow: the watch feeds [`View`]; each [`Change`] is reconciled by [`Planner::react`]; every
//! reaction is one guarded etcd transaction built with [`Writes`], applied to the view as soon as
//! it commits. Start-up, relists and single events take the same path.

pub mod decide;
pub mod live;
pub mod retry;
pub mod view;

use crate::election::{Election, lead_while_elected};
use crate::mapping::{Scope, Traversal, Workability, select_template};
use crate::protocol::keys::JOB_MANAGER_ID_KEY;
use crate::protocol::{
    Action, ConfigRecord, Job, JobId, JobQueue, JobRecord, JobSpec, ResourceRoot, StateRecord, WorkerSnapshot,
};
use crate::schema::Schema;
use crate::store::{KeyValue, Leadership, Store, StoreError, Txn, WatchEvent, watch_prefix};
use crate::telemetry::Heartbeat;
use crate::telemetry::metrics::{JobLabels, QueueLabels, metrics};
use retry::Retries;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tokio::sync::watch;
use view::{Change, ResourceId, View};

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
        Box::pin(async move { Planner::new(store, schema, leadership, progress).lead(&options, heartbeat).await })
    })
    .await
}

/// A set of writes that commit together, and how to replay them on the view.
#[derive(Default)]
struct Writes {
    txn: Txn,
    changes: Vec<(String, Option<Vec<u8>>)>,
}

impl Writes {
    fn put(&mut self, key: String, value: Vec<u8>) {
        self.txn = std::mem::take(&mut self.txn).put(&key, value.clone());
        self.changes.push((key, Some(value)));
    }

    fn put_json<T: serde::Serialize>(&mut self, key: String, value: &T) {
        // Our record types always serialize.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.put(key, bytes);
    }

    fn delete(&mut self, key: String) {
        self.txn = std::mem::take(&mut self.txn).delete(&key);
        self.changes.push((key, None));
    }

    fn require_revision(&mut self, key: &str, revision: i64) {
        self.txn = std::mem::take(&mut self.txn).if_mod_revision(key, revision);
    }

    fn require_present(&mut self, key: &str) {
        self.txn = std::mem::take(&mut self.txn).if_present(key);
    }
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
}

impl<'l> Planner<'l> {
    fn new(store: Store, schema: Schema, leadership: &'l Leadership, progress: watch::Sender<i64>) -> Self {
        Planner {
            store,
            schema,
            leadership,
            progress,
            view: View::default(),
            blocked: HashSet::new(),
            reported: BTreeMap::new(),
            retries: Retries::new(Duration::from_secs(5), Duration::from_secs(300)),
        }
    }

    async fn lead(&mut self, options: &PlannerOptions, heartbeat: &mut Heartbeat) -> anyhow::Result<()> {
        self.retries = Retries::new(options.retry_base, options.retry_cap);
        let mut events = watch_prefix(self.store.clone(), "/".to_owned());
        let mut retry = tokio::time::interval(options.retry_interval);
        let mut resync = tokio::time::interval(options.resync_interval);
        resync.tick().await;
        loop {
            tokio::select! {
                event = events.recv() => {
                    let event = event.ok_or_else(|| anyhow::anyhow!("watch ended"))?;
                    // Progress is published only once a whole transaction has been seen.
                    let synced = match &event {
                        WatchEvent::Listed { revision, .. } | WatchEvent::Synced { revision } => Some(*revision),
                        _ => None,
                    };
                    let listed = matches!(event, WatchEvent::Listed { .. });
                    for change in self.view.apply(&self.schema, event) {
                        self.react(change).await?;
                    }
                    if let Some(revision) = synced {
                        self.progress.send_replace(revision);
                    }
                    if listed {
                        heartbeat.ready();
                    }
                    self.publish_queues();
                }
                _ = heartbeat.tick() => {}
                _ = retry.tick() => {
                    for resource in self.blocked.clone() {
                        self.reconcile_resource(&resource).await?;
                    }
                    let due = self.retries.due();
                    for (resource, action) in self.providers_first(due) {
                        self.retry_resource(&resource, action).await?;
                    }
                }
                _ = resync.tick() => {
                    tracing::debug!("periodic resync");
                    self.react(Change::Relisted).await?;
                }
            }
        }
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
                        let delay = self.retries.schedule(resource.clone(), action);
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
        let Some(job) = self.view.live.get(id) else { return Ok(()) };
        let queued = self.view.waiting.contains(id)
            || self.view.ready.contains(id)
            || self.view.working.contains(id)
            || self.view.finished.contains_key(id);
        if queued {
            return Ok(());
        }
        let handler = job.spec.handler.clone();
        tracing::warn!(job = %id, "job lost its worker; queued again");
        let mut writes = Writes::default();
        writes.require_present(&JobQueue::All.key(id));
        for queue in [JobQueue::Working, JobQueue::Finished, JobQueue::Ready, JobQueue::Waiting] {
            writes.txn = std::mem::take(&mut writes.txn).if_absent(&queue.key(id));
        }
        writes.put(JobQueue::Ready.key(id), handler.into_bytes());
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
        self.plan(resource, &config, action, previous, revision).await
    }

    /// Orders retries due together so that a resource is planned after the resources it
    /// references (before them for a logical delete). A consumer planned first would find no live
    /// job of its provider, run, fail for the provider's missing outputs, and cancel the
    /// provider's job, which waits for it as a reverse dependency: both would fail again on every
    /// retry. Planned after the provider, it waits for it instead. Ties keep the given order.
    fn providers_first(&self, due: Vec<(ResourceId, Action)>) -> Vec<(ResourceId, Action)> {
        let index: HashMap<&ResourceId, usize> = due.iter().enumerate().map(|(i, (r, _))| (r, i)).collect();
        // before[i]: the due entries that must be planned before entry i.
        let mut before: Vec<HashSet<usize>> = vec![HashSet::new(); due.len()];
        for (i, (resource, action)) in due.iter().enumerate() {
            for referenced in self.references(resource) {
                let Some(&j) = index.get(&referenced) else { continue };
                if j == i {
                    continue;
                }
                if *action == Action::LogicalDelete {
                    before[j].insert(i);
                } else {
                    before[i].insert(j);
                }
            }
        }
        let mut done = vec![false; due.len()];
        let mut order = Vec::with_capacity(due.len());
        while order.len() < due.len() {
            let ready = (0..due.len()).find(|&i| !done[i] && before[i].iter().all(|&j| done[j]));
            // A cycle (not expected) is broken in the given order.
            let Some(next) = ready.or_else(|| (0..due.len()).find(|&i| !done[i])) else { break };
            done[next] = true;
            order.push(due[next].clone());
        }
        order
    }

    /// The resources a job for the resource's current config would reference (none when its
    /// params cannot be evaluated now).
    fn references(&self, resource: &ResourceId) -> HashSet<ResourceId> {
        let Some((Ok(config), _)) = self.view.configs.get(resource) else { return HashSet::new() };
        let scope = Scope { index: &self.view.index, relations: &self.schema.relations, version: config.version };
        let body = config.body();
        let Workability::Workable(template) =
            select_template(&self.schema.template_mappings, &self.view.templates, scope, &resource.0, body)
        else {
            return HashSet::new();
        };
        let params = template.evaluate_params(scope, &resource.0, body, Traversal::Once).unwrap_or_default();
        params
            .iter()
            .flat_map(|p| &p.resources)
            .map(|r| (r.resource_type.clone(), r.resource_id.clone()))
            .filter(|r| r != resource)
            .collect()
    }

    /// Commits guarded by leadership; on success the view learns the writes at once.
    async fn commit(&mut self, writes: Writes) -> Result<bool, StoreError> {
        if writes.changes.is_empty() {
            return Ok(true);
        }
        let summary = writes.txn.summary();
        let Some(revision) = self.store.commit(self.leadership.guard(writes.txn)).await? else {
            tracing::warn!(writes = %summary, "transaction conditions failed; will retry from fresh data");
            return Ok(false);
        };
        tracing::debug!(revision, writes = %summary, "committed");
        for (key, value) in writes.changes {
            match value {
                Some(value) => {
                    let kv = KeyValue { key, value, mod_revision: revision, create_revision: revision, lease: 0 };
                    self.view.put(&self.schema, kv);
                }
                None => {
                    self.view.delete(&self.schema, &key, revision);
                }
            }
        }
        Ok(true)
    }

    fn key(&self, root: ResourceRoot, resource: &ResourceId) -> Option<String> {
        self.schema.resource_types.key(root, &resource.0, &resource.1).ok()
    }

    /// Brings one resource's jobs and records in line with its `/config`.
    async fn reconcile_resource(&mut self, resource: &ResourceId) -> Result<(), StoreError> {
        let Some((config, _)) = self.view.configs.get(resource).cloned() else {
            return self.config_gone(resource).await;
        };
        let config = match config {
            Ok(config) => config,
            Err(unreadable) => {
                tracing::error!(resource = ?resource, error = %unreadable.error, "unreadable /config value");
                if let Some(version) = unreadable.version {
                    let error = format!("unreadable config: {}", unreadable.error);
                    self.report(resource, Action::Create, version, error).await?;
                }
                return Ok(());
            }
        };
        if config.body_id() != Some(resource.1.as_str()) {
            let error = format!("config body `id` is {:?}, not the key's `{}`", config.body_id(), resource.1);
            return self.report(resource, Action::Create, config.version, error).await;
        }
        let snapshot = self.view.snapshots.get(resource).cloned();
        let Some(action) = decide::choose_action(&config, snapshot.as_ref().map(|(s, _)| s)) else {
            self.unblock(resource);
            return Ok(());
        };
        let snapshot_revision = snapshot.as_ref().map_or(0, |(_, rev)| *rev);
        let previous = snapshot.as_ref().map(|(s, _)| s.body.clone());
        self.plan(resource, &config, action, previous, snapshot_revision).await
    }

    /// Plans `action` for the body of `config`: a job for a workable resource, READ_COMPLETE for
    /// the others; the snapshot is written in the same transaction.
    async fn plan(
        &mut self,
        resource: &ResourceId,
        config: &ConfigRecord,
        action: Action,
        previous: Option<crate::protocol::Body>,
        snapshot_revision: i64,
    ) -> Result<(), StoreError> {
        let (Some(snapshot_key), Some(state_key)) =
            (self.key(ResourceRoot::Snapshot, resource), self.key(ResourceRoot::State, resource))
        else {
            return Ok(());
        };
        let body = config.body();
        let scope = Scope { index: &self.view.index, relations: &self.schema.relations, version: config.version };
        let mut writes = Writes::default();
        let mut planned = None;
        writes.require_revision(&snapshot_key, snapshot_revision);
        let snapshot =
            WorkerSnapshot { body: body.clone(), deleted: config.marked_for_deletion, version: config.version };
        writes.put_json(snapshot_key, &snapshot);
        match select_template(&self.schema.template_mappings, &self.view.templates, scope, &resource.0, body) {
            Workability::NonWorkable(reason) => {
                tracing::info!(resource = ?resource, version = config.version, ?reason, "non-workable resource");
                writes.put_json(state_key, &StateRecord::read_complete(config.version));
            }
            Workability::Broken(error) => return self.report(resource, action, config.version, error).await,
            Workability::Workable(template) => {
                let traversal = match (&previous, action) {
                    (Some(previous), Action::Modify | Action::LogicalDelete) => Traversal::Twice { previous },
                    _ => Traversal::Once,
                };
                let params = match template.evaluate_params(scope, &resource.0, body, traversal) {
                    Ok(params) => params,
                    Err(e) => return self.report(resource, action, config.version, e.to_string()).await,
                };
                let handler = template.template.handler.clone();
                let id = JobId::generate(action, &handler, &resource.0, &resource.1, config.version);
                let mut job = Job {
                    id: id.to_string(),
                    dependency: Vec::new(),
                    spec: JobSpec {
                        action,
                        handler: handler.clone(),
                        resource_type: resource.0.clone(),
                        resource_id: resource.1.clone(),
                        version: config.version,
                        job_name: id.job_name(),
                        is_first: true,
                        is_last: true,
                        on_failure: "fail".to_owned(),
                        params,
                        resource_input: body.clone(),
                    },
                };
                job.dependency = self.view.live.dependencies(&job);
                let queue = if job.dependency.is_empty() { JobQueue::Ready } else { JobQueue::Waiting };
                tracing::info!(job = %job.id, dependencies = job.dependency.len(), ?queue, "planned job");
                writes.put(queue.key(&job.id), handler.into_bytes());
                writes.put_json(JobQueue::All.key(&job.id), &JobRecord { job, n: 0 });
                planned = Some(JobLabels { r#type: resource.0.clone(), action: action.as_str().to_owned() });
            }
        }
        if self.commit(writes).await? {
            if let Some(labels) = planned {
                metrics().jobs_planned.get_or_create(&labels).inc();
            }
            self.unblock(resource);
        } else {
            self.blocked.insert(resource.clone());
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
        let Some(state_key) = self.key(ResourceRoot::State, resource) else { return Ok(()) };
        let mut writes = Writes::default();
        writes.put_json(state_key, &StateRecord::failed(action, error.clone(), version));
        if self.commit(writes).await? {
            self.reported.insert(resource.clone(), (version, error));
        }
        Ok(())
    }

    /// Gohan removed the config: after a logical delete, drop the snapshot and heat_stacks record.
    async fn config_gone(&mut self, resource: &ResourceId) -> Result<(), StoreError> {
        self.unblock(resource);
        let Some((snapshot, revision)) = self.view.snapshots.get(resource).cloned() else { return Ok(()) };
        if self.view.live_job_of(resource).is_some() {
            // Its last job still runs; clean up when it has finished.
            return Ok(());
        }
        if !snapshot.deleted {
            // Deleted without `marked_for_deletion` (never seen in the corpus): de-provision as a
            // logical delete of the last processed body, then clean up as usual.
            tracing::warn!(resource = ?resource, "config deleted without marked_for_deletion; deleting its stack");
            let config = ConfigRecord::new(snapshot.body.clone(), snapshot.version + 1, true);
            self.view.index.insert(&resource.0, &resource.1, snapshot.body.clone());
            let result = self.plan(resource, &config, Action::LogicalDelete, Some(snapshot.body), revision).await;
            self.view.index.remove(&resource.0, &resource.1);
            return result;
        }
        let (Some(snapshot_key), Some(stacks_key)) =
            (self.key(ResourceRoot::Snapshot, resource), self.key(ResourceRoot::HeatStacks, resource))
        else {
            return Ok(());
        };
        tracing::info!(resource = ?resource, "config cleaned up after logical delete; deleting snapshot and heat_stacks");
        let mut writes = Writes::default();
        writes.require_revision(&snapshot_key, revision);
        writes.delete(snapshot_key);
        writes.delete(stacks_key);
        self.commit(writes).await.map(|_| ())
    }

    /// A worker finished a job: remove it, cancel its dependents if it failed, release the
    /// waiting jobs it held back.
    async fn finish_job(&mut self, job_id: &str) -> Result<(), StoreError> {
        let Some(reason) = self.view.finished.get(job_id).cloned() else { return Ok(()) };
        let job = self.view.live.get(job_id).cloned();
        let mut writes = Writes::default();
        for queue in JobQueue::ALL {
            let present = match queue {
                JobQueue::All => job.is_some(),
                JobQueue::Waiting => self.view.waiting.contains(job_id),
                JobQueue::Ready => self.view.ready.contains(job_id),
                JobQueue::Working => false,
                JobQueue::Finished => true,
            };
            if present {
                writes.delete(queue.key(job_id));
            }
        }
        let mut cancelled = Vec::new();
        if job.is_some() && !reason.is_empty() {
            tracing::warn!(job = %job_id, %reason, "job failed");
            let waiting: Vec<&Job> = self.view.waiting.iter().filter_map(|id| self.view.live.get(id)).collect();
            cancelled = decide::cancelled_by(job_id, &waiting)
                .iter()
                .filter_map(|id| self.view.live.get(id).cloned())
                .collect();
        }
        // One `/state` per resource, for its latest cancelled job: several cancelled jobs may be
        // of one resource (its modify and its delete waiting behind its failed create), and etcd
        // rejects a transaction that puts a key twice.
        let mut states: BTreeMap<String, StateRecord> = BTreeMap::new();
        for dependent in &cancelled {
            let spec = &dependent.spec;
            tracing::warn!(job = %dependent.id, failed = %job_id, "cancelling dependent job");
            writes.delete(JobQueue::All.key(&dependent.id));
            writes.delete(JobQueue::Waiting.key(&dependent.id));
            if let Ok(state_key) =
                self.schema.resource_types.key(ResourceRoot::State, &spec.resource_type, &spec.resource_id)
                && states.get(&state_key).is_none_or(|s| s.version <= spec.version)
            {
                let error = format!("cancelled: job {job_id} it depends on failed: {reason}");
                states.insert(state_key, StateRecord::failed(spec.action, error, spec.version));
            }
        }
        for (state_key, state) in states {
            writes.put_json(state_key, &state);
        }
        if !self.commit(writes).await? {
            return Ok(());
        }
        if let Some(job) = job {
            let resource = (job.spec.resource_type.clone(), job.spec.resource_id.clone());
            if reason.is_empty() {
                self.retries.forget(&resource);
            } else {
                let delay = self.retries.schedule(resource.clone(), job.spec.action);
                tracing::warn!(resource = ?resource, ?delay, "job failed; the resource will be tried again");
            }
            for dependent in &cancelled {
                let theirs = (dependent.spec.resource_type.clone(), dependent.spec.resource_id.clone());
                self.retries.schedule(theirs, dependent.spec.action);
            }
            if !self.view.configs.contains_key(&resource) {
                self.config_gone(&resource).await?;
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
    /// transaction each; a waiting entry without a job record is removed.
    async fn release(&mut self, mut candidates: Vec<String>) -> Result<(), StoreError> {
        candidates.sort();
        for id in candidates {
            let mut writes = Writes::default();
            writes.require_present(&JobQueue::Waiting.key(&id));
            match self.view.live.get(&id) {
                Some(job) if decide::releasable(job, |id| self.view.live.contains(id)) => {
                    tracing::info!(job = %id, "released to ready");
                    writes.put(JobQueue::Ready.key(&id), job.spec.handler.clone().into_bytes());
                    writes.delete(JobQueue::Waiting.key(&id));
                }
                Some(_) => continue,
                None => {
                    tracing::warn!(job = %id, "waiting entry without a job record; removing it");
                    writes.delete(JobQueue::Waiting.key(&id));
                }
            }
            self.commit(writes).await?;
        }
        Ok(())
    }
}
