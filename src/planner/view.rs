//! What the planner knows of etcd: configs, snapshots and the job queues, kept up to date from the
//! watch and from its own writes. A full list replaces it; stale watch echoes of keys it has
//! since written itself are ignored by revision.

use super::live::LiveJobs;
use super::writes::Decided;
use crate::mapping::{ResourceIndex, TemplateSet};
use crate::protocol::config::identical;
use crate::protocol::keys::HEAT_TEMPLATE_TYPE;
use crate::protocol::{Action, ConfigRecord, Job, JobQueue, Record, ResourceKey, ResourceRoot, WorkerSnapshot};
use crate::schema::Schema;
use crate::store::{KeyValue, Listing, WatchEvent};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// `(resource_type, resource_id)`.
pub type ResourceId = (String, String);

/// The action of a failed job from `/state.worker_state` (`CREATE_FAILED`, ...); `None` when the
/// state is not a failure.
fn failed_action(worker_state: &str) -> Option<Action> {
    [Action::Create, Action::Modify, Action::LogicalDelete]
        .into_iter()
        .find(|a| worker_state.strip_suffix("_FAILED") == Some(a.state_word()))
}

/// The root and the resource a per-resource key (`/config`, snapshot, `/state`, ...) names, if
/// its type is known.
fn resource_of(schema: &Schema, key: &str) -> Option<(ResourceRoot, ResourceId)> {
    let parsed = ResourceKey::parse(key)?;
    let resource_type = schema.resource_types.resource_type(parsed.prefix)?;
    Some((parsed.root, (resource_type.to_owned(), parsed.id.to_owned())))
}

/// What an event changed, for the planner to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Everything may have changed: reconcile it all.
    Relisted,
    Config(ResourceId),
    Finished(String),
    JobGone(String),
    /// A job's `/jobs/working` claim went away (finished, or its worker's lease expired).
    ClaimGone(String),
}

/// A view built from a full list as etcd returns it, page by page ([`Listing`]): each page is
/// decoded at once and its raw records dropped, so a large list's bytes are never all held. The
/// order of the records does not matter: a list holds each key once, and the reaction to a list
/// takes the configs in the order Gohan wrote them (by revision) itself.
pub struct ListedView {
    schema: Schema,
    view: View,
}

impl ListedView {
    pub fn new(schema: Schema) -> Self {
        ListedView { schema, view: View::default() }
    }
}

impl Listing for ListedView {
    type Listed = View;

    fn page(&mut self, items: Vec<KeyValue>) {
        for kv in items {
            self.view.apply_put(&self.schema, kv);
        }
    }

    fn finish(self) -> View {
        self.view
    }
}

/// The `version` of a `/config` value that does not decode as a whole, if it has one: what the
/// failure is reported against. The rest is skipped unread, however large it is.
fn version_of(value: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: Option<u64>,
    }
    serde_json::from_slice::<Versioned>(value).ok()?.version
}

/// A `/config` value that does not decode: why, and its version when that much could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub error: String,
    pub version: Option<u64>,
}

#[derive(Default)]
pub struct View {
    /// The latest `/config` record of each resource (heat templates excluded), or why it is
    /// unreadable, with the revision it was written at.
    pub configs: HashMap<ResourceId, (Result<ConfigRecord, Unreadable>, i64)>,
    /// The latest body of every resource, for mapping evaluation.
    pub index: ResourceIndex,
    pub templates: TemplateSet,
    /// The snapshot of each resource. A converged resource's snapshot holds the body of its config
    /// record itself, not a copy: a large estate's bodies are most of the planner's memory.
    pub snapshots: HashMap<ResourceId, (WorkerSnapshot, i64)>,
    pub live: LiveJobs,
    pub waiting: HashSet<String>,
    pub ready: HashSet<String>,
    pub working: HashSet<String>,
    /// Finished markers and their values (`""` on success, else the failure reason).
    pub finished: HashMap<String, String>,
    /// Resources whose `/state` says their last job failed: the action and the version. A new
    /// leader retries them from this, since the backoff of the leader that saw the failure died
    /// with it.
    pub failed: HashMap<ResourceId, (Action, u64)>,
    /// The revision of each key written or deleted since the last list, as far as the view
    /// knows: what makes a watch event stale. Listed keys are not recorded: every later event is
    /// after the list's revision, so none is stale by them, and 100,000 resources list 300,000
    /// keys. A listed config or snapshot keeps its revision with it ([`View::known_revision`]).
    revisions: HashMap<String, i64>,
}

