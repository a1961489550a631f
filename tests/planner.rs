//! The planner's loop on a real etcd: a resource's whole life, release of waiting jobs, a
//! reference retried once it resolves, leader failover and level-triggered restarts, and the
//! rules that keep transactions in flight as safe as one at a time. What each
//! reaction writes (dependencies, cancellation, bad input, templates) is unit-tested in
//! `src/planner/reactions.rs`.

mod support;

use heat_reconciler::planner::PlannerOptions;
use heat_reconciler::protocol::{Action, ConfigRecord, JobQueue, ParamValue, Record, ResourceRef};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::*;

#[tokio::test]
async fn create_modify_logical_delete_and_cleanup() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    let create = h.job_of("n1").await;
    assert_eq!((create.spec.action, create.spec.version), (Action::Create, 1));
    assert!(create.id.starts_with("create:heat_worker:network:n1:1:"));
    assert_eq!(h.queue_of(&create).await, vec![JobQueue::Ready]);
    assert_eq!(h.snapshot("networks", "n1").await.unwrap().version, 1);
    let name = create.spec.params.iter().find(|p| p.param == "name").unwrap();
    assert_eq!(name.value, ParamValue::Value(json!("n1")));

    h.finish(&create, "").await;
    assert!(h.jobs().await.is_empty(), "a finished job leaves /jobs/all");
    assert!(h.store.get(&JobQueue::Finished.key(&create.id)).await.unwrap().is_none());

    // Same version again: nothing new to do.
    h.config("networks", network("n1"), 1, false).await;
    assert!(h.jobs().await.is_empty());

    let mut renamed = network("n1");
    renamed["name"] = json!("renamed");
    h.config("networks", renamed.clone(), 2, false).await;
    let modify = h.job_of("n1").await;
    assert_eq!((modify.spec.action, modify.spec.version), (Action::Modify, 2));
    assert_eq!(modify.spec.resource_input["name"], "renamed");
    h.finish(&modify, "").await;

    h.config("networks", renamed.clone(), 3, true).await;
    let delete = h.job_of("n1").await;
    assert_eq!(delete.spec.action, Action::LogicalDelete);
    assert!(h.snapshot("networks", "n1").await.unwrap().deleted);
    h.finish(&delete, "").await;

    // Gohan removes the config after DELETE_COMPLETED: snapshot and heat_stacks go too.
    h.raw("/esi-worker/heat_stacks/v2.0/networks/n1", br#"{"id": "network:n1"}"#.to_vec()).await;
    h.delete("/config/v2.0/networks/n1").await;
    assert!(h.snapshot("networks", "n1").await.is_none());
    assert!(h.store.get("/esi-worker/heat_stacks/v2.0/networks/n1").await.unwrap().is_none());
    assert!(h.jobs().await.is_empty());
}

#[tokio::test]
async fn dependencies_hold_jobs_back_until_released() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    h.config("subnets", subnet("s1", "n1"), 1, false).await;
    h.config("ports", port("p1", "n1", "s1"), 1, false).await;
    let (net, sub, p) = (h.job_of("n1").await, h.job_of("s1").await, h.job_of("p1").await);
    assert_eq!(sub.dependency, vec![net.id.clone()]);
    let mut port_deps = p.dependency.clone();
    port_deps.sort();
    let mut expected = vec![net.id.clone(), sub.id.clone()];
    expected.sort();
    assert_eq!(port_deps, expected);
    assert_eq!(h.queue_of(&sub).await, vec![JobQueue::Waiting]);
    let refs = &p.spec.params.iter().find(|x| x.param == "jinja_subnets").unwrap().resources;
    assert_eq!(refs, &vec![ResourceRef::new("subnet", "s1")]);

    h.finish(&net, "").await;
    assert_eq!(h.queue_of(&sub).await, vec![JobQueue::Ready], "the subnet is released");
    assert_eq!(h.queue_of(&p).await, vec![JobQueue::Waiting], "the port still waits for the subnet");
    h.finish(&sub, "").await;
    assert_eq!(h.queue_of(&p).await, vec![JobQueue::Ready]);
}

// --- Bad input: reported, then planned once it is fixed ---

