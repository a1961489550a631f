//! `bench-e2e`: the whole controller against Heat itself. N stacks of a small real template
//! (`heat/templates/bench-e2e.yaml`: two `OS::Heat::None` and one `OS::Heat::RandomString`) are
//! created, then all updated, once by a direct Heat client and once through the controller (a
//! `/config` write → planner → worker → `/state`), at the same concurrency, on one local Heat of
//! the benchmark's own. The direct client is the ceiling: what talking to Heat costs with nothing
//! in between.
//!
//! For each phase it prints both times and their ratio, the Heat calls per stack of each, the
//! controller's own overhead per job — from the `/config` write (or, when all the worker's slots
//! were busy, from the moment one came free) to its `/state` seen on a watch, minus the time the
//! worker waited on Heat for it (its calls and the pauses between its polls, which the worker
//! logs as `heat_ms` on "job finished") — and the etcd round trips per job (the controller's
//! `heat_reconciler_etcd_requests_total`, planner and worker together, until the job has left
//! `/jobs`). Beside the tail it prints the overhead of the phase's first jobs (planned while the
//! burst of config writes crowds the machine) and what the machine's CPUs did meanwhile: on a
//! virtual machine, the share the hypervisor stole sets that tail more than any code does.

use super::host::{CpuShares, CpuTimes};
use super::run_dir::RunDir;
use crate::heat::{Endpoint, HeatClient, StackRef, StackRequest};
use crate::local::process::{ChildProcess, free_tcp_port};
use crate::local::{LocalEtcd, LocalHeat};
use crate::protocol::{ConfigRecord, JobId, ResourceRoot, StateRecord};
use crate::store::{Store, Txn, WatchEvent, watch_prefix};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TEMPLATE: &str = include_str!("../../heat/templates/bench-e2e.yaml");
const TENANT: &str = "e2e0bench0tenant0000000000000000";
/// The controller's resources are networks: their template mapping names the template
/// `network`, which the benchmark stores.
const PREFIX: &str = "/v2.0/networks";
/// The direct client polls a stack this often: a tight hand-written loop, never backing off.
const DIRECT_POLL: Duration = Duration::from_millis(250);
/// How long one phase may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(1800);

pub async fn e2e(stacks: usize, concurrency: usize) -> anyhow::Result<()> {
    anyhow::ensure!(stacks > 0 && concurrency > 0, "--stacks and --concurrency must be at least 1");
    println!(
        "bench-e2e: {stacks} stacks of 3 resources, concurrency {concurrency}; direct client polls every {DIRECT_POLL:?}"
    );
    let dir = RunDir::new("bench-e2e")?;
    let mut heat = LocalHeat::own("bench-e2e")?;
    let heat_url = heat.start(true).await?;
    let etcd = LocalEtcd::start().await?;
    let store = etcd.connect().await?;
    store.put(&ResourceRoot::Config.key("/v2.0/heat_templates", "network"), template_record()?).await?;
    let client = HeatClient::new(Endpoint::NoAuth { base: heat_url.clone() })?;
    let controller = Controller::start(dir.path(), &etcd.endpoints().join(","), &heat_url, concurrency).await?;
    let (commit_p50, commit_p99) = commit_latency(&store).await?;
    println!(
        "etcd ceiling: a guarded transaction commits in p50 {commit_p50:.2} ms, p99 {commit_p99:.2} ms \
         (a job's path holds two: its claim, or its plan when that claims it, and its results)"
    );

    let mut direct_stacks = Vec::new();
    let mut totals = (Duration::ZERO, Duration::ZERO);
    let mut overheads = Vec::new();
    let mut round_trips = 0.0;
    for version in [1, 2] {
        let word = if version == 1 { "create" } else { "update" };
        let direct = direct(&client, stacks, concurrency, version, &mut direct_stacks).await?;
        let through = controller.phase(&store, stacks, concurrency, version).await?;
        let ratio = through.time.as_secs_f64() / direct.time.as_secs_f64();
        let (p50, p99) = (percentile(&through.overheads_ms, 0.50), percentile(&through.overheads_ms, 0.99));
        println!(
            "{word}: direct client {:.1} s ({:.1} Heat calls and {:.0} ms in Heat per stack), \
             controller {:.1} s ({:.1} Heat calls and {:.0} ms in Heat per stack), ratio {ratio:.3}; \
             controller overhead per job p50 {p50:.1} ms, p99 {p99:.1} ms; etcd round trips per job {:.2}",
            direct.time.as_secs_f64(),
            direct.heat_calls as f64 / stacks as f64,
            direct.in_heat_ms,
            through.time.as_secs_f64(),
            through.heat_calls as f64 / stacks as f64,
            through.in_heat_ms,
            through.round_trips,
        );
        let first = &through.writes_ms[..concurrency.min(stacks)];
        println!(
            "{word}: etcd under this load: the benchmark's config writes committed in p50 {:.2} ms, p99 {:.2} ms, \
             the first {} (while the first jobs were planned and claimed) in up to {:.2} ms; \
             a job's path holds three commits (plan, claim, results), two when the plan claims it",
            percentile(&through.writes_ms, 0.50),
            percentile(&through.writes_ms, 0.99),
            first.len(),
            first.iter().copied().fold(0.0, f64::max),
        );
        // The tail is mostly the phase's first jobs, and how fast any job goes depends on the
        // machine as a whole: say both, so that a run can be read against another.
        let (first_jobs, others) = through.overheads_ms.split_at(first.len());
        let machine = |shares: Option<CpuShares>| shares.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        println!(
            "{word}: the first {} jobs' overhead up to {:.1} ms (the others' p99 {:.1} ms); the machine's CPU \
             until their /state: {}; over the phase: {}",
            first_jobs.len(),
            first_jobs.iter().copied().fold(0.0, f64::max),
            percentile(others, 0.99),
            machine(through.machine.0),
            machine(through.machine.1),
        );
        totals.0 += direct.time;
        totals.1 += through.time;
        overheads.extend(through.overheads_ms);
        round_trips += through.round_trips / 2.0;
    }
    drop(controller);
    let ratio = totals.1.as_secs_f64() / totals.0.as_secs_f64();
    println!(
        "ratio: {ratio:.3}, overhead p50: {:.1} ms, p99: {:.1} ms, etcd round trips per job: {round_trips:.2}",
        percentile(&overheads, 0.50),
        percentile(&overheads, 0.99)
    );
    Ok(())
}

