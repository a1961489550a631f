//! `replay`: feed a scenario's timeline into a real etcd with the planner running, acting as Gohan
//! for config events and as the corpus's worker at each `job_finished`, then compare what the
//! planner wrote with the corpus (jobs, params, dependencies, READ_COMPLETE states, snapshots).

use crate::conformance::params::recorded_jobs;
use crate::conformance::{Scenario, TimelineEvent};
use crate::handoff::Handoff;
use crate::heat::HeatClient;
use crate::local::LocalEtcd;
use crate::planner::{self, PlannerOptions};
use crate::protocol::{
    Action, ConfigRecord, JobId, JobQueue, JobRecord, Param, Record, ResourceKey, ResourceRoot, StateRecord,
    WorkerSnapshot,
};
use crate::schema::Schema;
use crate::store::{Store, Txn, WatchEvent, watch_prefix};
use crate::worker::{self, WorkerOptions};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Expected and matched counts of one category.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    pub expected: usize,
    pub matched: usize,
}

impl Tally {
    fn check(&mut self, ok: bool) -> bool {
        self.expected += 1;
        self.matched += usize::from(ok);
        ok
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub jobs: Tally,
    pub params: Tally,
    /// Compared only at planner level: with a real worker, which jobs are still live when a
    /// new one is planned depends on how fast Heat is.
    pub dependencies: Tally,
    pub states: Tally,
    pub snapshots: Tally,
    /// With a real worker: resources whose `/state` reached their final config version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged: Option<Tally>,
    pub mismatches: Vec<String>,
}

impl ReplayReport {
    fn tallies(&self) -> Vec<(&'static str, &Tally)> {
        let mut tallies = vec![
            ("jobs", &self.jobs),
            ("params", &self.params),
            ("dependencies", &self.dependencies),
            ("states", &self.states),
            ("snapshots", &self.snapshots),
        ];
        if let Some(converged) = &self.converged {
            tallies.push(("converged", converged));
        }
        tallies
    }

    pub fn passed(&self) -> usize {
        self.tallies().iter().map(|(_, t)| t.matched).sum()
    }

    pub fn failed(&self) -> usize {
        self.tallies()
            .iter()
            .map(|(_, t)| t.expected - t.matched)
            .sum::<usize>()
            .max(usize::from(!self.mismatches.is_empty()))
    }

    pub fn summary(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.mismatches.iter().map(|m| format!("MISMATCH {m}")).collect();
        for (name, t) in self.tallies() {
            lines.push(format!("{name}: {} of {} matched", t.matched, t.expected));
        }
        lines.push(format!("{} passed, {} failed", self.passed(), self.failed()));
        lines
    }
}

/// Every value written under the keys the replay compares, in order.
#[derive(Default)]
struct Recorded {
    puts: Vec<(String, Vec<u8>)>,
}

const WAIT: Duration = Duration::from_secs(20);

/// How a replay runs.
#[derive(Clone, Default)]
pub struct ReplayOptions {
    /// An empty etcd to use instead of a fresh local one.
    pub etcd_endpoints: Option<Vec<String>>,
    /// Run the project's worker against this Heat instead of completing jobs as the corpus did.
    pub heat: Option<HeatClient>,
}

/// How long a replay waits for the worker to finish one job.
const JOB_WAIT: Duration = Duration::from_secs(300);

/// Replays `scenario` and compares the result with the corpus.
pub async fn replay(scenario: &Scenario, schema: &Schema, options: ReplayOptions) -> anyhow::Result<ReplayReport> {
    let local = match options.etcd_endpoints {
        Some(_) => None,
        None => Some(LocalEtcd::start().await?),
    };
    let endpoints =
        options.etcd_endpoints.clone().unwrap_or_else(|| local.as_ref().map(LocalEtcd::endpoints).unwrap_or_default());
    let store = Store::connect(&endpoints).await?;
    for prefix in ["/config/", "/jobs/", "/esi-worker/", "/state/"] {
        anyhow::ensure!(store.list(prefix).await?.0.is_empty(), "replay needs an empty store, but {prefix} holds keys");
    }

    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let mut recorder = watch_prefix(store.clone(), "/".to_owned());
    let sink = recorded.clone();
    let recorder_task = tokio::spawn(async move {
        while let Some(event) = recorder.recv().await {
            if let WatchEvent::Put(kv) = event
                && let Ok(mut r) = sink.lock()
            {
                r.puts.push((kv.key, kv.value));
            }
        }
    });

    let (progress_tx, progress) = watch::channel(0i64);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut planner_options = PlannerOptions::new(format!("replay-{}", std::process::id()));
    planner_options.lease_ttl = Duration::from_secs(5);
    // Both roles in one process, as `run` has them: the planner claims jobs for the worker.
    let handoff = options.heat.is_some().then(Handoff::default);
    planner_options.handoff = handoff.clone();
    let mut roles = tokio::task::JoinSet::new();
    roles.spawn(planner::run(store.clone(), schema.clone(), planner_options, progress_tx, shutdown.clone()));
    if let Some(heat) = options.heat.clone() {
        let worker_options = WorkerOptions { handoff, ..WorkerOptions::default() };
        roles.spawn(worker::run(store.clone(), schema.clone(), heat, worker_options, shutdown));
    }

    let mut report = ReplayReport::default();
    let with_worker = options.heat.is_some();
    let result = drive(scenario, schema, &store, progress, with_worker, &mut report).await;
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async { while roles.join_next().await.is_some() {} }).await;
    // Let the recorder see the last writes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    recorder_task.abort();
    result?;

