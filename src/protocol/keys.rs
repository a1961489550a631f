//! The etcd key layout (PROTOCOL.md §2.0): where each record of a resource or a job lives.
//!
//! A per-resource key is `<root><prefix>/<id>`, where `<prefix>` is the Gohan schema prefix of the
//! resource's type (`/v2.0/load_balancers`, `/common/v1.0/tenants`). Which prefix belongs to which
//! type is configuration ([`ResourceTypes`]), never code.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The roots under which the per-resource records live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceRoot {
    /// `/config`: desired configuration, written by Gohan.
    Config,
    /// `/esi-worker/config`: snapshot of the last processed config.
    Snapshot,
    /// `/esi-worker/heat_stacks`: the last Heat stack result.
    HeatStacks,
    /// `/esi-worker/job_state`: in-flight job state.
    JobState,
    /// `/state`: the result reported to Gohan.
    State,
    /// `/monitoring`: device status written by the monitor.
    Monitoring,
}

impl ResourceRoot {
    pub const ALL: [ResourceRoot; 6] = [
        ResourceRoot::Config,
        ResourceRoot::Snapshot,
        ResourceRoot::HeatStacks,
        ResourceRoot::JobState,
        ResourceRoot::State,
        ResourceRoot::Monitoring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceRoot::Config => "/config",
            ResourceRoot::Snapshot => "/esi-worker/config",
            ResourceRoot::HeatStacks => "/esi-worker/heat_stacks",
            ResourceRoot::JobState => "/esi-worker/job_state",
            ResourceRoot::State => "/state",
            ResourceRoot::Monitoring => "/monitoring",
        }
    }

    /// The key of one resource's record under this root.
    pub fn key(self, prefix: &str, id: &str) -> String {
        format!("{}{prefix}/{id}", self.as_str())
    }

    /// The key prefix under which every record of this root lives (for list and watch).
    pub fn dir(self) -> String {
        format!("{}/", self.as_str())
    }
}

/// A per-resource key split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceKey<'a> {
    pub root: ResourceRoot,
    pub prefix: &'a str,
    pub id: &'a str,
}

impl<'a> ResourceKey<'a> {
    /// Splits `<root><prefix>/<id>`; `None` for keys that are not per-resource records.
    pub fn parse(key: &'a str) -> Option<Self> {
        // `/config` is not a prefix of any other root, so the first match is the only one.
        let root = ResourceRoot::ALL
            .into_iter()
            .find(|root| key.strip_prefix(root.as_str()).is_some_and(|rest| rest.starts_with('/')))?;
        let rest = &key[root.as_str().len()..];
        let (prefix, id) = rest.rsplit_once('/')?;
        if prefix.len() < 2 || id.is_empty() {
            return None;
        }
        Some(ResourceKey { root, prefix, id })
    }
}

/// The five job queues of PROTOCOL.md §2.5–2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobQueue {
    All,
    Waiting,
    Ready,
    Working,
    Finished,
}

impl JobQueue {
    pub const ALL: [JobQueue; 5] =
        [JobQueue::All, JobQueue::Waiting, JobQueue::Ready, JobQueue::Working, JobQueue::Finished];

    pub fn dir(self) -> &'static str {
        match self {
            JobQueue::All => "/jobs/all",
            JobQueue::Waiting => "/jobs/waiting",
            JobQueue::Ready => "/jobs/ready",
            JobQueue::Working => "/jobs/working",
            JobQueue::Finished => "/jobs/finished",
        }
    }

    pub fn key(self, job_id: &str) -> String {
        format!("{}/{job_id}", self.dir())
    }

    /// The queue's name: `all`, `waiting`, `ready`, `working`, `finished`.
    pub fn name(self) -> &'static str {
        &self.dir()["/jobs/".len()..]
    }

    /// `(queue, job id)` of `/jobs/<queue>/<id>`.
    pub fn parse(key: &str) -> Option<(JobQueue, &str)> {
        JobQueue::ALL.into_iter().find_map(|queue| {
            let id = key.strip_prefix(queue.dir())?.strip_prefix('/')?;
            (!id.is_empty()).then_some((queue, id))
        })
    }
}

