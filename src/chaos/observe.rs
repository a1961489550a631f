//! Observing etcd.

use super::*;
use crate::heat::{HeatClient, StackRef};
use crate::protocol::{HeatStackRecord, JobQueue, Record, ResourceRoot, StateRecord};
use crate::store::{Store, WatchEvent, watch_prefix};
use futures::StreamExt as _;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Everything the chaos learns about jobs from a watch on `/jobs/`.
#[derive(Default)]
pub(super) struct JobLog {
    /// Job id → stack name of its resource.
    pub(super) planned: HashMap<String, String>,
    /// Job id → the finished marker's value (`""` on success).
    pub(super) finished: HashMap<String, String>,
}

/// A task aborted when dropped (so an interrupted run does not leave it watching).
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn follow_jobs(store: Store, log: Arc<Mutex<JobLog>>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut events = watch_prefix(store, "/jobs/".to_owned());
        while let Some(event) = events.recv().await {
            let items = match event {
                WatchEvent::Listed { items, .. } => items,
                WatchEvent::Put(kv) => vec![kv],
                _ => continue,
            };
            let Ok(mut log) = log.lock() else { return };
            for kv in items {
                match JobQueue::parse(&kv.key) {
                    Some((JobQueue::All, id)) => {
                        if let Ok(Record::Job(record)) = Record::from_etcd(&kv.key, &kv.value) {
                            let spec = &record.job.spec;
                            log.planned.insert(id.to_owned(), format!("{}_{}", spec.resource_type, spec.resource_id));
                        }
                    }
                    Some((JobQueue::Finished, id)) => {
                        log.finished.insert(id.to_owned(), String::from_utf8_lossy(&kv.value).into_owned());
                    }
                    _ => {}
                }
            }
        }
    }))
}

/// An etcd call that gives up after a while (etcd may be down).
pub(super) async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> anyhow::Result<T> {
    Ok(tokio::time::timeout(Duration::from_secs(3), future).await??)
}

/// Puts a key, retrying for up to a minute (through the etcd restart).
pub(super) async fn put_retrying(store: &Store, key: &str, value: &[u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match bounded(store.put(key, value.to_vec())).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(key, error = %e, "put failed; retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e.context(format!("writing {key}"))),
        }
    }
}

/// Acts as Gohan after a delete: once a marked resource's `/state` says DELETE_COMPLETED at its
/// final version, removes its `/config` key. Returns how many it removed.
pub(super) async fn remove_deleted(
    store: &Store,
    resources: &[Resource],
    marked: &[bool],
    removed: &mut [bool],
) -> usize {
    let mut count = 0;
    for (i, r) in resources.iter().enumerate() {
        if !marked[i] || removed[i] {
            continue;
        }
        let Ok(Some(kv)) = bounded(store.get(&r.key(ResourceRoot::State))).await else { continue };
        let Ok(Record::State(state)) = Record::from_etcd(&kv.key, &kv.value) else { continue };
        if state.version == r.final_version()
            && state.state.worker_state == "DELETE_COMPLETED"
            && bounded(store.delete(&r.key(ResourceRoot::Config))).await.is_ok()
        {
            removed[i] = true;
            count += 1;
        }
    }
    count
}

/// What etcd and Heat hold at the end, resource by resource.
pub(super) struct Assessment {
    /// Per resource: `None` when converged, else why not.
    pub(super) problems: Vec<Option<String>>,
    pub(super) duplicate_stacks: usize,
    /// Keys under `/jobs/` and `/esi-worker/job_state/`.
    pub(super) leftovers: Vec<String>,
    /// Heat stacks that belong to no resource or exceed one per resource.
    pub(super) stray_stacks: Vec<String>,
}

impl Assessment {
    pub(super) fn converged(&self) -> usize {
        self.problems.iter().filter(|p| p.is_none()).count()
    }

    pub(super) fn all_good(&self) -> bool {
        self.converged() == self.problems.len() && self.duplicate_stacks == 0 && self.leftovers.is_empty()
    }
}

pub(super) fn decode_all<T>(
    items: Vec<crate::store::KeyValue>,
    pick: impl Fn(Record) -> Option<T>,
) -> HashMap<String, T> {
    items
        .into_iter()
        .filter_map(|kv| Record::from_etcd(&kv.key, &kv.value).ok().and_then(&pick).map(|v| (kv.key, v)))
        .collect()
}