    let puts = std::mem::take(&mut recorded.lock().map_err(|_| anyhow::anyhow!("recorder poisoned"))?.puts);
    compare(scenario, schema, &puts, with_worker, &mut report)?;
    if with_worker {
        report.converged = Some(converged(schema, &store, &mut report.mismatches).await?);
    }
    Ok(report)
}

/// Every resource of the final config has its `/state` at its config version, completed.
async fn converged(schema: &Schema, store: &Store, mismatches: &mut Vec<String>) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    for kv in store.list("/config/").await?.0 {
        let Ok(Record::Config(config)) = Record::from_etcd(&kv.key, &kv.value) else { continue };
        let Some(parsed) = ResourceKey::parse(&kv.key) else { continue };
        if schema.resource_types.resource_type(parsed.prefix).is_none() {
            continue;
        }
        let state_key = ResourceRoot::State.key(parsed.prefix, parsed.id);
        let state = match store.get(&state_key).await? {
            Some(state) => match Record::from_etcd(&state.key, &state.value) {
                Ok(Record::State(state)) => Some(state),
                _ => None,
            },
            None => None,
        };
        let done = |s: &StateRecord| {
            s.version == config.version && (s.is_read_complete() || s.state.worker_state.ends_with("_COMPLETED"))
        };
        if !tally.check(state.as_ref().is_some_and(done)) {
            let seen = state.map(|s| format!("{} at version {}: {}", s.state.worker_state, s.version, s.error));
            mismatches.push(format!(
                "{} did not converge to version {} ({})",
                kv.key,
                config.version,
                seen.unwrap_or_else(|| "no state".into())
            ));
        }
    }
    Ok(tally)
}

async fn wait_for(progress: &mut watch::Receiver<i64>, revision: i64) -> anyhow::Result<()> {
    tokio::time::timeout(WAIT, progress.wait_for(|r| *r >= revision))
        .await
        .map_err(|_| anyhow::anyhow!("the planner did not process revision {revision} within {WAIT:?}"))??;
    Ok(())
}

/// Our live job with the same identity (action, handler, type, id, version) as a corpus job.
async fn our_job(store: &Store, identity: &str) -> anyhow::Result<Option<JobRecord>> {
    for kv in store.list(JobQueue::All.dir()).await?.0 {
        if let Ok(Record::Job(record)) = Record::from_etcd(&kv.key, &kv.value)
            && record.job.id.parse::<JobId>().map(|id| id.identity()).ok().as_deref() == Some(identity)
        {
            return Ok(Some(*record));
        }
    }
    Ok(None)
}

