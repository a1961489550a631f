//! `chaos`: a scenario of at least 200 resources with dependencies (networks, subnets on them,
//! ports on those) on a real etcd and a real standalone Heat, run by `heat-reconciler run` child
//! processes of this executable that are SIGKILLed at random moments and replaced, through one
//! etcd restart and one Heat outage (Heat SIGKILLed while updates run, started again later on its
//! database). Resources are written in waves as Gohan would, a subset is
//! modified and a few are deleted (marked, then their config removed once `/state` says
//! DELETE_COMPLETED) while the chaos runs. Afterwards, with the controllers left alone, it waits
//! (bounded) until everything converged and checks it: every resource at its final version with
//! exactly one Heat stack (none for deleted ones), nothing left under `/jobs/` or
//! `/esi-worker/job_state/`. The last line is `converged: X/Y, duplicate stacks: D, stuck: S,
//! leftovers: L`.

mod controllers;
mod logs;
mod observe;
mod scenario;
mod schedule;

use crate::heat::{Endpoint, HeatClient};
use crate::local::LocalEtcd;
use crate::local::LocalHeat;
use crate::protocol::ResourceRoot;
use crate::store::Store;
use controllers::*;
use logs::*;
use observe::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use scenario::*;
use schedule::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The tenant every resource of the scenario belongs to.
pub const TENANT: &str = "c4a05c1e5f0b4bd6a0c7c4a0f2a1b3c5";

