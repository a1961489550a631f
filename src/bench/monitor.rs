//! `bench-monitor`: how many probes per second the monitor's prober sustains over N registered
//! targets, and the CPU it takes, next to the ceiling of the SNMP agent it probes (bare probes,
//! no scheduling, no etcd) measured in the same run against the same agent.
//!
//! Every target points at one local `snmpd` (nothing outside loopback is probed): half are load
//! balancers (`snmp_device_lb`: a GET of sysUpTime), half interfaces (`snmp_ports`: a GETBULK
//! walk of ifName, then a GET of ifOperStatus). The prober runs with a 1 ms interval, so it probes
//! as fast as it can; at the original agents' 60 s interval, N targets need N/60 probes/s.
//!
//! The first sweep writes all N statuses; its writes per second stand next to etcd's ceiling
//! for the same writes: the prober's own commit (`monitor::write`), guarded the same way, with
//! the prober's batch size, one transaction at a time as the prober commits them.

use crate::local::LocalEtcd;
use crate::local::LocalSnmpd;
use crate::monitor::batch::{MAX_WRITES, StatusWrite};
use crate::monitor::registry::Registry;
use crate::monitor::target::TargetSpec;
use crate::monitor::{self, MonitorOptions, probe, write};
use crate::protocol::monitoring::{MonitoringRecord, MonitoringStatus};
use crate::store::{Leadership, Store, campaign};
use etcd_client::{DeleteOptions, GetOptions};
use futures::{StreamExt, stream};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const COMMUNITY: &str = "bench-community";
const INTERFACES: [(&str, bool); 4] = [("0/1", true), ("1/1", false), ("1/2", true), ("1/3", true)];
/// How long the bare-probe ceiling runs.
const CEILING_TIME: Duration = Duration::from_secs(5);
/// Concurrent registrations while loading the targets.
const LOAD_CONCURRENCY: usize = 64;
/// How long each etcd write ceiling runs, and where it writes (deleted afterwards).
const WRITE_CEILING_TIME: Duration = Duration::from_secs(3);
const WRITE_CEILING_PREFIX: &str = "/bench-ceiling/";
/// Transactions in flight for the concurrent write ceiling: what pipelining could add.
const WRITE_CEILING_IN_FLIGHT: usize = 4;

