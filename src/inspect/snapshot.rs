//! Everything the operator commands read, in one consistent list of the store: the records of
//! every resource, the live jobs and their queues, and the planner's notes (when each job was
//! planned, when a failed resource is retried).

use crate::planner::notes::{JOB_TIMES_PREFIX, RETRIES_PREFIX, RetryNote};
use crate::protocol::{Job, JobQueue, Record, ResourceKey};
use crate::schema::Schema;
use crate::standing::{Observed, ROOTS};
use crate::store::{KeyValue, Store, StoreError};
use std::collections::{BTreeMap, HashMap};

/// A resource: its type and id.
pub type ResourceId = (String, String);

pub struct Snapshot {
    /// The revision everything was read at.
    pub revision: i64,
    pub resources: BTreeMap<ResourceId, Observed>,
    /// The live jobs (`/jobs/all`), by id.
    pub jobs: HashMap<String, Job>,
    /// Which queue each job is in (`None` in the map: in no queue).
    pub queues: HashMap<String, JobQueue>,
    /// The finished markers: `""` on success, else why the job failed.
    pub finished: HashMap<String, String>,
    /// When each job was planned (Unix seconds).
    pub planned_at: HashMap<String, u64>,
    /// The retries the planner has scheduled.
    pub retries: HashMap<ResourceId, RetryNote>,
    /// The leading planner's id (`/job_manager_id`), if one leads.
    pub planner: Option<String>,
    /// Every key and value, for what needs more (the planner's view for `why`).
    pub items: Vec<KeyValue>,
}

impl Snapshot {
    /// Lists the store once and sorts what it holds.
    pub async fn load(store: &Store, schema: &Schema) -> Result<Snapshot, StoreError> {
        let (items, revision) = store.list("/").await?;
        Ok(Snapshot::from_items(items, revision, schema))
    }

    pub fn from_items(items: Vec<KeyValue>, revision: i64, schema: &Schema) -> Snapshot {
        let mut snapshot = Snapshot {
            revision,
            resources: BTreeMap::new(),
            jobs: HashMap::new(),
            queues: HashMap::new(),
            finished: HashMap::new(),
            planned_at: HashMap::new(),
            retries: HashMap::new(),
            planner: None,
            items: Vec::new(),
        };
        for kv in &items {
            snapshot.take(kv, schema);
        }
        snapshot.items = items;
        snapshot
    }

    fn take(&mut self, kv: &KeyValue, schema: &Schema) {
        if let Some((queue, id)) = JobQueue::parse(&kv.key) {
            match queue {
                JobQueue::All => {
                    if let Ok(Record::Job(record)) = Record::from_etcd(&kv.key, &kv.value) {
                        self.jobs.insert(id.to_owned(), record.job);
                    }
                }
                JobQueue::Finished => {
                    self.finished.insert(id.to_owned(), String::from_utf8_lossy(&kv.value).into_owned());
                    self.queues.insert(id.to_owned(), queue);
                }
                other => {
                    self.queues.insert(id.to_owned(), other);
                }
            }
        } else if let Some(job) = kv.key.strip_prefix(JOB_TIMES_PREFIX) {
            if let Ok(at) = String::from_utf8_lossy(&kv.value).trim().parse() {
                self.planned_at.insert(job.to_owned(), at);
            }
        } else if let Some(rest) = kv.key.strip_prefix(RETRIES_PREFIX) {
            if let (Some((kind, id)), Ok(note)) = (rest.split_once('/'), serde_json::from_slice(&kv.value)) {
                self.retries.insert((kind.to_owned(), id.to_owned()), note);
            }
        } else if kv.key == crate::protocol::keys::JOB_MANAGER_ID_KEY {
            self.planner = Some(String::from_utf8_lossy(&kv.value).into_owned());
        } else if let Some(parsed) = ResourceKey::parse(&kv.key).filter(|k| ROOTS.contains(&k.root))
            && let Some(kind) = schema.resource_types.resource_type(parsed.prefix)
            && kind != crate::protocol::keys::HEAT_TEMPLATE_TYPE
        {
            let resource = (kind.to_owned(), parsed.id.to_owned());
            self.resources.entry(resource).or_default().put(parsed.root, &kv.key, &kv.value);
        }
    }

    /// The resource's live job: its latest version's.
    pub fn live_job_of(&self, resource: &ResourceId) -> Option<&Job> {
        self.jobs
            .values()
            .filter(|j| j.spec.resource_type == resource.0 && j.spec.resource_id == resource.1)
            .max_by_key(|j| j.spec.version)
    }

    /// Every live job by resource, latest version first (one pass, for listing many resources).
    pub fn live_jobs_by_resource(&self) -> HashMap<ResourceId, &Job> {
        let mut by: HashMap<ResourceId, &Job> = HashMap::new();
        for job in self.jobs.values() {
            let key = (job.spec.resource_type.clone(), job.spec.resource_id.clone());
            let keep = by.get(&key).is_none_or(|known| known.spec.version < job.spec.version);
            if keep {
                by.insert(key, job);
            }
        }
        by
    }

    /// How long ago a job was planned, in seconds, if the planner noted it.
    pub fn age_of(&self, job_id: &str, now: u64) -> Option<u64> {
        self.planned_at.get(job_id).map(|at| now.saturating_sub(*at))
    }
}

/// `3s`, `4m10s`, `2h05m`, `3d04h`.
pub fn duration_text(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `TYPE/ID` → the resource (the type as the schema names it, singular, or its plural).
pub fn parse_resource(text: &str, schema: &Schema) -> anyhow::Result<ResourceId> {
    let (kind, id) = text.split_once('/').ok_or_else(|| anyhow::anyhow!("`{text}` is not TYPE/ID"))?;
    let known = |k: &str| schema.resource_types.prefix(k).is_some();
    let kind = if known(kind) {
        kind.to_owned()
    } else if let Some(singular) = kind.strip_suffix('s').filter(|k| known(k)) {
        singular.to_owned()
    } else {
        anyhow::bail!("unknown resource type `{kind}` (the schema's types are singular: load_balancer, network, ...)")
    };
    anyhow::ensure!(!id.is_empty(), "`{text}` names no id");
    Ok((kind, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration_text(5), "5s");
        assert_eq!(duration_text(250), "4m10s");
        assert_eq!(duration_text(7500), "2h05m");
        assert_eq!(duration_text(277_200), "3d05h");
    }

    #[test]
    fn resources_are_named_by_type_and_id() {
        let schema = Schema::shipped().unwrap();
        assert_eq!(parse_resource("load_balancer/x", &schema).unwrap(), ("load_balancer".into(), "x".into()));
        assert_eq!(parse_resource("load_balancers/x", &schema).unwrap(), ("load_balancer".into(), "x".into()));
        assert!(parse_resource("gizmo/x", &schema).unwrap_err().to_string().contains("unknown resource type"));
        assert!(parse_resource("network", &schema).is_err());
    }
}
