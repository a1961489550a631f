//! `bench-planner` measures, in one run against one etcd: the raw etcd write ceiling (sequential
//! puts, 3-op transactions one at a time and 64 in flight), the planner's start-up path (N configs already in etcd when it
//! starts) and its incremental path (modify events arriving while it runs). No worker runs, so
//! every job stays live in `/jobs/ready|waiting` and later jobs depend on earlier ones.

use crate::local::LocalEtcd;
use crate::planner::{self, PlannerOptions};
use crate::protocol::keys::HEAT_TEMPLATE_TYPE;
use crate::protocol::{ConfigRecord, JobQueue, ResourceRoot};
use crate::schema::Schema;
use crate::store::{Store, Txn};
use etcd_client::{DeleteOptions, GetOptions};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where the ceiling measurements write; deleted at the end of the run.
const CEILING_PREFIX: &str = "/bench-ceiling/";
/// How long, and at most how many operations, each ceiling measurement runs.
const CEILING_TIME: Duration = Duration::from_secs(3);
const CEILING_OPS: usize = 2_000;
/// Transactions in flight for the concurrent ceiling: the planner's own pipeline depth.
const CEILING_IN_FLIGHT: usize = 64;
/// Concurrent puts while loading the configs.
const LOAD_CONCURRENCY: usize = 64;
/// How often the planner's output is counted.
const POLL: Duration = Duration::from_millis(200);
/// How often a waiting phase prints its progress.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// A waiting phase fails when the count has not moved for this long.
const STALL: Duration = Duration::from_secs(120);

/// Plans a synthetic graph of `resources` resources and prints jobs planned per second next to
/// the raw etcd put rate measured in the same run.
pub async fn planner(
    resources: usize,
    batch_size: usize,
    schema: &Schema,
    endpoints: Option<Vec<String>>,
) -> anyhow::Result<()> {
    anyhow::ensure!(resources > 0, "--resources must be at least 1");
    anyhow::ensure!(batch_size > 0, "--batch-size must be at least 1");
    let local = match endpoints {
        Some(_) => None,
        None => Some(LocalEtcd::start().await?),
    };
    let endpoints = endpoints.unwrap_or_else(|| local.as_ref().map(LocalEtcd::endpoints).unwrap_or_default());
    let store = Store::connect(&endpoints).await?;
    for prefix in ["/config/", "/jobs/", "/esi-worker/", "/state/", CEILING_PREFIX] {
        anyhow::ensure!(
            count(&store, prefix).await? == 0,
            "bench-planner needs an empty store, but {prefix} holds keys"
        );
    }
    println!("bench-planner: {resources} resources, etcd {}", endpoints.join(","));

    // The ceilings' keys stay until the end: deleting tens of thousands of keys just before the
    // planner starts made etcd's commits several times slower for a while (bench-monitor saw
    // the same), which measured etcd's clean-up, not the planner.
    let (puts_per_s, txns_per_s) = etcd_ceiling(&store).await?;
    let concurrent_txns_per_s = concurrent_txn_ceiling(&store).await?;
    println!(
        "etcd ceiling: {puts_per_s:.0} puts/s, {txns_per_s:.0} 3-op txns/s (sequential, ~1 KB values), \
         {concurrent_txns_per_s:.0} planner-shaped txns/s ({CEILING_IN_FLIGHT} in flight)"
    );

    let graph = Graph::new(resources);
    let started = Instant::now();
    load(&store, schema, &graph).await?;
    let load_time = started.elapsed().as_secs_f64();
    println!(
        "config load: {} networks, {} subnets, {} ports (+3 templates) in {load_time:.2} s = {:.0} puts/s ({} in flight)",
        graph.networks.len(),
        graph.subnets.len(),
        graph.ports.len(),
        (resources + 3) as f64 / load_time,
        LOAD_CONCURRENCY,
    );

    let (progress, _) = watch::channel(0i64);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut options = PlannerOptions::new(format!("bench-{}", std::process::id()));
    options.batch_size = batch_size;
    let started = Instant::now();
    let mut task = tokio::spawn(planner::run(store.clone(), schema.clone(), options, progress, shutdown));
    let result = measure(&store, schema, &graph, started, &task, concurrent_txns_per_s).await;

    let _ = shutdown_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
        task.abort();
    }
    match local {
        // A local etcd is thrown away; a given one gets back the empty prefixes it was lent.
        Some(local) => drop(local),
        None => {
            for prefix in ["/config/", "/jobs/", "/esi-worker/", "/state/", CEILING_PREFIX] {
                store.client().delete(prefix, Some(DeleteOptions::new().with_prefix())).await?;
            }
        }
    }
    result
}

