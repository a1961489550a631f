//! `bench-resync`: a cold start over a large converged estate. N load balancers' records
//! (`/config`, the worker's snapshot, `/esi-worker/heat_stacks`, `/state`, `/monitoring`, all at
//! version 1, as after a converged create) are written straight into a local etcd; then a planner
//! process is started and timed until it has listed everything and decided that nothing is to be
//! done: it leads (`heat_reconciler_leader{role="planner"} 1`) and `/readyz` answers 200, which it does once its
//! first full list is reconciled. Its peak RSS is read from `/proc`. The ceiling is one raw list,
//! by the benchmark itself, of what the planner lists (`/config`, snapshots, `/state`, `/jobs`).

use super::mirror::{load_balancer_id, load_balancer_records};
use super::run_dir::RunDir;
use crate::local::LocalEtcd;
use crate::local::process::{ChildProcess, free_tcp_port};
use crate::planner::view::View;
use crate::store::{Store, Txn};
use futures::{StreamExt, TryStreamExt, stream};
use std::time::{Duration, Instant};

/// Resources per loading transaction: five puts each, under etcd's default of 128 operations.
const PER_TXN: usize = 25;
const LOAD_CONCURRENCY: usize = 16;
/// How long the planner may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(600);

pub async fn resync(resources: usize) -> anyhow::Result<()> {
    anyhow::ensure!(resources > 0, "--resources must be at least 1");
    let etcd = LocalEtcd::start().await?;
    let store = etcd.connect().await?;
    println!("bench-resync: {resources} converged load balancers (5 records each)");
    let started = Instant::now();
    load(&store, resources).await?;
    println!("load: {} keys in {:.1} s", resources * 5, started.elapsed().as_secs_f64());

    // The planner lists only the prefixes its view is made of; so does the ceiling.
    let started = Instant::now();
    let (items, _) = store.list_many(&View::listed_prefixes()).await?;
    let ceiling = started.elapsed().as_secs_f64();
    println!("etcd ceiling: the planner's {} keys listed in {ceiling:.3} s", items.len());
    drop(items);

    let port = free_tcp_port()?;
    let endpoints = etcd.endpoints().join(",");
    let executable = std::env::current_exe()?;
    let dir = RunDir::new("bench-resync")?;
    let log = dir.path().join("planner.log");
    let started = Instant::now();
    // A profiler to run the planner under, e.g. `BENCH_PROFILER=heaptrack` (BENCHMARKS.md).
    let profiler = std::env::var("BENCH_PROFILER").ok().filter(|p| !p.is_empty());
    let mut planner = ChildProcess::spawn("planner", &log, move || {
        let mut command = match &profiler {
            Some(profiler) => {
                let mut command = std::process::Command::new(profiler);
                command.arg(&executable);
                command
            }
            None => std::process::Command::new(&executable),
        };
        command.args(["run", "--roles", "planner", "--id", "bench-resync", "--etcd-endpoints", &endpoints]);
        command.args(["--metrics-listen", &format!("127.0.0.1:{port}"), "--log-format", "json"]);
        command.env("RUST_LOG", "warn");
        command
    })?;
    let pid = planner.pid().ok_or_else(|| anyhow::anyhow!("the planner did not start"))?;
    let http = reqwest::Client::new();
    loop {
        anyhow::ensure!(planner.is_running(), "the planner exited:\n{}", planner.log_tail(20));
        anyhow::ensure!(started.elapsed() < LIMIT, "the planner was not done after {LIMIT:?}");
        if decided(&http, port).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let time = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb(pid)?;
    let (jobs, _) = store.list("/jobs/").await?;
    planner.stop();
    println!("jobs written: {} (nothing was to be done)", jobs.len());
    anyhow::ensure!(jobs.is_empty(), "the planner planned jobs for a converged estate");
    println!(
        "cold resync: {resources} resources decided in {time:.2} s from process start, peak RSS {peak:.0} MB; \
         ceiling: one list of those records in {ceiling:.2} s"
    );
    Ok(())
}

/// Writes every resource's five records, `PER_TXN` resources per transaction.
pub(super) async fn load(store: &Store, resources: usize) -> anyhow::Result<()> {
    let chunks: Vec<Vec<usize>> = (0..resources).collect::<Vec<_>>().chunks(PER_TXN).map(<[usize]>::to_vec).collect();
    stream::iter(chunks)
        .map(|chunk| async move {
            let mut txn = Txn::new();
            for n in chunk {
                for (key, value) in records(&load_balancer_id(n)) {
                    txn = txn.put(&key, value.into_bytes());
                }
            }
            store.commit(txn).await
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// A converged load balancer's records, with the worker's snapshot of the config it applied.
fn records(id: &str) -> Vec<(String, String)> {
    let mut records = load_balancer_records(id, 1, false, "CREATE_COMPLETED");
    let (config_key, config) = records[0].clone();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
    let body: serde_json::Value =
        config["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    let snapshot = serde_json::json!({"body": body, "deleted": false, "version": 1});
    records.push((config_key.replacen("/config/", "/esi-worker/config/", 1), snapshot.to_string()));
    records
}

/// Whether the planner leads and is ready: its first list has been reconciled.
async fn decided(http: &reqwest::Client, port: u16) -> bool {
    let get = |path: &str| http.get(format!("http://127.0.0.1:{port}{path}")).send();
    let Ok(metrics) = get("/metrics").await else { return false };
    let leads =
        metrics.text().await.is_ok_and(|text| text.lines().any(|l| l == r#"heat_reconciler_leader{role="planner"} 1"#));
    leads && get("/readyz").await.is_ok_and(|r| r.status().is_success())
}

/// The process's peak resident set size (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}
