//! The worker against a real Heat that dies mid-operation. A stack in progress when Heat is
//! SIGKILLed stays `*_IN_PROGRESS` after Heat restarts: its engine died with the operation and
//! nothing resumes it. The worker polling it noticed Heat was gone; when Heat answers again with
//! the stack still in progress it sends the operation once more, so the job completes within
//! seconds of the restart, not at its deadline (the stack timeout plus two minutes, 180 s here),
//! and with the one stack it had.
//!
//! A standalone Heat of this test's own runs on a free port, with its state in a folder we know,
//! so that it can be killed and started again on the same database.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient, StackRef};
use heat_reconciler::local::LocalHeat;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

/// Each stack operation takes this long in Heat (its `OS::Heat::TestResource` waits).
const WAIT_SECS: u64 = 4;

// The worker's deadline for these jobs is 180 s (`heat_timeout` 1 minute plus the 2-minute
// margin): a job that waited for it would take far longer than the 60 s the checks allow.

/// A network whose stack takes [`WAIT_SECS`] to create, update or delete.
const SLOW_NETWORK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/slow-network.yaml"));

fn network(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "tenant_id": TENANT, "wait": WAIT_SECS})
}

/// Waits until Heat shows the stack in this status: the operation is under way.
async fn heat_shows(heat: &HeatClient, name: &str, status: &str) -> StackRef {
    eventually(60, || async {
        let stack = heat.find(TENANT, name).await.ok().flatten()?;
        let shown = heat.show(TENANT, &stack, false).await.ok()?;
        (shown.stack_status == status).then_some(stack)
    })
    .await
}

/// Every stack Heat lists under this name (there must never be two).
async fn stacks_named(heat: &HeatClient, name: &str) -> Vec<StackRef> {
    heat.list(TENANT).await.expect("Heat lists").into_iter().map(|(s, _)| s).filter(|s| s.name == name).collect()
}

/// Kills Heat while the stack is in `status` and starts it again; returns when it answers again.
async fn kill_during(own: &mut LocalHeat, heat: &HeatClient, name: &str, status: &str) -> Instant {
    heat_shows(heat, name, status).await;
    // Into the operation, well before its end.
    tokio::time::sleep(Duration::from_secs(1)).await;
    own.kill().await.expect("Heat killed");
    // Down for several of the worker's polls (a restart between two polls goes unnoticed).
    tokio::time::sleep(Duration::from_secs(2)).await;
    own.start(false).await.expect("Heat starts again");
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_left_in_progress_by_a_dead_heat_is_resumed_at_once() {
    // What the worker saw and did is printed if the test fails (`RUST_LOG` overrides it).
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "heat_reconciler::worker=info".into());
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
    let mut own = LocalHeat::own("heat-restart").expect("a port for Heat");
    own.start(true).await.expect("the test's Heat starts");
    let mut h = Harness::without_planner().await;
    let mappings = json!({"name": "Pname", "tenant_id": "Ptenant_id", "wait": {"field": "wait"}, "heat_timeout": "C1"});
    put_template(&h.store, "network", mappings, SLOW_NETWORK).await;
    h.planner = Some(RunningPlanner::start(&h.store, "planner", Duration::from_secs(3)));
    let heat = HeatClient::new(Endpoint::NoAuth { base: own.base() }).expect("heat client");
    let worker = RunningWorker::fast(&h.store, heat.clone());
    let id = unique("net");
    let name = format!("network_{id}");

    // Heat dies while creating the stack.
    h.config("networks", network(&id, "blue"), 1, false).await;
    let restarted = kill_during(&mut own, &heat, &name, "CREATE_IN_PROGRESS").await;
    let state = h.settled("networks", &id, 1).await;
    let took = restarted.elapsed();
    println!("create: completed {took:?} after Heat restarted");
    assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{}", state.error);
    assert!(took < Duration::from_secs(60), "took {took:?}; the worker waited for its deadline");
    assert_eq!(h.heat_stack("networks", &id).await.expect("heat_stacks").output[0].output_value, json!("blue"));
    assert_eq!(stacks_named(&heat, &name).await.len(), 1, "one stack, not a second one");

    // Heat dies while updating it.
    h.config("networks", network(&id, "green"), 2, false).await;
    let restarted = kill_during(&mut own, &heat, &name, "UPDATE_IN_PROGRESS").await;
    let state = h.settled("networks", &id, 2).await;
    let took = restarted.elapsed();
    println!("modify: completed {took:?} after Heat restarted");
    assert_eq!(state.state.worker_state, "MODIFY_COMPLETED", "{}", state.error);
    assert!(took < Duration::from_secs(60), "took {took:?}; the worker waited for its deadline");
    let record = h.heat_stack("networks", &id).await.expect("heat_stacks");
    assert_eq!((record.stack_status.as_str(), &record.output[0].output_value), ("UPDATE_COMPLETE", &json!("green")));
    assert_eq!(stacks_named(&heat, &name).await.len(), 1, "one stack, not a second one");

    // Heat dies while deleting it.
    h.config("networks", network(&id, "green"), 3, true).await;
    let restarted = kill_during(&mut own, &heat, &name, "DELETE_IN_PROGRESS").await;
    let state = h.settled("networks", &id, 3).await;
    let took = restarted.elapsed();
    println!("delete: completed {took:?} after Heat restarted");
    assert_eq!(state.state.worker_state, "DELETE_COMPLETED", "{}", state.error);
    assert!(took < Duration::from_secs(60), "took {took:?}; the worker waited for its deadline");
    assert_eq!(heat.find(TENANT, &name).await.unwrap(), None, "the stack is gone");

    eventually(30, || async { h.store.list("/jobs/").await.unwrap().0.is_empty().then_some(()) }).await;
    worker.stop().await;
    drop(own);
}
