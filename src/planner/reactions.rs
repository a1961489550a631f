//! What the planner writes for each kind of reaction, computed from its view alone: planning a
//! resource, reporting why it cannot be planned, cleaning up after a logical delete, finishing a
//! job (and cancelling its dependents), releasing and requeueing jobs, and the order of retries.
//! Pure: the loop in `mod.rs` commits what these return and feeds the results back.

use super::decide;
use super::notes;
use super::view::{ResourceId, View};
use super::writes::Writes;
use crate::handoff::Reservation;
use crate::mapping::{Scope, Traversal, Workability, select_template};
use crate::protocol::{
    Action, Body, ConfigRecord, Job, JobId, JobQueue, JobSpec, JobState, ResourceRoot, StateRecord, WorkerSnapshot,
};
use crate::schema::Schema;
use crate::secrets::Secrets;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What planning a resource comes to.
#[derive(Debug)]
pub(crate) enum Plan {
    /// The snapshot, and a job (or READ_COMPLETE for a resource with no template).
    Write { writes: Writes, job: Option<Box<Job>> },
    /// It cannot be planned now: report why in its `/state` and try again later.
    Blocked { action: Action, version: u64, error: String },
    /// Its type has no key prefix: nothing to write anywhere.
    Nothing,
}

/// Plans `action` for the body of `config`: a job for a workable resource, READ_COMPLETE for the
/// others; the snapshot is written in the same transaction, guarded by its revision so a stale
/// view never plans twice.
pub(crate) fn plan(
    view: &View,
    schema: &Schema,
    resource: &ResourceId,
    config: &ConfigRecord,
    action: Action,
    previous: Option<&Body>,
    snapshot_revision: i64,
) -> Result<Plan, serde_json::Error> {
    let (Some(snapshot_key), Some(state_key)) =
        (key(schema, ResourceRoot::Snapshot, resource), key(schema, ResourceRoot::State, resource))
    else {
        return Ok(Plan::Nothing);
    };
    let body = config.body();
    let scope = Scope { index: &view.index, relations: &schema.relations, version: config.version };
    let mut writes = Writes::default();
    writes.require_revision(&snapshot_key, snapshot_revision);
    let snapshot = WorkerSnapshot {
        body: config.shared_body().clone(),
        deleted: config.marked_for_deletion,
        version: config.version,
    };
    writes.put_snapshot(snapshot_key, snapshot)?;
    // The error goes to `/state` and the log: the body's secrets are masked in it, whatever part
    // of the planner said it (mapping errors name no values, this keeps it so).
    let blocked = |error: String| {
        let secrets = Secrets::collect([("body", &serde_json::Value::Object(body.clone()))]);
        Ok(Plan::Blocked { action, version: config.version, error: secrets.mask(&error) })
    };
    let template = match select_template(&schema.template_mappings, &view.templates, scope, &resource.0, body) {
        Workability::NonWorkable(reason) => {
            tracing::info!(resource = ?resource, version = config.version, ?reason, "non-workable resource");
            writes.put_json(state_key, &StateRecord::read_complete(config.version))?;
            return Ok(Plan::Write { writes, job: None });
        }
        Workability::Broken(error) => return blocked(error),
        Workability::Workable(template) => template,
    };
    let traversal = match (previous, action) {
        (Some(previous), Action::Modify | Action::LogicalDelete) => Traversal::Twice { previous },
        _ => Traversal::Once,
    };
    let params = match template.evaluate_params(scope, &resource.0, body, traversal) {
        Ok(params) => params,
        Err(e) => return blocked(e.to_string()),
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
    job.dependency = view.live.dependencies(&job);
    let queue = if job.dependency.is_empty() { JobQueue::Ready } else { JobQueue::Waiting };
    writes.put(queue.key(&job.id), handler.into_bytes());
    writes.put_job(JobQueue::All.key(&job.id), job.clone())?;
    Ok(Plan::Write { writes, job: Some(Box::new(job)) })
}

/// Turns the plan of a job ready to run into its claim for the worker of this process
/// (`crate::handoff`): `/jobs/working/<id>` holding the reservation, bound to the worker's lease,
/// instead of `/jobs/ready/<id>`; the job marked started (job_state `{}`); and what the job
/// needs read at the plan's revision. The original's steps 3, 4 and 6 (PROTOCOL.md §3.4) at one
/// revision, as the worker's own claim makes steps 4 and 6. Returns the job_state key marked
/// started; `None`, with `writes` unchanged, when the plan does not make the job ready.
pub(crate) fn claim_in_plan(
    writes: &mut Writes,
    schema: &Schema,
    job: &Job,
    reservation: &Reservation,
) -> Result<Option<String>, serde_json::Error> {
    let spec = &job.spec;
    let Ok(started) = schema.resource_types.key(ResourceRoot::JobState, &spec.resource_type, &spec.resource_id) else {
        return Ok(None);
    };
    if !writes.unchange(&JobQueue::Ready.key(&job.id)) {
        return Ok(None);
    }
    writes.put_leased(JobQueue::Working.key(&job.id), reservation.id.clone().into_bytes(), reservation.lease);
    writes.put_json(started.clone(), &JobState::Started)?;
    writes.reads.extend(reservation.reads.iter().cloned());
    Ok(Some(started))
}

/// What bringing one resource in line with its `/config` comes to.
#[derive(Debug)]
pub(crate) enum Reconcile {
    /// Its `/config` is gone.
    Gone(Gone),
    /// Its config version is processed already.
    UpToDate,
    /// A config that cannot be read has no version to report against: only logged.
    Unreadable(String),
    /// Plan (or report why it cannot be planned).
    Plan(Plan),
}

/// Brings one resource's jobs and records in line with its `/config`: plans the action its
/// config and snapshot call for, or says why it cannot.
pub(crate) fn reconcile(view: &View, schema: &Schema, resource: &ResourceId) -> Result<Reconcile, serde_json::Error> {
    let Some((config, _)) = view.configs.get(resource) else {
        return Ok(Reconcile::Gone(config_gone(view, schema, resource)));
    };
    let config = match config {
        Ok(config) => config,
        Err(unreadable) => {
            let key = key(schema, ResourceRoot::Config, resource).unwrap_or_default();
            let error = format!("unreadable config {key}: {}", unreadable.error);
            return Ok(match unreadable.version {
                Some(version) => Reconcile::Plan(Plan::Blocked { action: Action::Create, version, error }),
                None => Reconcile::Unreadable(error),
            });
        }
    };
    if config.body_id() != Some(resource.1.as_str()) {
        let error = format!("config body `id` is {:?}, not the key's `{}`", config.body_id(), resource.1);
        return Ok(Reconcile::Plan(Plan::Blocked { action: Action::Create, version: config.version, error }));
    }
    let snapshot = view.snapshots.get(resource);
    let Some(action) = decide::choose_action(config, snapshot.map(|(s, _)| s)) else {
        return Ok(Reconcile::UpToDate);
    };
    let revision = snapshot.map_or(0, |(_, rev)| *rev);
    let previous = snapshot.map(|(s, _)| &*s.body);
    Ok(Reconcile::Plan(plan(view, schema, resource, config, action, previous, revision)?))
}

/// `/state` `<ACTION>_FAILED` with why the resource cannot be planned.
pub(crate) fn report(
    schema: &Schema,
    resource: &ResourceId,
    action: Action,
    version: u64,
    error: &str,
) -> Result<Option<Writes>, serde_json::Error> {
    let Some(state_key) = key(schema, ResourceRoot::State, resource) else { return Ok(None) };
    let mut writes = Writes::default();
    writes.put_json(state_key, &StateRecord::failed(action, error.to_owned(), version))?;
    Ok(Some(writes))
}

/// What Gohan's removal of a resource's `/config` comes to.
#[derive(Debug)]
pub(crate) enum Gone {
    /// Nothing to do: never processed, or already cleaned up.
    Nothing,
    /// Its last job still runs: clean up once it has finished.
    Wait,
    /// Deleted without `marked_for_deletion` (never seen in the corpus): de-provision it as a
    /// logical delete of this config (the last processed body at the next version).
    Deprovision { config: ConfigRecord, snapshot_revision: i64 },
    /// After a logical delete: the snapshot and the heat_stacks record go.
    CleanUp(Writes),
}

pub(crate) fn config_gone(view: &View, schema: &Schema, resource: &ResourceId) -> Gone {
    let Some((snapshot, revision)) = view.snapshots.get(resource) else { return Gone::Nothing };
    if view.live_job_of(resource).is_some() {
        return Gone::Wait;
    }
    if !snapshot.deleted {
        let config = ConfigRecord::new(snapshot.body.clone(), snapshot.version + 1, true);
        return Gone::Deprovision { config, snapshot_revision: *revision };
    }
    let (Some(snapshot_key), Some(stacks_key)) =
        (key(schema, ResourceRoot::Snapshot, resource), key(schema, ResourceRoot::HeatStacks, resource))
    else {
        return Gone::Nothing;
    };
    let mut writes = Writes::default();
    writes.require_revision(&snapshot_key, *revision);
    writes.delete(snapshot_key);
    writes.delete(stacks_key);
    writes.delete(notes::retry_key(resource));
    Gone::CleanUp(writes)
}

/// A finished job's removal, with its cancelled dependents.
#[derive(Debug)]
pub(crate) struct Finish {
    pub writes: Writes,
    /// The job, if its record is still there.
    pub job: Option<Job>,
    /// `""` on success, else why it failed.
    pub reason: String,
    /// The waiting jobs that depended on it, directly or not, when it failed.
    pub cancelled: Vec<Job>,
}

/// Removes a finished job from every queue; if it failed, deletes its transitive waiting
/// dependents and writes their resources' `/state` failed (one per resource, for its latest
/// cancelled job: etcd rejects a transaction that puts one key twice).
pub(crate) fn finish(view: &View, schema: &Schema, job_id: &str) -> Result<Option<Finish>, serde_json::Error> {
    let Some(reason) = view.finished.get(job_id).cloned() else { return Ok(None) };
    let job = view.live.get(job_id).cloned();
    let mut writes = Writes::default();
    for queue in JobQueue::ALL {
        let present = match queue {
            JobQueue::All => job.is_some(),
            JobQueue::Waiting => view.waiting.contains(job_id),
            JobQueue::Ready => view.ready.contains(job_id),
            JobQueue::Working => false,
            JobQueue::Finished => true,
        };
        if present {
            writes.delete(queue.key(job_id));
        }
    }
    writes.delete(notes::job_time_key(job_id));
    if let Some(job) = job.as_ref().filter(|_| reason.is_empty()) {
        // A success ends the resource's retries: the note goes with the job.
        writes.delete(notes::retry_key(&(job.spec.resource_type.clone(), job.spec.resource_id.clone())));
    }
    let mut cancelled = Vec::new();
    if job.is_some() && !reason.is_empty() {
        let waiting: Vec<&Job> = view.waiting.iter().filter_map(|id| view.live.get(id)).collect();
        cancelled = decide::cancelled_by(job_id, &waiting).iter().filter_map(|id| view.live.get(id).cloned()).collect();
    }
    let mut states: BTreeMap<String, StateRecord> = BTreeMap::new();
    for dependent in &cancelled {
        let spec = &dependent.spec;
        writes.delete(JobQueue::All.key(&dependent.id));
        writes.delete(JobQueue::Waiting.key(&dependent.id));
        writes.delete(notes::job_time_key(&dependent.id));
        if let Ok(state_key) = schema.resource_types.key(ResourceRoot::State, &spec.resource_type, &spec.resource_id)
            && states.get(&state_key).is_none_or(|s| s.version <= spec.version)
        {
            let error = format!("cancelled: job {job_id} it depends on failed: {reason}");
            states.insert(state_key, StateRecord::failed(spec.action, error, spec.version));
        }
    }
    for (state_key, state) in states {
        writes.put_json(state_key, &state)?;
    }
    Ok(Some(Finish { writes, job, reason, cancelled }))
}

/// A waiting job moved to ready once none of its dependencies is live (a waiting entry without a
/// job record is removed); `None` while it must still wait.
pub(crate) fn release(view: &View, id: &str) -> Option<Writes> {
    let mut writes = Writes::default();
    writes.require_present(&JobQueue::Waiting.key(id));
    match view.live.get(id) {
        Some(job) if decide::releasable(job, |id| view.live.contains(id)) => {
            writes.put(JobQueue::Ready.key(id), job.spec.handler.clone().into_bytes());
            writes.delete(JobQueue::Waiting.key(id));
        }
        Some(_) => return None,
        None => writes.delete(JobQueue::Waiting.key(id)),
    }
    Some(writes)
}

/// A live job in no queue (its worker died and its claim expired with the worker's lease) goes
/// back to ready, guarded so it never races a claim or a finished marker; `None` when it is
/// queued somewhere.
pub(crate) fn requeue(view: &View, id: &str) -> Option<Writes> {
    let job = view.live.get(id)?;
    let queued = view.waiting.contains(id)
        || view.ready.contains(id)
        || view.working.contains(id)
        || view.finished.contains_key(id);
    if queued {
        return None;
    }
    let mut writes = Writes::default();
    writes.require_present(&JobQueue::All.key(id));
    for queue in [JobQueue::Working, JobQueue::Finished, JobQueue::Ready, JobQueue::Waiting] {
        writes.require_absent(&queue.key(id));
    }
    writes.put(JobQueue::Ready.key(id), job.spec.handler.clone().into_bytes());
    Some(writes)
}

/// Orders retries due together so that a resource is planned after the resources it references
/// (before them for a logical delete). A consumer planned first would find no live job of its
/// provider, run, fail for the provider's missing outputs, and cancel the provider's job, which
/// waits for it as a reverse dependency: both would fail again on every retry. Planned after the
/// provider, it waits for it instead. Ties keep the given order.
pub(crate) fn providers_first(
    view: &View,
    schema: &Schema,
    due: Vec<(ResourceId, Action)>,
) -> Vec<(ResourceId, Action)> {
    let index: HashMap<&ResourceId, usize> = due.iter().enumerate().map(|(i, (r, _))| (r, i)).collect();
    // before[i]: the due entries that must be planned before entry i.
    let mut before: Vec<HashSet<usize>> = vec![HashSet::new(); due.len()];
    for (i, (resource, action)) in due.iter().enumerate() {
        for referenced in references(view, schema, resource) {
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

/// The resources a job for the resource's current config would reference (none when its params
/// cannot be evaluated now).
fn references(view: &View, schema: &Schema, resource: &ResourceId) -> HashSet<ResourceId> {
    let Some((Ok(config), _)) = view.configs.get(resource) else { return HashSet::new() };
    let scope = Scope { index: &view.index, relations: &schema.relations, version: config.version };
    let body = config.body();
    let Workability::Workable(template) =
        select_template(&schema.template_mappings, &view.templates, scope, &resource.0, body)
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

fn key(schema: &Schema, root: ResourceRoot, resource: &ResourceId) -> Option<String> {
    schema.resource_types.key(root, &resource.0, &resource.1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::keys::HEAT_TEMPLATE_TYPE;
    use crate::store::KeyValue;
    use serde_json::{Value, json};

    const TENANT: &str = "t1";

    struct Fixture {
        schema: Schema,
        view: View,
        revision: i64,
    }

    impl Fixture {
        /// A view holding the `network` and `subnet` templates (a subnet's params reference its
        /// network) and no resource yet.
        fn new() -> Fixture {
            let mut fixture = Fixture { schema: Schema::shipped().unwrap(), view: View::default(), revision: 0 };
            fixture.template("network", json!({"name": "Pname", "tenant_id": "Ptenant_id"}));
            fixture.template(
                "subnet",
                json!({"name": "Pid", "network_id": "Mnetwork:network_id:id", "network_name": "Fnetwork+network_id:name"}),
            );
            fixture
        }

        fn put(&mut self, key: &str, value: Vec<u8>) {
            self.revision += 1;
            let kv = KeyValue {
                key: key.to_owned(),
                value,
                mod_revision: self.revision,
                create_revision: self.revision,
                lease: 0,
            };
            self.view.put(&self.schema, kv);
        }

        fn template(&mut self, id: &str, mappings: Value) {
            let body = json!({"id": id, "handler": "heat_worker", "watch": [], "parameter_mappings": mappings,
                              "template_file": "heat_template_version: 2013-05-23\nresources: {}\n"});
            let record = ConfigRecord::new(body.as_object().unwrap().clone(), 1, false);
            let key = ResourceRoot::Config.key(&format!("/v2.0/{HEAT_TEMPLATE_TYPE}s"), id);
            self.put(&key, serde_json::to_vec(&record).unwrap());
        }

        /// Writes a config as Gohan does; returns it.
        fn config(&mut self, resource: &ResourceId, body: Value, version: u64, marked: bool) -> ConfigRecord {
            let record = ConfigRecord::new(body.as_object().unwrap().clone(), version, marked);
            let key = self.schema.resource_types.key(ResourceRoot::Config, &resource.0, &resource.1).unwrap();
            self.put(&key, serde_json::to_vec(&record).unwrap());
            record
        }

        /// What the loop does once a decision committed.
        fn commit(&mut self, writes: &Writes) {
            for (key, value) in &writes.changes {
                match value {
                    Some(value) => self.put(key, value.clone()),
                    None => {
                        self.revision += 1;
                        self.view.delete(&self.schema, key, self.revision);
                    }
                }
            }
        }

        /// Plans `resource`'s current config as the loop would (create, or modify over its
        /// snapshot), commits it and returns its job.
        fn plan_committed(&mut self, resource: &ResourceId) -> (Writes, Job) {
            let (config, _) = self.view.configs.get(resource).cloned().unwrap();
            let config = config.unwrap();
            let snapshot = self.view.snapshots.get(resource).cloned();
            let action = decide::choose_action(&config, snapshot.as_ref().map(|(s, _)| s)).unwrap();
            let previous = snapshot.as_ref().map(|(s, _)| s.body.clone());
            let revision = snapshot.as_ref().map_or(0, |(_, r)| *r);
            let plan =
                plan(&self.view, &self.schema, resource, &config, action, previous.as_deref(), revision).unwrap();
            let Plan::Write { writes, job: Some(job) } = plan else { panic!("not a job: {plan:?}") };
            self.commit(&writes);
            (writes, *job)
        }
    }

    fn network() -> ResourceId {
        ("network".into(), "n1".into())
    }

    fn subnet() -> ResourceId {
        ("subnet".into(), "s1".into())
    }

    fn snapshot_key(resource: &ResourceId) -> String {
        format!("/esi-worker/config/v2.0/{}s/{}", resource.0, resource.1)
    }

    #[test]
    fn a_job_with_nothing_live_to_wait_for_is_ready_with_its_snapshot_guarded() {
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (writes, job) = f.plan_committed(&network());
        assert_eq!(writes.guards, vec![super::super::writes::Guard::Revision(snapshot_key(&network()), 0)]);
        assert!(writes.put_at(&snapshot_key(&network())).is_some());
        assert_eq!(writes.put_at(&JobQueue::Ready.key(&job.id)), Some(&b"heat_worker"[..]));
        assert!(writes.put_at(&JobQueue::All.key(&job.id)).is_some());
        assert!(job.dependency.is_empty());
        assert_eq!((job.spec.action, job.spec.version), (Action::Create, 1));
        assert!(job.id.starts_with("create:heat_worker:network:n1:1:"), "{}", job.id);
    }

    #[test]
    fn the_records_a_decision_keeps_for_the_view_are_what_its_bytes_decode_to() {
        use super::super::writes::Decided;
        use crate::protocol::Record;
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        for resource in [network(), subnet()] {
            let config = f.view.configs[&resource].0.clone().unwrap();
            let plan = plan(&f.view, &f.schema, &resource, &config, Action::Create, None, 0).unwrap();
            let Plan::Write { writes, job: Some(_) } = plan else { panic!("not a job: {plan:?}") };
            assert_eq!(writes.records.len(), 2, "{resource:?}: the job record and the snapshot");
            for (key, decided) in &writes.records {
                match (decided, Record::from_etcd(key, writes.put_at(key).unwrap()).unwrap()) {
                    (Decided::Job(job), Record::Job(decoded)) => assert_eq!(**job, decoded.job),
                    (Decided::Snapshot(snapshot), Record::Snapshot(decoded)) => assert_eq!(*snapshot, decoded),
                    other => panic!("{key}: {other:?}"),
                }
            }
            // The view assumes the same from the records as from the bytes.
            let (mut decoding, mut taking) = (View::default(), View::default());
            decoding.assume(&f.schema, &writes.changes, Vec::new());
            taking.assume(&f.schema, &writes.changes, writes.records.clone());
            assert!(taking.live_job_of(&resource).is_some());
            assert_eq!(decoding.live_job_of(&resource), taking.live_job_of(&resource));
            assert_eq!(decoding.snapshots.get(&resource), taking.snapshots.get(&resource));
            // A snapshot taken as it is still holds the config's body itself, not a copy.
            f.view.assume(&f.schema, &writes.changes, writes.records.clone());
            let held = &f.view.snapshots[&resource].0.body;
            assert!(std::sync::Arc::ptr_eq(held, f.view.configs[&resource].0.as_ref().unwrap().shared_body()));
            f.commit(&writes);
        }
    }

    #[test]
    fn a_ready_job_claimed_in_its_plan_goes_to_working_under_the_workers_lease() {
        let mut f = Fixture::new();
        let handoff = crate::handoff::Handoff::default();
        let needs: crate::handoff::NeededKeys = std::sync::Arc::new(|_: &Job| vec!["/config/template".to_owned()]);
        let _handed = handoff.open("heat_worker", 42, std::sync::Arc::new(tokio::sync::Semaphore::new(8)), needs);

        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (mut writes, network_job) = f.plan_committed(&network());
        let reservation = handoff.reserve(&network_job).unwrap();
        let started = claim_in_plan(&mut writes, &f.schema, &network_job, &reservation).unwrap();
        assert_eq!(started.as_deref(), Some("/esi-worker/job_state/v2.0/networks/n1"));
        assert_eq!(writes.put_at(&JobQueue::Ready.key(&network_job.id)), None, "never ready for another worker");
        let working = JobQueue::Working.key(&network_job.id);
        assert_eq!(writes.put_at(&working), Some(reservation.id.as_bytes()));
        assert_eq!(writes.leases, vec![(working, 42)]);
        assert_eq!(writes.put_at("/esi-worker/job_state/v2.0/networks/n1"), Some(&b"{}"[..]));
        assert!(writes.put_at(&JobQueue::All.key(&network_job.id)).is_some());
        assert_eq!(writes.reads, ["/config/template"]);
        let summary = writes.txn().summary();
        assert!(summary.contains(&format!("put /jobs/working/{} (lease)", network_job.id)), "{summary}");
        assert!(summary.ends_with("get /config/template"), "{summary}");

        // A job that waits for another is not claimed: it is not ready.
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        let (mut writes, subnet_job) = f.plan_committed(&subnet());
        let before = writes.clone();
        let reservation = handoff.reserve(&subnet_job).unwrap();
        assert_eq!(claim_in_plan(&mut writes, &f.schema, &subnet_job, &reservation).unwrap(), None);
        assert_eq!(writes, before);
    }

    #[test]
    fn a_consumer_waits_for_its_providers_live_job_and_a_missing_provider_blocks_it() {
        let mut f = Fixture::new();
        let config = f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        let blocked = plan(&f.view, &f.schema, &subnet(), &config, Action::Create, None, 0).unwrap();
        let Plan::Blocked { error, version: 1, .. } = blocked else { panic!("{blocked:?}") };
        assert!(error.contains("n1"), "{error}");

        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (_, network_job) = f.plan_committed(&network());
        let (writes, subnet_job) = f.plan_committed(&subnet());
        assert_eq!(subnet_job.dependency, vec![network_job.id.clone()]);
        assert!(writes.put_at(&JobQueue::Waiting.key(&subnet_job.id)).is_some());
        assert!(release(&f.view, &subnet_job.id).is_none(), "the network's job is still live");
    }

    #[test]
    fn a_failed_job_cancels_its_dependents_with_one_state_per_resource() {
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (_, network_job) = f.plan_committed(&network());
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        let (_, first) = f.plan_committed(&subnet());
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT, "name": "b"}), 2, false);
        let (_, second) = f.plan_committed(&subnet());
        assert!(second.dependency.contains(&first.id), "one resource's jobs never overlap");

        f.put(&JobQueue::Finished.key(&network_job.id), b"HTTPInternalServerError".to_vec());
        let finish = finish(&f.view, &f.schema, &network_job.id).unwrap().unwrap();
        let cancelled: Vec<&str> = finish.cancelled.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(cancelled.len(), 2);
        assert!(cancelled.contains(&first.id.as_str()) && cancelled.contains(&second.id.as_str()));
        for id in [&network_job.id, &first.id, &second.id] {
            assert!(finish.writes.deletes(&JobQueue::All.key(id)), "{id}");
        }
        let states: Vec<&(String, Option<Vec<u8>>)> =
            finish.writes.changes.iter().filter(|(k, _)| k.starts_with("/state/")).collect();
        assert_eq!(states.len(), 1, "etcd refuses two puts of one key in a transaction");
        let state: StateRecord = serde_json::from_slice(states[0].1.as_ref().unwrap()).unwrap();
        assert_eq!((state.version, state.state.worker_state.as_str()), (2, "MODIFY_FAILED"));
        assert!(state.error.contains(&network_job.id) && state.error.contains("HTTPInternalServerError"));
    }

    #[test]
    fn a_failure_cancels_dependents_transitively() {
        let mut f = Fixture::new();
        f.template("port", json!({"subnet": "Msubnet:subnet_id:id"}));
        let port: ResourceId = ("port".into(), "p1".into());
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (_, network_job) = f.plan_committed(&network());
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        let (_, subnet_job) = f.plan_committed(&subnet());
        f.config(&port, json!({"id": "p1", "subnet_id": "s1", "tenant_id": TENANT}), 1, false);
        let (_, port_job) = f.plan_committed(&port);
        assert_eq!(port_job.dependency, vec![subnet_job.id.clone()], "the port waits for the subnet only");
        f.put(&JobQueue::Finished.key(&network_job.id), b"database down".to_vec());
        let finish = finish(&f.view, &f.schema, &network_job.id).unwrap().unwrap();
        let mut cancelled: Vec<String> = finish.cancelled.iter().map(|j| j.id.clone()).collect();
        cancelled.sort();
        let mut expected = vec![subnet_job.id.clone(), port_job.id.clone()];
        expected.sort();
        assert_eq!(cancelled, expected);
        let state: StateRecord =
            serde_json::from_slice(finish.writes.put_at("/state/v2.0/ports/p1").expect("the port's state")).unwrap();
        assert_eq!(state.state.orchestration_state.as_deref(), Some("CREATE_ERROR"));
    }

    /// The reconcile decision for `resource` after `raw` was written to its `/config` key.
    fn reconcile_raw(f: &mut Fixture, key: &str, raw: &[u8], resource: &ResourceId) -> Reconcile {
        f.put(key, raw.to_vec());
        reconcile(&f.view, &f.schema, resource).unwrap()
    }

    #[test]
    fn bad_configs_are_reported_against_their_version_if_they_have_one() {
        let mut f = Fixture::new();
        let bad = ("network".to_owned(), "bad".to_owned());
        let decision = reconcile_raw(&mut f, "/config/v2.0/networks/bad", b"{not json", &bad);
        assert!(matches!(&decision, Reconcile::Unreadable(e) if e.contains("unreadable config")), "{decision:?}");
        let raw = br#"{"body": "[1, 2]", "version": 4, "marked_for_deletion": false}"#;
        let decision = reconcile_raw(&mut f, "/config/v2.0/networks/bad", raw, &bad);
        let Reconcile::Plan(Plan::Blocked { version: 4, action: Action::Create, error }) = decision else {
            panic!("{decision:?}")
        };
        assert!(error.contains("unreadable config"), "{error}");

        let raw = br#"{"body": "{\"name\":\"x\"}", "version": 1, "marked_for_deletion": false}"#;
        let decision = reconcile_raw(&mut f, "/config/v2.0/networks/bad", raw, &bad);
        let Reconcile::Plan(Plan::Blocked { error, .. }) = decision else { panic!("{decision:?}") };
        assert!(error.contains("`id`"), "{error}");

        // A prefix no resource type owns never reaches the view.
        f.put("/config/v9.9/gizmos/g1", br#"{"body": "{\"id\":\"g1\"}", "version": 1}"#.to_vec());
        assert!(f.view.configs.keys().all(|(kind, _)| kind != "gizmo"));
    }

    #[test]
    fn resources_without_a_template_are_acknowledged_and_broken_mappings_reported() {
        let mut f = Fixture::new();
        // vnf_instance maps to the `vnf_instance` template, which this view does not hold; a
        // tenant has no template mapping at all; a DHCP port's mapping gives no template.
        f.template("port", json!({"name": "Pid"}));
        for (resource, body) in [
            (("vnf_instance".to_owned(), "v1".to_owned()), json!({"id": "v1", "tenant_id": TENANT})),
            (("tenant".to_owned(), "t1".to_owned()), json!({"id": "t1"})),
            (("port".to_owned(), "p1".to_owned()), json!({"id": "p1", "device_owner": "network:dhcp"})),
        ] {
            f.config(&resource, body, 1, false);
            let decision = reconcile(&f.view, &f.schema, &resource).unwrap();
            let Reconcile::Plan(Plan::Write { writes, job: None }) = decision else {
                panic!("{resource:?}: {decision:?}")
            };
            let state_key = f.schema.resource_types.key(ResourceRoot::State, &resource.0, &resource.1).unwrap();
            let state = writes.put_at(&state_key).expect("READ_COMPLETE");
            assert_eq!(state, br#"{"error":"","state":{"worker_state":"READ_COMPLETE"},"version":1}"#);
        }

        f.template("firewall_config", json!({"broken": "Qnot-a-mapping"}));
        let firewall = ("firewall".to_owned(), "fw1".to_owned());
        f.config(&firewall, json!({"id": "fw1", "tenant_id": TENANT}), 1, false);
        let Reconcile::Plan(Plan::Blocked { error, .. }) = reconcile(&f.view, &f.schema, &firewall).unwrap() else {
            panic!("a broken mapping is reported")
        };
        assert!(error.contains("template `firewall_config`, param `broken`"), "{error}");
        assert!(matches!(reconcile(&f.view, &f.schema, &network()).unwrap(), Reconcile::Gone(Gone::Nothing)));
    }

    #[test]
    fn a_successful_job_releases_its_waiters() {
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (_, network_job) = f.plan_committed(&network());
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        let (_, subnet_job) = f.plan_committed(&subnet());
        f.put(&JobQueue::Finished.key(&network_job.id), Vec::new());
        let finish = finish(&f.view, &f.schema, &network_job.id).unwrap().unwrap();
        assert!(finish.cancelled.is_empty() && finish.reason.is_empty());
        f.commit(&finish.writes);
        let released = release(&f.view, &subnet_job.id).expect("released");
        assert_eq!(released.guards, vec![super::super::writes::Guard::Present(JobQueue::Waiting.key(&subnet_job.id))]);
        assert!(released.put_at(&JobQueue::Ready.key(&subnet_job.id)).is_some());
        assert!(released.deletes(&JobQueue::Waiting.key(&subnet_job.id)));
    }

    #[test]
    fn a_job_in_no_queue_is_requeued_only_if_still_in_none() {
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (_, job) = f.plan_committed(&network());
        assert!(requeue(&f.view, &job.id).is_none(), "it is ready");
        f.revision += 1;
        f.view.delete(&f.schema, &JobQueue::Ready.key(&job.id), f.revision);
        let writes = requeue(&f.view, &job.id).expect("requeued");
        assert!(writes.put_at(&JobQueue::Ready.key(&job.id)).is_some());
        for queue in [JobQueue::Working, JobQueue::Finished, JobQueue::Ready, JobQueue::Waiting] {
            assert!(writes.guards.contains(&super::super::writes::Guard::Absent(queue.key(&job.id))));
        }
    }

    #[test]
    fn retries_plan_providers_first_and_consumers_first_for_deletes() {
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        f.config(&subnet(), json!({"id": "s1", "network_id": "n1", "tenant_id": TENANT}), 1, false);
        let due = vec![(subnet(), Action::Create), (network(), Action::Create)];
        let order: Vec<ResourceId> = providers_first(&f.view, &f.schema, due).into_iter().map(|(r, _)| r).collect();
        assert_eq!(order, vec![network(), subnet()]);
        let due = vec![(network(), Action::LogicalDelete), (subnet(), Action::LogicalDelete)];
        let order: Vec<ResourceId> = providers_first(&f.view, &f.schema, due).into_iter().map(|(r, _)| r).collect();
        assert_eq!(order, vec![subnet(), network()]);
    }

    #[test]
    fn a_config_gone_after_a_logical_delete_cleans_up_and_one_gone_without_it_deprovisions() {
        let mut f = Fixture::new();
        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 1, false);
        let (_, job) = f.plan_committed(&network());
        assert!(matches!(config_gone(&f.view, &f.schema, &network()), Gone::Wait), "its job still runs");
        for queue in [JobQueue::All, JobQueue::Ready] {
            f.revision += 1;
            f.view.delete(&f.schema, &queue.key(&job.id), f.revision);
        }
        let Gone::Deprovision { config, .. } = config_gone(&f.view, &f.schema, &network()) else { panic!() };
        assert_eq!((config.version, config.marked_for_deletion), (2, true));

        f.config(&network(), json!({"id": "n1", "name": "net", "tenant_id": TENANT}), 2, true);
        let (_, delete) = f.plan_committed(&network());
        assert_eq!(delete.spec.action, Action::LogicalDelete);
        for queue in [JobQueue::All, JobQueue::Ready] {
            f.revision += 1;
            f.view.delete(&f.schema, &queue.key(&delete.id), f.revision);
        }
        let Gone::CleanUp(writes) = config_gone(&f.view, &f.schema, &network()) else { panic!() };
        assert!(writes.deletes(&snapshot_key(&network())));
        assert!(writes.deletes("/esi-worker/heat_stacks/v2.0/networks/n1"));
    }
}
