//! Chaos: the `chaos` command on a small scenario (controllers SIGKILLed at random, one etcd
//! restart, one Heat outage, a flaky template fixed midway) converges every resource exactly
//! once; and the two planner bugs it found stay fixed: a failed resource is retried by the next
//! leader, and a provider and its consumer that failed together are retried provider first.

mod support;

use heat_reconciler::planner::PlannerOptions;
use heat_reconciler::protocol::JobQueue;
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use support::*;

#[test]
fn the_chaos_command_converges_every_resource_once() {
    // The run starts its own Heat (installed on first use) on a free port, with its database in
    // the run's directory: it shares nothing with the other tests.
    let output = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
        .args(["chaos", "--resources", "60", "--duration", "40s", "--heat-outage", "10s"])
        .args(["--converge-timeout", "240s"])
        .output()
        .expect("chaos runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        output.status.success(),
        "chaos failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(last, "converged: 60/60, duplicate stacks: 0, stuck: 0, leftovers: 0");
    for figure in ["controller kills: ", "etcd restarts: 1", "Heat outage: ", "Heat calls: ", "time to converge"] {
        assert!(stdout.contains(figure), "no `{figure}` in the figures");
    }
}

/// Starts a planner whose failed resources are retried after `retry_base`.
fn planner(h: &Harness, id: &str, retry_base: Duration) -> RunningPlanner {
    let mut options = PlannerOptions::new(id);
    options.lease_ttl = Duration::from_secs(3);
    options.retry_base = retry_base;
    RunningPlanner::start_with(&h.store, options)
}

#[tokio::test]
async fn a_failed_resource_is_retried_by_the_next_leader() {
    let mut h = Harness::without_planner().await;
    h.planner = Some(planner(&h, "planner-a", Duration::from_secs(5)));
    h.config("networks", network("n1"), 1, false).await;
    let job = h.job_of("n1").await;
    h.finish(&job, "Stack network_n1 CREATE_FAILED: boom").await;
    assert!(h.jobs().await.is_empty(), "the failed job is gone; planner-a would retry in 5 s");
    // The leader dies before its retry is due: its backoff dies with it.
    h.planner.take().expect("planner-a").kill();
    h.planner = Some(planner(&h, "planner-b", Duration::from_secs(1)));
    let retry = eventually(30, || async { h.jobs().await.into_iter().find(|j| j.spec.resource_id == "n1") }).await;
    assert_ne!(retry.id, job.id);
    assert_eq!(retry.spec.version, 1);
}

#[tokio::test]
async fn a_provider_and_its_consumer_failing_together_are_retried_provider_first() {
    let mut h = Harness::without_planner().await;
    h.planner = Some(planner(&h, "planner", Duration::from_secs(1)));
    h.config("networks", network("n1"), 1, false).await;
    h.config("subnets", subnet("s1", "n1"), 1, false).await;
    h.config("ports", port("p1", "n1", "s1"), 1, false).await;
    let net = h.job_of("n1").await;
    h.finish(&net, "").await;
    let sub = h.job_of("s1").await;
    assert_eq!(h.queue_of(&sub).await, vec![JobQueue::Ready]);
    // The subnet fails: the port waiting for it is cancelled; both are retried together.
    h.finish(&sub, "Stack subnet_s1 CREATE_FAILED: boom").await;
    assert!(h.jobs().await.is_empty(), "the port's job was cancelled with the subnet's");
    let (sub, port) = eventually(30, || async {
        let jobs = h.jobs().await;
        let of = |id: &str| jobs.iter().find(|j| j.spec.resource_id == id).cloned();
        of("s1").zip(of("p1"))
    })
    .await;
    // Planned port first, the port would run at once and fail for the subnet's missing outputs,
    // and cancel the subnet's job waiting for it (a reverse dependency), on every retry.
    assert_eq!(h.queue_of(&sub).await, vec![JobQueue::Ready], "the subnet runs first");
    assert_eq!(port.dependency, vec![sub.id.clone()], "the port waits for the subnet");
    assert_eq!(h.queue_of(&port).await, vec![JobQueue::Waiting]);
}

#[tokio::test]
async fn a_failed_create_cancels_the_modify_and_delete_queued_behind_it_in_one_transaction() {
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    let create = h.job_of("n1").await;
    // Gohan modifies the network, then deletes it, while its create still runs.
    h.config("networks", json!({"id": "n1", "name": "renamed", "tenant_id": TENANT}), 2, false).await;
    h.config("networks", json!({"id": "n1", "name": "renamed", "tenant_id": TENANT}), 3, true).await;
    assert_eq!(h.jobs().await.len(), 3, "create, modify and delete of n1");
    // Both queued jobs are cancelled, and both would write n1's /state: etcd refuses a
    // transaction that puts one key twice, which made every leader stand down on it, forever.
    h.finish(&create, "Stack network_n1 CREATE_FAILED: boom").await;
    let state = h.state("networks", "n1").await.expect("a state");
    assert_eq!((state.state.worker_state.as_str(), state.version), ("DELETE_FAILED", 3), "{state:?}");
    assert!(state.error.starts_with("cancelled: job create:"), "{}", state.error);
    // The planner goes on planning.
    h.config("networks", network("n2"), 1, false).await;
    let _ = h.job_of("n2").await;
}