/// The planner's two phases, once it has been spawned at `started`.
async fn measure(
    store: &Store,
    schema: &Schema,
    graph: &Graph,
    started: Instant,
    task: &tokio::task::JoinHandle<anyhow::Result<()>>,
    txns_per_s: f64,
) -> anyhow::Result<()> {
    let n = graph.len();
    let snapshots = ResourceRoot::Snapshot.dir();
    let all = format!("{}/", JobQueue::All.dir());
    wait_until(store, &snapshots, n, "start-up: snapshots", task).await?;
    let time = started.elapsed().as_secs_f64();
    let rate = n as f64 / time;
    let waiting_dir = format!("{}/", JobQueue::Waiting.dir());
    let waiting = count(store, &waiting_dir).await?;
    let ready = count(store, &format!("{}/", JobQueue::Ready.dir())).await?;
    println!("planner start-up: {n} jobs in {time:.2} s; dependencies: {waiting} jobs waiting, {ready} ready");
    // What each planned job wrote, next to the ceiling's ~2 KB of values per transaction.
    let value_bytes = |prefix: String| async move {
        let (items, _) = store.list(&prefix).await?;
        anyhow::Ok(items.iter().map(|kv| kv.value.len()).sum::<usize>())
    };
    let written = value_bytes(all.clone()).await? + value_bytes(snapshots.clone()).await?;
    // A transaction is one revision: the job records' create revisions count the transactions.
    let (jobs, _) = store.list(&all).await?;
    let transactions = jobs.iter().map(|kv| kv.create_revision).collect::<std::collections::HashSet<_>>().len();
    println!(
        "planner start-up: {:.0} bytes of job record and snapshot per job, {:.1} jobs per transaction ({transactions} transactions)",
        written as f64 / n as f64,
        n as f64 / transactions.max(1) as f64
    );
    let start_up = format!(
        "start-up: {rate:.0} jobs/s at {n} resources, {:.1}% of the concurrent txn ceiling",
        100.0 * rate / txns_per_s
    );

    let modifies = (n / 10).min(1000);
    if modifies == 0 {
        println!("planner incremental: skipped (fewer than 10 resources)");
        println!("{start_up}");
        return Ok(());
    }
    let jobs_before = count(store, &all).await?;
    let started = Instant::now();
    for (resource_type, id, body) in graph.modified(modifies) {
        let key = schema.resource_types.key(ResourceRoot::Config, resource_type, &id)?;
        store.put(&key, serde_json::to_vec(&ConfigRecord::new(body, 2, false))?).await?;
    }
    let written = started.elapsed().as_secs_f64();
    wait_until(store, &all, jobs_before + modifies, "incremental: jobs", task).await?;
    let time = started.elapsed().as_secs_f64();
    let waiting = count(store, &waiting_dir).await?.saturating_sub(waiting);
    println!(
        "planner incremental: {modifies} modify jobs in {time:.2} s = {:.1} jobs/s (events written in {written:.2} s); \
         {waiting} of them waiting",
        modifies as f64 / time
    );
    println!("{start_up}");
    Ok(())
}

/// Sequential single puts, then sequential 3-put transactions, of ~1 KB values: `(puts/s, txns/s)`.
async fn etcd_ceiling(store: &Store) -> anyhow::Result<(f64, f64)> {
    let value = vec![b'x'; 1024];
    let started = Instant::now();
    let mut puts = 0;
    while puts < CEILING_OPS && started.elapsed() < CEILING_TIME {
        store.put(&format!("{CEILING_PREFIX}put/{puts}"), value.clone()).await?;
        puts += 1;
    }
    let puts_per_s = puts as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut txns = 0;
    while txns < CEILING_OPS && started.elapsed() < CEILING_TIME {
        // Guarded like the planner's: the third key must not exist yet.
        let key = |part: &str| format!("{CEILING_PREFIX}txn/{txns}/{part}");
        let txn = Txn::new()
            .if_absent(&key("snapshot"))
            .put(&key("all"), value.clone())
            .put(&key("queue"), value.clone())
            .put(&key("snapshot"), value.clone());
        anyhow::ensure!(store.commit(txn).await?.is_some(), "ceiling transaction {txns} did not apply");
        txns += 1;
    }
    let txns_per_s = txns as f64 / started.elapsed().as_secs_f64();

    Ok((puts_per_s, txns_per_s))
}