#[tokio::test]
async fn a_reference_to_a_missing_resource_is_reported_then_retried() {
    let mut h = Harness::start().await;
    h.config("load_balancers", json!({"id": "lb1", "vnf_instance_id": "v1", "tenant_id": TENANT}), 1, false).await;
    let state = h.state("load_balancers", "lb1").await.expect("reported");
    assert!(state.error.contains("vnf_instance `v1` is not in the config store"), "{}", state.error);
    assert!(h.jobs().await.is_empty());
    h.config("vnf_instances", json!({"id": "v1", "tenant_id": TENANT, "management_ip": "100.64.193.3"}), 1, false)
        .await;
    let job = eventually(10, || async { h.jobs().await.into_iter().find(|j| j.spec.resource_id == "lb1") }).await;
    let ip = job.spec.params.iter().find(|p| p.param == "management_ip").unwrap();
    assert_eq!(ip.value, ParamValue::Value(json!("100.64.193.3")));
}

#[tokio::test]
async fn resources_that_reference_each_other_do_not_deadlock() {
    let mut h = Harness::start().await;
    // Two ports on each other's subnets would be a cycle if dependencies pointed both ways; a new
    // job only ever waits for jobs that exist already, so the second waits for the first.
    h.config("networks", network("a"), 1, false).await;
    h.config("subnets", subnet("sa", "b"), 1, false).await;
    h.config("networks", network("b"), 1, false).await;
    h.config("subnets", subnet("sb", "a"), 1, false).await;
    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 4);
    for job in &jobs {
        for dep in &job.dependency {
            let other = jobs.iter().find(|j| &j.id == dep).expect("dependency is live");
            assert!(!other.dependency.contains(&job.id), "cycle between {} and {}", job.id, other.id);
        }
    }
    // Finishing in dependency order drains everything.
    for _ in 0..4 {
        let ready = eventually(5, || async {
            for job in h.jobs().await {
                if h.queue_of(&job).await == vec![JobQueue::Ready] {
                    return Some(job);
                }
            }
            None
        })
        .await;
        h.finish(&ready, "").await;
    }
    assert!(h.jobs().await.is_empty());
}

// --- Leadership and restarts ---

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_dies() {
    let mut h = Harness::without_planner().await;
    let ttl = Duration::from_secs(2);
    let mut leader = RunningPlanner::start(&h.store, "planner-a", ttl);
    let leader_id = eventually(5, || async { h.store.get("/job_manager_id").await.unwrap().map(|kv| kv.value) }).await;
    assert_eq!(leader_id, b"planner-a");
    let standby = RunningPlanner::start(&h.store, "planner-b", ttl);

    let revision = h.config("networks", network("n1"), 1, false).await;
    leader.processed(revision).await;
    assert_eq!(h.jobs().await.len(), 1);

    leader.kill();
    let died = tokio::time::Instant::now();
    let new_leader = eventually(10, || async {
        h.store.get("/job_manager_id").await.unwrap().map(|kv| kv.value).filter(|v| v == b"planner-b")
    })
    .await;
    assert_eq!(new_leader, b"planner-b");
    assert!(died.elapsed() < ttl * 3, "failover took {:?}", died.elapsed());

    h.planner = Some(standby);
    h.config("networks", network("n2"), 1, false).await;
    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 2, "n1 is not planned again, n2 is planned: {jobs:?}");
    let n1 = h.job_of("n1").await;
    h.finish(&n1, "").await;
    assert_eq!(h.jobs().await.len(), 1);
}

#[tokio::test]
async fn a_restarted_planner_continues_where_the_last_one_stopped() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    h.config("subnets", subnet("s1", "n1"), 1, false).await;
    let net = h.job_of("n1").await;
    h.finish(&net, "").await;
    let sub = h.job_of("s1").await;
    h.planner.take().unwrap().stop().await;

    // While no planner runs: a new version, a new resource, and a finished job.
    h.config("networks", network("n1"), 2, false).await;
    h.config("networks", network("n3"), 1, false).await;
    h.finish(&sub, "").await;

    h.planner = Some(RunningPlanner::start(&h.store, "planner-c", Duration::from_secs(3)));
    let jobs = eventually(10, || async {
        let jobs = h.jobs().await;
        (jobs.len() == 2).then_some(jobs)
    })
    .await;
    let mut planned: Vec<(String, Action, u64)> =
        jobs.iter().map(|j| (j.spec.resource_id.clone(), j.spec.action, j.spec.version)).collect();
    planned.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(planned, vec![("n1".into(), Action::Modify, 2), ("n3".into(), Action::Create, 1)]);
    assert!(h.store.get(&JobQueue::Finished.key(&sub.id)).await.unwrap().is_none(), "finished marker consumed");
}

// --- Transactions in flight ---