pub async fn monitor(targets: usize, seconds: u64, concurrency: usize) -> anyhow::Result<()> {
    anyhow::ensure!(targets > 0 && concurrency > 0, "--targets and --concurrency must be at least 1");
    let etcd = LocalEtcd::start().await?;
    let store = etcd.connect().await?;
    let device = LocalSnmpd::start(&[COMMUNITY], &INTERFACES).await?;
    println!("bench-monitor: {targets} targets on one snmpd at {}, {concurrency} probes in flight", device.addr());

    let ceiling = bare_probe_ceiling(&device, concurrency).await;
    println!(
        "SNMP agent ceiling (bare device probes, same concurrency, {:.0} s): {:.0} probes/s, snmpd CPU {:.0}%",
        CEILING_TIME.as_secs_f64(),
        ceiling.per_second,
        ceiling.agent_cpu * 100.0
    );

    let registry = Registry::new(store.clone(), "http://127.0.0.1:7070");
    let started = Instant::now();
    let results: Vec<anyhow::Result<String>> = stream::iter(0..targets)
        .map(|i| {
            let registry = registry.clone();
            async move { Ok(registry.create(spec(i)?).await?.id) }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
    let ids = results.into_iter().collect::<anyhow::Result<Vec<String>>>()?;
    let load = started.elapsed().as_secs_f64();
    println!("registration: {targets} targets in {load:.1} s = {:.0} targets/s", targets as f64 / load);

    let writes = write_ceilings(&store, &ids).await?;
    println!(
        "etcd ceiling (guarded status writes, {:.0} s each): 1 per txn: {:.0} writes/s; {MAX_WRITES} per txn: \
         {:.0} writes/s one txn at a time, {:.0} writes/s with {WRITE_CEILING_IN_FLIGHT} txns in flight",
        WRITE_CEILING_TIME.as_secs_f64(),
        writes.single,
        writes.batched,
        writes.pipelined
    );

    let mut options = MonitorOptions::new("bench");
    options.interval = Duration::from_millis(1);
    options.timeout = Duration::from_secs(2);
    options.concurrency = concurrency;
    options.probes.loopback_only = true;
    options.probes.address_map.insert("*".into(), device.addr().to_string());
    let (probes, txns) = (options.probes_done.clone(), options.status_txns.clone());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (started, cpu) = (Instant::now(), Cpu::now(device.pid()));
    let prober = tokio::spawn(monitor::run(store.clone(), options, shutdown));

    // First sweep: until every target's status is in /monitoring (a count-only request every
    // 10 ms, cheap next to the sweep).
    let mut first = None;
    loop {
        let written = count(&store, "/monitoring/").await?;
        if written > 0 && first.is_none() {
            first = Some(started.elapsed().as_secs_f64());
        }
        if written >= targets {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {written} of {targets} statuses after 10 min"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sweep = started.elapsed().as_secs_f64();
    let used = Cpu::now(device.pid()).since(&cpu, sweep);
    let first = first.unwrap_or(sweep);
    let txns = txns.load(Ordering::Relaxed);
    let per_second = targets as f64 / sweep;
    println!(
        "first sweep: {targets} statuses written in {sweep:.2} s = {per_second:.0} writes/s = {:.0}% of the etcd \
         ceiling ({:.0} writes/s, {MAX_WRITES} per txn, one at a time); {txns} txns ({:.1} writes each); \
         from the first status written: {:.2} s = {:.0} writes/s; CPU: heat-reconciler {:.0}% of one core, snmpd {:.0}%",
        100.0 * per_second / writes.batched,
        writes.batched,
        targets as f64 / txns.max(1) as f64,
        sweep - first,
        targets as f64 / (sweep - first).max(1e-3),
        used.ours * 100.0,
        used.agent * 100.0
    );

    // Steady state: probes only, nothing changes, nothing is written.
    let (count, at, cpu) = (probes.load(Ordering::Relaxed), Instant::now(), Cpu::now(device.pid()));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = at.elapsed().as_secs_f64();
    let done = probes.load(Ordering::Relaxed) - count;
    let used = Cpu::now(device.pid()).since(&cpu, elapsed);
    let per_second = done as f64 / elapsed;
    println!(
        "steady state ({elapsed:.0} s): {per_second:.0} probes/s = {:.0}% of the agent ceiling; \
         CPU: heat-reconciler {:.0}% of one core ({:.0} µs per probe), snmpd {:.0}%",
        100.0 * per_second / ceiling.per_second,
        used.ours * 100.0,
        used.ours * 1e6 / per_second.max(1.0),
        used.agent * 100.0
    );
    let needed = targets as f64 / 60.0;
    println!(
        "at the 60 s interval {targets} targets need {needed:.0} probes/s: {:.0}x headroom, \
         ~{:.1}% of one core for heat-reconciler",
        per_second / needed,
        used.ours * 100.0 * needed / per_second.max(1.0)
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), prober).await;
    store.client().delete(WRITE_CEILING_PREFIX, Some(DeleteOptions::new().with_prefix())).await?;
    Ok(())
}

fn spec(i: usize) -> anyhow::Result<TargetSpec> {
    let mut properties = json!({"device_ip": format!("device-{i}.example"), "community_name": COMMUNITY});
    let (kind, plural, key) = if i.is_multiple_of(2) {
        ("snmp_device_lb", "load_balancers", "load_balancer")
    } else {
        properties["if_name"] = json!(INTERFACES[i / 2 % INTERFACES.len()].0);
        ("snmp_ports", "load_balancer_interfaces", "interface")
    };
    Ok(serde_json::from_value(json!({
        "type": kind, "resource_type": plural, "resource_id": format!("bench-{i:06}"), "field_name": key,
        "tenant_id": "bench", "version": 1, "properties": properties,
        "syncer_properties": {"etcd": {"status": {"key": key}}}
    }))?)
}

struct Ceiling {
    per_second: f64,
    agent_cpu: f64,
}

/// etcd's rate for the prober's status writes, in writes per second.
struct WriteCeilings {
    /// One guarded write per transaction, one at a time: the prober before batching.
    single: f64,
    /// [`MAX_WRITES`] per transaction, one at a time: the prober's shape.
    batched: f64,
    /// [`MAX_WRITES`] per transaction, [`WRITE_CEILING_IN_FLIGHT`] at a time.
    pipelined: f64,
}

/// Status writes through the prober's own commit, under [`WRITE_CEILING_PREFIX`], each guarded
/// by the leadership of a leader key there and by one of the registered `targets`, as the
/// prober's are; one key per target, as the sweep writes. The keys stay until the end of the
/// run: deleting the ~100,000 writes of the ceilings at once made etcd's commits about three
/// times slower for the seconds after (measured: a 4.3 s sweep instead of 1.6 s).
async fn write_ceilings(store: &Store, targets: &[String]) -> anyhow::Result<WriteCeilings> {
    let leadership =
        campaign(store, &format!("{WRITE_CEILING_PREFIX}leader"), "bench", Duration::from_secs(15)).await?;
    let single = write_ceiling(store, &leadership, targets, 1, 1).await?;
    let batched = write_ceiling(store, &leadership, targets, MAX_WRITES, 1).await?;
    let pipelined = write_ceiling(store, &leadership, targets, MAX_WRITES, WRITE_CEILING_IN_FLIGHT).await?;
    leadership.resign().await;
    Ok(WriteCeilings { single, batched, pipelined })
}

async fn write_ceiling(
    store: &Store,
    leadership: &Leadership,
    targets: &[String],
    per_txn: usize,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let record = MonitoringRecord {
        status_key: "load_balancer".into(),
        status: MonitoringStatus::Single("UP".into()),
        version: 1,
    };
    let batch = |txn: usize| -> Result<Vec<StatusWrite>, serde_json::Error> {
        (txn * per_txn..(txn + 1) * per_txn)
            .map(|i| {
                // Distinct keys within a transaction however few targets there are.
                let key = format!(
                    "{WRITE_CEILING_PREFIX}monitoring/{per_txn}-{in_flight}/{:08}",
                    i % targets.len().max(per_txn)
                );
                StatusWrite::new(&targets[i % targets.len()], &key, record.clone())
            })
            .collect()
    };
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<bool>>> = stream::iter(0..)
        .take_while(|_| std::future::ready(started.elapsed() < WRITE_CEILING_TIME))
        .map(|txn| {
            let writes = batch(txn);
            async move { Ok::<_, anyhow::Error>(write::commit(store, leadership, &writes?).await?) }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut written = 0;
    for applied in results {
        let applied = applied?;
        anyhow::ensure!(applied.iter().all(|a| *a), "a ceiling write was refused");
        written += applied.len();
    }
    Ok(written as f64 / elapsed)
}

/// How many keys start with `prefix`.
async fn count(store: &Store, prefix: &str) -> anyhow::Result<usize> {
    let response = store.client().get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await?;
    Ok(usize::try_from(response.count())?)
}

/// Bare `snmp_device` probes, `concurrency` at a time, for [`CEILING_TIME`].
async fn bare_probe_ceiling(device: &LocalSnmpd, concurrency: usize) -> Ceiling {
    let target = device.target(COMMUNITY);
    let cpu = Cpu::now(device.pid());
    let started = Instant::now();
    let done = stream::iter(std::iter::repeat(()))
        .take_while(|_| std::future::ready(started.elapsed() < CEILING_TIME))
        .map(|_| probe::snmp_device(&target, Duration::from_secs(2)))
        .buffer_unordered(concurrency)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    Ceiling { per_second: done as f64 / elapsed, agent_cpu: Cpu::now(device.pid()).since(&cpu, elapsed).agent }
}

/// CPU seconds used so far by this process and the agent, from `/proc/<pid>/stat` (utime +
/// stime, in the kernel's fixed 100 Hz USER_HZ ticks).
struct Cpu {
    ours: f64,
    agent: f64,
}

struct CpuShare {
    ours: f64,
    agent: f64,
}

impl Cpu {
    fn now(agent: Option<u32>) -> Cpu {
        Cpu { ours: cpu_seconds("self"), agent: agent.map(|pid| cpu_seconds(&pid.to_string())).unwrap_or(0.0) }
    }

    /// The share of one core each used between `earlier` and now, over `elapsed` seconds.
    fn since(&self, earlier: &Cpu, elapsed: f64) -> CpuShare {
        CpuShare { ours: (self.ours - earlier.ours) / elapsed, agent: (self.agent - earlier.agent) / elapsed }
    }
}

fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the `(comm)`, which may itself contain spaces: state is field 3, utime 14.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
