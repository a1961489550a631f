//! The mirror's view of etcd: the records of every resource of one type, by id, kept from the
//! watches of the four roots it reads. Pure: the loop feeds it watch events.

use super::project::Observed;
use crate::protocol::{Record, ResourceKey, ResourceRoot};
use crate::store::{KeyValue, WatchEvent};
use std::collections::{BTreeSet, HashMap};

/// The roots whose records make a custom resource.
pub const ROOTS: [ResourceRoot; 4] =
    [ResourceRoot::Config, ResourceRoot::State, ResourceRoot::HeatStacks, ResourceRoot::Monitoring];

#[derive(Debug, Default)]
pub struct MirrorView {
    /// The type's key prefix (`/v2.0/load_balancers`).
    prefix: String,
    resources: HashMap<String, Observed>,
    /// The roots whose first list has arrived; until all have, a missing record means nothing.
    listed: BTreeSet<&'static str>,
}

impl MirrorView {
    pub fn new(prefix: &str) -> Self {
        MirrorView { prefix: prefix.to_owned(), ..Default::default() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether every root has been listed once.
    pub fn complete(&self) -> bool {
        self.listed.len() == ROOTS.len()
    }

    pub fn get(&self, id: &str) -> Option<&Observed> {
        self.resources.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.resources.keys()
    }

    /// Applies one watch event of `root`; returns the ids whose records changed.
    pub fn apply(&mut self, root: ResourceRoot, event: WatchEvent) -> Vec<String> {
        match event {
            WatchEvent::Listed { items, .. } => {
                self.listed.insert(root.as_str());
                let mut touched: Vec<String> = self
                    .resources
                    .iter_mut()
                    .filter_map(|(id, observed)| clear(observed, root).then(|| id.clone()))
                    .collect();
                for kv in items {
                    touched.extend(self.put(root, &kv));
                }
                self.resources.retain(|_, observed| !observed.is_empty());
                touched.sort();
                touched.dedup();
                touched
            }
            WatchEvent::Put(kv) => self.put(root, &kv).into_iter().collect(),
            WatchEvent::Deleted { key, .. } => {
                let Some(id) = self.id_of(root, &key) else { return Vec::new() };
                let Some(observed) = self.resources.get_mut(&id) else { return Vec::new() };
                clear(observed, root);
                if observed.is_empty() {
                    self.resources.remove(&id);
                }
                vec![id]
            }
            WatchEvent::Synced { .. } => Vec::new(),
        }
    }

    fn put(&mut self, root: ResourceRoot, kv: &KeyValue) -> Option<String> {
        let id = self.id_of(root, &kv.key)?;
        let observed = self.resources.entry(id.clone()).or_default();
        observed.config_key = ResourceRoot::Config.key(&self.prefix, &id);
        let decoded = Record::from_etcd(&kv.key, &kv.value).map_err(|e| e.to_string());
        match (root, decoded) {
            (ResourceRoot::Config, Ok(Record::Config(r))) => observed.config = Some(Ok(r)),
            (ResourceRoot::State, Ok(Record::State(r))) => observed.state = Some(Ok(r)),
            (ResourceRoot::HeatStacks, Ok(Record::HeatStack(r))) => observed.heat_stack = Some(Ok(r)),
            (ResourceRoot::Monitoring, Ok(Record::Monitoring(r))) => observed.monitoring = Some(Ok(r)),
            (root, Ok(_)) => unreadable(observed, root, format!("{} is not a {} record", kv.key, root.as_str())),
            (root, Err(e)) => unreadable(observed, root, e),
        }
        Some(id)
    }

    /// The id of a per-resource key of this type under `root` (`None` for anything else, such as
    /// a deeper key).
    fn id_of(&self, root: ResourceRoot, key: &str) -> Option<String> {
        let parsed = ResourceKey::parse(key)?;
        (parsed.root == root && parsed.prefix == self.prefix).then(|| parsed.id.to_owned())
    }
}

/// Empties the slot of `root`; whether it held a record.
fn clear(observed: &mut Observed, root: ResourceRoot) -> bool {
    match root {
        ResourceRoot::Config => observed.config.take().is_some(),
        ResourceRoot::State => observed.state.take().is_some(),
        ResourceRoot::HeatStacks => observed.heat_stack.take().is_some(),
        ResourceRoot::Monitoring => observed.monitoring.take().is_some(),
        // Not read by the mirror: `ROOTS` never names them.
        ResourceRoot::Snapshot | ResourceRoot::JobState => false,
    }
}

/// Keeps why the record of `root` could not be read.
fn unreadable(observed: &mut Observed, root: ResourceRoot, reason: String) {
    match root {
        ResourceRoot::Config => observed.config = Some(Err(reason)),
        ResourceRoot::State => observed.state = Some(Err(reason)),
        ResourceRoot::HeatStacks => observed.heat_stack = Some(Err(reason)),
        ResourceRoot::Monitoring => observed.monitoring = Some(Err(reason)),
        ResourceRoot::Snapshot | ResourceRoot::JobState => {}
    }
}
