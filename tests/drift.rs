//! Drift repair at scale, on a real etcd and a real standalone Heat: one elected replica repairs,
//! and a pass costs one paged stack list per tenant and one etcd list, whatever the number of
//! resources, with at most `max_repairs` repairs a pass.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::local::LocalHeat;
use heat_reconciler::local::heat::create_none_stack;
use heat_reconciler::protocol::{Action, Job, JobId, JobQueue, JobRecord, JobSpec};
use heat_reconciler::schema::Schema;
use heat_reconciler::store::{Store, Txn, campaign};
use heat_reconciler::worker::drift::{self, DriftOptions, LEADER_KEY, Pass};
use serde_json::json;
use std::time::Duration;
use support::*;
use tokio::sync::watch;

/// Writes, as a converged create leaves them, the `/state`, heat_stacks and snapshot of each
/// network (`id`, its stack's tenant).
async fn converged(store: &Store, networks: &[(String, String)]) {
    for chunk in networks.chunks(25) {
        let mut txn = Txn::new();
        for (id, tenant) in chunk {
            let state = json!({"error": "", "version": 1, "state": {"worker_state": "CREATE_COMPLETED",
                               "orchestration_state": "CREATE_COMPLETE", "heat_outputs": "[]"}});
            let stack = json!({"id": format!("network:{id}"), "stack_id": format!("network_{id}"), "tenant_id": tenant,
                               "stack_status": "CREATE_COMPLETE", "status_reason": "", "output": []});
            let snapshot = json!({"body": {"id": id, "tenant_id": tenant}, "deleted": false, "version": 1});
            txn = txn
                .put(&format!("/state/v2.0/networks/{id}"), state.to_string())
                .put(&format!("/esi-worker/heat_stacks/v2.0/networks/{id}"), stack.to_string())
                .put(&snapshot_key(id), snapshot.to_string());
        }
        store.commit(txn).await.unwrap().expect("unconditional");
    }
}

fn snapshot_key(id: &str) -> String {
    format!("/esi-worker/config/v2.0/networks/{id}")
}

async fn has_snapshot(store: &Store, id: &str) -> bool {
    store.get(&snapshot_key(id)).await.unwrap().is_some()
}

/// A job of the network in `/jobs/all`, as the planner leaves it while the job is live.
async fn live_job(store: &Store, id: &str) {
    let job_id = JobId::generate(Action::Modify, "network", "network", id, 2);
    let spec = JobSpec {
        action: Action::Modify,
        handler: "network".into(),
        resource_type: "network".into(),
        resource_id: id.into(),
        version: 2,
        job_name: job_id.job_name(),
        is_first: true,
        is_last: true,
        on_failure: "fail".into(),
        params: Vec::new(),
        resource_input: Default::default(),
    };
    let job = Job { id: job_id.to_string(), dependency: Vec::new(), spec };
    let value = serde_json::to_vec(&JobRecord { job: job.clone(), n: 0 }).unwrap();
    store.put(&JobQueue::All.key(&job.id), value).await.unwrap();
}

