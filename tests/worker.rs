//! The worker on a real etcd and a real standalone Heat: create, modify and logical delete with
//! the records of PROTOCOL.md §2.7–2.9, outputs flowing to dependents, and every failure kind.

mod support;

use heat_reconciler::handoff::Handoff;
use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::planner::PlannerOptions;
use heat_reconciler::store::{WatchEvent, watch_prefix};
use heat_reconciler::worker::{WorkerOptions, execute::Patience};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

const SUBNET: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/subnet.yaml"));

/// Worker test harness: etcd, the test templates, planner and worker on a real Heat.
struct World {
    h: Harness,
    worker: RunningWorker,
}

async fn world(patience: Patience) -> World {
    world_sharing(patience, None, 8).await
}

/// The world with a worker of `slots`; `handoff`: the planner and the worker share one, as the
/// roles of one process do.
async fn world_sharing(patience: Patience, handoff: Option<Handoff>, slots: usize) -> World {
    let mut h = Harness::without_planner().await;
    h.template("network", json!({"name": "Pname", "tenant_id": "Ptenant_id", "heat_timeout": "C1"})).await;
    h.template(
        "subnet",
        json!({"network_id": "Mnetwork:network_id:id", "fail": {"field": "fail"}, "wait": {"field": "wait"},
               "jinja_cidrs": {"for_field": "cidrs", "for_mapping": {"field": "cidr"}}, "heat_timeout": {"constant": 1}}),
    )
    .await;
    set_template(&h, "network", NETWORK).await;
    set_template(&h, "subnet", SUBNET).await;
    // A template Heat rejects, one that does not render, and one needing a missing output.
    h.template("port", json!({"name": "Pid"})).await;
    set_template(&h, "port", "heat_template_version: 2013-05-23\nresources:\n  x: {type: 'OS::Nope::Thing'}\n").await;
    h.template("load_balancer", json!({"name": "Pid"})).await;
    set_template(&h, "load_balancer", "heat_template_version: 2013-05-23\n{% for x in %}\n").await;
    h.template("firewall_config", json!({"server": "Mvnf_instance:vnf_instance_id:server_id"})).await;
    set_template(&h, "firewall_config", NETWORK).await;
    // A type whose job waits for a subnet's (its param reads the subnet's output).
    vpn_gateway_template(&h).await;

    let mut options = PlannerOptions::new("planner");
    options.lease_ttl = Duration::from_secs(3);
    options.handoff = handoff.clone();
    h.planner = Some(RunningPlanner::start_with(&h.store, options));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).expect("heat client");
    let worker = RunningWorker::start(&h.store, heat, WorkerOptions { patience, slots, handoff, ..Default::default() });
    World { h, worker }
}

fn network(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "tenant_id": TENANT})
}