/// The planner's leader lease (PROTOCOL.md §2.11).
pub const JOB_MANAGER_ID_KEY: &str = "/job_manager_id";
/// The original's reactor queue item (PROTOCOL.md §2.4).
pub const WORKFLOW_REQUEST_KEY: &str = "/worker-workflow-jobs";
/// The heat templates live under this schema prefix of `/config`.
pub const HEAT_TEMPLATES_PREFIX: &str = "/v2.0/heat_templates";
/// The schema type id of heat templates.
pub const HEAT_TEMPLATE_TYPE: &str = "heat_template";

/// Which Gohan schema prefix belongs to which resource type: `{"<type>": "<prefix>"}`.
///
/// Derived from the Gohan schemas (see `import-schemas`); the shipped default is
/// `config/resource_types.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct ResourceTypes {
    prefix_of: BTreeMap<String, String>,
    type_of: BTreeMap<String, String>,
}

impl From<BTreeMap<String, String>> for ResourceTypes {
    fn from(prefix_of: BTreeMap<String, String>) -> Self {
        let type_of = prefix_of.iter().map(|(t, p)| (p.clone(), t.clone())).collect();
        ResourceTypes { prefix_of, type_of }
    }
}

impl From<ResourceTypes> for BTreeMap<String, String> {
    fn from(types: ResourceTypes) -> Self {
        types.prefix_of
    }
}

impl ResourceTypes {
    pub fn prefix(&self, resource_type: &str) -> Option<&str> {
        self.prefix_of.get(resource_type).map(String::as_str)
    }

    pub fn resource_type(&self, prefix: &str) -> Option<&str> {
        self.type_of.get(prefix).map(String::as_str)
    }

    /// The key of a resource's record, or an error naming the unknown type.
    pub fn key(&self, root: ResourceRoot, resource_type: &str, id: &str) -> Result<String, UnknownType> {
        let prefix = self.prefix(resource_type).ok_or_else(|| UnknownType(resource_type.to_owned()))?;
        Ok(root.key(prefix, id))
    }

    pub fn len(&self) -> usize {
        self.prefix_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prefix_of.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource type `{0}` (not in the resource type map)")]
pub struct UnknownType(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys_split_and_join() {
        let key = "/esi-worker/heat_stacks/v2.0/load_balancers/b311c470";
        let parsed = ResourceKey::parse(key).unwrap();
        assert_eq!(parsed.root, ResourceRoot::HeatStacks);
        assert_eq!(parsed.prefix, "/v2.0/load_balancers");
        assert_eq!(parsed.id, "b311c470");
        assert_eq!(parsed.root.key(parsed.prefix, parsed.id), key);

        let tenant = ResourceKey::parse("/config/common/v1.0/tenants/fe3a4a1a").unwrap();
        assert_eq!((tenant.root, tenant.prefix), (ResourceRoot::Config, "/common/v1.0/tenants"));
        assert_eq!(ResourceKey::parse("/esi-worker/config/v2.0/ports/x").unwrap().root, ResourceRoot::Snapshot);
        assert_eq!(ResourceKey::parse("/configs/v2.0/ports/x"), None);
        assert_eq!(ResourceKey::parse("/state/x"), None);
    }

    #[test]
    fn job_queue_keys() {
        assert_eq!(JobQueue::Ready.key("a:b"), "/jobs/ready/a:b");
        assert_eq!(JobQueue::parse("/jobs/waiting/a:b"), Some((JobQueue::Waiting, "a:b")));
        assert_eq!(JobQueue::parse("/jobs/all"), None);
        assert_eq!(JobQueue::parse("/jobs/allx/y"), None);
    }

    #[test]
    fn resource_types_both_ways() {
        let types: ResourceTypes =
            serde_json::from_str(r#"{"port": "/v2.0/ports", "tenant": "/common/v1.0/tenants"}"#).unwrap();
        assert_eq!(types.prefix("tenant"), Some("/common/v1.0/tenants"));
        assert_eq!(types.resource_type("/v2.0/ports"), Some("port"));
        assert_eq!(types.key(ResourceRoot::State, "port", "p1").unwrap(), "/state/v2.0/ports/p1");
        assert!(types.key(ResourceRoot::State, "nope", "p1").is_err());
    }
}
