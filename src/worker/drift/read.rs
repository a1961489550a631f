//! What a drift pass reads from etcd: every converged resource that no live job handles, with
//! the stack its last job left and the revision of its snapshot. One list of four prefixes, all
//! at one revision (a page per 1,000 keys), instead of a `get` per resource.

use crate::protocol::{JobId, JobQueue, Record, ResourceKey, ResourceRoot};
use crate::schema::Schema;
use crate::store::{KeyValue, Store, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A converged resource whose stack is to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its `/state` key, which names it in logs.
    pub state_key: String,
    /// The config version `/state` says is applied.
    pub version: u64,
    /// The Heat project its stack lives in (`heat_stacks.tenant_id`).
    pub tenant: String,
    /// The stack's name (`heat_stacks.stack_id`).
    pub stack_name: String,
    /// Its `/esi-worker/config` snapshot and that key's revision in the read: the repair deletes
    /// the snapshot only if it is still that one.
    pub snapshot_key: String,
    pub snapshot_revision: i64,
}

/// The prefixes a pass lists: `/state`, `/esi-worker/heat_stacks`, the snapshots and the job
/// records (every live job has one in `/jobs/all` until its worker has reported).
pub fn listed_prefixes() -> Vec<String> {
    vec![
        ResourceRoot::State.dir(),
        ResourceRoot::HeatStacks.dir(),
        ResourceRoot::Snapshot.dir(),
        format!("{}/", JobQueue::All.dir()),
    ]
}

/// Lists the store once and picks the candidates, in key order.
pub async fn read(store: &Store, schema: &Schema) -> Result<Vec<Candidate>, StoreError> {
    let (items, _revision) = store.list_many(&listed_prefixes()).await?;
    Ok(candidates(&items, schema))
}

/// The candidates among the listed keys (pure): a `/state` of `CREATE_COMPLETED` or
/// `MODIFY_COMPLETED`, no job of the resource in `/jobs/all`, a heat_stacks record naming a
/// stack and its tenant, and a snapshot. Records that do not decode are skipped (the planner reports them).
pub fn candidates(items: &[KeyValue], schema: &Schema) -> Vec<Candidate> {
    let mut converged: BTreeMap<(&str, &str), (&str, u64)> = BTreeMap::new();
    let mut stacks: HashMap<(&str, &str), (String, String)> = HashMap::new();
    let mut snapshots: HashMap<(&str, &str), (&str, i64)> = HashMap::new();
    let mut busy: HashSet<(String, String)> = HashSet::new();
    for kv in items {
        if let Some((JobQueue::All, job_id)) = JobQueue::parse(&kv.key) {
            // The job's id names its resource; a record that does not decode still makes its
            // resource busy (never repair what may be being changed).
            if let Ok(id) = job_id.parse::<JobId>() {
                busy.insert((id.resource_type, id.resource_id));
            } else if let Ok(Record::Job(job)) = Record::from_etcd(&kv.key, &kv.value) {
                busy.insert((job.job.spec.resource_type, job.job.spec.resource_id));
            }
            continue;
        }
        let Some(key) = ResourceKey::parse(&kv.key) else { continue };
        let resource = (key.prefix, key.id);
        match key.root {
            ResourceRoot::State => {
                if let Ok(Record::State(state)) = Record::from_etcd(&kv.key, &kv.value)
                    && matches!(state.state.worker_state.as_str(), "CREATE_COMPLETED" | "MODIFY_COMPLETED")
                {
                    converged.insert(resource, (kv.key.as_str(), state.version));
                }
            }
            ResourceRoot::HeatStacks => {
                if let Ok(Record::HeatStack(record)) = Record::from_etcd(&kv.key, &kv.value)
                    && !record.stack_id.is_empty()
                    && !record.tenant_id.is_empty()
                {
                    stacks.insert(resource, (record.tenant_id, record.stack_id));
                }
            }
            ResourceRoot::Snapshot => {
                snapshots.insert(resource, (kv.key.as_str(), kv.mod_revision));
            }
            _ => {}
        }
    }
    converged
        .into_iter()
        .filter_map(|((prefix, id), (state_key, version))| {
            let resource_type = schema.resource_types.resource_type(prefix)?;
            if busy.contains(&(resource_type.to_owned(), id.to_owned())) {
                return None;
            }
            let (tenant, stack_name) = stacks.get(&(prefix, id))?;
            let (snapshot_key, snapshot_revision) = snapshots.get(&(prefix, id))?;
            Some(Candidate {
                state_key: state_key.to_owned(),
                version,
                tenant: tenant.clone(),
                stack_name: stack_name.clone(),
                snapshot_key: (*snapshot_key).to_owned(),
                snapshot_revision: *snapshot_revision,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PREFIX: &str = "/v2.0/networks";

    fn kv(key: String, value: serde_json::Value, mod_revision: i64) -> KeyValue {
        KeyValue { key, value: value.to_string().into_bytes(), mod_revision, create_revision: 1, lease: 0 }
    }

    /// A converged network's records: state, heat_stacks and snapshot.
    fn network(id: &str, worker_state: &str) -> Vec<KeyValue> {
        let state = json!({"error": "", "version": 2, "state": {"worker_state": worker_state,
                           "orchestration_state": "CREATE_COMPLETE", "heat_outputs": "[]"}});
        let stack = json!({"id": format!("network:{id}"), "stack_id": format!("network_{id}"), "tenant_id": "t1",
                           "stack_status": "CREATE_COMPLETE", "status_reason": "", "output": []});
        let snapshot = json!({"body": {"id": id}, "deleted": false, "version": 2});
        vec![
            kv(ResourceRoot::State.key(PREFIX, id), state, 10),
            kv(ResourceRoot::HeatStacks.key(PREFIX, id), stack, 9),
            kv(ResourceRoot::Snapshot.key(PREFIX, id), snapshot, 7),
        ]
    }

    /// A live job's record, whose value does not decode: its key alone tells whose it is.
    fn job_of(id: &str) -> KeyValue {
        let job_id = JobId::generate(crate::protocol::Action::Modify, "network", "network", id, 3);
        kv(JobQueue::All.key(&job_id.to_string()), json!(["network", {"id": "garbled"}, 0]), 11)
    }

    #[test]
    fn a_converged_resource_without_a_live_job_is_a_candidate_with_its_snapshot_revision() {
        let schema = Schema::shipped().unwrap();
        let found = candidates(&network("n1", "MODIFY_COMPLETED"), &schema);
        assert_eq!(
            found,
            vec![Candidate {
                state_key: ResourceRoot::State.key(PREFIX, "n1"),
                version: 2,
                tenant: "t1".into(),
                stack_name: "network_n1".into(),
                snapshot_key: ResourceRoot::Snapshot.key(PREFIX, "n1"),
                snapshot_revision: 7,
            }]
        );
    }

    #[test]
    fn a_live_job_a_failed_state_or_a_missing_record_leaves_a_resource_out() {
        let schema = Schema::shipped().unwrap();
        let mut items = network("busy", "CREATE_COMPLETED");
        items.push(job_of("busy"));
        items.extend(network("failed", "MODIFY_FAILED"));
        let mut no_snapshot = network("unplanned", "CREATE_COMPLETED");
        no_snapshot.pop();
        items.extend(no_snapshot);
        let mut no_stack = network("stackless", "CREATE_COMPLETED");
        no_stack.remove(1);
        items.extend(no_stack);
        items.extend(network("kept", "CREATE_COMPLETED"));
        let found: Vec<String> = candidates(&items, &schema).into_iter().map(|c| c.stack_name).collect();
        assert_eq!(found, vec!["network_kept"]);
    }
}