impl View {
    /// What a view is made of: the planner lists only these. The other records of a large store
    /// (`/monitoring`, `/esi-worker/heat_stacks`, ...) are none of its business; the watch still
    /// brings their changes, which [`View::apply`] ignores.
    pub fn listed_prefixes() -> Vec<String> {
        let roots = [ResourceRoot::Config, ResourceRoot::Snapshot, ResourceRoot::State];
        let mut prefixes: Vec<String> = roots.into_iter().map(ResourceRoot::dir).collect();
        prefixes.push("/jobs/".to_owned());
        prefixes
    }

    /// A view of listed records (the view a watch lists is built by [`ListedView`]).
    pub fn listed(schema: &Schema, items: Vec<KeyValue>) -> View {
        let mut listed = ListedView::new(schema.clone());
        listed.page(items);
        listed.finish()
    }

    pub fn apply(&mut self, schema: &Schema, event: WatchEvent<View>) -> Vec<Change> {
        match event {
            WatchEvent::Listed { items: view, .. } => {
                *self = view;
                vec![Change::Relisted]
            }
            WatchEvent::Put(kv) => self.put(schema, kv).into_iter().collect(),
            WatchEvent::Deleted { key, revision } => self.delete(schema, &key, revision).into_iter().collect(),
            WatchEvent::Synced { .. } => Vec::new(),
        }
    }

    /// Whether a write of `key` at `revision` tells nothing new: a later write of it is known, or
    /// this very one (the watch's echo of a write the planner learnt when it committed it).
    fn is_stale(&mut self, key: &str, revision: i64) -> bool {
        let known = self.revisions.entry(key.to_owned()).or_default();
        if revision <= *known {
            return true;
        }
        *known = revision;
        false
    }

    /// Records a put seen by the watch or committed by the planner.
    pub fn put(&mut self, schema: &Schema, kv: KeyValue) -> Option<Change> {
        if self.is_stale(&kv.key, kv.mod_revision) {
            return None;
        }
        self.apply_put(schema, kv)
    }

    fn apply_put(&mut self, schema: &Schema, kv: KeyValue) -> Option<Change> {
        if let Some((queue, id)) = JobQueue::parse(&kv.key) {
            let id = id.to_owned();
            return match queue {
                JobQueue::All => match Record::from_etcd(&kv.key, &kv.value) {
                    Ok(Record::Job(record)) => {
                        self.live.insert(record.job);
                        None
                    }
                    other => {
                        tracing::error!(key = %kv.key, error = ?other.err(), "unreadable job record; ignored");
                        None
                    }
                },
                JobQueue::Waiting => {
                    self.waiting.insert(id);
                    None
                }
                JobQueue::Ready => {
                    self.ready.insert(id);
                    None
                }
                JobQueue::Working => {
                    self.working.insert(id);
                    None
                }
                JobQueue::Finished => {
                    self.finished.insert(id.clone(), String::from_utf8_lossy(&kv.value).into_owned());
                    Some(Change::Finished(id))
                }
            };
        }
        let (root, resource) = resource_of(schema, &kv.key)?;
        match root {
            ResourceRoot::Config => {
                let decoded = Record::from_etcd(&kv.key, &kv.value);
                match decoded {
                    Ok(Record::HeatTemplate(config, template)) => {
                        self.index.insert(&resource.0, &resource.1, config.shared_body().clone());
                        self.templates.insert(*template);
                        None
                    }
                    Ok(Record::Config(mut config)) => {
                        if let Some((snapshot, _)) = self.snapshots.get(&resource)
                            && identical(&snapshot.body, config.body())
                        {
                            config.body.0 = snapshot.body.clone();
                        }
                        self.index.insert(&resource.0, &resource.1, config.shared_body().clone());
                        self.configs.insert(resource.clone(), (Ok(config), kv.mod_revision));
                        Some(Change::Config(resource))
                    }
                    Ok(_) => None,
                    Err(e) => {
                        self.index.remove(&resource.0, &resource.1);
                        let version = version_of(&kv.value);
                        let unreadable = Unreadable { error: e.to_string(), version };
                        self.configs.insert(resource.clone(), (Err(unreadable), kv.mod_revision));
                        Some(Change::Config(resource))
                    }
                }
            }
            ResourceRoot::Snapshot => {
                match Record::from_etcd(&kv.key, &kv.value) {
                    Ok(Record::Snapshot(snapshot)) => self.insert_snapshot(resource, snapshot, kv.mod_revision),
                    other => tracing::error!(key = %kv.key, error = ?other.err(), "unreadable snapshot; ignored"),
                }
                None
            }
            ResourceRoot::State => {
                let failed = match Record::from_etcd(&kv.key, &kv.value) {
                    Ok(Record::State(state)) => failed_action(&state.state.worker_state).map(|a| (a, state.version)),
                    _ => None,
                };
                match failed {
                    Some(failed) => self.failed.insert(resource, failed),
                    None => self.failed.remove(&resource),
                };
                None
            }
            _ => None,
        }
    }

