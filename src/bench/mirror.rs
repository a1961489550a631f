//! `bench-mirror` measures, in one run against a local etcd and a local kube-apiserver: the
//! apiserver's ceiling for the kind of write the mirror makes (one server-side apply at a time),
//! then the mirror creating N `LoadBalancer` custom resources from converged records, updating
//! all of them to a new version, and a quiet minute's resyncs — with the apiserver's own request
//! counts (its `apiserver_request_total` metric) for each phase.

use crate::local::LocalEtcd;
use crate::local::LocalKubeApiserver;
use crate::mirror::{self, LoadBalancer, LoadBalancerSpec, MirrorOptions};
use crate::schema::Schema;
use crate::store::Store;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const PREFIX: &str = "/v2.0/load_balancers";
pub(super) const TENANT: &str = "fe3a4a1a72c04479bb6c19c2c0ccba4c";
/// How long the ceiling is measured, and at most how many writes.
const CEILING_TIME: Duration = Duration::from_secs(5);
const CEILING_WRITES: usize = 500;
/// How long a phase may take before the benchmark gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(600);

/// The records of a load balancer the worker and the monitor are done with: `/config`,
/// `/esi-worker/heat_stacks`, `/state` (with `worker_state`) and `/monitoring` (UP), as (key, value).
pub fn load_balancer_records(
    id: &str,
    version: u64,
    marked_for_deletion: bool,
    worker_state: &str,
) -> Vec<(String, String)> {
    let body = json!({"id": id, "name": format!("lb {id}"), "tenant_id": TENANT, "admin_password": "RBvaP4je2j5Q",
                      "load_balancer_plan_id": "f2fcb624-bac7-4601-a444-007d4a01bc6a", "availability_zone": "nova"});
    let config = json!({"body": body.to_string(), "version": version, "marked_for_deletion": marked_for_deletion});
    let state = json!({"error": "", "state": {"worker_state": worker_state, "orchestration_state": "UPDATE_COMPLETE",
                       "heat_outputs": "[]"}, "version": version});
    let stack = json!({"id": format!("load_balancer:{id}"), "stack_id": format!("load_balancer_{id}"), "tenant_id": TENANT,
                       "stack_status": "UPDATE_COMPLETE", "status_reason": "", "output": []});
    let monitoring = json!({"load_balancer": "UP", "version": version});
    vec![
        (format!("/config{PREFIX}/{id}"), config.to_string()),
        (format!("/esi-worker/heat_stacks{PREFIX}/{id}"), stack.to_string()),
        (format!("/state{PREFIX}/{id}"), state.to_string()),
        (format!("/monitoring{PREFIX}/{id}"), monitoring.to_string()),
    ]
}

/// A load balancer id (a UUID) numbered `n`.
pub fn load_balancer_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