/// How a chaos run goes.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// How many resources: a fifth networks, two fifths subnets, the rest ports.
    pub resources: usize,
    /// How long controllers are killed; config writes and both faults happen within it.
    pub duration: Duration,
    /// How long the Heat outage lasts.
    pub heat_outage: Duration,
    /// How long to wait for convergence once the chaos phase is over.
    pub converge_timeout: Duration,
    /// How many controller processes run at once.
    pub controllers: usize,
    /// The port of the run's own Heat (default: a free one).
    pub heat_port: Option<u16>,
    /// Seed of the random kills (default: random, printed).
    pub seed: Option<u64>,
    /// Keep the controllers' logs even when the run is good.
    pub keep_logs: bool,
    /// Passed on to the controllers.
    pub schema_dir: Option<PathBuf>,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions {
            resources: 200,
            duration: Duration::from_secs(90),
            heat_outage: Duration::from_secs(25),
            converge_timeout: Duration::from_secs(300),
            controllers: 3,
            heat_port: None,
            seed: None,
            keep_logs: false,
            schema_dir: None,
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChaosSummary {
    pub converged: usize,
    pub total: usize,
    pub duplicate_stacks: usize,
    pub stuck: usize,
    pub leftovers: usize,
}

impl ChaosSummary {
    pub fn ok(&self) -> bool {
        self.converged == self.total && self.duplicate_stacks == 0 && self.stuck == 0 && self.leftovers == 0
    }

    pub fn last_line(&self) -> String {
        format!(
            "converged: {}/{}, duplicate stacks: {}, stuck: {}, leftovers: {}",
            self.converged, self.total, self.duplicate_stacks, self.stuck, self.leftovers
        )
    }
}

/// `90`, `90s`, `1500ms`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (e.g. 90s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

// The run.

/// Prints a line with the time since `start`.
fn say(start: Instant, text: impl std::fmt::Display) {
    println!("{:>7.1}s  {text}", start.elapsed().as_secs_f64());
}

/// Runs the chaos scenario and returns the verdict (after printing the figures). Errors are
/// failures to set up or drive it (etcd or Heat would not start), not verdicts.
pub async fn run(options: ChaosOptions) -> anyhow::Result<ChaosSummary> {
    anyhow::ensure!(options.resources >= 3, "--resources must be at least 3");
    anyhow::ensure!(options.controllers >= 1, "at least one controller");
    let dir = std::env::temp_dir().join(format!("heat-reconciler-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = match options.heat_port {
        Some(port) => port,
        None => crate::local::process::free_tcp_port()?,
    };
    // The chaos's own Heat, its database and logs in the run's directory; stopped when dropped.
    let mut heat_process = LocalHeat::own_in(dir.join("heat"), port)?;
    let mut etcd: Option<LocalEtcd> = None;
    let mut controllers: Option<Controllers> = None;
    let result = tokio::select! {
        result = drive(&options, &dir, &mut heat_process, &mut etcd, &mut controllers) => result,
        signal = crate::shutdown::signalled() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    if let Some(c) = controllers.as_mut() {
        c.stop_all();
    }
    drop(etcd);
    let _ = heat_process.stop().await;
    let keep = options.keep_logs || !matches!(&result, Ok(summary) if summary.ok());
    if keep {
        println!("controller and Heat logs: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn drive(
    options: &ChaosOptions,
    dir: &Path,
    heat_process: &mut LocalHeat,
    etcd_slot: &mut Option<LocalEtcd>,
    controllers_slot: &mut Option<Controllers>,
) -> anyhow::Result<ChaosSummary> {
    let seed = options.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let resources = scenario::scenario(options.resources);
    let count = |kind: Kind| resources.iter().filter(|r| r.kind == kind).count();
    let modified = resources.iter().filter(|r| r.modified).count();
    let deleted = resources.iter().filter(|r| r.deleted).count();
    let flaky = resources.iter().filter(|r| r.flaky).count();
    println!(
        "chaos: {} resources ({} networks, {} subnets, {} ports; {modified} modified, {deleted} deleted, {flaky} flaky), \
         {} controllers, chaos for {} s, Heat outage {} s, seed {seed}",
        resources.len(),
        count(Kind::Network),
        count(Kind::Subnet),
        count(Kind::Port),
        options.controllers,
        options.duration.as_secs(),
        options.heat_outage.as_secs()
    );

    let setup = Instant::now();
    let heat_url = heat_process.start(true).await?;
    let etcd = etcd_slot.insert(LocalEtcd::start().await?);
    say(setup, format!("Heat at {heat_url} (fresh), etcd at {}", etcd.client_url));
    let store = etcd.connect().await?;
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url.clone() })?;
    for (id, record) in templates(false)? {
        put_retrying(&store, &ResourceRoot::Config.key("/v2.0/heat_templates", id), &record).await?;
    }
    let jobs = Arc::new(Mutex::new(JobLog::default()));
    let follower = follow_jobs(store.clone(), jobs.clone());
    let controllers =
        controllers_slot.insert(Controllers::new(&etcd.client_url, &heat_url, dir, options.schema_dir.as_deref())?);
    for _ in 0..options.controllers {
        controllers.spawn()?;
    }

    // The chaos phase.
    let start = Instant::now();
    let steps = schedule::schedule(&resources, options, &mut rng);
    let mut marked = vec![false; resources.len()];
    let mut removed = vec![false; resources.len()];
    let mut etcd_restarts = 0;
    let mut etcd_down_for = Duration::ZERO;
    let mut etcd_down_at = None;
    let mut heat_down_at = None;
    let mut heat_outage = Duration::ZERO;
    let mut last_fault = start;
    for (offset, step) in steps {
        let due = start + offset;
        while Instant::now() < due {
            tokio::time::sleep((due - Instant::now()).min(Duration::from_millis(500))).await;
            housekeeping(start, &store, &resources, &marked, &mut removed, controllers).await?;
        }
        match step {
            Step::Create(indexes) | Step::Modify(indexes) | Step::Delete(indexes) if indexes.is_empty() => {}
            Step::Create(indexes) => {
                for &i in &indexes {
                    put_retrying(&store, &resources[i].key(ResourceRoot::Config), &resources[i].config(1, false)?)
                        .await?;
                }
                say(start, format!("wrote {} configs at version 1", indexes.len()));
            }
            Step::Modify(indexes) => {
                for &i in &indexes {
                    put_retrying(&store, &resources[i].key(ResourceRoot::Config), &resources[i].config(2, false)?)
                        .await?;
                }
                say(start, format!("wrote {} configs at version 2", indexes.len()));
            }
            Step::Delete(indexes) => {
                for &i in &indexes {
                    let r = &resources[i];
                    put_retrying(&store, &r.key(ResourceRoot::Config), &r.config(r.final_version(), true)?).await?;
                    marked[i] = true;
                }
                say(start, format!("marked {} resources for deletion", indexes.len()));
            }
            Step::FixTemplate => {
                for (id, record) in templates(true)? {
                    put_retrying(&store, &ResourceRoot::Config.key("/v2.0/heat_templates", id), &record).await?;
                }
                say(start, "fixed the network template (the flaky networks can succeed now)");
            }
            Step::Kill => {
                let leader = match bounded(store.get(crate::protocol::keys::JOB_MANAGER_ID_KEY)).await {
                    Ok(Some(kv)) => Some(String::from_utf8_lossy(&kv.value).into_owned()),
                    _ => None,
                };
                if let Some(victim) = controllers.kill_one(&mut rng, leader.as_deref()) {
                    let replacement = controllers.spawn()?;
                    let role = if leader.as_deref() == Some(victim.as_str()) { " (the leader)" } else { "" };
                    say(start, format!("SIGKILL {victim}{role}; started {replacement}"));
                    last_fault = Instant::now();
                }
            }
            Step::EtcdStop => {
                etcd.stop();
                etcd_down_at = Some(Instant::now());
                say(start, "etcd stopped");
            }
            Step::EtcdStart => {
                etcd.restart().await?;
                etcd_restarts += 1;
                if let Some(at) = etcd_down_at.take() {
                    etcd_down_for = at.elapsed();
                }
                last_fault = Instant::now();
                say(start, format!("etcd restarted (down {:.1} s)", etcd_down_for.as_secs_f64()));
            }
            Step::HeatKill => {
                heat_down_at = Some(Instant::now());
                heat_process.kill().await?;
                say(start, "Heat killed (SIGKILL)");
            }
            Step::HeatStart => {
                heat_process.start(false).await?;
                if let Some(at) = heat_down_at.take() {
                    heat_outage = at.elapsed();
                }
                last_fault = Instant::now();
                say(start, format!("Heat started again (outage {:.1} s)", heat_outage.as_secs_f64()));
            }
        }
    }
    let chaos_end = Instant::now();
    say(start, format!("chaos over; {} controllers left running, waiting for convergence", controllers.running.len()));

    // Convergence, bounded.
    let deadline = chaos_end.max(last_fault) + options.converge_timeout;
    let mut converged_at = None;
    let mut last_report = Instant::now();
    let assessment = loop {
        housekeeping(start, &store, &resources, &marked, &mut removed, controllers).await?;
        let assessment = match assess(&store, &heat, &resources).await {
            Ok(assessment) => Some(assessment),
            Err(e) => {
                tracing::warn!(error = %e, "cannot assess yet");
                None
            }
        };
        let good = assessment.as_ref().is_some_and(Assessment::all_good);
        if good {
            converged_at = Some(Instant::now());
        }
        if let Some(assessment) = assessment
            && (good || Instant::now() >= deadline)
        {
            break assessment;
        }
        if Instant::now() >= deadline {
            anyhow::bail!("etcd or Heat could not be read at the deadline");
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            if let Ok(a) = assess(&store, &heat, &resources).await {
                say(
                    start,
                    format!("{}/{} converged, {} leftovers", a.converged(), a.problems.len(), a.leftovers.len()),
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    drop(follower);
    controllers.stop_all();

    // Figures.
    let logs = read_logs(&controllers.logs);
    let (planned, finished) = {
        let log = jobs.lock().map_err(|_| anyhow::anyhow!("job log poisoned"))?;
        (log.planned.clone(), log.finished.clone())
    };
    let failed: Vec<&String> = finished.values().filter(|reason| !reason.is_empty()).collect();
    let mut jobs_per_stack: HashMap<&str, usize> = HashMap::new();
    for stack in planned.values() {
        *jobs_per_stack.entry(stack.as_str()).or_default() += 1;
    }
    let calls: usize = logs.heat_calls.values().sum();
    let repeated: usize = logs
        .heat_calls
        .iter()
        .map(|(stack, n)| n.saturating_sub(*jobs_per_stack.get(stack.as_str()).unwrap_or(&0)))
        .sum();
    let changes = resources.len() + modified + deleted;
    println!("figures:");
    println!(
        "  controller kills: {} ({} of the leader), controller restarts: {}, exits on their own: {}",
        controllers.kills,
        controllers.leader_kills,
        controllers.started - options.controllers,
        controllers.exits.len()
    );
    for (id, status) in &controllers.exits {
        println!("    {id} exited: {status}");
    }
    println!("  etcd restarts: {etcd_restarts} (down {:.1} s)", etcd_down_for.as_secs_f64());
    println!("  Heat outage: {:.1} s", heat_outage.as_secs_f64());
    println!(
        "  leader elections: {}, jobs re-queued after their worker died: {}, claims lost: {}, error lines: {}",
        logs.elections, logs.requeued, logs.lost_claims, logs.errors
    );
    println!(
        "  jobs planned: {} for {changes} config changes ({} retries), {} failed",
        planned.len(),
        planned.len().saturating_sub(changes),
        failed.len()
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for reason in &failed {
        *reasons.entry(reason_kind(reason)).or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (reason, n) in reasons.iter().take(10) {
        println!("    {n} × {reason}");
    }
    if reasons.len() > 10 {
        println!("    ... and {} other reasons", reasons.len() - 10);
    }
    let per_job = if planned.is_empty() { 0.0 } else { calls as f64 / planned.len() as f64 };
    println!(
        "  Heat calls: {calls} for {} jobs ({per_job:.2} per job; {repeated} beyond one per job of their stack, \
         i.e. jobs run again after a kill), and {} operations resent after the Heat outage",
        planned.len(),
        logs.resent
    );
    match converged_at {
        Some(at) => println!(
            "  time to converge after the last fault: {:.1} s (after the chaos phase: {:.1} s; whole run {:.1} s)",
            at.saturating_duration_since(last_fault).as_secs_f64(),
            at.saturating_duration_since(chaos_end).as_secs_f64(),
            at.saturating_duration_since(start).as_secs_f64()
        ),
        None => println!(
            "  not converged within {} s after the chaos phase",
            deadline.saturating_duration_since(chaos_end).as_secs()
        ),
    }
    let unconverged: Vec<(&Resource, &String)> =
        resources.iter().zip(&assessment.problems).filter_map(|(r, p)| p.as_ref().map(|p| (r, p))).collect();
    for (r, problem) in unconverged.iter().take(25) {
        println!("  NOT CONVERGED {} {}: {problem}", r.kind.type_name(), r.id);
    }
    for stack in assessment.stray_stacks.iter().take(25) {
        println!("  STRAY STACK {stack}");
    }
    for key in assessment.leftovers.iter().take(25) {
        println!("  LEFTOVER {key}");
    }
    let converged = assessment.converged();
    Ok(ChaosSummary {
        converged,
        total: resources.len(),
        duplicate_stacks: assessment.duplicate_stacks,
        stuck: resources.len() - converged,
        leftovers: assessment.leftovers.len(),
    })
}

/// Between steps: Gohan's removal of deleted configs, and replacing controllers that exited on
/// their own (as a supervisor would).
async fn housekeeping(
    start: Instant,
    store: &Store,
    resources: &[Resource],
    marked: &[bool],
    removed: &mut [bool],
    controllers: &mut Controllers,
) -> anyhow::Result<()> {
    let n = remove_deleted(store, resources, marked, removed).await;
    if n > 0 {
        say(start, format!("removed {n} deleted configs (as Gohan does after DELETE_COMPLETED)"));
    }
    for gone in controllers.reap() {
        let replacement = controllers.spawn()?;
        say(start, format!("{gone} exited on its own; started {replacement}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_scenario_has_dependencies_modifies_and_deletes() {
        let all = scenario::scenario(200);
        assert_eq!(all.len(), 200);
        let of = |kind: Kind| all.iter().filter(|r| r.kind == kind).count();
        assert_eq!((of(Kind::Network), of(Kind::Subnet), of(Kind::Port)), (40, 80, 80));
        assert_eq!(all.iter().filter(|r| r.modified).count(), 50);
        let deleted: Vec<&str> = all.iter().filter(|r| r.deleted).map(|r| r.id.as_str()).collect();
        assert_eq!(deleted.len(), 12, "{deleted:?}");
        assert_eq!(all.iter().filter(|r| r.flaky).count(), 5);
        for network in all.iter().filter(|r| r.flaky) {
            let dependents = all.iter().filter(|r| r.network.as_ref() == Some(&network.id));
            assert!(!network.modified && dependents.clone().all(|r| !r.modified && !r.deleted), "{network:?}");
        }
        // A deleted subnet has no port that stays.
        for subnet in all.iter().filter(|r| r.kind == Kind::Subnet && r.deleted) {
            assert!(all.iter().all(|p| p.subnet.as_ref() != Some(&subnet.id) || p.deleted));
        }
        let port = all.iter().find(|r| r.id == "port-013").unwrap();
        assert_eq!(port.final_version(), 3);
        let body = port.body(2);
        assert_eq!(body["fixed_ips"][0]["subnet_id"], "sub-013");
        assert_eq!(body["network_id"], "net-013");
        assert_eq!(body["name"], "port-013-v2");
    }

    #[test]
    fn the_schedule_stays_within_the_chaos_phase() {
        let options = ChaosOptions { resources: 60, duration: Duration::from_secs(40), ..Default::default() };
        let resources = scenario::scenario(60);
        let steps = schedule::schedule(&resources, &options, &mut StdRng::seed_from_u64(7));
        let created: usize =
            steps.iter().map(|(_, s)| if let Step::Create(i) = s { i.len() } else { 0 }).sum::<usize>();
        assert_eq!(created, 60);
        assert!(steps.iter().filter(|(_, s)| *s == Step::Kill).count() >= 6);
        assert!(steps.iter().all(|(t, s)| *t < options.duration || *s == Step::HeatStart));
        assert!(steps.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn the_fixed_template_has_no_failing_resource() {
        assert!(NETWORK_TEMPLATE.contains(FLAKY_PART));
        let fixed: Vec<(&str, Vec<u8>)> = templates(true).unwrap();
        assert_eq!(fixed.len(), 1);
        let record: Value = serde_json::from_slice(&fixed[0].1).unwrap();
        let body: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
        assert!(!body["template_file"].as_str().unwrap().contains("boom"));
        assert_eq!(record["version"], 2);
        assert_eq!(templates(false).unwrap().len(), 3);
    }

    #[test]
    fn failure_reasons_group_by_kind() {
        let cancelled = "cancelled: job create:heat_worker:network:net-006:1:rj1ki it depends on failed: boom";
        assert_eq!(reason_kind(cancelled), "cancelled: job create:heat_worker:network:*:1* it depends on failed: boom");
        assert_eq!(
            reason_kind("Stack port_port-066 did not settle within 180 s (last status CREATE_IN_PROGRESS)"),
            reason_kind("Stack port_port-003 did not settle within 180 s (last status CREATE_IN_PROGRESS)")
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn the_last_line_reads_as_specified() {
        let summary = ChaosSummary { converged: 200, total: 200, ..Default::default() };
        assert!(summary.ok());
        assert_eq!(summary.last_line(), "converged: 200/200, duplicate stacks: 0, stuck: 0, leftovers: 0");
        assert!(!ChaosSummary { converged: 199, total: 200, stuck: 1, ..Default::default() }.ok());
    }
}
