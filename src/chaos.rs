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

use crate::heat::{Endpoint, HeatClient, StackRef, local};
use crate::protocol::{ConfigRecord, HeatStackRecord, JobQueue, Record, ResourceRoot, StateRecord};
use crate::store::{LocalEtcd, Store, WatchEvent, watch_prefix};
use futures::StreamExt as _;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

// ---------------------------------------------------------------------------------------------
// The scenario: resources, their versions and their templates.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Network,
    Subnet,
    Port,
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Network => "/v2.0/networks",
            Kind::Subnet => "/v2.0/subnets",
            Kind::Port => "/v2.0/ports",
        }
    }
}

#[derive(Debug, Clone)]
struct Resource {
    kind: Kind,
    id: String,
    /// The network of a subnet or port.
    network: Option<String>,
    /// The subnet of a port.
    subnet: Option<String>,
    /// Gets a version 2 during the chaos.
    modified: bool,
    /// Is marked for deletion (at the version after its last) and its config then removed.
    deleted: bool,
    /// A network whose stack fails until the network template is fixed during the chaos (as an
    /// operator would fix a broken template): it, and what depends on it, must be retried.
    flaky: bool,
}

impl Resource {
    fn last_live_version(&self) -> u64 {
        if self.modified { 2 } else { 1 }
    }

    fn final_version(&self) -> u64 {
        self.last_live_version() + u64::from(self.deleted)
    }

    fn key(&self, root: ResourceRoot) -> String {
        root.key(self.kind.prefix(), &self.id)
    }

    fn stack_name(&self) -> String {
        format!("{}_{}", self.kind.type_name(), self.id)
    }

    /// The name a version carries; the stack's `name` output shows which version Heat has.
    fn name(&self, version: u64) -> String {
        format!("{}-v{version}", self.id)
    }