async fn drive(
    scenario: &Scenario,
    schema: &Schema,
    store: &Store,
    mut progress: watch::Receiver<i64>,
    with_worker: bool,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    for (line, event) in scenario.timeline()? {
        match event {
            TimelineEvent::Config { key, value: Some(value), .. } => {
                let revision = store.put(&key, serde_json::to_vec(&value)?).await?;
                wait_for(&mut progress, revision).await?;
            }
            TimelineEvent::Config { key, value: None, .. } => {
                let revision = store.delete(&key).await?;
                wait_for(&mut progress, revision).await?;
            }
            TimelineEvent::JobCreated { .. } => {}
            TimelineEvent::JobFinished { job_id, failed, .. } => {
                let identity = job_id.parse::<JobId>()?.identity();
                if with_worker {
                    // Our worker runs the job; wait for it, as Gohan's next write waited for the original.
                    wait_until_finished(store, &identity, line, report).await?;
                    continue;
                }
                let Some(ours) = our_job(store, &identity).await? else {
                    report.mismatches.push(format!("timeline.jsonl:{line}: no live job {identity} to finish"));
                    continue;
                };
                let job = &ours.job;
                let waiting = store.get(&JobQueue::Waiting.key(&job.id)).await?.is_some();
                if waiting {
                    report
                        .mismatches
                        .push(format!("timeline.jsonl:{line}: {} finished in the corpus but still waits here", job.id));
                }
                finish_as_worker(schema, store, job, failed, &mut progress).await?;
            }
        }
    }
    Ok(())
}