pub async fn mirror(count: usize, writes_per_second: f64, schema: &Schema) -> anyhow::Result<()> {
    anyhow::ensure!(count > 0, "--load-balancers must be at least 1");
    let etcd = LocalEtcd::start().await?;
    let store = etcd.connect().await?;
    let kube = LocalKubeApiserver::start().await?;
    kube.install_crds().await?;
    let client = kube.client().await?;
    println!(
        "bench-mirror: {count} load balancers, kube-apiserver {} at {}",
        crate::local::kube_apiserver::kubernetes_version(),
        kube.url()
    );

    let ceiling = apply_ceiling(&kube).await?;
    println!("apiserver ceiling: {ceiling:.0} server-side applies/s (LoadBalancer objects, one at a time)");

    for n in 0..count {
        write(&store, &load_balancer_records(&load_balancer_id(n), 1, false, "CREATE_COMPLETED")).await?;
    }
    let namespace = "bench";
    kube.kubectl_ok(&["create", "namespace", namespace])?;
    let mut options = MirrorOptions::new("bench-mirror", namespace);
    options.writes_per_second = writes_per_second;
    options.resync_interval = Duration::from_secs(10);
    let writes = options.requests.clone();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (mirror_store, mirror_schema, mirror_client) = (store.clone(), schema.clone(), client.clone());
    let task = tokio::spawn(async move {
        mirror::run::<LoadBalancer>(mirror_store, &mirror_schema, mirror_client, options, shutdown).await
    });
    let api: Api<LoadBalancer> = Api::namespaced(client, namespace);

    let report = |phase: &str,
                  seconds: f64,
                  before: &BTreeMap<String, u64>,
                  after: &BTreeMap<String, u64>,
                  writes: u64| {
        let requests = difference(before, after);
        let total: u64 = requests.values().sum();
        println!(
            "{phase}: {count} in {seconds:.1} s = {:.0}/s; mirror writes {writes} ({:.2} per load balancer, paced at {writes_per_second}/s); apiserver requests {total} {requests:?} (LIST includes this benchmark's own polling)",
            count as f64 / seconds,
            writes as f64 / count as f64,
        );
    };

    let before = kube.request_counts().await?;
    let started = Instant::now();
    wait_until(&api, count, 1, "CREATE_COMPLETED").await?;
    let create_time = started.elapsed().as_secs_f64();
    let create_writes = writes.load(Ordering::Relaxed);
    report("create", create_time, &before, &kube.request_counts().await?, create_writes);

    let before = kube.request_counts().await?;
    let started = Instant::now();
    for n in 0..count {
        write(&store, &load_balancer_records(&load_balancer_id(n), 2, false, "MODIFY_COMPLETED")).await?;
    }
    wait_until(&api, count, 2, "MODIFY_COMPLETED").await?;
    let update_time = started.elapsed().as_secs_f64();
    let update_writes = writes.load(Ordering::Relaxed) - create_writes;
    report("update", update_time, &before, &kube.request_counts().await?, update_writes);

    let before = kube.request_counts().await?;
    let quiet_writes = writes.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let requests = difference(&before, &kube.request_counts().await?);
    println!(
        "quiet 30 s (3 resyncs): mirror writes {}, apiserver requests {requests:?}",
        writes.load(Ordering::Relaxed) - quiet_writes
    );

    let _ = stop.send(true);
    task.await??;
    let pace_time = (create_writes as f64) / writes_per_second;
    println!(
        "mirror: {count} load balancers in {create_time:.1} s ({create_writes} writes, {:.0}% of the pace's {pace_time:.1} s), update in {update_time:.1} s ({update_writes} writes), ceiling {ceiling:.0} applies/s",
        100.0 * pace_time / create_time
    );
    Ok(())
}

async fn write(store: &Store, records: &[(String, String)]) -> anyhow::Result<()> {
    for (key, value) in records {
        store.put(key, value.clone()).await?;
    }
    Ok(())
}

/// Sequential server-side applies of LoadBalancer objects (spec, then status), as the mirror
/// makes them, for at most [`CEILING_TIME`].
async fn apply_ceiling(kube: &LocalKubeApiserver) -> anyhow::Result<f64> {
    kube.kubectl_ok(&["create", "namespace", "ceiling"])?;
    let api: Api<LoadBalancer> = Api::namespaced(kube.client().await?, "ceiling");
    let params = PatchParams::apply("bench-ceiling").force();
    let started = Instant::now();
    let mut writes = 0;
    while writes < CEILING_WRITES && started.elapsed() < CEILING_TIME {
        let name = format!("ceiling-{writes}");
        let object = LoadBalancer::new(&name, LoadBalancerSpec { name: Some(name.clone()), ..Default::default() });
        api.patch(&name, &params, &Patch::Apply(&object)).await?;
        let status = json!({"apiVersion": "esi.heat-reconciler.io/v1alpha1", "kind": "LoadBalancer",
                            "status": {"desiredVersion": 1, "state": "CREATE_COMPLETED"}});
        api.patch_status(&name, &params, &Patch::Apply(&status)).await?;
        writes += 2;
    }
    Ok(writes as f64 / started.elapsed().as_secs_f64())
}

/// Waits until `count` custom resources show `version` and `state`, printing progress.
async fn wait_until(api: &Api<LoadBalancer>, count: usize, version: u64, state: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let done = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|lb| {
                lb.status
                    .as_ref()
                    .is_some_and(|s| s.desired_version == Some(version) && s.state.as_deref() == Some(state))
            })
            .count();
        if done == count {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < PHASE_LIMIT,
            "only {done} of {count} at version {version} after {PHASE_LIMIT:?}"
        );
        if last_report.elapsed() > Duration::from_secs(10) {
            println!("  {done}/{count} at version {version} after {:.0} s", started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn difference(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(verb, n)| (verb.clone(), n - before.get(verb).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}
