//! Level-triggered recovery: a job whose worker died is queued again, a failed resource is
//! retried with backoff until it converges, and a planner cut off while etcd compacted its
//! history still converges every resource changed meanwhile.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::planner::PlannerOptions;
use heat_reconciler::protocol::JobQueue;
use heat_reconciler::schema::Schema;
use heat_reconciler::store::{Lease, Txn, campaign};
use heat_reconciler::worker::drift;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn a_job_whose_worker_died_is_queued_again() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    let job = h.job_of("n1").await;
    // A worker claims the job exactly as ours does, then dies: its lease is never refreshed.
    let lease = Lease::grant(&h.store, Duration::from_secs(2)).await.unwrap();
    let (ready, working) = (JobQueue::Ready.key(&job.id), JobQueue::Working.key(&job.id));
    let claim = Txn::new()
        .if_present(&ready)
        .if_absent(&working)
        .put_leased(&working, "dead-worker", lease.id())
        .delete(&ready);
    assert!(h.store.commit(claim).await.unwrap().is_some());
    drop(lease);
    assert_eq!(h.queue_of(&job).await, Vec::<JobQueue>::new());
    eventually(15, || async { (h.queue_of(&job).await == vec![JobQueue::Ready]).then_some(()) }).await;
    assert_eq!(h.jobs().await.len(), 1, "the same job, not a new one");
}

#[tokio::test]
async fn a_restarted_planner_queues_orphaned_jobs() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    let job = h.job_of("n1").await;
    h.planner.take().unwrap().stop().await;
    // While no planner runs, a worker claimed the job and died with its claim.
    h.store.delete(&JobQueue::Ready.key(&job.id)).await.unwrap();
    h.planner = Some(RunningPlanner::start(&h.store, "planner-b", Duration::from_secs(3)));
    eventually(10, || async { (h.queue_of(&job).await == vec![JobQueue::Ready]).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_resource_is_retried_with_backoff_until_it_converges() {
    let mut h = Harness::without_planner().await;
    // The network's stack fails while its template is broken; the operator then fixes it.
    let failing = "heat_template_version: 2013-05-23\nparameters:\n  name: {type: string}\n  tenant_id: {type: string}\n\
        resources:\n  boom:\n    type: OS::Heat::TestResource\n    properties: {fail: true}\n";
    let working = "heat_template_version: 2013-05-23\nparameters:\n  name: {type: string}\n  tenant_id: {type: string}\n\
        resources:\n  fine:\n    type: OS::Heat::Value\n    properties: {value: {get_param: name}}\n";
    put_template(&h.store, "network", network_mappings(), failing).await;
    let mut options = PlannerOptions::new("planner");
    options.retry_base = Duration::from_secs(1);
    h.planner = Some(RunningPlanner::start_with(&h.store, options));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
    let _worker = RunningWorker::fast(&h.store, heat);

    let id = unique("net");
    h.config("networks", network(&id), 1, false).await;
    let failed =
        eventually(60, || async { h.state("networks", &id).await.filter(|s| s.state.worker_state == "CREATE_FAILED") })
            .await;
    assert!(failed.error.contains("Test Resource failed"), "{}", failed.error);
    put_template(&h.store, "network", network_mappings(), working).await;
    let state = eventually(90, || async {
        h.state("networks", &id).await.filter(|s| s.state.worker_state == "CREATE_COMPLETED")
    })
    .await;
    assert_eq!(state.version, 1);
    assert_eq!(state.error, "");
}

#[tokio::test]
async fn changes_made_while_the_planner_was_cut_off_and_compacted_away_are_planned() {
    let mut h = Harness::start().await;
    h.config("networks", network("n0"), 1, false).await;
    assert_eq!(h.jobs().await.len(), 1);
    // etcd goes down under the planner; when it is back, changes land and the history the planner
    // would resume from is compacted before it reconnects (its watch backs off).
    h.etcd.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.etcd.restart().await.expect("etcd restarts");
    let store = h.etcd.connect().await.unwrap();
    for n in 1..=5 {
        let record = heat_reconciler::protocol::ConfigRecord::new(body(network(&format!("n{n}"))), 1, false);
        store.put(&format!("/config/v2.0/networks/n{n}"), serde_json::to_vec(&record).unwrap()).await.unwrap();
    }
    store.delete("/config/v2.0/networks/n0").await.unwrap();
    let revision = store.revision().await.unwrap();
    store.compact(revision).await.unwrap();
    h.store = store;
    let planned = eventually(30, || async {
        let jobs = h.jobs().await;
        (jobs.len() == 6).then_some(jobs)
    })
    .await;
    for n in 1..=5 {
        assert!(planned.iter().any(|j| j.spec.resource_id == format!("n{n}")), "n{n} planned");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_deleted_behind_our_back_is_created_again() {
    let mut h = Harness::without_planner().await;
    put_template(&h.store, "network", network_mappings(), NETWORK).await;
    h.planner = Some(RunningPlanner::start(&h.store, "planner", Duration::from_secs(3)));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
    let _worker = RunningWorker::fast(&h.store, heat.clone());

    let id = unique("net");
    h.config("networks", network(&id), 1, false).await;
    eventually(60, || async { h.state("networks", &id).await.filter(|s| s.state.worker_state == "CREATE_COMPLETED") })
        .await;
    eventually(30, || async { h.store.list("/jobs/").await.unwrap().0.is_empty().then_some(()) }).await;
    let schema = Schema::shipped().unwrap();
    let leadership = campaign(&h.store, drift::LEADER_KEY, "drift", Duration::from_secs(10)).await.unwrap();
    let pass = drift::check(&h.store, &schema, &heat, &leadership, 100).await.unwrap();
    assert!(pass.checked >= 1 && pass.drifted == 0, "nothing drifted yet: {pass:?}");

    // Someone deletes the stack in Heat directly.
    let name = format!("network_{id}");
    let stack = heat.find(TENANT, &name).await.unwrap().expect("the stack exists");
    heat.delete(TENANT, &stack).await.unwrap();
    eventually(30, || async { heat.find(TENANT, &name).await.unwrap().is_none().then_some(()) }).await;

    let pass = drift::check(&h.store, &schema, &heat, &leadership, 100).await.unwrap();
    assert_eq!((pass.drifted, pass.repaired), (1, 1), "{pass:?}");
    eventually(60, || async { heat.find(TENANT, &name).await.unwrap() }).await;
    let state = eventually(60, || async {
        let state = h.state("networks", &id).await?;
        (state.state.worker_state == "CREATE_COMPLETED" && h.store.list("/jobs/").await.unwrap().0.is_empty())
            .then_some(state)
    })
    .await;
    assert_eq!(state.version, 1, "the same config version, applied again");
}