/// Waits until the live job with this identity has left `/jobs/all` (run by our worker).
async fn wait_until_finished(
    store: &Store,
    identity: &str,
    line: usize,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + JOB_WAIT;
    while our_job(store, identity).await?.is_some() {
        if tokio::time::Instant::now() > deadline {
            report.mismatches.push(format!("timeline.jsonl:{line}: {identity} did not finish within {JOB_WAIT:?}"));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Acts as the worker: the job's `/state`, then the finished marker; waits for the planner.
async fn finish_as_worker(
    schema: &Schema,
    store: &Store,
    job: &crate::protocol::Job,
    failed: bool,
    progress: &mut watch::Receiver<i64>,
) -> anyhow::Result<()> {
    let spec = &job.spec;
    let state_key = schema.resource_types.key(ResourceRoot::State, &spec.resource_type, &spec.resource_id)?;
    let state = if failed {
        StateRecord::failed(spec.action, "failed in the corpus run".into(), spec.version)
    } else {
        let status = match spec.action {
            Action::Create => "CREATE_COMPLETE",
            Action::Modify => "UPDATE_COMPLETE",
            Action::LogicalDelete => "DELETE_COMPLETE",
        };
        StateRecord::completed(spec.action, status, Vec::new(), spec.version)
    };
    let marker = if failed { "failed in the corpus run" } else { "" };
    let txn = Txn::new()
        .delete(&JobQueue::Ready.key(&job.id))
        .put(&state_key, serde_json::to_vec(&state)?)
        .put(&JobQueue::Finished.key(&job.id), marker);
    let revision = store.commit(txn).await?.ok_or_else(|| anyhow::anyhow!("finishing {} failed", job.id))?;
    wait_for(progress, revision).await
}

fn compare(
    scenario: &Scenario,
    schema: &Schema,
    puts: &[(String, Vec<u8>)],
    with_worker: bool,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    // Our jobs by identity, our READ_COMPLETE states and snapshots as written.
    let mut ours: HashMap<String, JobRecord> = HashMap::new();
    let mut states: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut snapshots: HashMap<String, Vec<WorkerSnapshot>> = HashMap::new();
    for (key, value) in puts {
        match Record::from_etcd(key, value) {
            Ok(Record::Job(record)) => {
                if let Ok(id) = record.job.id.parse::<JobId>() {
                    ours.insert(id.identity(), *record);
                }
            }
            Ok(Record::State(state)) if state.is_read_complete() => {
                states.insert((key.clone(), state.version));
            }
            Ok(Record::Snapshot(snapshot)) => snapshots.entry(key.clone()).or_default().push(snapshot),
            _ => {}
        }
    }
    let identity_of: HashMap<&str, String> = ours.values().map(|r| (r.job.id.as_str(), identity(&r.job.id))).collect();
    let recorded = recorded_jobs(scenario)?;

    for (_, event) in scenario.timeline()? {
        let TimelineEvent::JobCreated { job_id, dependency, .. } = event else { continue };
        let wanted = identity(&job_id);
        let Some(mine) = ours.get(&wanted) else {
            report.jobs.check(false);
            report.mismatches.push(format!("job {wanted} was not planned"));
            continue;
        };
        report.jobs.check(true);
        let expected_deps: BTreeSet<String> = dependency.iter().map(|d| identity(d)).collect();
        let our_deps: BTreeSet<String> = mine
            .job
            .dependency
            .iter()
            .map(|d| identity_of.get(d.as_str()).cloned().unwrap_or_else(|| d.clone()))
            .collect();
        if !with_worker && !report.dependencies.check(expected_deps == our_deps) {
            report.mismatches.push(format!("job {wanted}: dependencies {our_deps:?}, expected {expected_deps:?}"));
        }
        if let Some(record) = recorded.get(&job_id) {
            let by_name: HashMap<&str, &Param> = mine.job.spec.params.iter().map(|p| (p.param.as_str(), p)).collect();
            for expected in &record.job.spec.params {
                let found = by_name.get(expected.param.as_str());
                if !report.params.check(found == Some(&expected)) {
                    report.mismatches.push(format!("job {wanted}: param `{}` differs", expected.param));
                }
            }
        }
    }

    // READ_COMPLETE states the corpus saw (its watchers are a lower bound).
    let mut expected_states = BTreeSet::new();
    for file in ["full", "state"] {
        for event in scenario.watch_file(file)? {
            if let Ok(Record::State(state)) = Record::decode(&event.key, event.value.clone())
                && state.is_read_complete()
            {
                expected_states.insert((event.key.clone(), state.version));
            }
        }
    }
    for expected in expected_states {
        if !report.states.check(states.contains(&expected)) {
            report.mismatches.push(format!("no READ_COMPLETE state {} at version {}", expected.0, expected.1));
        }
    }

    // Every processed config version has its snapshot.
    for (_, event) in scenario.timeline()? {
        let TimelineEvent::Config { key, value: Some(value), .. } = event else { continue };
        let Ok(Record::Config(config)) = Record::decode(&key, value) else { continue };
        let Some(parsed) = ResourceKey::parse(&key) else { continue };
        if schema.resource_types.resource_type(parsed.prefix).is_none() {
            continue;
        }
        let snapshot_key = ResourceRoot::Snapshot.key(parsed.prefix, parsed.id);
        let expected = expected_snapshot(&config);
        let found = snapshots.get(&snapshot_key).is_some_and(|all| all.contains(&expected));
        if !report.snapshots.check(found) {
            report.mismatches.push(format!("no snapshot {snapshot_key} at version {}", config.version));
        }
    }
    Ok(())
}

fn expected_snapshot(config: &ConfigRecord) -> WorkerSnapshot {
    WorkerSnapshot { body: config.shared_body().clone(), deleted: config.marked_for_deletion, version: config.version }
}

fn identity(job_id: &str) -> String {
    job_id.parse::<JobId>().map(|id| id.identity()).unwrap_or_else(|_| job_id.to_owned())
}

/// Writes the report file.
pub fn write_report(report: &ReplayReport, path: &std::path::Path) -> anyhow::Result<()> {
    let value: Value = serde_json::to_value(report)?;
    std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")?;
    Ok(())
}
