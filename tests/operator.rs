//! The operator's commands on a real etcd and a real standalone Heat: `status` (table, JSON,
//! filters) and `why` down to the root cause — a provider that failed in Heat, a missing template,
//! a chain of waiting jobs.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::inspect::snapshot::Snapshot;
use heat_reconciler::inspect::why::{Explanation, why};
use heat_reconciler::planner::PlannerOptions;
use heat_reconciler::schema::Schema;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use support::*;

const SUBNET: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/subnet.yaml"));

async fn explain(h: &Harness, heat: Option<&HeatClient>, kind: &str, id: &str) -> Explanation {
    let schema = Schema::shipped().unwrap();
    let snapshot = Snapshot::load(&h.store, &schema).await.unwrap();
    why(&snapshot, &schema, heat, &(kind.to_owned(), id.to_owned())).await.unwrap()
}

/// `heat-reconciler status ARGS` against the harness's etcd: its stdout.
fn status(h: &Harness, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
        .args(["status", "--etcd-endpoints", &h.etcd.client_url])
        .args(args)
        .output()
        .expect("status runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn texts(explanation: &Explanation) -> String {
    explanation.render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_follows_a_failed_provider_into_heats_events_and_status_counts_it() {
    let mut h = Harness::without_planner().await;
    h.template("network", json!({"name": "Pname", "tenant_id": "Ptenant_id", "heat_timeout": "C1"})).await;
    set_template(&h, "network", NETWORK).await;
    h.template(
        "subnet",
        json!({"network_id": "Mnetwork:network_id:id", "fail": {"field": "fail"}, "heat_timeout": "C1"}),
    )
    .await;
    set_template(&h, "subnet", SUBNET).await;
    vpn_gateway_template(&h).await;
    // Retries far away, so what the test reads stays failed meanwhile.
    let mut options = PlannerOptions::new("planner");
    options.lease_ttl = Duration::from_secs(3);
    options.retry_base = Duration::from_secs(600);
    options.retry_cap = Duration::from_secs(600);
    h.planner = Some(RunningPlanner::start_with(&h.store, options));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).expect("heat client");
    let worker = RunningWorker::fast(&h.store, heat.clone());

    let (n, s, g) = (unique("net"), unique("sub"), unique("gw"));
    h.config("networks", json!({"id": n, "name": "n", "tenant_id": TENANT}), 1, false).await;
    h.settled("networks", &n, 1).await;
    h.config("subnets", json!({"id": s, "network_id": n, "tenant_id": TENANT, "fail": true}), 1, false).await;
    h.config("vpn_gateways", json!({"id": g, "subnet_id": s, "tenant_id": TENANT}), 1, false).await;
    let failed = |plural: &'static str, id: String| {
        let store = h.store.clone();
        async move {
            eventually(120, || async {
                let state = store.get(&format!("/state/v2.0/{plural}/{id}")).await.unwrap()?;
                let state: Value = serde_json::from_slice(&state.value).unwrap();
                state["state"]["worker_state"].as_str().is_some_and(|w| w.ends_with("_FAILED")).then_some(())
            })
            .await
        }
    };
    failed("subnets", s.clone()).await;
    failed("vpn_gateways", g.clone()).await;

    let explanation = explain(&h, Some(&heat), "vpn_gateway", &g).await;
    let text = texts(&explanation);
    assert!(!explanation.converged);
    assert!(text.contains(&format!("vpn_gateway/{g}: failed")), "{text}");
    assert!(text.contains(&format!("cancelled because job create:heat_worker:subnet:{s}:1:")), "{text}");
    assert!(text.contains(&format!("subnet/{s}: failed")), "{text}");
    assert!(text.contains("Heat: resource probe CREATE_FAILED"), "{text}");
    assert!(text.contains(&format!("/heat-reconciler/retries/subnet/{s}")), "the retry and when: {text}");
    assert!(text.contains(&format!("GET /v1/{TENANT}/stacks/subnet_{s}/")), "{text}");
    for line in &explanation.lines {
        assert!(!line.sources.is_empty() || line.text.contains("explained above"), "{line:?}");
    }

    let converged = explain(&h, Some(&heat), "network", &n).await;
    assert!(converged.converged);
    assert!(texts(&converged).contains(&format!("network/{n}: converged: version 1 applied (CREATE_COMPLETED)")));

    let rows: Vec<Value> = serde_json::from_str(&status(&h, &["-o", "json"])).unwrap();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!((row(&n)["converged"].clone(), row(&n)["applied_version"].clone()), (json!(true), json!(1)));
    assert_eq!(row(&s)["worker_state"], "CREATE_FAILED");
    assert_eq!((row(&s)["converged"].clone(), row(&s)["failed"].clone()), (json!(false), json!(true)));
    assert!(row(&g)["error"].as_str().unwrap().contains("cancelled"));
    for field in ["type", "id", "desired_version", "applied_version", "worker_state", "converged"] {
        assert!(row(&n).get(field).is_some(), "{field}");
    }
    let table = status(&h, &[]);
    assert!(table.starts_with("TYPE"), "{table}");
    assert_eq!(table.lines().last().unwrap(), "3 resources: 1 converged, 0 in progress, 2 failed", "{table}");
    let networks = status(&h, &["--type", "network"]);
    assert_eq!(networks.lines().last().unwrap(), "1 resources: 1 converged, 0 in progress, 0 failed");
    let not_converged = status(&h, &["--not-converged"]);
    assert!(!not_converged.contains(&n) && not_converged.contains(&s), "{not_converged}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_walks_a_chain_of_waiting_jobs_and_names_a_missing_template() {
    // A planner and no worker: the network's job stays ready, the subnet's waits for it, and the
    // port's waits for both.
    let mut h = Harness::start().await;
    h.config("networks", network("n1"), 1, false).await;
    h.config("subnets", subnet("s1", "n1"), 1, false).await;
    h.config("ports", port("p1", "n1", "s1"), 1, false).await;
    // vnf_instance maps to the `vnf_instance` template, which this store does not hold.
    h.config("vnf_instances", json!({"id": "v1", "tenant_id": TENANT}), 1, false).await;

    let explanation = explain(&h, None, "port", "p1").await;
    let text = texts(&explanation);
    assert!(!explanation.converged);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("port/p1: not converged: version 1 wanted, none applied (CREATE_IN_PROGRESS)"),
        "{text}"
    );
    assert!(text.contains("waiting") && text.contains("for 2 job(s)"), "{text}");
    assert!(text.contains("waits for subnet/s1") && text.contains("waits for network/n1"), "{text}");
    assert!(text.contains("ready") && text.contains("no worker has claimed it"), "{text}");
    assert!(text.contains("/jobs/waiting/create:heat_worker:port:p1:1:"), "every line names its record: {text}");
    assert!(text.contains("/jobs/ready/create:heat_worker:network:n1:1:"), "{text}");
    let depth = explanation.lines.iter().map(|l| l.depth).max().unwrap();
    assert!(depth >= 4, "port → its job → subnet's job → network's job: {text}");

    let missing = explain(&h, None, "vnf_instance", "v1").await;
    let text = texts(&missing);
    assert!(missing.converged, "{text}");
    assert!(text.contains("converged: version 1 applied (READ_COMPLETE)"), "{text}");
    assert!(text.contains("its template `vnf_instance` is missing"), "{text}");
    assert!(text.contains("[/config/v2.0/heat_templates/vnf_instance]"), "{text}");

    let table = status(&h, &[]);
    assert!(table.contains("waiting") && table.contains("ready"), "the live jobs' queues: {table}");
    assert_eq!(table.lines().last().unwrap(), "4 resources: 1 converged, 3 in progress, 0 failed", "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_draws_the_table_again_when_a_resource_changes() {
    use std::io::{BufRead, BufReader};
    let mut h = Harness::start().await;
    h.config("networks", network("w1"), 1, false).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
        .args(["status", "--watch", "--etcd-endpoints", &h.etcd.client_url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(Spawned)
        .expect("status --watch runs");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    // The summary line closes each drawing of the table.
    let next_summary = || loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(30)).expect("status --watch draws a table");
        if line.contains(" resources: ") {
            return line;
        }
    };
    assert_eq!(next_summary(), "1 resources: 0 converged, 1 in progress, 0 failed");
    h.config("networks", network("w2"), 1, false).await;
    assert_eq!(next_summary(), "2 resources: 0 converged, 2 in progress, 0 failed");
    child.kill().unwrap();
    let _ = child.wait();
}