    fn body(&self, version: u64) -> Map<String, Value> {
        let mut body = json!({"id": self.id, "tenant_id": TENANT, "name": self.name(version), "wait": 1});
        if self.flaky {
            body["flaky"] = json!(true);
        }
        if let Some(network) = &self.network {
            body["network_id"] = json!(network);
        }
        match self.kind {
            Kind::Network => {}
            Kind::Subnet => body["cidr"] = json!("10.0.0.0/24"),
            Kind::Port => {
                body["device_owner"] = json!("compute:nova");
                body["fixed_ips"] = json!([{"subnet_id": self.subnet, "ip_address": "10.0.0.5"}]);
            }
        }
        match body {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The `/config` value Gohan writes for `version`.
    fn config(&self, version: u64, marked: bool) -> Vec<u8> {
        // Our record types always serialize.
        serde_json::to_vec(&ConfigRecord::new(self.body(version), version, marked)).unwrap_or_default()
    }
}

/// `resources` resources: a fifth networks, two fifths subnets (on the networks in turn), the
/// rest ports (on the subnets in turn). Every fourth of each kind is modified; every tenth port
/// is deleted, and so is every twentieth subnet whose ports are all deleted; every eighth network
/// is flaky, and neither it nor what depends on it is modified (only retries can bring them
/// about).
fn scenario(resources: usize) -> Vec<Resource> {
    let networks = (resources / 5).max(1);
    let subnets = (resources * 2 / 5).max(1);
    let ports = resources.saturating_sub(networks + subnets);
    let network_id = |i: usize| format!("net-{i:03}");
    let subnet_id = |i: usize| format!("sub-{i:03}");
    let mut all = Vec::new();
    for i in 0..networks {
        let id = network_id(i);
        all.push(Resource {
            kind: Kind::Network,
            id,
            network: None,
            subnet: None,
            modified: i % 4 == 1,
            deleted: false,
            flaky: i % 8 == 6,
        });
    }
    for i in 0..subnets {
        let network = Some(network_id(i % networks));
        // Deleted with its ports when all of them are deleted (fixed below).
        let deleted = i % 20 == 3;
        all.push(Resource {
            kind: Kind::Subnet,
            id: subnet_id(i),
            network,
            subnet: None,
            modified: i % 4 == 1,
            deleted,
            flaky: false,
        });
    }
    for j in 0..ports {
        let s = j % subnets;
        all.push(Resource {
            kind: Kind::Port,
            id: format!("port-{j:03}"),
            network: Some(network_id(s % networks)),
            subnet: Some(subnet_id(s)),
            modified: j % 4 == 1,
            deleted: j % 10 == 3,
            flaky: false,
        });
    }
    // A subnet goes only if every port on it goes too (as Gohan would insist).
    let kept_subnets: Vec<String> =
        all.iter().filter(|r| r.kind == Kind::Port && !r.deleted).filter_map(|r| r.subnet.clone()).collect();
    for r in all.iter_mut().filter(|r| r.kind == Kind::Subnet) {
        r.deleted &= !kept_subnets.contains(&r.id);
    }
    all
}

const NETWORK_TEMPLATE: &str = "heat_template_version: 2013-05-23
parameters:
  rid: {type: string}
  name: {type: string}
  tenant_id: {type: string}
  wait: {type: number, default: 0}
resources:
  label:
    type: OS::Heat::Value
    properties:
      value: {get_param: name}
  work:
    type: OS::Heat::TestResource
    properties:
      value: {get_param: tenant_id}
      action_wait_secs: {create: {get_param: wait}, update: {get_param: wait}}
{% if jinja_flaky %}
  boom:
    type: OS::Heat::TestResource
    properties: {fail: true}
{% endif %}
outputs:
  id:
    description: The network id.
    value: {get_param: rid}
  name:
    description: The name of the version Heat has.
    value: {get_attr: [label, value]}
";

const SUBNET_TEMPLATE: &str = "heat_template_version: 2013-05-23
parameters:
  rid: {type: string}
  name: {type: string}
  network_id: {type: string}
  wait: {type: number, default: 0}
resources:
  label:
    type: OS::Heat::Value
    properties:
      value: {get_param: name}
  work:
    type: OS::Heat::TestResource
    properties:
      value: {get_param: network_id}
      action_wait_secs: {create: {get_param: wait}, update: {get_param: wait}}
outputs:
  id:
    description: The subnet id.
    value: {get_param: rid}
  name:
    description: The name of the version Heat has.
    value: {get_attr: [label, value]}
  network_id:
    description: The network's id, from its stack.
    value: {get_attr: [work, output]}
";

const PORT_TEMPLATE: &str = "heat_template_version: 2013-05-23
parameters:
  rid: {type: string}
  name: {type: string}
  virtual_network: {type: string}
  wait: {type: number, default: 0}
resources:
  label:
    type: OS::Heat::Value
    properties:
      value: {get_param: name}
  work:
    type: OS::Heat::TestResource
    properties:
      value: {get_param: virtual_network}
      action_wait_secs: {create: {get_param: wait}, update: {get_param: wait}}
{% for subnet in jinja_subnets %}
  fixed_ip_{{ loop.index0 }}:
    type: OS::Heat::Value
    properties: {value: \"{{ subnet }}\"}
{% endfor %}
outputs:
  id:
    description: The port id.
    value: {get_param: rid}
  name:
    description: The name of the version Heat has.
    value: {get_attr: [label, value]}
";

/// What the network template says only for the flaky networks: a resource that fails.
const FLAKY_PART: &str =
    "{% if jinja_flaky %}\n  boom:\n    type: OS::Heat::TestResource\n    properties: {fail: true}\n{% endif %}\n";

/// The three heat templates as Gohan stores them; `fixed`: only the network template, without
/// the flaky networks' failing resource, at version 2.
fn templates(fixed: bool) -> Vec<(&'static str, Vec<u8>)> {
    let network = if fixed { NETWORK_TEMPLATE.replace(FLAKY_PART, "") } else { NETWORK_TEMPLATE.to_owned() };
    let common = |extra: Value| {
        let mut mappings = json!({"rid": "Pid", "name": "Pname", "wait": {"field": "wait"}, "heat_timeout": "C1"});
        if let (Some(mappings), Value::Object(extra)) = (mappings.as_object_mut(), extra) {
            mappings.extend(extra);
        }
        mappings
    };
    let subnets = json!({"for_field": "fixed_ips",
        "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}], "output_key": "id"}});
    [
        ("network", network.as_str(), common(json!({"tenant_id": "Ptenant_id", "jinja_flaky": {"field": "flaky"}}))),
        ("subnet", SUBNET_TEMPLATE, common(json!({"network_id": "Mnetwork:network_id:id"}))),
        ("port", PORT_TEMPLATE, common(json!({"virtual_network": "Mnetwork:network_id:id", "jinja_subnets": subnets}))),
    ]
    .into_iter()
    .filter(|(id, _, _)| !fixed || *id == "network")
    .map(|(id, text, mappings)| {
        let body = json!({"id": id, "handler": "heat_worker", "watch": [], "template_file": text,
            "parameter_mappings": mappings});
        let body = match body {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let version = if fixed { 2 } else { 1 };
        (id, serde_json::to_vec(&ConfigRecord::new(body, version, false)).unwrap_or_default())
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The controller processes.

struct Controller {
    id: String,
    child: Child,
}

/// This very executable: `/proc/self/exe` where there is one, so the controllers run the same
/// build as the chaos even when the file is rebuilt while it runs; else `current_exe`.
fn own_executable() -> std::io::Result<PathBuf> {
    let proc_self = PathBuf::from("/proc/self/exe");
    if proc_self.exists() { Ok(proc_self) } else { std::env::current_exe() }
}

/// The `heat-reconciler run` children, their logs, and what happened to them.
struct Controllers {
    exe: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    running: Vec<Controller>,
    logs: Vec<PathBuf>,
    started: usize,
    kills: usize,
    leader_kills: usize,
    /// Children that exited on their own: id and status.
    exits: Vec<(String, String)>,
}

impl Controllers {
    fn new(etcd: &str, heat: &str, dir: &Path, schema_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut args: Vec<String> = Vec::new();
        if let Some(dir) = schema_dir {
            args.extend(["--schema-dir".into(), dir.display().to_string()]);
        }
        args.extend(
            ["run", "--etcd-endpoints", etcd, "--heat-url", heat, "--leader-ttl", "3", "--worker-lease-ttl", "5"]
                .map(str::to_owned),
        );
        Ok(Controllers {
            exe: own_executable()?,
            args,
            dir: dir.to_owned(),
            running: Vec::new(),
            logs: Vec::new(),
            started: 0,
            kills: 0,
            leader_kills: 0,
            exits: Vec::new(),
        })
    }

    fn spawn(&mut self) -> anyhow::Result<String> {
        self.started += 1;
        let id = format!("c{}", self.started);
        let log = self.dir.join(format!("{id}.log"));
        let child = Command::new(&self.exe)
            .args(&self.args)
            .args(["--id", &id])
            .env("RUST_LOG", "heat_reconciler=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        self.logs.push(log);
        self.running.push(Controller { id: id.clone(), child });
        Ok(id)
    }

    /// SIGKILLs one at random; returns its id.
    fn kill_one(&mut self, rng: &mut StdRng, leader: Option<&str>) -> Option<String> {
        if self.running.is_empty() {
            return None;
        }
        let mut victim = self.running.remove(rng.random_range(0..self.running.len()));
        let _ = victim.child.kill();
        let _ = victim.child.wait();
        self.kills += 1;
        if leader == Some(victim.id.as_str()) {
            self.leader_kills += 1;
        }
        Some(victim.id)
    }

    /// Children that exited on their own (recorded, not replaced here).
    fn reap(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        self.running.retain_mut(|c| match c.child.try_wait() {
            Ok(Some(status)) => {
                gone.push(c.id.clone());
                self.exits.push((c.id.clone(), status.to_string()));
                false
            }
            _ => true,
        });
        gone
    }

    fn stop_all(&mut self) {
        for mut c in self.running.drain(..) {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The chaos's own Heat, its database and logs in the run's directory; stopped when dropped.
struct LocalHeat {
    port: u16,
    dir: PathBuf,
    running: bool,
}

impl LocalHeat {
    async fn start(&mut self, fresh: bool) -> anyhow::Result<String> {
        let (port, dir) = (self.port, self.dir.clone());
        let url = tokio::task::spawn_blocking(move || local::start_on(port, fresh, Some(&dir))).await??;
        self.running = true;
        Ok(url)
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        let (port, dir) = (self.port, self.dir.clone());
        self.running = false;
        tokio::task::spawn_blocking(move || local::stop_on(port, Some(&dir))).await?
    }

    /// SIGKILL, as a crashed Heat host: unlike a stop, which lets running operations finish for
    /// a few seconds, this leaves the stacks in flight `*_IN_PROGRESS` for good (see the
    /// worker's resend). Returns once the process is gone; its database is kept.
    async fn kill(&mut self) -> anyhow::Result<()> {
        let pid_file = self.dir.join("state").join("heat.pid");
        let pid = std::fs::read_to_string(&pid_file)?.trim().to_owned();
        anyhow::ensure!(pid.parse::<u32>().is_ok(), "{} holds no pid", pid_file.display());
        self.running = false;
        let killed = Command::new("kill").args(["-KILL", &pid]).status()?;
        anyhow::ensure!(killed.success(), "kill -KILL {pid} failed");
        let process = PathBuf::from(format!("/proc/{pid}"));
        let since = Instant::now();
        while process.exists() && since.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for LocalHeat {
    fn drop(&mut self) {
        if self.running {
            let _ = local::stop_on(self.port, Some(&self.dir));
        }
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// What the chaos phase does, when.

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// Writes version 1 of these resources (indexes into the scenario).
    Create(Vec<usize>),
    /// Writes version 2 of these.
    Modify(Vec<usize>),
    /// Marks these for deletion.
    Delete(Vec<usize>),
    /// Fixes the network template, so the flaky networks can succeed.
    FixTemplate,
    Kill,
    EtcdStop,
    EtcdStart,
    HeatKill,
    HeatStart,
}

/// The chaos phase's steps at their offsets from its start: creates in eight waves over the first
/// 40%, the template fix at 25%, the etcd restart at 35%, modifies at 50% and 60%, the Heat
/// outage from 2 s after the first modifies (while their updates run), deletes at 70%, and a
/// kill every 2–6 s throughout.
fn schedule(resources: &[Resource], options: &ChaosOptions, rng: &mut StdRng) -> Vec<(Duration, Step)> {
    let at = |fraction: f64| options.duration.mul_f64(fraction);
    let mut steps = Vec::new();
    let waves = 8;
    let per_wave = resources.len().div_ceil(waves).max(1);
    let order: Vec<usize> = (0..resources.len()).collect();
    for (wave, chunk) in order.chunks(per_wave).enumerate() {
        steps.push((at(0.4 * wave as f64 / waves as f64), Step::Create(chunk.to_vec())));
    }
    let modified: Vec<usize> = (0..resources.len()).filter(|&i| resources[i].modified).collect();
    let (first, second) = modified.split_at(modified.len() / 2);
    steps.push((at(0.5), Step::Modify(first.to_vec())));
    steps.push((at(0.6), Step::Modify(second.to_vec())));
    steps.push((at(0.7), Step::Delete((0..resources.len()).filter(|&i| resources[i].deleted).collect())));
    steps.push((at(0.25), Step::FixTemplate));
    steps.push((at(0.35), Step::EtcdStop));
    steps.push((at(0.35) + Duration::from_millis(2500), Step::EtcdStart));
    let heat_kill = at(0.5) + Duration::from_secs(2);
    steps.push((heat_kill, Step::HeatKill));
    steps.push((heat_kill + options.heat_outage, Step::HeatStart));
    let mut t = Duration::from_secs(2);
    while t < options.duration {
        steps.push((t, Step::Kill));
        t += Duration::from_millis(rng.random_range(2000..=6000));
    }
    // Stable: at equal times, the order above (writes before faults before kills).
    steps.sort_by_key(|(t, _)| *t);
    steps
}

// ---------------------------------------------------------------------------------------------
// Observing etcd.

/// Everything the chaos learns about jobs from a watch on `/jobs/`.
#[derive(Default)]
struct JobLog {
    /// Job id → stack name of its resource.
    planned: HashMap<String, String>,
    /// Job id → the finished marker's value (`""` on success).
    finished: HashMap<String, String>,
}

/// A task aborted when dropped (so an interrupted run does not leave it watching).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn follow_jobs(store: Store, log: Arc<Mutex<JobLog>>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut events = watch_prefix(store, "/jobs/".to_owned());
        while let Some(event) = events.recv().await {
            let items = match event {
                WatchEvent::Listed { items, .. } => items,
                WatchEvent::Put(kv) => vec![kv],
                _ => continue,
            };
            let Ok(mut log) = log.lock() else { return };
            for kv in items {
                match JobQueue::parse(&kv.key) {
                    Some((JobQueue::All, id)) => {
                        if let Ok(Record::Job(record)) = Record::from_etcd(&kv.key, &kv.value) {
                            let spec = &record.job.spec;
                            log.planned.insert(id.to_owned(), format!("{}_{}", spec.resource_type, spec.resource_id));
                        }
                    }
                    Some((JobQueue::Finished, id)) => {
                        log.finished.insert(id.to_owned(), String::from_utf8_lossy(&kv.value).into_owned());
                    }
                    _ => {}
                }
            }
        }
    }))
}

/// An etcd call that gives up after a while (etcd may be down).
async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> anyhow::Result<T> {
    Ok(tokio::time::timeout(Duration::from_secs(3), future).await??)
}

/// Puts a key, retrying for up to a minute (through the etcd restart).
async fn put_retrying(store: &Store, key: &str, value: &[u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match bounded(store.put(key, value.to_vec())).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(key, error = %e, "put failed; retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e.context(format!("writing {key}"))),
        }
    }
}

/// Acts as Gohan after a delete: once a marked resource's `/state` says DELETE_COMPLETED at its
/// final version, removes its `/config` key. Returns how many it removed.
async fn remove_deleted(store: &Store, resources: &[Resource], marked: &[bool], removed: &mut [bool]) -> usize {
    let mut count = 0;
    for (i, r) in resources.iter().enumerate() {
        if !marked[i] || removed[i] {
            continue;
        }
        let Ok(Some(kv)) = bounded(store.get(&r.key(ResourceRoot::State))).await else { continue };
        let Ok(Record::State(state)) = Record::from_etcd(&kv.key, &kv.value) else { continue };
        if state.version == r.final_version()
            && state.state.worker_state == "DELETE_COMPLETED"
            && bounded(store.delete(&r.key(ResourceRoot::Config))).await.is_ok()
        {
            removed[i] = true;
            count += 1;
        }
    }
    count
}

/// What etcd and Heat hold at the end, resource by resource.
struct Assessment {
    /// Per resource: `None` when converged, else why not.
    problems: Vec<Option<String>>,
    duplicate_stacks: usize,
    /// Keys under `/jobs/` and `/esi-worker/job_state/`.
    leftovers: Vec<String>,
    /// Heat stacks that belong to no resource or exceed one per resource.
    stray_stacks: Vec<String>,
}

impl Assessment {
    fn converged(&self) -> usize {
        self.problems.iter().filter(|p| p.is_none()).count()
    }

    fn all_good(&self) -> bool {
        self.converged() == self.problems.len() && self.duplicate_stacks == 0 && self.leftovers.is_empty()
    }
}

fn decode_all<T>(items: Vec<crate::store::KeyValue>, pick: impl Fn(Record) -> Option<T>) -> HashMap<String, T> {
    items
        .into_iter()
        .filter_map(|kv| Record::from_etcd(&kv.key, &kv.value).ok().and_then(&pick).map(|v| (kv.key, v)))
        .collect()
}

async fn assess(store: &Store, heat: &HeatClient, resources: &[Resource]) -> anyhow::Result<Assessment> {
    let configs = decode_all(bounded(store.list("/config/v2.0/")).await?.0, |r| match r {
        Record::Config(c) => Some(c),
        _ => None,
    });
    let states: HashMap<String, StateRecord> =
        decode_all(bounded(store.list(&ResourceRoot::State.dir())).await?.0, |r| match r {
            Record::State(s) => Some(s),
            _ => None,
        });
    let stacks: HashMap<String, HeatStackRecord> =
        decode_all(bounded(store.list(&ResourceRoot::HeatStacks.dir())).await?.0, |r| match r {
            Record::HeatStack(s) => Some(s),
            _ => None,
        });
    let snapshots: Vec<String> =
        bounded(store.list(&ResourceRoot::Snapshot.dir())).await?.0.into_iter().map(|kv| kv.key).collect();
    let mut leftovers: Vec<String> = bounded(store.list("/jobs/")).await?.0.into_iter().map(|kv| kv.key).collect();
    leftovers.extend(bounded(store.list(&ResourceRoot::JobState.dir())).await?.0.into_iter().map(|kv| kv.key));

    let mut in_heat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut refs: HashMap<String, StackRef> = HashMap::new();
    for (stack, status) in heat.list(TENANT).await? {
        in_heat.entry(stack.name.clone()).or_default().push(status);
        refs.insert(stack.name.clone(), stack);
    }
    let mut duplicate_stacks = 0;
    let mut stray_stacks = Vec::new();
    let mut problems = Vec::new();
    for r in resources {
        let stacks_in_heat = in_heat.remove(&r.stack_name()).unwrap_or_default();
        let wanted = usize::from(!r.deleted);
        if stacks_in_heat.len() > wanted {
            duplicate_stacks += stacks_in_heat.len() - wanted;
            stray_stacks.push(format!("{} ({})", r.stack_name(), stacks_in_heat.join(", ")));
        }
        let config_key = r.key(ResourceRoot::Config);
        let problem = if r.deleted {
            if configs.contains_key(&config_key) {
                let state = states.get(&r.key(ResourceRoot::State));
                Some(format!("not deleted yet: {}", describe_state(state)))
            } else if snapshots.contains(&r.key(ResourceRoot::Snapshot)) {
                Some("config removed, but its snapshot is still there".into())
            } else if stacks.contains_key(&r.key(ResourceRoot::HeatStacks)) {
                Some("config removed, but its heat_stacks record is still there".into())
            } else if !stacks_in_heat.is_empty() {
                Some(format!("deleted, but Heat still has its stack ({})", stacks_in_heat.join(", ")))
            } else {
                None
            }
        } else {
            let version = r.final_version();
            let state = states.get(&r.key(ResourceRoot::State));
            let done = state.is_some_and(|s| {
                s.version == version && matches!(s.state.worker_state.as_str(), "CREATE_COMPLETED" | "MODIFY_COMPLETED")
            });
            let name = stacks.get(&r.key(ResourceRoot::HeatStacks)).and_then(|record| {
                record.output.iter().find(|o| o.output_key == "name").map(|o| o.output_value.clone())
            });
            if !done {
                Some(format!("/state is {}, not completed at version {version}", describe_state(state)))
            } else if name != Some(json!(r.name(version))) {
                Some(format!("heat_stacks shows name {name:?}, not version {version}'s"))
            } else if stacks_in_heat.is_empty() {
                Some("completed, but Heat has no stack".into())
            } else if !stacks_in_heat.iter().any(|s| s == "CREATE_COMPLETE" || s == "UPDATE_COMPLETE") {
                Some(format!("its stack is {}", stacks_in_heat.join(", ")))
            } else {
                None
            }
        };
        problems.push(problem);
    }
    for (name, statuses) in in_heat {
        duplicate_stacks += statuses.len();
        stray_stacks.push(format!("{name} ({}) belongs to no resource", statuses.join(", ")));
    }
    leftovers.sort();
    let mut assessment = Assessment { problems, duplicate_stacks, leftovers, stray_stacks };
    if assessment.all_good() {
        // What etcd says is so; now ask Heat itself which version each stack has.
        let checks = resources.iter().enumerate().filter(|(_, r)| !r.deleted).filter_map(|(i, r)| {
            let stack = refs.get(&r.stack_name())?.clone();
            Some(async move { (i, heat.outputs(TENANT, &stack).await) })
        });
        let answers: Vec<_> = futures::stream::iter(checks).buffer_unordered(8).collect().await;
        for (i, outputs) in answers {
            let r = &resources[i];
            let name = outputs?.into_iter().find(|o| o.get("output_key") == Some(&json!("name")));
            let name = name.and_then(|o| o.get("output_value").cloned());
            if name != Some(json!(r.name(r.final_version()))) {
                assessment.problems[i] = Some(format!("Heat's stack shows name {name:?}, not the final version's"));
            }
        }
    }
    Ok(assessment)
}

fn describe_state(state: Option<&StateRecord>) -> String {
    match state {
        None => "missing".into(),
        Some(s) if s.error.is_empty() => format!("{} at version {}", s.state.worker_state, s.version),
        Some(s) => format!("{} at version {}: {}", s.state.worker_state, s.version, truncate(&s.error, 160)),
    }
}

/// A failure reason with the scenario's resource ids and job-id suffixes replaced by `*`, so
/// that failures of one kind count together.
fn reason_kind(reason: &str) -> String {
    static IDS: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(net|sub|port)-\d+|:[a-z0-9]{5}\b").ok());
    let general = match IDS.as_ref() {
        Some(ids) => ids.replace_all(reason, "*").into_owned(),
        None => reason.to_owned(),
    };
    truncate(&general, 140)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the controllers' logs.

#[derive(Debug, Default)]
struct LogFigures {
    /// Heat calls started, per stack name.
    heat_calls: HashMap<String, usize>,
    elections: usize,
    requeued: usize,
    /// Operations sent again to a Heat that came back with their stacks still in progress.
    resent: usize,
    lost_claims: usize,
    errors: usize,
}

fn read_logs(paths: &[PathBuf]) -> LogFigures {
    let mut figures = LogFigures::default();
    for path in paths {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            for word in ["CREATE STARTED", "MODIFY STARTED", "DELETE STARTED"] {
                if let Some(rest) = line.split(word).nth(1)
                    && let Some(stack) = rest.split("stack=").nth(1)
                {
                    let stack = stack.split_whitespace().next().unwrap_or_default().to_owned();
                    *figures.heat_calls.entry(stack).or_default() += 1;
                }
            }
            figures.elections += usize::from(line.contains("elected leader"));
            figures.requeued += usize::from(line.contains("job lost its worker; queued again"));
            figures.resent += usize::from(line.contains("RESENT:"));
            figures.lost_claims += usize::from(line.contains("lost the claim"));
            figures.errors += usize::from(line.contains(" ERROR ") || line.contains("panicked"));
        }
    }
    figures
}

// ---------------------------------------------------------------------------------------------
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
        None => free_port()?,
    };
    let mut heat_process = LocalHeat { port, dir: dir.join("heat"), running: false };
    let mut etcd: Option<LocalEtcd> = None;
    let mut controllers: Option<Controllers> = None;
    let result = tokio::select! {
        result = drive(&options, &dir, &mut heat_process, &mut etcd, &mut controllers) => result,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
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

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
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
    let resources = scenario(options.resources);
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
    for (id, record) in templates(false) {
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
    let steps = schedule(&resources, options, &mut rng);
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
                    put_retrying(&store, &resources[i].key(ResourceRoot::Config), &resources[i].config(1, false))
                        .await?;
                }
                say(start, format!("wrote {} configs at version 1", indexes.len()));
            }
            Step::Modify(indexes) => {
                for &i in &indexes {
                    put_retrying(&store, &resources[i].key(ResourceRoot::Config), &resources[i].config(2, false))
                        .await?;
                }
                say(start, format!("wrote {} configs at version 2", indexes.len()));
            }
            Step::Delete(indexes) => {
                for &i in &indexes {
                    let r = &resources[i];
                    put_retrying(&store, &r.key(ResourceRoot::Config), &r.config(r.final_version(), true)).await?;
                    marked[i] = true;
                }
                say(start, format!("marked {} resources for deletion", indexes.len()));
            }
            Step::FixTemplate => {
                for (id, record) in templates(true) {
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

    #[test]
    fn the_scenario_has_dependencies_modifies_and_deletes() {
        let all = scenario(200);
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
        let resources = scenario(60);
        let steps = schedule(&resources, &options, &mut StdRng::seed_from_u64(7));
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
        let fixed: Vec<(&str, Vec<u8>)> = templates(true);
        assert_eq!(fixed.len(), 1);
        let record: Value = serde_json::from_slice(&fixed[0].1).unwrap();
        let body: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
        assert!(!body["template_file"].as_str().unwrap().contains("boom"));
        assert_eq!(record["version"], 2);
        assert_eq!(templates(false).len(), 3);
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