    /// Keeps a resource's snapshot, holding the body of its config instead when they are the same.
    fn insert_snapshot(&mut self, resource: ResourceId, mut snapshot: WorkerSnapshot, revision: i64) {
        if let Some((Ok(config), _)) = self.configs.get(&resource)
            && (Arc::ptr_eq(config.shared_body(), &snapshot.body) || identical(config.body(), &snapshot.body))
        {
            snapshot.body = config.shared_body().clone();
        }
        self.snapshots.insert(resource, (snapshot, revision));
    }

    /// Records a delete seen by the watch or committed by the planner.
    pub fn delete(&mut self, schema: &Schema, key: &str, revision: i64) -> Option<Change> {
        if self.is_stale(key, revision) {
            return None;
        }
        self.apply_delete(schema, key)
    }

    fn apply_delete(&mut self, schema: &Schema, key: &str) -> Option<Change> {
        if let Some((queue, id)) = JobQueue::parse(key) {
            match queue {
                JobQueue::All => {
                    return self.live.remove(id).map(|_| Change::JobGone(id.to_owned()));
                }
                JobQueue::Waiting => self.waiting.remove(id),
                JobQueue::Ready => self.ready.remove(id),
                JobQueue::Working => {
                    self.working.remove(id);
                    return Some(Change::ClaimGone(id.to_owned()));
                }
                JobQueue::Finished => self.finished.remove(id).is_some(),
            };
            return None;
        }
        let (root, resource) = resource_of(schema, key)?;
        match root {
            ResourceRoot::Config => {
                self.index.remove(&resource.0, &resource.1);
                if resource.0 == HEAT_TEMPLATE_TYPE {
                    self.templates.remove(&resource.1);
                    return None;
                }
                self.configs.remove(&resource);
                Some(Change::Config(resource))
            }
            ResourceRoot::Snapshot => {
                // Deleting a snapshot asks for the current config to be applied again.
                self.snapshots.remove(&resource).map(|_| Change::Config(resource))
            }
            ResourceRoot::State => {
                self.failed.remove(&resource);
                None
            }
            _ => None,
        }
    }

    /// Learns the planner's own writes, committed at `revision`, before the watch echoes them.
    pub fn learn(&mut self, schema: &Schema, changes: Vec<(String, Option<Vec<u8>>)>, revision: i64) {
        for (key, value) in changes {
            match value {
                Some(value) => {
                    let kv = KeyValue { key, value, mod_revision: revision, create_revision: revision, lease: 0 };
                    self.put(schema, kv);
                }
                None => {
                    self.delete(schema, &key, revision);
                }
            }
        }
    }

