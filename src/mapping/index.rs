//! The resource index: the latest decoded `/config` body of every resource, by type and id — the
//! original's "worker db cache" that mappings read (PROTOCOL.md §4.1). The bodies are shared with
//! whoever else holds them (the planner's config records), not copied.

use crate::protocol::{Body, SharedBody};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Default)]
pub struct ResourceIndex {
    by_type: HashMap<String, HashMap<String, SharedBody>>,
}

impl ResourceIndex {
    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Body> {
        self.by_type.get(resource_type)?.get(id).map(|body| &**body)
    }

    pub fn insert(&mut self, resource_type: &str, id: &str, body: impl Into<SharedBody>) {
        self.by_type.entry(resource_type.to_owned()).or_default().insert(id.to_owned(), body.into());
    }

    pub fn remove(&mut self, resource_type: &str, id: &str) -> Option<SharedBody> {
        self.by_type.get_mut(resource_type)?.remove(id)
    }

    pub fn len(&self) -> usize {
        self.by_type.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `_relations` map: per resource type, which field refers to which type
/// (`load_balancer.vnf_instance_id → vnf_instance`). Used by string `path` steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Relations(pub BTreeMap<String, BTreeMap<String, String>>);

impl Relations {
    pub fn target(&self, resource_type: &str, field: &str) -> Option<&str> {
        self.0.get(resource_type)?.get(field).map(String::as_str)
    }
}
