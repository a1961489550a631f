//! Resource bounds: a `/config` body of 10 MB, a template that renders to 10 MB and a mapping
//! that loops over 100,000 items each end in a clear error on their own resource, at once and in
//! bounded memory, while the resources around them converge on a real Heat.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::local::LocalEtcd;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;

/// The peak resident memory of this process so far (`VmHWM`), in MB.
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("VmHWM in kB") / 1024
}

fn network(id: &str) -> Value {
    json!({"id": id, "name": format!("net-{id}"), "tenant_id": TENANT})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_inputs_fail_their_own_resource_and_the_rest_converge() {
    // An etcd that takes 16 MiB requests (its default, 1.5 MiB, would refuse the 10 MB write
    // itself): the controller is what must draw the line.
    let etcd = LocalEtcd::start_with_max_request_bytes(16 << 20).await.expect("etcd starts");
    let mut h = Harness::on(etcd).await;
    h.template("network", network_mappings()).await;
    set_template(&h, "network", NETWORK).await;
    // Short in etcd, 10 MB once rendered.
    h.template("subnet", json!({"name": "Pid"})).await;
    set_template(
        &h,
        "subnet",
        "heat_template_version: 2013-05-23\ndescription: '{% for i in range(1000) %}{{ 'x' * 10000 }}{% endfor %}'\nresources: {}\n",
    )
    .await;
    h.template("port", json!({"jinja_names": {"for_field": "items", "for_mapping": {"field": "name"}}})).await;
    h.planner = Some(RunningPlanner::start(&h.store, "planner", Duration::from_secs(3)));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).expect("heat client");
    let worker = RunningWorker::fast(&h.store, heat);
    let rss_before = peak_rss_mb();

    let started = Instant::now();
    let (big, wide, looped, before, after) =
        (unique("big"), unique("wide"), unique("loop"), unique("net"), unique("net"));
    h.config("networks", network(&before), 1, false).await;
    let mut huge = network(&big);
    huge["description"] = json!("d".repeat(10 << 20));
    h.config("networks", huge, 1, false).await;
    h.config("subnets", json!({"id": wide, "tenant_id": TENANT}), 1, false).await;
    h.config("ports", json!({"id": looped, "tenant_id": TENANT, "items": vec![json!({}); 100_000]}), 1, false).await;
    h.config("networks", network(&after), 1, false).await;

    let state = h.settled("networks", &big, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert!(
        state.error.contains(&format!("/config/v2.0/networks/{big}"))
            && state.error.contains("more than the 524288 bytes a /config record may have"),
        "{}",
        state.error
    );
    assert!(state.error.len() < 300, "the error does not carry the body: {} bytes", state.error.len());

    let state = h.settled("subnets", &wide, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert!(
        state.error.contains("template `subnet` does not render: it does more work than a template may"),
        "{}",
        state.error
    );
    assert!(h.heat_stack("subnets", &wide).await.is_none(), "nothing was sent to Heat");

    let state = h.settled("ports", &looped, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert!(
        state.error.contains("jinja_names") && state.error.contains("loops over more than 10000 items"),
        "{}",
        state.error
    );
    let refused_in = started.elapsed();

    for net in [&before, &after] {
        let state = h.settled("networks", net, 1).await;
        assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{net}: {}", state.error);
        assert!(h.heat_stack("networks", net).await.is_some());
    }
    // The three refusals take no longer than the two real stacks, which Heat makes in seconds.
    assert!(refused_in < Duration::from_secs(30), "refused after {refused_in:?}");
    let rss_after = peak_rss_mb();
    println!("refused in {refused_in:?}; peak RSS {rss_before} MB before, {rss_after} MB after");
    // The test itself holds the 10 MB body a few times over (its JSON, the record, the put).
    assert!(rss_after < rss_before + 250, "peak RSS grew from {rss_before} MB to {rss_after} MB");
    worker.stop().await;
}