/// A drift repairer running in this process, with its own Heat client (to count its calls).
struct Repairer {
    heat: HeatClient,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Repairer {
    fn start(store: &Store, id: &str) -> Repairer {
        let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
        let mut options = DriftOptions::new(id);
        options.interval = Duration::from_millis(300);
        options.lease_ttl = Duration::from_secs(3);
        let (stop, shutdown) = watch::channel(false);
        let schema = Schema::shipped().unwrap();
        let task = tokio::spawn(drift::run(store.clone(), schema, heat.clone(), options, shutdown));
        Repairer { heat, stop, task }
    }

    fn lists(&self) -> u64 {
        self.heat.calls().stack_lists
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_drift_repair_and_only_the_leader_checks_and_repairs() {
    let h = Harness::without_planner().await;
    // A tenant of its own, where Heat holds one stack: `kept`'s. `id`'s stack is gone.
    let tenant = unique("tenant");
    let (id, kept) = (unique("net"), unique("net"));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
    create_none_stack(&heat, &tenant, &format!("network_{kept}")).await.unwrap();
    converged(&h.store, &[(id.clone(), tenant.clone()), (kept.clone(), tenant.clone())]).await;
    let a = Repairer::start(&h.store, "replica-a");
    let b = Repairer::start(&h.store, "replica-b");

    eventually(20, || async { (!has_snapshot(&h.store, &id).await).then_some(()) }).await;
    // Several intervals more: the standby must not have listed anything meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (leader, standby) = if a.lists() > 0 { (a, b) } else { (b, a) };
    assert!(leader.lists() >= 3, "the leader lists the tenant every interval: {} lists", leader.lists());
    assert_eq!(standby.lists(), 0, "the standby never lists Heat");
    assert_eq!(standby.heat.calls().total, 0, "nor calls it at all");

    // The leader stops; the standby takes over and repairs the next drift.
    leader.stop().await;
    converged(&h.store, &[(id.clone(), tenant.clone())]).await;
    eventually(20, || async { (!has_snapshot(&h.store, &id).await).then_some(()) }).await;
    assert!(standby.lists() > 0, "the standby took over");
    standby.stop().await;
}

/// A pass over many resources on a Heat of its own, whose stacks (but one, made through the API)
/// are seeded straight into its database: creating 1,100 through the API would take minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_lists_each_tenant_once_in_pages_and_repairs_at_most_its_cap() {
    const N: usize = 1100;
    let gone = [7, 500, 900];
    let failed = [11, 600];
    // Gone too, but a job is live: it is being changed right now and must be left alone.
    let busy = 950;
    let h = Harness::without_planner().await;
    let mut local = LocalHeat::own("drift-test").unwrap();
    let heat = HeatClient::new(Endpoint::NoAuth { base: local.start(true).await.unwrap() }).unwrap();
    let tenant = unique("tenant");
    let id = |n: usize| format!("r{n:05}");

    let model = create_none_stack(&heat, &tenant, &format!("network_{}", id(0))).await.unwrap();
    let seeded: Vec<(String, bool)> = (1..N)
        .filter(|n| !gone.contains(n) && *n != busy)
        .map(|n| (format!("network_{}", id(n)), failed.contains(&n)))
        .collect();
    local.seed_stacks(&model.id, &seeded).await.unwrap();
    let listed = seeded.len() + 1;
    assert_eq!(heat.list(&tenant).await.unwrap().len(), listed, "Heat lists the seeded stacks");

    let networks: Vec<(String, String)> = (0..N).map(|n| (id(n), tenant.clone())).collect();
    converged(&h.store, &networks).await;
    live_job(&h.store, &id(busy)).await;
    let schema = Schema::shipped().unwrap();
    let leadership = campaign(&h.store, LEADER_KEY, "drift-test", Duration::from_secs(10)).await.unwrap();

    let (heat_before, etcd_before) = (heat.calls(), h.store.round_trips());
    let pass = drift::check(&h.store, &schema, &heat, &leadership, 3).await.unwrap();
    let (heat_after, etcd_after) = (heat.calls(), h.store.round_trips());
    assert_eq!(
        pass,
        Pass { checked: N - 1, tenants: 1, drifted: 5, repaired: 3, deferred: 2, ..Pass::default() },
        "every converged resource but the busy one checked; 3 of the 5 drifted repaired"
    );
    // Heat answers pages of 500 until a short one.
    let pages = (listed / 500 + 1) as u64;
    assert_eq!(heat_after.stack_lists - heat_before.stack_lists, pages, "one paged list of the tenant");
    assert_eq!(heat_after.total - heat_before.total, pages, "and no call per stack");
    // etcd: /state, heat_stacks and snapshots in 2 pages of 1,000 keys each, /jobs/all in 1,
    // and one transaction for the repairs.
    assert_eq!(etcd_after - etcd_before, 2 + 2 + 2 + 1 + 1, "one list of etcd and one transaction");
    for n in [7, 11, 500] {
        assert!(!has_snapshot(&h.store, &id(n)).await, "{} repaired first (key order)", id(n));
    }
    for n in [600, 900, busy, 0, 1] {
        assert!(has_snapshot(&h.store, &id(n)).await, "{} left alone this pass", id(n));
    }

    let pass = drift::check(&h.store, &schema, &heat, &leadership, 3).await.unwrap();
    assert_eq!((pass.drifted, pass.repaired, pass.deferred), (2, 2, 0), "the deferred ones next");
    assert!(!has_snapshot(&h.store, &id(600)).await && !has_snapshot(&h.store, &id(900)).await);
    let pass = drift::check(&h.store, &schema, &heat, &leadership, 3).await.unwrap();
    assert_eq!(pass.drifted, 0, "repaired resources are no candidates until the planner re-applies them");
    assert!(has_snapshot(&h.store, &id(busy)).await, "a resource with a live job is never repaired");

    // A deposed leader writes nothing: the key now holds someone else's id.
    h.store.put(LEADER_KEY, "someone-else").await.unwrap();
    converged(&h.store, &[(id(7), tenant.clone())]).await;
    let pass = drift::check(&h.store, &schema, &heat, &leadership, 3).await.unwrap();
    assert!(pass.lost_leadership && pass.repaired == 0, "{pass:?}");
    assert!(has_snapshot(&h.store, &id(7)).await);
}