/// Writes configs as Gohan would, without a planner watching each one.
async fn preload(h: &Harness, records: impl IntoIterator<Item = (&'static str, serde_json::Value)>) {
    for (plural, resource) in records {
        let id = resource["id"].as_str().unwrap().to_owned();
        let record = ConfigRecord::new(body(resource), 1, false);
        h.store.put(&format!("/config/v2.0/{plural}/{id}"), serde_json::to_vec(&record).unwrap()).await.unwrap();
    }
}

/// Every `/jobs/all` record with the revision it was created at, once there are `count`.
async fn jobs_created(h: &Harness, count: usize) -> Vec<(heat_reconciler::protocol::Job, i64)> {
    eventually(60, || async {
        let (kvs, _) = h.store.list("/jobs/all/").await.unwrap();
        (kvs.len() >= count).then(|| {
            kvs.iter()
                .map(|kv| match Record::from_etcd(&kv.key, &kv.value).unwrap() {
                    Record::Job(record) => (record.job, kv.create_revision),
                    other => panic!("{other:?}"),
                })
                .collect()
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_planned_in_flight_never_reach_etcd_before_their_dependencies() {
    // Each subnet right after its network, each port right after its subnet: at start-up the
    // planner meets every dependency while that dependency's transaction is still in flight.
    let mut h = Harness::without_planner().await;
    let chains = 60;
    let mut records = Vec::new();
    for i in 0..chains {
        let (n, s, p) = (format!("n{i}"), format!("s{i}"), format!("p{i}"));
        records.extend([("networks", network(&n)), ("subnets", subnet(&s, &n)), ("ports", port(&p, &n, &s))]);
    }
    preload(&h, records).await;
    let mut options = PlannerOptions::new("planner-a");
    options.pipeline_depth = 16;
    h.planner = Some(RunningPlanner::start_with(&h.store, options));

    let jobs = jobs_created(&h, 3 * chains).await;
    assert_eq!(jobs.len(), 3 * chains, "one job per resource");
    let created: HashMap<&str, i64> = jobs.iter().map(|(job, revision)| (job.id.as_str(), *revision)).collect();
    let mut dependencies = 0;
    for (job, revision) in &jobs {
        for dependency in &job.dependency {
            let theirs = created.get(dependency.as_str()).unwrap_or_else(|| panic!("{dependency} exists"));
            // The same revision is the same transaction: both land together or neither does.
            assert!(theirs <= revision, "{} reached etcd before its dependency {dependency}", job.id);
            dependencies += 1;
        }
    }
    assert_eq!(dependencies, chains * 3, "a subnet waits for its network, a port for both");
    let transactions: HashSet<i64> = created.values().copied().collect();
    assert!(
        transactions.len() < jobs.len(),
        "planned jobs share transactions ({} jobs, {} transactions)",
        jobs.len(),
        transactions.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planner_that_loses_its_key_mid_start_up_writes_nothing_and_leaves_nothing_twice() {
    let mut h = Harness::without_planner().await;
    let networks = 1500;
    preload(&h, (0..networks).map(|i| ("networks", network(&format!("n{i}"))))).await;
    h.planner = Some(RunningPlanner::start(&h.store, "planner-a", Duration::from_secs(3)));

    // Another process takes the leader key while the planner has transactions in flight.
    eventually(30, || async {
        let (kvs, _) = h.store.list("/jobs/all/").await.unwrap();
        (!kvs.is_empty()).then_some(())
    })
    .await;
    let taken = h.store.put("/job_manager_id", b"intruder".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (written, _) = h.store.list("/").await.unwrap();
    let late: Vec<&str> = written
        .iter()
        .filter(|kv| kv.mod_revision > taken && kv.key != "/job_manager_id")
        .map(|kv| kv.key.as_str())
        .collect();
    assert!(late.is_empty(), "written without the lead: {late:?}");
    let (jobs, _) = h.store.list("/jobs/all/").await.unwrap();
    assert!(jobs.len() < networks, "the key was taken mid start-up ({} jobs)", jobs.len());

    // The key goes; the planner leads again and plans the rest, each network once.
    h.store.delete("/job_manager_id").await.unwrap();
    let jobs = jobs_created(&h, networks).await;
    let mut planned: Vec<&str> = jobs.iter().map(|(job, _)| job.spec.resource_id.as_str()).collect();
    planned.sort();
    planned.dedup();
    assert_eq!((jobs.len(), planned.len()), (networks, networks), "each network planned exactly once");
}