fn subnet(id: &str, network: &str, fail: Value, wait: u64) -> Value {
    json!({"id": id, "network_id": network, "tenant_id": TENANT, "fail": fail, "wait": wait,
           "cidrs": [{"cidr": "10.0.0.0/24"}, {"cidr": "10.0.1.0/24"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_modify_and_logical_delete_through_heat() {
    let mut w = world(fast_patience()).await;
    let id = unique("net");
    w.h.config("networks", network(&id, "blue"), 1, false).await;
    let state = w.h.settled("networks", &id, 1).await;
    assert_eq!(state.error, "");
    assert_eq!(state.state.worker_state, "CREATE_COMPLETED");
    assert_eq!(state.state.orchestration_state.as_deref(), Some("CREATE_COMPLETE"));
    let raw = w.h.store.get(&format!("/state/v2.0/networks/{id}")).await.unwrap().unwrap();
    let raw: Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(
        raw["state"]["heat_outputs"],
        json!("[{\"output_value\": \"blue\", \"description\": \"The network id.\", \"output_key\": \"id\"}]")
    );
    let stack = w.h.heat_stack("networks", &id).await.expect("heat_stacks record");
    assert_eq!(
        serde_json::to_value(&stack).unwrap(),
        json!({"id": format!("network:{id}"), "stack_id": format!("network_{id}"), "tenant_id": TENANT,
               "stack_status": "CREATE_COMPLETE", "status_reason": "Stack CREATE completed successfully",
               "output": [{"output_value": "blue", "description": "The network id.", "output_key": "id"}]})
    );
    w.h.queues_drained().await;

    w.h.config("networks", network(&id, "green"), 2, false).await;
    let state = w.h.settled("networks", &id, 2).await;
    assert_eq!(state.state.worker_state, "MODIFY_COMPLETED", "{}", state.error);
    assert_eq!(state.state.orchestration_state.as_deref(), Some("UPDATE_COMPLETE"));
    let stack = w.h.heat_stack("networks", &id).await.unwrap();
    // The reason is Heat's own words (the corpus's older Heat said "Stack successfully updated").
    assert_eq!(stack.stack_status, "UPDATE_COMPLETE");
    assert!(
        stack.status_reason.contains("UPDATE") || stack.status_reason.contains("updated"),
        "{}",
        stack.status_reason
    );
    assert_eq!(stack.output[0].output_value, json!("green"));
    w.h.queues_drained().await;

    w.h.config("networks", network(&id, "green"), 3, true).await;
    let state = w.h.settled("networks", &id, 3).await;
    assert_eq!(state.state.worker_state, "DELETE_COMPLETED");
    assert_eq!(state.state.heat_outputs, Some(Vec::new()));
    let stack = w.h.heat_stack("networks", &id).await.unwrap();
    assert_eq!(
        serde_json::to_value(&stack).unwrap(),
        json!({"id": format!("network:{id}"), "stack_id": "", "tenant_id": TENANT, "stack_status": "DELETE_COMPLETE",
               "status_reason": "", "output": []})
    );
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
    assert_eq!(heat.find(TENANT, &format!("network_{id}")).await.unwrap(), None, "the stack is gone from Heat");
    w.h.queues_drained().await;
    w.worker.stop().await;
}

/// A job costs the worker three writes: the claim, which also marks the job started (and reads
/// what the job needs), then the results, then the finished marker — each one transaction, in
/// the protocol's order (PROTOCOL.md §3.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_claim_and_two_result_writes() {
    let mut w = world(fast_patience()).await;
    let mut events = watch_prefix(w.h.store.clone(), "/".into());
    while !matches!(events.recv().await, Some(WatchEvent::Listed { .. })) {}
    let id = unique("net");
    w.h.config("networks", network(&id, "blue"), 1, false).await;
    assert_eq!(w.h.settled("networks", &id, 1).await.error, "");
    w.h.queues_drained().await;
    let writes = writes_seen(&mut events).await;
    let job = job_of(&writes, &id);
    let revision = |op: &str, value: Option<&str>| seen(&writes, op, value).revision;
    let job_state = format!("/esi-worker/job_state/v2.0/networks/{id}");
    let claim = revision(&format!("put /jobs/working/{job}"), None);
    assert_eq!(revision(&format!("delete /jobs/ready/{job}"), None), claim);
    assert_eq!(revision(&format!("put {job_state}"), Some("{}")), claim, "marked started by the claim");
    let results = revision(&format!("put /esi-worker/heat_stacks/v2.0/networks/{id}"), None);
    assert_eq!(revision(&format!("put /state/v2.0/networks/{id}"), None), results);
    let finished = revision(&format!("put /jobs/finished/{job}"), None);
    assert_eq!(revision(&format!("delete /jobs/working/{job}"), None), finished);
    assert_eq!(revision(&format!("delete {job_state}"), None), finished);
    assert!(claim < results && results < finished);
    assert_eq!(claim_writes(&writes, &job, &id), [claim, results, finished].into(), "{writes:#?}");
    w.worker.stop().await;
}

/// With the planner in the worker's process, a job ready to run is claimed in the transaction
/// that plans it (`heat_reconciler::handoff`): never in `/jobs/ready`, its claim bound to a lease
/// and the job marked started at the plan's revision; the worker then writes only its results
/// and its finished marker. A job planned while every slot is taken goes to `/jobs/ready`, and
/// the worker claims it there once a slot is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_claimed_in_its_plan_never_waits_in_ready() {
    let mut w = world_sharing(fast_patience(), Some(Handoff::default()), 1).await;
    // Once a job has run, the worker has its lease and takes jobs from the planner.
    let warm_up = unique("net");
    w.h.config("networks", network(&warm_up, "white"), 1, false).await;
    w.h.settled("networks", &warm_up, 1).await;
    w.h.queues_drained().await;
    let mut events = watch_prefix(w.h.store.clone(), "/".into());
    while !matches!(events.recv().await, Some(WatchEvent::Listed { .. })) {}
    let (first, second) = (unique("net"), unique("net"));
    w.h.config("networks", network(&first, "blue"), 1, false).await;
    w.h.config("networks", network(&second, "red"), 1, false).await;
    for id in [&first, &second] {
        let state = w.h.settled("networks", id, 1).await;
        assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{}", state.error);
    }
    w.h.queues_drained().await;
    let writes = writes_seen(&mut events).await;
    let revision = |op: &str, value: Option<&str>| seen(&writes, op, value).revision;

    let job = job_of(&writes, &first);
    let plan = revision(&format!("put /jobs/all/{job}"), None);
    let claim = seen(&writes, &format!("put /jobs/working/{job}"), None);
    assert_eq!(claim.revision, plan, "claimed by the plan's transaction");
    assert_ne!(claim.lease, 0, "the claim is bound to the worker's lease");
    assert_eq!(revision(&format!("put /esi-worker/job_state/v2.0/networks/{first}"), Some("{}")), plan);
    assert!(!writes.iter().any(|w| w.op.contains(&format!("/jobs/ready/{job}"))), "{writes:#?}");
    let results = revision(&format!("put /state/v2.0/networks/{first}"), None);
    let finished = revision(&format!("put /jobs/finished/{job}"), None);
    assert!(plan < results && results < finished);
    assert_eq!(claim_writes(&writes, &job, &first), [plan, results, finished].into(), "{writes:#?}");

    // The one slot was the first job's while the second was planned.
    let job = job_of(&writes, &second);
    let plan = revision(&format!("put /jobs/all/{job}"), None);
    assert_eq!(revision(&format!("put /jobs/ready/{job}"), Some("heat_worker")), plan);
    let claim = revision(&format!("put /jobs/working/{job}"), None);
    assert!(claim > plan);
    assert_eq!(revision(&format!("delete /jobs/ready/{job}"), None), claim);
    w.worker.stop().await;
}

/// One write etcd made, as its watch showed it.
#[derive(Debug)]
struct Seen {
    op: String,
    value: String,
    revision: i64,
    lease: i64,
}

/// Every write `events` brings until none has come for 500 ms.
async fn writes_seen(events: &mut tokio::sync::mpsc::Receiver<WatchEvent>) -> Vec<Seen> {
    let mut writes = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        match event {
            WatchEvent::Put(kv) => writes.push(Seen {
                op: format!("put {}", kv.key),
                value: String::from_utf8_lossy(&kv.value).into(),
                revision: kv.mod_revision,
                lease: kv.lease,
            }),
            WatchEvent::Deleted { key, revision } => {
                writes.push(Seen { op: format!("delete {key}"), value: String::new(), revision, lease: 0 })
            }
            _ => {}
        }
    }
    writes
}

/// The first write of `op` (holding `value`, if given).
fn seen<'w>(writes: &'w [Seen], op: &str, value: Option<&str>) -> &'w Seen {
    writes
        .iter()
        .find(|w| w.op == op && value.is_none_or(|value| w.value == value))
        .unwrap_or_else(|| panic!("no `{op}` among {writes:#?}"))
}

