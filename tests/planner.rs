//! The planner on a real etcd: actions, dependencies, release, cancellation, cleanup, bad input,
//! leader failover and level-triggered restarts.

mod support;

use heat_reconciler::protocol::{Action, JobQueue, ParamValue, ResourceRef};
use serde_json::json;
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
async fn non_workable_resources_are_acknowledged_with_read_complete() {
    let mut h = Harness::start().await;
    h.raw(
        "/config/common/v1.0/tenants/t1",
        serde_json::to_vec(&json!({"body": "{\"id\":\"t1\"}", "version": 1, "marked_for_deletion": false})).unwrap(),
    )
    .await;
    let mut dhcp = port("p-dhcp", "n1", "s1");
    dhcp["device_owner"] = json!("network:dhcp");
    h.config("ports", dhcp, 1, false).await;
    let tenant = h.store.get("/state/common/v1.0/tenants/t1").await.unwrap().expect("tenant state");
    assert_eq!(
        String::from_utf8_lossy(&tenant.value),
        r#"{"error":"","state":{"worker_state":"READ_COMPLETE"},"version":1}"#
    );
    assert!(h.state("ports", "p-dhcp").await.unwrap().is_read_complete());
    assert_eq!(h.snapshot("ports", "p-dhcp").await.unwrap().version, 1);
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

#[tokio::test]
async fn jobs_of_one_resource_never_overlap() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    h.config("networks", network("n1"), 2, false).await;
    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 2);
    let (first, second) = if jobs[0].spec.version == 1 { (&jobs[0], &jobs[1]) } else { (&jobs[1], &jobs[0]) };
    assert_eq!(second.spec.action, Action::Modify);
    assert_eq!(second.dependency, vec![first.id.clone()]);
    let first = first.clone();
    h.finish(&first, "").await;
    assert_eq!(h.queue_of(&h.job_of("n1").await).await, vec![JobQueue::Ready]);
}

#[tokio::test]
async fn a_failed_job_cancels_its_dependents_transitively() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    h.config("subnets", subnet("s1", "n1"), 1, false).await;
    h.config("ports", port("p1", "n1", "s1"), 1, false).await;
    h.config("networks", network("n2"), 1, false).await;
    let net = h.job_of("n1").await;
    h.finish(&net, "HTTPInternalServerError: database down").await;

    let jobs = h.jobs().await;
    assert_eq!(jobs.len(), 1, "only the unrelated network's job is left: {jobs:?}");
    assert_eq!(jobs[0].spec.resource_id, "n2");
    for (plural, id) in [("subnets", "s1"), ("ports", "p1")] {
        let state = h.state(plural, id).await.expect("cancelled job has a state");
        assert_eq!(state.state.worker_state, "CREATE_FAILED");
        assert_eq!(state.state.orchestration_state.as_deref(), Some("CREATE_ERROR"));
        assert!(state.error.contains(&net.id) && state.error.contains("database down"), "{}", state.error);
        assert_eq!(state.version, 1);
    }
    assert!(h.store.list("/jobs/waiting/").await.unwrap().0.is_empty());
}

// --- Bad input: reported, and every other resource keeps converging ---

#[tokio::test]
async fn malformed_config_json_is_reported_and_others_go_on() {
    let mut h = Harness::start().await;
    h.raw("/config/v2.0/networks/bad", b"{not json".to_vec()).await;
    h.raw("/config/v2.0/networks/bad2", br#"{"body": "[1, 2]", "version": 4, "marked_for_deletion": false}"#.to_vec())
        .await;
    h.config("networks", network("good"), 1, false).await;
    assert_eq!(h.job_of("good").await.spec.action, Action::Create);
    let state = h.state("networks", "bad2").await.expect("a readable version gets a state");
    assert_eq!((state.version, state.state.worker_state.as_str()), (4, "CREATE_FAILED"));
    assert!(state.error.contains("unreadable config"), "{}", state.error);
    assert!(h.state("networks", "bad").await.is_none(), "no version to report against");
}

#[tokio::test]
async fn a_body_without_id_is_reported() {
    let mut h = Harness::start().await;
    let record = json!({"body": "{\"name\":\"x\"}", "version": 1, "marked_for_deletion": false});
    h.raw("/config/v2.0/networks/noid", serde_json::to_vec(&record).unwrap()).await;
    h.config("networks", network("good"), 1, false).await;
    let state = h.state("networks", "noid").await.expect("reported");
    assert!(state.error.contains("`id`"), "{}", state.error);
    assert_eq!(h.jobs().await.len(), 1);
}

#[tokio::test]
async fn an_unknown_type_is_ignored_and_others_go_on() {
    let mut h = Harness::start().await;
    h.raw(
        "/config/v9.9/gizmos/g1",
        serde_json::to_vec(&json!({"body": "{\"id\":\"g1\"}", "version": 1, "marked_for_deletion": false})).unwrap(),
    )
    .await;
    h.config("networks", network("good"), 1, false).await;
    assert_eq!(h.jobs().await.len(), 1);
    assert!(h.store.get("/state/v9.9/gizmos/g1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_missing_template_makes_the_resource_non_workable() {
    let mut h = Harness::start().await;
    // vnf_instance maps to the `vnf_instance` template, which this store does not hold.
    h.config("vnf_instances", json!({"id": "v1", "tenant_id": TENANT}), 1, false).await;
    h.config("networks", network("good"), 1, false).await;
    assert!(h.state("vnf_instances", "v1").await.unwrap().is_read_complete());
    assert_eq!(h.jobs().await.len(), 1);
}

#[tokio::test]
async fn a_mapping_that_does_not_parse_is_reported_in_state() {
    let mut h = Harness::start().await;
    h.config("firewalls", json!({"id": "fw1", "tenant_id": TENANT}), 1, false).await;
    h.config("networks", network("good"), 1, false).await;
    let state = h.state("firewalls", "fw1").await.expect("reported");
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert!(state.error.contains("template `firewall_config`, param `broken`"), "{}", state.error);
    assert_eq!(h.jobs().await.len(), 1);
}

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
