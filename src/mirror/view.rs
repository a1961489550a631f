//! The mirror's view of etcd: the records of every resource of one type, by id, kept from the
//! watches of the four roots it reads. Pure: the loop feeds it watch events.

use crate::protocol::{ResourceKey, ResourceRoot};
use crate::standing::Observed;
pub use crate::standing::ROOTS;
use crate::store::{KeyValue, WatchEvent};
use std::collections::{BTreeSet, HashMap};

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

    /// The `/config` key of a resource of this type.
    pub fn config_key(&self, id: &str) -> String {
        ResourceRoot::Config.key(&self.prefix, id)
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
                    .filter_map(|(id, observed)| observed.clear(root).then(|| id.clone()))
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
                observed.clear(root);
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
        self.resources.entry(id.clone()).or_default().put(root, &kv.key, &kv.value);
        Some(id)
    }

    /// The id of a per-resource key of this type under `root` (`None` for anything else, such as
    /// a deeper key).
    fn id_of(&self, root: ResourceRoot, key: &str) -> Option<String> {
        let parsed = ResourceKey::parse(key)?;
        (parsed.root == root && parsed.prefix == self.prefix).then(|| parsed.id.to_owned())
    }
}
