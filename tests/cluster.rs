//! etcd as a 3-member cluster on loopback: with every endpoint given, the planner and the worker
//! keep converging resources while one member is stopped.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::local::LocalEtcd;
use heat_reconciler::protocol::{ConfigRecord, Record};
use heat_reconciler::store::Store;
use heat_reconciler::worker::WorkerOptions;
use serde_json::json;
use std::time::Duration;
use support::*;

async fn converged(store: &Store, id: &str) -> bool {
    let Ok(Some(kv)) = store.get(&format!("/state/v2.0/networks/{id}")).await else { return false };
    matches!(Record::from_etcd(&kv.key, &kv.value), Ok(Record::State(s)) if s.state.worker_state == "CREATE_COMPLETED")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_continues_with_one_member_stopped() {
    let mut members = LocalEtcd::start_cluster(3).await.expect("a 3-member cluster starts");
    let endpoints: Vec<String> = members.iter().map(|m| m.client_url.clone()).collect();
    let store = Store::connect(&endpoints).await.expect("cluster connects");
    put_template(&store, "network", network_mappings(), NETWORK).await;

    let _planner = RunningPlanner::start(&store, "planner", Duration::from_secs(3));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
    let options = WorkerOptions { patience: fast_patience(), lease_ttl: Duration::from_secs(10), ..Default::default() };
    let _worker = RunningWorker::start(&store, heat, options);

    let write = |id: String| {
        let store = store.clone();
        async move {
            let record = ConfigRecord::new(body(json!({"id": id, "name": id, "tenant_id": TENANT})), 1, false);
            let value = serde_json::to_vec(&record).unwrap();
            // Like Gohan, retry while the cluster elects a new leader.
            eventually(30, || async { store.put(&format!("/config/v2.0/networks/{id}"), value.clone()).await.ok() })
                .await;
        }
    };
    let before: Vec<String> = (0..6).map(|_| unique("net")).collect();
    for id in &before {
        write(id.clone()).await;
    }
    // Stop the first member: the one a client tries first.
    members[0].stop();
    let after: Vec<String> = (0..6).map(|_| unique("net")).collect();
    for id in &after {
        write(id.clone()).await;
    }
    for id in before.iter().chain(&after) {
        eventually(90, || async { converged(&store, id).await.then_some(()) }).await;
    }
    // The finished markers follow the states; the planner then clears /jobs.
    eventually(30, || async { store.list("/jobs/").await.unwrap().0.is_empty().then_some(()) }).await;
}