/// Transactions of the planner's shape, `CEILING_IN_FLIGHT` at a time: txns/s. Like a planned
/// job's: two conditions (the leader key's value, the snapshot's revision) and four puts (the job
/// record and the snapshot of ~1 KB, the queue entry and the planned-at note of a few bytes),
/// watched as the planner watches its own writes.
async fn concurrent_txn_ceiling(store: &Store) -> anyhow::Result<f64> {
    let value = vec![b'x'; 1024];
    let leader = format!("{CEILING_PREFIX}leader");
    store.put(&leader, b"bench".to_vec()).await?;
    // The planner watches everything it writes; so does the ceiling, draining the echoes.
    let mut echoes = crate::store::watch_prefix(store.clone(), CEILING_PREFIX.to_owned());
    let drain = tokio::spawn(async move { while echoes.recv().await.is_some() {} });
    let started = Instant::now();
    let committed = stream::iter(0..)
        .take_while(|_| std::future::ready(started.elapsed() < CEILING_TIME))
        .map(|i| {
            let key = |part: &str| format!("{CEILING_PREFIX}concurrent/{i}/{part}");
            let txn = Txn::new()
                .if_value(&leader, b"bench".to_vec())
                .if_mod_revision(&key("snapshot"), 0)
                .put(&key("all"), value.clone())
                .put(&key("queue"), b"heat_worker".to_vec())
                .put(&key("snapshot"), value.clone())
                .put(&key("planned_at"), b"1764590000".to_vec());
            async move { store.commit(txn).await }
        })
        .buffer_unordered(CEILING_IN_FLIGHT)
        .try_fold(0usize, |n, revision| std::future::ready(Ok(n + usize::from(revision.is_some()))))
        .await?;
    let txns_per_s = committed as f64 / started.elapsed().as_secs_f64();
    drain.abort();
    Ok(txns_per_s)
}

/// How many keys start with `prefix` (a count-only range request: cheap to poll).
async fn count(store: &Store, prefix: &str) -> anyhow::Result<usize> {
    let options = GetOptions::new().with_prefix().with_count_only();
    let response = store.client().get(prefix, Some(options)).await?;
    Ok(usize::try_from(response.count())?)
}