    /// Assumes the planner's own writes, sent and not landed yet, so that decisions made
    /// meanwhile see them; their keys keep the revisions known so far until they land
    /// ([`View::landed`]). `records` are the job records and snapshots among them as the
    /// decision made them ([`super::writes::Writes::records`]): taken as they are, not decoded
    /// from the bytes just encoded.
    pub fn assume(
        &mut self,
        schema: &Schema,
        changes: &[(String, Option<Vec<u8>>)],
        mut records: Vec<(String, Decided)>,
    ) {
        for (key, value) in changes {
            let revision = self.known_revision(schema, key);
            let record = records.iter().position(|(k, _)| k == key).map(|at| records.swap_remove(at).1);
            match (value, record) {
                (Some(_), Some(Decided::Job(job))) => self.live.insert(*job),
                (Some(_), Some(Decided::Snapshot(snapshot))) => {
                    if let Some((_, resource)) = resource_of(schema, key) {
                        self.insert_snapshot(resource, snapshot, revision);
                    }
                }
                (Some(value), None) => {
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        mod_revision: revision,
                        create_revision: revision,
                        lease: 0,
                    };
                    self.apply_put(schema, kv);
                }
                (None, _) => {
                    self.apply_delete(schema, key);
                }
            }
        }
    }

    /// The revision the view knows `key` at: its last write or delete since the list, else the
    /// listed revision of the config or snapshot it holds; 0 for any other key, whose revision
    /// the view neither keeps nor needs.
    fn known_revision(&self, schema: &Schema, key: &str) -> i64 {
        if let Some(revision) = self.revisions.get(key) {
            return *revision;
        }
        let Some((root, resource)) = resource_of(schema, key) else { return 0 };
        match root {
            ResourceRoot::Config => self.configs.get(&resource).map_or(0, |(_, revision)| *revision),
            ResourceRoot::Snapshot => self.snapshots.get(&resource).map_or(0, |(_, revision)| *revision),
            _ => 0,
        }
    }

    /// Learns the revision assumed writes were committed at: what guards name from now on, and
    /// what makes the watch's echo of them stale.
    pub fn landed(&mut self, schema: &Schema, changes: &[(String, Option<Vec<u8>>)], revision: i64) {
        for (key, _) in changes {
            // A later write of the key, read from the watch meanwhile, stays what the view knows.
            let known = self.revisions.entry(key.clone()).or_default();
            if *known >= revision {
                continue;
            }
            *known = revision;
            let Some(parsed) = ResourceKey::parse(key).filter(|k| k.root == ResourceRoot::Snapshot) else { continue };
            let Some(resource_type) = schema.resource_types.resource_type(parsed.prefix) else { continue };
            let resource = (resource_type.to_owned(), parsed.id.to_owned());
            if let Some((_, snapshot_revision)) = self.snapshots.get_mut(&resource) {
                *snapshot_revision = revision;
            }
        }
    }

    /// Failed resources whose failure concerns the version they are at (config and snapshot at
    /// the failed version) and that no live job handles: what a retry is due for.
    pub fn unhandled_failures(&self) -> Vec<(ResourceId, Action)> {
        let mut due: Vec<(ResourceId, Action)> = self
            .failed
            .iter()
            .filter(|(resource, (_, version))| {
                let config = self.configs.get(*resource).and_then(|(c, _)| c.as_ref().ok());
                let snapshot = self.snapshots.get(*resource).map(|(s, _)| s);
                config.is_some_and(|c| c.version == *version)
                    && snapshot.is_some_and(|s| s.version == *version)
                    && self.live_job_of(resource).is_none()
            })
            .map(|(resource, (action, _))| (resource.clone(), *action))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        due
    }

    /// The live job of a resource, if any.
    pub fn live_job_of(&self, resource: &ResourceId) -> Option<&Job> {
        self.live.of_resource(&resource.0, &resource.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn put(view: &mut View, schema: &Schema, root: ResourceRoot, record: &impl serde::Serialize, revision: i64) {
        let key = schema.resource_types.key(root, "network", "n1").unwrap();
        let value = serde_json::to_vec(record).unwrap();
        view.put(schema, KeyValue { key, value, mod_revision: revision, create_revision: revision, lease: 0 });
    }

    fn body(value: Value) -> crate::protocol::Body {
        value.as_object().unwrap().clone()
    }

    fn network() -> ResourceId {
        ("network".into(), "n1".into())
    }

    /// Whether the view holds the config's body once, for the config, the index and the snapshot.
    fn held_once(view: &View) -> bool {
        let Some((Ok(config), _)) = view.configs.get(&network()) else { panic!("no config") };
        let (snapshot, _) = &view.snapshots[&network()];
        std::ptr::eq(view.index.get("network", "n1").unwrap(), config.body())
            && std::sync::Arc::ptr_eq(config.shared_body(), &snapshot.body)
    }

    #[test]
    fn a_snapshot_of_the_current_config_shares_its_body_in_either_order() {
        let schema = Schema::shipped().unwrap();
        let config = ConfigRecord::new(body(json!({"id": "n1", "name": "a", "tenant_id": "t"})), 1, false);
        let snapshot = WorkerSnapshot {
            body: body(json!({"id": "n1", "name": "a", "tenant_id": "t"})).into(),
            deleted: false,
            version: 1,
        };
        for config_first in [true, false] {
            let mut view = View::default();
            let order = if config_first { [1, 2] } else { [2, 1] };
            put(&mut view, &schema, ResourceRoot::Config, &config, order[0]);
            put(&mut view, &schema, ResourceRoot::Snapshot, &snapshot, order[1]);
            assert!(held_once(&view), "config first: {config_first}");
            assert_eq!(view.configs[&network()].0.as_ref().unwrap(), &config);
            assert_eq!(view.snapshots[&network()].0, snapshot);
        }
    }

    #[test]
    fn a_list_records_no_revision_yet_guards_and_echoes_see_its_own() {
        let schema = Schema::shipped().unwrap();
        let key = |root| schema.resource_types.key(root, "network", "n1").unwrap();
        let config = ConfigRecord::new(body(json!({"id": "n1", "name": "a", "tenant_id": "t"})), 2, false);
        let snapshot = WorkerSnapshot { body: body(json!({"id": "n1"})).into(), deleted: false, version: 1 };
        let listed = |root, value: Vec<u8>, revision| KeyValue {
            key: key(root),
            value,
            mod_revision: revision,
            create_revision: revision,
            lease: 0,
        };
        let mut view = View::default();
        let items = vec![
            listed(ResourceRoot::Config, serde_json::to_vec(&config).unwrap(), 7),
            listed(ResourceRoot::Snapshot, serde_json::to_vec(&snapshot).unwrap(), 5),
        ];
        view.apply(&schema, WatchEvent::Listed { items: View::listed(&schema, items), revision: 9 });
        assert!(view.revisions.is_empty());
        assert_eq!(view.known_revision(&schema, &key(ResourceRoot::Config)), 7);

        // A write of the snapshot in flight keeps the listed revision until it lands.
        let planned = WorkerSnapshot { body: config.shared_body().clone(), deleted: false, version: 2 };
        let changes = vec![(key(ResourceRoot::Snapshot), Some(serde_json::to_vec(&planned).unwrap()))];
        view.assume(&schema, &changes, Vec::new());
        assert_eq!(view.snapshots[&network()], (planned.clone(), 5));
        view.landed(&schema, &changes, 12);
        assert_eq!(view.snapshots[&network()].1, 12);
        // Its echo is stale; a later write is not.
        assert!(view.is_stale(&key(ResourceRoot::Snapshot), 12));
        assert!(!view.is_stale(&key(ResourceRoot::Snapshot), 13));
    }

    #[test]
    fn a_snapshot_of_another_body_keeps_its_own() {
        let schema = Schema::shipped().unwrap();
        let config = ConfigRecord::new(body(json!({"id": "n1", "name": "a", "tenant_id": "t"})), 2, false);
        let older = json!({"id": "n1", "name": "old", "tenant_id": "t"});
        // The same keys and values in another order are not the same body either.
        let reordered = json!({"name": "a", "id": "n1", "tenant_id": "t"});
        for other in [older, reordered] {
            let mut view = View::default();
            put(&mut view, &schema, ResourceRoot::Config, &config, 1);
            let snapshot = WorkerSnapshot { body: body(other.clone()).into(), deleted: false, version: 1 };
            put(&mut view, &schema, ResourceRoot::Snapshot, &snapshot, 2);
            assert!(!held_once(&view));
            let held = &view.snapshots[&network()].0;
            assert_eq!(serde_json::to_value(held).unwrap()["body"], other);
        }
    }
}
