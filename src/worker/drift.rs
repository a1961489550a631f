//! Drift repair: a resource that converged (its `/state` completed) but whose Heat stack has
//! since vanished or failed outside our control is applied again. The repair is to delete its
//! `/esi-worker/config` snapshot: the planner then plans its current config afresh.

use crate::heat::HeatClient;
use crate::protocol::{JobQueue, Record, ResourceKey, ResourceRoot};
use crate::schema::Schema;
use crate::store::{Store, Txn};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::watch;

/// Checks for drift every `interval` until `shutdown`.
pub async fn run(
    store: Store,
    schema: Schema,
    heat: HeatClient,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = crate::shutdown::shut_down(&mut shutdown) => return,
        }
        match check(&store, &schema, &heat).await {
            Ok(0) => {}
            Ok(repaired) => tracing::warn!(repaired, "drifted resources queued to be applied again"),
            Err(e) => tracing::warn!(error = %e, "drift check failed; trying again later"),
        }
    }
}

/// One pass; returns how many resources were queued again.
pub async fn check(store: &Store, schema: &Schema, heat: &HeatClient) -> anyhow::Result<usize> {
    let busy: HashSet<(String, String)> = store
        .list(JobQueue::All.dir())
        .await?
        .0
        .iter()
        .filter_map(|kv| match Record::from_etcd(&kv.key, &kv.value) {
            Ok(Record::Job(r)) => Some((r.job.spec.resource_type.clone(), r.job.spec.resource_id.clone())),
            _ => None,
        })
        .collect();
    let mut repaired = 0;
    for kv in store.list(&ResourceRoot::State.dir()).await?.0 {
        let Ok(Record::State(state)) = Record::from_etcd(&kv.key, &kv.value) else { continue };
        if !matches!(state.state.worker_state.as_str(), "CREATE_COMPLETED" | "MODIFY_COMPLETED") {
            continue;
        }
        let Some(key) = ResourceKey::parse(&kv.key) else { continue };
        let Some(resource_type) = schema.resource_types.resource_type(key.prefix) else { continue };
        if busy.contains(&(resource_type.to_owned(), key.id.to_owned())) {
            continue;
        }
        let stacks_key = ResourceRoot::HeatStacks.key(key.prefix, key.id);
        let Some(stacks) = store.get(&stacks_key).await? else { continue };
        let Ok(Record::HeatStack(record)) = Record::from_etcd(&stacks.key, &stacks.value) else { continue };
        if record.stack_id.is_empty() {
            continue;
        }
        let drift = match heat.find(&record.tenant_id, &record.stack_id).await? {
            None => "its stack is gone".to_owned(),
            Some(stack) => {
                let shown = heat.show(&record.tenant_id, &stack, false).await?;
                if !shown.stack_status.ends_with("_FAILED") {
                    continue;
                }
                format!("its stack is {}", shown.stack_status)
            }
        };
        let snapshot_key = ResourceRoot::Snapshot.key(key.prefix, key.id);
        let Some(snapshot) = store.get(&snapshot_key).await? else { continue };
        let repair = Txn::new().if_mod_revision(&snapshot_key, snapshot.mod_revision).delete(&snapshot_key);
        if store.commit(repair).await?.is_some() {
            tracing::warn!(resource = %kv.key, %drift, version = state.version, "drift: applying the config again");
            repaired += 1;
        }
    }
    Ok(repaired)
}