/// Polls until `prefix` holds `target` keys; prints progress, fails on a stall or a dead planner.
async fn wait_until(
    store: &Store,
    prefix: &str,
    target: usize,
    what: &str,
    task: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let first = count(store, prefix).await?;
    let (mut last_count, mut last_change) = (first, Instant::now());
    let (mut reported_count, mut last_report) = (first, Instant::now());
    loop {
        let now = count(store, prefix).await?;
        if now >= target {
            return Ok(());
        }
        anyhow::ensure!(!task.is_finished(), "the planner stopped with {now} of {target} {what} done");
        if now != last_count {
            (last_count, last_change) = (now, Instant::now());
        }
        if last_change.elapsed() > STALL {
            let failed = count(store, &ResourceRoot::State.dir()).await?;
            anyhow::bail!("{what}: stuck at {now} of {target} for {STALL:?} ({failed} /state records)");
        }
        if last_report.elapsed() >= REPORT_EVERY {
            let rate = (now - reported_count) as f64 / last_report.elapsed().as_secs_f64();
            eprintln!("  {what}: {now}/{target} after {:.0} s, {rate:.1}/s lately", started.elapsed().as_secs_f64());
            (reported_count, last_report) = (now, Instant::now());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The synthetic resource graph: 10% networks, 20% subnets (each on a network), 70% ports (each
/// on a network, with a fixed IP in one of its subnets).
struct Graph {
    networks: Vec<Map<String, Value>>,
    subnets: Vec<Map<String, Value>>,
    ports: Vec<Map<String, Value>>,
}

/// A deterministic UUID-shaped id; `kind` keeps the three types apart.
fn uuid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn id_of(body: &Map<String, Value>) -> String {
    body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned()
}

impl Graph {
    fn new(resources: usize) -> Graph {
        let networks = (resources / 10).max(1);
        let subnets = (resources * 2 / 10).min(resources - networks);
        let ports = resources - networks - subnets;
        let tenant = "bench-tenant";
        let networks: Vec<_> = (0..networks)
            .map(|i| object(json!({"id": uuid(1, i), "tenant_id": tenant, "name": format!("net-{i}")})))
            .collect();
        let subnets: Vec<_> = (0..subnets)
            .map(|i| {
                let network = id_of(&networks[i % networks.len()]);
                let cidr = format!("10.{}.{}.0/24", i / 256 % 256, i % 256);
                object(json!({"id": uuid(2, i), "tenant_id": tenant, "name": format!("subnet-{i}"),
                              "network_id": network, "cidr": cidr}))
            })
            .collect();
        let ports = (0..ports)
            .map(|i| {
                let (network, fixed_ips) = match subnets.get(i % subnets.len().max(1)) {
                    Some(subnet) => (
                        subnet.get("network_id").cloned().unwrap_or_default(),
                        json!([{"subnet_id": id_of(subnet), "ip_address": format!("10.0.0.{}", i % 250 + 2)}]),
                    ),
                    None => (Value::String(id_of(&networks[i % networks.len()])), json!([])),
                };
                object(json!({"id": uuid(3, i), "tenant_id": tenant, "name": format!("port-{i}"),
                              "network_id": network, "device_owner": "compute:nova", "fixed_ips": fixed_ips}))
            })
            .collect();
        Graph { networks, subnets, ports }
    }

    fn len(&self) -> usize {
        self.networks.len() + self.subnets.len() + self.ports.len()
    }

    /// The phases the configs are written in: a resource's references exist before it does, as
    /// when Gohan creates them one after the other.
    fn phases(&self) -> [(&'static str, &[Map<String, Value>]); 3] {
        [("network", &self.networks), ("subnet", &self.subnets), ("port", &self.ports)]
    }

    /// `count` version-2 bodies with a changed name: half networks (as many as there are), the
    /// rest ports.
    fn modified(&self, count: usize) -> Vec<(&'static str, String, Map<String, Value>)> {
        let networks = self.networks.iter().take(count / 2).map(|b| ("network", b));
        let ports = self.ports.iter().map(|b| ("port", b));
        networks
            .chain(ports)
            .take(count)
            .map(|(resource_type, body)| {
                let mut body = body.clone();
                let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
                body.insert("name".into(), Value::String(format!("{name}-v2")));
                (resource_type, id_of(&body), body)
            })
            .collect()
    }
}

/// The heat templates the graph selects through the shipped template_mappings: `network`,
/// `subnet` and `port` (a port whose device_owner is not network:dhcp|network:empty).
fn templates() -> Vec<Map<String, Value>> {
    let hot = |resource: &str| {
        format!(
            "heat_template_version: 2015-10-15\nparameters:\n  name:\n    type: string\n    default: \"\"\n\
             resources:\n  {resource}:\n    type: OS::Heat::None\n"
        )
    };
    let template = |id: &str, mappings: Value| {
        object(json!({"id": id, "handler": "heat_worker", "template_file": hot(id), "watch": [],
                      "parameter_mappings": mappings}))
    };
    vec![
        template("network", json!({"name": "Pid", "heat_timeout": "C3"})),
        template("subnet", json!({"network_id": "Mnetwork:network_id:id", "name": "Pid"})),
        template(
            "port",
            json!({"virtual_network": "Mnetwork:network_id:id",
                   "jinja_subnets": {"for_field": "fixed_ips",
                                     "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}],
                                                     "output_key": "id"}}}),
        ),
    ]
}

/// Writes the templates, then each type's configs with concurrent puts, as Gohan would encode them.
async fn load(store: &Store, schema: &Schema, graph: &Graph) -> anyhow::Result<()> {
    let templates = templates();
    let mut phases = vec![(HEAT_TEMPLATE_TYPE, templates.as_slice())];
    phases.extend(graph.phases());
    for (resource_type, bodies) in phases {
        let records = bodies
            .iter()
            .map(|body| {
                let key = schema.resource_types.key(ResourceRoot::Config, resource_type, &id_of(body))?;
                Ok((key, serde_json::to_vec(&ConfigRecord::new(body.clone(), 1, false))?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        stream::iter(records)
            .map(|(key, value)| async move { store.put(&key, value).await })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
    }
    Ok(())
}