pub(super) async fn assess(store: &Store, heat: &HeatClient, resources: &[Resource]) -> anyhow::Result<Assessment> {
    let configs = decode_all(bounded(store.list("/config/v2.0/")).await?.0, |r| match r {
        Record::Config(c) => Some(c),
        _ => None,
    });
    let states: HashMap<String, StateRecord> =
        decode_all(bounded(store.list(&ResourceRoot::State.dir())).await?.0, |r| match r {
            Record::State(s) => Some(s),
            _ => None,
        });
    let stacks: HashMap<String, HeatStackRecord> =
        decode_all(bounded(store.list(&ResourceRoot::HeatStacks.dir())).await?.0, |r| match r {
            Record::HeatStack(s) => Some(s),
            _ => None,
        });
    let snapshots: Vec<String> =
        bounded(store.list(&ResourceRoot::Snapshot.dir())).await?.0.into_iter().map(|kv| kv.key).collect();
    let mut leftovers: Vec<String> = bounded(store.list("/jobs/")).await?.0.into_iter().map(|kv| kv.key).collect();
    leftovers.extend(bounded(store.list(&ResourceRoot::JobState.dir())).await?.0.into_iter().map(|kv| kv.key));

    let mut in_heat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut refs: HashMap<String, StackRef> = HashMap::new();
    for (stack, status) in heat.list(TENANT).await? {
        in_heat.entry(stack.name.clone()).or_default().push(status);
        refs.insert(stack.name.clone(), stack);
    }
    let mut duplicate_stacks = 0;
    let mut stray_stacks = Vec::new();
    let mut problems = Vec::new();
    for r in resources {
        let stacks_in_heat = in_heat.remove(&r.stack_name()).unwrap_or_default();
        let wanted = usize::from(!r.deleted);
        if stacks_in_heat.len() > wanted {
            duplicate_stacks += stacks_in_heat.len() - wanted;
            stray_stacks.push(format!("{} ({})", r.stack_name(), stacks_in_heat.join(", ")));
        }
        let config_key = r.key(ResourceRoot::Config);
        let problem = if r.deleted {
            if configs.contains_key(&config_key) {
                let state = states.get(&r.key(ResourceRoot::State));
                Some(format!("not deleted yet: {}", describe_state(state)))
            } else if snapshots.contains(&r.key(ResourceRoot::Snapshot)) {
                Some("config removed, but its snapshot is still there".into())
            } else if stacks.contains_key(&r.key(ResourceRoot::HeatStacks)) {
                Some("config removed, but its heat_stacks record is still there".into())
            } else if !stacks_in_heat.is_empty() {
                Some(format!("deleted, but Heat still has its stack ({})", stacks_in_heat.join(", ")))
            } else {
                None
            }
        } else {
            let version = r.final_version();
            let state = states.get(&r.key(ResourceRoot::State));
            let done = state.is_some_and(|s| {
                s.version == version && matches!(s.state.worker_state.as_str(), "CREATE_COMPLETED" | "MODIFY_COMPLETED")
            });
            let name = stacks.get(&r.key(ResourceRoot::HeatStacks)).and_then(|record| {
                record.output.iter().find(|o| o.output_key == "name").map(|o| o.output_value.clone())
            });
            if !done {
                Some(format!("/state is {}, not completed at version {version}", describe_state(state)))
            } else if name != Some(json!(r.name(version))) {
                Some(format!("heat_stacks shows name {name:?}, not version {version}'s"))
            } else if stacks_in_heat.is_empty() {
                Some("completed, but Heat has no stack".into())
            } else if !stacks_in_heat.iter().any(|s| s == "CREATE_COMPLETE" || s == "UPDATE_COMPLETE") {
                Some(format!("its stack is {}", stacks_in_heat.join(", ")))
            } else {
                None
            }
        };
        problems.push(problem);
    }
    for (name, statuses) in in_heat {
        duplicate_stacks += statuses.len();
        stray_stacks.push(format!("{name} ({}) belongs to no resource", statuses.join(", ")));
    }
    leftovers.sort();
    let mut assessment = Assessment { problems, duplicate_stacks, leftovers, stray_stacks };
    if assessment.all_good() {
        // What etcd says is so; now ask Heat itself which version each stack has.
        let checks = resources.iter().enumerate().filter(|(_, r)| !r.deleted).filter_map(|(i, r)| {
            let stack = refs.get(&r.stack_name())?.clone();
            Some(async move { (i, heat.outputs(TENANT, &stack).await) })
        });
        let answers: Vec<_> = futures::stream::iter(checks).buffer_unordered(8).collect().await;
        for (i, outputs) in answers {
            let r = &resources[i];
            let name = outputs?.into_iter().find(|o| o.get("output_key") == Some(&json!("name")));
            let name = name.and_then(|o| o.get("output_value").cloned());
            if name != Some(json!(r.name(r.final_version()))) {
                assessment.problems[i] = Some(format!("Heat's stack shows name {name:?}, not the final version's"));
            }
        }
    }
    Ok(assessment)
}

pub(super) fn describe_state(state: Option<&StateRecord>) -> String {
    match state {
        None => "missing".into(),
        Some(s) if s.error.is_empty() => format!("{} at version {}", s.state.worker_state, s.version),
        Some(s) => format!("{} at version {}: {}", s.state.worker_state, s.version, truncate(&s.error, 160)),
    }
}

/// A failure reason with the scenario's resource ids and job-id suffixes replaced by `*`, so
/// that failures of one kind count together.
pub(super) fn reason_kind(reason: &str) -> String {
    static IDS: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(net|sub|port)-\d+|:[a-z0-9]{5}\b").ok());
    let general = match IDS.as_ref() {
        Some(ids) => ids.replace_all(reason, "*").into_owned(),
        None => reason.to_owned(),
    };
    truncate(&general, 140)
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