/// The id of the job planned for the network `id`.
fn job_of(writes: &[Seen], id: &str) -> String {
    writes
        .iter()
        .find_map(|w| w.op.strip_prefix("put /jobs/all/").filter(|job| job.contains(id)))
        .expect("the job was planned")
        .to_owned()
}

/// The revisions of the writes that claim, start, report and finish job `job` of network `id`.
fn claim_writes(writes: &[Seen], job: &str, id: &str) -> std::collections::BTreeSet<i64> {
    let job_state = format!("/esi-worker/job_state/v2.0/networks/{id}");
    let ops = [
        format!("put /jobs/working/{job}"),
        format!("delete /jobs/working/{job}"),
        format!("delete /jobs/ready/{job}"),
        format!("put /jobs/finished/{job}"),
        format!("put {job_state}"),
        format!("delete {job_state}"),
        format!("put /esi-worker/heat_stacks/v2.0/networks/{id}"),
        format!("put /state/v2.0/networks/{id}"),
    ];
    writes.iter().filter(|w| ops.contains(&w.op)).map(|w| w.revision).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_flow_to_dependents_and_jinja_renders() {
    let mut w = world(fast_patience()).await;
    let (net, sub) = (unique("net"), unique("sub"));
    w.h.config("networks", network(&net, "red"), 1, false).await;
    w.h.config("subnets", subnet(&sub, &net, json!(false), 0), 1, false).await;
    let state = w.h.settled("subnets", &sub, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{}", state.error);
    let stack = w.h.heat_stack("subnets", &sub).await.unwrap();
    assert_eq!(stack.output[0].output_value, json!("red"), "the network's output reached the subnet's parameter");
    w.h.queues_drained().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stack_is_reported_and_its_dependents_cancelled() {
    let mut w = world(fast_patience()).await;
    let (net, sub, gw) = (unique("net"), unique("sub"), unique("gw"));
    w.h.config("networks", network(&net, "red"), 1, false).await;
    w.h.settled("networks", &net, 1).await;
    // The subnet's stack fails after a wait; the gateway's job waits for it meanwhile.
    w.h.config("subnets", subnet(&sub, &net, json!(true), 1), 1, false).await;
    w.h.config("vpn_gateways", json!({"id": gw, "tenant_id": TENANT, "subnet_id": sub}), 1, false).await;
    let state = w.h.settled("subnets", &sub, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert_eq!(state.state.orchestration_state.as_deref(), Some("CREATE_ERROR"));
    assert!(state.error.contains("CREATE_FAILED") && state.error.contains("Test Resource failed"), "{}", state.error);
    let stack = w.h.heat_stack("subnets", &sub).await.expect("a stack status was obtained");
    assert_eq!(stack.stack_status, "CREATE_FAILED");
    let cancelled = w.h.settled("vpn_gateways", &gw, 1).await;
    assert_eq!(cancelled.state.worker_state, "CREATE_FAILED");
    assert!(
        cancelled.error.contains(&format!("create:heat_worker:subnet:{sub}:1:"))
            && cancelled.error.contains("Test Resource failed"),
        "{}",
        cancelled.error
    );
    assert!(w.h.heat_stack("vpn_gateways", &gw).await.is_none(), "the cancelled job never reached Heat");
    w.worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heat_rejections_render_errors_and_missing_outputs_are_reported() {
    let mut w = world(fast_patience()).await;
    let (port, lb, fw) = (unique("port"), unique("lb"), unique("fw"));
    w.h.config("ports", json!({"id": port, "tenant_id": TENANT, "device_owner": "compute:nova"}), 1, false).await;
    w.h.config("load_balancers", json!({"id": lb, "tenant_id": TENANT}), 1, false).await;
    w.h.config("firewalls", json!({"id": fw, "tenant_id": TENANT, "vnf_instance_id": "nowhere"}), 1, false).await;

    let rejected = w.h.settled("ports", &port, 1).await;
    assert_eq!(rejected.state.worker_state, "CREATE_FAILED");
    assert!(rejected.error.starts_with("HTTPBadRequest: "), "{}", rejected.error);
    assert!(rejected.error.contains("OS::Nope::Thing"), "Heat's explanation is kept: {}", rejected.error);
    assert!(w.h.heat_stack("ports", &port).await.is_none(), "no stack status, no heat_stacks record");

    let unrendered = w.h.settled("load_balancers", &lb, 1).await;
    assert!(unrendered.error.contains("template `load_balancer` does not render"), "{}", unrendered.error);

    let unresolved = w.h.settled("firewalls", &fw, 1).await;
    assert!(unresolved.error.contains("vnf_instance `nowhere` has no heat_stacks record"), "{}", unresolved.error);
    w.h.queues_drained().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_that_does_not_settle_times_out() {
    let mut w = world(Patience { max_wait: Some(Duration::from_secs(3)), ..fast_patience() }).await;
    let (net, sub) = (unique("net"), unique("sub"));
    w.h.config("networks", network(&net, "red"), 1, false).await;
    w.h.settled("networks", &net, 1).await;
    w.h.config("subnets", subnet(&sub, &net, json!(false), 30), 1, false).await;
    let state = w.h.settled("subnets", &sub, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert!(state.error.contains("did not settle within 3 s"), "{}", state.error);
    w.h.queues_drained().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_state_error() {
    let mut w = world(fast_patience()).await;
    // The boolean `fail` parameter gets a password: Heat's refusal quotes the value back.
    let mut h_template = json!({"network_id": "Mnetwork:network_id:id", "fail": {"field": "admin_password"}, "wait": {"constant": 0},
        "jinja_cidrs": {"constant": []}, "heat_timeout": "C1"});
    h_template["tenant_id"] = json!("Ptenant_id");
    w.h.template("subnet", h_template).await;
    set_template(&w.h, "subnet", &SUBNET.replace("  wait:", "  tenant_id: {type: string}\n  wait:")).await;
    let (net, sub) = (unique("net"), unique("sub"));
    w.h.config("networks", network(&net, "red"), 1, false).await;
    w.h.settled("networks", &net, 1).await;
    let mut body = subnet(&sub, &net, json!(false), 0);
    body["admin_password"] = json!("hunter2-very-secret");
    w.h.config("subnets", body, 1, false).await;
    let state = w.h.settled("subnets", &sub, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert!(state.error.contains("***"), "{}", state.error);
    assert!(!state.error.contains("hunter2"), "{}", state.error);
    let finished_reason_leaked = w.h.store.list("/").await.unwrap().0.iter().any(|kv| {
        !kv.key.starts_with("/config/")
            && String::from_utf8_lossy(&kv.value).contains("hunter2")
            && !kv.key.starts_with("/jobs/all/")
            && !kv.key.starts_with("/esi-worker/config/")
    });
    assert!(!finished_reason_leaked, "a secret reached a record other than the config and job input");
}