/// The template as Gohan stores it, with the parameter mappings of the controller's networks.
fn template_record() -> Result<Vec<u8>, serde_json::Error> {
    let body = json!({"id": "network", "handler": "heat_worker", "watch": [], "template_file": TEMPLATE,
        "parameter_mappings": {"rid": "Pid", "name": "Pname"}});
    serde_json::to_vec(&ConfigRecord::new(object(body), 1, false))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn resource_id(n: usize) -> String {
    format!("e2e-{n:05}")
}

fn name(id: &str, version: u64) -> String {
    format!("{id}-v{version}")
}

/// What one phase took.
struct Phase {
    time: Duration,
    heat_calls: usize,
    /// The mean time from a stack's first Heat call to the answer of its last.
    in_heat_ms: f64,
}

/// Creates (version 1) or updates (version 2) every stack straight through the Heat API: create
/// or update, poll until it settles, read its outputs — `concurrency` stacks at a time.
async fn direct(
    client: &HeatClient,
    stacks: usize,
    concurrency: usize,
    version: u64,
    created: &mut Vec<StackRef>,
) -> anyhow::Result<Phase> {
    let calls = AtomicUsize::new(0);
    let began = Instant::now();
    let refs = stream::iter(0..stacks)
        .map(|n| {
            let (calls, known) = (&calls, created.get(n).cloned());
            async move {
                let began = Instant::now();
                let id = format!("direct-{n:05}");
                let request = StackRequest {
                    stack_name: known.is_none().then(|| id.clone()),
                    template: TEMPLATE.to_owned(),
                    parameters: object(json!({"rid": id, "name": name(&id, version)})),
                    timeout_mins: None,
                    disable_rollback: true,
                };
                calls.fetch_add(1, Ordering::Relaxed);
                let stack = match known {
                    Some(stack) => {
                        client.update(TENANT, &stack, &request).await?;
                        stack
                    }
                    None => client.create(TENANT, &request).await?,
                };
                loop {
                    tokio::time::sleep(DIRECT_POLL).await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    let shown = client.show(TENANT, &stack, false).await?;
                    if shown.stack_status.ends_with("_IN_PROGRESS") {
                        continue;
                    }
                    anyhow::ensure!(shown.stack_status.ends_with("_COMPLETE"), "{id}: {}", shown.stack_status);
                    break;
                }
                calls.fetch_add(1, Ordering::Relaxed);
                client.outputs(TENANT, &stack).await?;
                anyhow::Ok((stack, began.elapsed()))
            }
        })
        .buffered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let in_heat_ms = refs.iter().map(|(_, took)| took.as_secs_f64() * 1000.0).sum::<f64>() / stacks as f64;
    *created = refs.into_iter().map(|(stack, _)| stack).collect();
    Ok(Phase { time: began.elapsed(), heat_calls: calls.into_inner(), in_heat_ms })
}

/// What one phase through the controller took.
struct Through {
    time: Duration,
    heat_calls: usize,
    /// The mean time the worker waited on Heat for a job.
    in_heat_ms: f64,
    overheads_ms: Vec<f64>,
    /// How long each of the benchmark's config writes took to commit: etcd's commit latency
    /// under the phase's own load, which every commit on a job's path pays too.
    writes_ms: Vec<f64>,
    round_trips: f64,
    /// The machine's CPU until `concurrency` jobs' `/state` were seen (the first jobs, planned
    /// during the burst of config writes), and over the whole phase.
    machine: (Option<CpuShares>, Option<CpuShares>),
}

/// The controller under test: one process running the planner and the worker with
/// `concurrency` slots, its logs (JSON) in a file the benchmark reads.
struct Controller {
    process: ChildProcess,
    log: std::path::PathBuf,
    port: u16,
    http: reqwest::Client,
}

impl Controller {
    async fn start(dir: &Path, endpoints: &str, heat_url: &str, concurrency: usize) -> anyhow::Result<Controller> {
        let port = free_tcp_port()?;
        let log = dir.join("controller.log");
        let (endpoints, heat_url) = (endpoints.to_owned(), heat_url.to_owned());
        let executable = std::env::current_exe()?;
        let mut process = ChildProcess::spawn("controller", &log, move || {
            let mut command = std::process::Command::new(&executable);
            command.args(["run", "--roles", "planner,worker", "--id", "bench-e2e", "--etcd-endpoints", &endpoints]);
            command.args(["--heat-url", &heat_url, "--slots", &concurrency.to_string()]);
            command.args(["--metrics-listen", &format!("127.0.0.1:{port}"), "--log-format", "json"]);
            command.env("RUST_LOG", std::env::var("BENCH_CONTROLLER_LOG").unwrap_or_else(|_| "info".into()));
            command
        })?;
        let http = reqwest::Client::new();
        let began = Instant::now();
        loop {
            anyhow::ensure!(process.is_running(), "the controller exited:\n{}", process.log_tail(20));
            anyhow::ensure!(began.elapsed() < Duration::from_secs(60), "the controller was not ready in 60 s");
            let ready = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(Controller { process, log, port, http });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes every resource's config at `version`, one after the other as Gohan would, and
    /// waits for each `/state` to say it completed, then for `/jobs` to be empty.
    async fn phase(&self, store: &Store, stacks: usize, concurrency: usize, version: u64) -> anyhow::Result<Through> {
        let before = self.counters().await?;
        let mut states = watch_prefix(store.clone(), ResourceRoot::State.key(PREFIX, ""));
        while !matches!(states.recv().await, Some(WatchEvent::Listed { .. })) {}
        let began = Instant::now();
        let cpu = CpuTimes::now();
        let mut first_jobs_cpu = None;
        let (mut written, mut committed) = (HashMap::new(), HashMap::new());
        let mut writes_ms = Vec::new();
        for n in 0..stacks {
            let id = resource_id(n);
            let body = object(json!({"id": id, "tenant_id": TENANT, "name": name(&id, version)}));
            let record = serde_json::to_vec(&ConfigRecord::new(body, version, false))?;
            let writing = Instant::now();
            written.insert(id.clone(), writing);
            store.put(&ResourceRoot::Config.key(PREFIX, &id), record).await?;
            writes_ms.push(writing.elapsed().as_secs_f64() * 1000.0);
            committed.insert(id, Instant::now());
        }
        let mut landed = HashMap::new();
        while landed.len() < stacks {
            anyhow::ensure!(began.elapsed() < LIMIT, "only {} of {stacks} stacks done after {LIMIT:?}", landed.len());
            let event = tokio::time::timeout(Duration::from_secs(10), states.recv()).await;
            let Ok(Some(WatchEvent::Put(kv))) = event else { continue };
            let seen = Instant::now();
            let state: StateRecord = serde_json::from_slice(&kv.value)?;
            let id = kv.key.rsplit('/').next().unwrap_or_default().to_owned();
            if state.version != version {
                continue;
            }
            anyhow::ensure!(state.error.is_empty(), "{id} failed: {}", state.error);
            landed.entry(id).or_insert(seen);
            if landed.len() == concurrency.min(stacks) && first_jobs_cpu.is_none() {
                first_jobs_cpu = CpuTimes::now();
            }
        }
        let time = began.elapsed();
        let shares = |until: Option<CpuTimes>| until.zip(cpu).and_then(|(until, cpu)| until.since(&cpu));
        let machine = (shares(first_jobs_cpu), shares(CpuTimes::now()));
        self.keep_timeline(version, &written, &committed, &landed)?;
        // The round trips of a job end with the planner's removal of its records.
        while !store.list("/jobs/all/").await?.0.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = self.counters().await?;
        let log = self.job_log(version)?;
        // A job can start only when one of the `concurrency` slots is free: the n-th job claimed
        // (n ≥ concurrency) waits for the (n − concurrency)-th to land, as the direct client's
        // n-th stack waits for a request to end. That wait is the concurrency's, not overhead.
        let mut landings: Vec<Instant> = landed.values().copied().collect();
        landings.sort();
        let mut overheads_ms = Vec::new();
        for (n, id) in log.claimed.iter().enumerate() {
            let (Some(at), Some(heat_ms)) = (landed.get(id), log.in_heat.get(id)) else {
                anyhow::bail!("{id}: no /state seen or no \"job finished\" logged");
            };
            let free = n.checked_sub(concurrency).map(|earlier| landings[earlier]);
            let could_start = free.map_or(written[id], |free| free.max(written[id]));
            overheads_ms.push(at.duration_since(could_start).as_secs_f64() * 1000.0 - heat_ms);
        }
        anyhow::ensure!(overheads_ms.len() == stacks, "{} jobs claimed, {stacks} expected", overheads_ms.len());
        Ok(Through {
            time,
            heat_calls: (after.heat_calls - before.heat_calls) as usize,
            in_heat_ms: log.in_heat.values().sum::<f64>() / stacks as f64,
            overheads_ms,
            writes_ms,
            round_trips: (after.etcd_requests - before.etcd_requests) / stacks as f64,
            machine,
        })
    }

    /// With `BENCH_KEEP` set, each resource's config write (sent, and committed) and `/state` as
    /// wall-clock seconds (`timeline.jsonl` beside the controller's log, whose timestamps they
    /// can be read against).
    fn keep_timeline(
        &self,
        version: u64,
        written: &HashMap<String, Instant>,
        committed: &HashMap<String, Instant>,
        landed: &HashMap<String, Instant>,
    ) -> anyhow::Result<()> {
        if !RunDir::kept() {
            return Ok(());
        }
        let (now, wall) = (Instant::now(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?);
        let at = |t: &Instant| (wall - now.duration_since(*t)).as_secs_f64();
        let mut lines = String::new();
        for (id, write) in written {
            let (state, committed) = (landed.get(id).map(at), committed.get(id).map(at));
            let line =
                json!({"id": id, "version": version, "written": at(write), "committed": committed, "state": state});
            lines += &format!("{line}\n");
        }
        let path = self.log.with_file_name("timeline.jsonl");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        std::io::Write::write_all(&mut file, lines.as_bytes())?;
        Ok(())
    }

    /// The controller's etcd requests and Heat calls so far, from its `/metrics`.
    async fn counters(&self) -> anyhow::Result<Counters> {
        let text = self.http.get(format!("http://127.0.0.1:{}/metrics", self.port)).send().await?.text().await?;
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok(Counters {
            etcd_requests: sum("heat_reconciler_etcd_requests_total"),
            heat_calls: sum("heat_reconciler_heat_call_duration_seconds_count"),
        })
    }

    /// The jobs at `version` in the order the worker started them ("Checking job status"), and
    /// the milliseconds each waited on Heat ("job finished"), from the worker's log.
    fn job_log(&self, version: u64) -> anyhow::Result<JobLog> {
        let text = std::fs::read_to_string(&self.log)?;
        let mut log = JobLog::default();
        for line in text.lines() {
            // The JSON log format puts an event's fields beside its message.
            let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
            let Some(job) = entry["job"].as_str().and_then(|job| job.parse::<JobId>().ok()) else { continue };
            if job.version != version {
                continue;
            }
            match (entry["message"].as_str(), entry["heat_ms"].as_f64()) {
                (Some("Checking job status"), _) => log.claimed.push(job.resource_id),
                (Some("job finished"), Some(heat_ms)) => {
                    log.in_heat.insert(job.resource_id, heat_ms);
                }
                _ => {}
            }
        }
        Ok(log)
    }
}

#[derive(Default)]
struct JobLog {
    claimed: Vec<String>,
    in_heat: HashMap<String, f64>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.process.stop();
    }
}

struct Counters {
    etcd_requests: f64,
    heat_calls: f64,
}

/// The latency of one guarded transaction of the worker's shape (a compare, a put and a
/// delete), 200 in a row, in milliseconds: p50 and p99.
async fn commit_latency(store: &Store) -> anyhow::Result<(f64, f64)> {
    let mut took = Vec::new();
    for n in 0..200 {
        let key = format!("/bench-e2e/commit/{n}");
        let mut txn = Txn::new().if_absent(&key).put(&key, "x");
        if n > 0 {
            txn = txn.delete(&format!("/bench-e2e/commit/{}", n - 1));
        }
        let began = Instant::now();
        store.commit(txn).await?;
        took.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    store.delete("/bench-e2e/commit/199").await?;
    Ok((percentile(&took, 0.50), percentile(&took, 0.99)))
}

/// The `q` quantile (0..=1) of `values`, nearest rank.
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
