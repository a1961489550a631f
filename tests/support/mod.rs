//! Shared test harness: a real etcd, the planner running against it, and Gohan-like writes.
#![allow(dead_code)]

pub mod test_keystone;
pub mod tls_proxy;

use heat_reconciler::heat::HeatClient;
use heat_reconciler::local::LocalEtcd;
use heat_reconciler::planner::{self, PlannerOptions};
use heat_reconciler::protocol::{ConfigRecord, HeatStackRecord, Job, JobQueue, Record, StateRecord, WorkerSnapshot};
use heat_reconciler::schema::Schema;
use heat_reconciler::store::Store;
use heat_reconciler::worker::{self, WorkerOptions, execute::Patience};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub fn body(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A planner process: its task, progress and shutdown switch.
pub struct RunningPlanner {
    pub progress: watch::Receiver<i64>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningPlanner {
    pub fn start(store: &Store, id: &str, ttl: Duration) -> Self {
        let mut options = PlannerOptions::new(id);
        options.lease_ttl = ttl;
        RunningPlanner::start_with(store, options)
    }

    /// Starts a planner with these options (retries every 300 ms whatever they say).
    pub fn start_with(store: &Store, mut options: PlannerOptions) -> Self {
        let (progress_tx, progress) = watch::channel(0);
        let (shutdown, shutdown_rx) = watch::channel(false);
        options.retry_interval = Duration::from_millis(300);
        let schema = Schema::shipped().expect("shipped schema");
        let task = tokio::spawn(planner::run(store.clone(), schema, options, progress_tx, shutdown_rx));
        RunningPlanner { progress, shutdown, task }
    }

    /// Stops cleanly, giving up leadership.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }

    /// Dies without a word: its lease must expire before anyone else may lead.
    pub fn kill(self) {
        self.task.abort();
    }

    pub async fn processed(&mut self, revision: i64) {
        tokio::time::timeout(Duration::from_secs(15), self.progress.wait_for(|r| *r >= revision))
            .await
            .expect("planner keeps up")
            .expect("planner alive");
    }
}

/// Heat polled after 100 ms, doubling up to 500 ms: tests see outcomes at once.
pub fn fast_patience() -> Patience {
    Patience { first_poll: Duration::from_millis(100), max_poll: Duration::from_millis(500), ..Default::default() }
}

/// A worker running in this process; it stops when [`RunningWorker::stop`] is called or it is
/// dropped.
#[must_use = "the worker stops when this is dropped"]
pub struct RunningWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningWorker {
    pub fn start(store: &Store, heat: HeatClient, options: WorkerOptions) -> Self {
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(worker::run(
            store.clone(),
            Schema::shipped().expect("shipped schema"),
            heat,
            options,
            shutdown,
        ));
        RunningWorker { stop, task }
    }

    /// A worker with [`fast_patience`].
    pub fn fast(store: &Store, heat: HeatClient) -> Self {
        RunningWorker::start(store, heat, WorkerOptions { patience: fast_patience(), ..Default::default() })
    }

    /// Asks it to stop and waits (at most 10 s) until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

pub struct Harness {
    pub etcd: LocalEtcd,
    pub store: Store,
    pub planner: Option<RunningPlanner>,
}

pub const TENANT: &str = "fe3a4a1a72c04479bb6c19c2c0ccba4c";

impl Harness {
    /// A fresh etcd holding the test templates, and a planner on it.
    pub async fn start() -> Harness {
        let mut harness = Harness::without_planner().await;
        harness.planner = Some(RunningPlanner::start(&harness.store, "planner-a", Duration::from_secs(3)));
        harness
    }

    pub async fn without_planner() -> Harness {
        Harness::on(LocalEtcd::start().await.expect("etcd starts")).await
    }

    /// [`Harness::without_planner`] on an etcd the test started its own way.
    pub async fn on(etcd: LocalEtcd) -> Harness {
        // `RUST_LOG=heat_reconciler=debug cargo test …` shows what the roles did.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let store = etcd.connect().await.expect("etcd connects");
        let harness = Harness { etcd, store, planner: None };
        for (id, mappings) in templates() {
            harness.template(id, mappings).await;
        }
        harness
    }

    pub fn planner(&mut self) -> &mut RunningPlanner {
        self.planner.as_mut().expect("a planner runs")
    }

    pub async fn template(&self, id: &str, mappings: Value) {
        put_template(&self.store, id, mappings, "heat_template_version: 2013-05-23\nresources: {}\n").await;
    }

    /// Writes a config as Gohan does and waits until the planner has processed it.
    pub async fn config(&mut self, plural: &str, resource: Value, version: u64, marked: bool) -> i64 {
        let id = resource["id"].as_str().expect("resource id").to_owned();
        let record = ConfigRecord::new(body(resource), version, marked);
        self.raw(&format!("/config/v2.0/{plural}/{id}"), serde_json::to_vec(&record).unwrap()).await
    }

    /// Writes raw bytes and waits until the planner has processed them.
    pub async fn raw(&mut self, key: &str, value: Vec<u8>) -> i64 {
        let revision = self.store.put(key, value).await.expect("put");
        if let Some(planner) = self.planner.as_mut() {
            planner.processed(revision).await;
        }
        revision
    }

    pub async fn delete(&mut self, key: &str) {
        let revision = self.store.delete(key).await.expect("delete");
        if let Some(planner) = self.planner.as_mut() {
            planner.processed(revision).await;
        }
    }

    /// Acts as the worker: claims, reports `/state` and writes the finished marker (`reason`
    /// empty on success), then waits for the planner.
    pub async fn finish(&mut self, job: &Job, reason: &str) {
        let key = format!("/state/v2.0/{}s/{}", job.spec.resource_type, job.spec.resource_id);
        let state = if reason.is_empty() {
            StateRecord::completed(job.spec.action, "CREATE_COMPLETE", Vec::new(), job.spec.version)
        } else {
            StateRecord::failed(job.spec.action, reason.to_owned(), job.spec.version)
        };
        let txn = heat_reconciler::store::Txn::new()
            .delete(&JobQueue::Ready.key(&job.id))
            .put(&key, serde_json::to_vec(&state).unwrap())
            .put(&JobQueue::Finished.key(&job.id), reason);
        let revision = self.store.commit(txn).await.expect("commit").expect("finish txn applies");
        if let Some(planner) = self.planner.as_mut() {
            planner.processed(revision).await;
        }
    }

    /// Every live job.
    pub async fn jobs(&self) -> Vec<Job> {
        let (items, _) = self.store.list("/jobs/all/").await.expect("list");
        items
            .into_iter()
            .map(|kv| match Record::from_etcd(&kv.key, &kv.value).expect("job decodes") {
                Record::Job(record) => record.job,
                other => panic!("not a job: {other:?}"),
            })
            .collect()
    }

    /// The live job of a resource (exactly one expected).
    pub async fn job_of(&self, resource_id: &str) -> Job {
        let jobs: Vec<Job> = self.jobs().await.into_iter().filter(|j| j.spec.resource_id == resource_id).collect();
        assert_eq!(jobs.len(), 1, "live jobs of {resource_id}: {jobs:?}");
        jobs.into_iter().next().unwrap()
    }

    pub async fn queue_of(&self, job: &Job) -> Vec<JobQueue> {
        let mut queues = Vec::new();
        for queue in [JobQueue::Waiting, JobQueue::Ready, JobQueue::Finished] {
            if self.store.get(&queue.key(&job.id)).await.expect("get").is_some() {
                queues.push(queue);
            }
        }
        queues
    }

    pub async fn state(&self, plural: &str, id: &str) -> Option<StateRecord> {
        let kv = self.store.get(&format!("/state/v2.0/{plural}/{id}")).await.expect("get")?;
        match Record::from_etcd(&kv.key, &kv.value).expect("state decodes") {
            Record::State(state) => Some(state),
            other => panic!("not a state: {other:?}"),
        }
    }

    /// Waits (at most 3 minutes) until `/state` of the resource is at `version` with a final
    /// worker state.
    pub async fn settled(&self, plural: &str, id: &str, version: u64) -> StateRecord {
        eventually(180, || async {
            self.state(plural, id).await.filter(|s| s.version == version && !s.state.worker_state.is_empty())
        })
        .await
    }

    pub async fn heat_stack(&self, plural: &str, id: &str) -> Option<HeatStackRecord> {
        let kv = self.store.get(&format!("/esi-worker/heat_stacks/v2.0/{plural}/{id}")).await.unwrap()?;
        match Record::from_etcd(&kv.key, &kv.value).unwrap() {
            Record::HeatStack(r) => Some(r),
            other => panic!("not a heat_stacks record: {other:?}"),
        }
    }

    /// Waits until no job is left in `/jobs`, and checks no job_state was left behind.
    pub async fn queues_drained(&self) {
        eventually(30, || async { self.store.list("/jobs/").await.unwrap().0.is_empty().then_some(()) }).await;
        assert!(self.store.list("/esi-worker/job_state/").await.unwrap().0.is_empty(), "job_state left behind");
    }

    pub async fn snapshot(&self, plural: &str, id: &str) -> Option<WorkerSnapshot> {
        let kv = self.store.get(&format!("/esi-worker/config/v2.0/{plural}/{id}")).await.expect("get")?;
        match Record::from_etcd(&kv.key, &kv.value).expect("snapshot decodes") {
            Record::Snapshot(snapshot) => Some(snapshot),
            other => panic!("not a snapshot: {other:?}"),
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test template set: small, self-contained, using each mapping family.
pub fn templates() -> Vec<(&'static str, Value)> {
    vec![
        ("network", json!({"name": "Pid", "tenant_id": "Ptenant_id", "heat_timeout": "C3"})),
        ("subnet", json!({"name": "Pid", "network_id": "Mnetwork:network_id:id", "heat_timeout": {"constant": 3}})),
        (
            "port",
            json!({"virtual_network": "Mnetwork:network_id:id",
                   "jinja_subnets": {"for_field": "fixed_ips", "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}], "output_key": "id"}},
                   "version": "Vauto_filled"}),
        ),
        ("load_balancer", json!({"management_ip": {"field": "management_ip", "path": ["vnf_instance_id"]}})),
        ("firewall_config", json!({"broken": "Qnot-a-mapping"})),
    ]
}

pub fn network(id: &str) -> Value {
    json!({"id": id, "name": format!("net-{id}"), "tenant_id": TENANT})
}

pub fn subnet(id: &str, network: &str) -> Value {
    json!({"id": id, "network_id": network, "tenant_id": TENANT, "cidr": "10.0.0.0/24"})
}

pub fn port(id: &str, network: &str, subnet: &str) -> Value {
    json!({"id": id, "network_id": network, "tenant_id": TENANT, "device_owner": "compute:nova",
           "fixed_ips": [{"subnet_id": subnet, "ip_address": "10.0.0.5"}]})
}

/// The base URL of a real standalone Heat: `HEAT_RECONCILER_TEST_HEAT_URL`, or the project's
/// shared test Heat (started once, left running for the next test binary).
pub fn heat_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("HEAT_RECONCILER_TEST_HEAT_URL") {
            return url;
        }
        heat_reconciler::local::heat::ensure_shared(heat_reconciler::local::ports::TEST_HEAT)
            .expect("the shared test Heat starts")
    })
    .clone()
}

/// A scratch directory under the temp dir, removed when dropped.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    /// `heat-reconciler-<prefix>-<random>`.
    pub fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(&format!("heat-reconciler-{prefix}")));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Writes `name` with `content`; its path.
    pub fn file(&self, name: &str, content: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed and reaped when dropped: it never outlives its test, even one that
/// fails halfway (a leftover controller would go on calling the shared Heat).
pub struct Spawned(pub std::process::Child);

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh random id, so stacks of earlier runs never collide.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// A `network` heat template that the standalone Heat creates in a moment: one `OS::Heat::Value`
/// holding the name, exposed as the output `id`.
pub const NETWORK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/network.yaml"));

/// Writes a heat template as Gohan does.
pub async fn put_template(store: &Store, id: &str, mappings: Value, template_file: &str) {
    let template = json!({"id": id, "handler": "heat_worker", "watch": [], "template_file": template_file,
        "parameter_mappings": mappings});
    let record = ConfigRecord::new(body(template), 1, false);
    store
        .put(&format!("/config/v2.0/heat_templates/{id}"), serde_json::to_vec(&record).unwrap())
        .await
        .expect("template written");
}

/// Replaces a test template's `template_file`, keeping its mappings.
pub async fn set_template(h: &Harness, id: &str, text: &str) {
    let key = format!("/config/v2.0/heat_templates/{id}");
    let kv = h.store.get(&key).await.unwrap().expect("template exists");
    let mut record: Value = serde_json::from_slice(&kv.value).unwrap();
    let mut body: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
    body["template_file"] = json!(text);
    record["body"] = json!(body.to_string());
    h.store.put(&key, serde_json::to_vec(&record).unwrap()).await.unwrap();
}

/// The mappings of the [`NETWORK`] template.
pub fn network_mappings() -> Value {
    json!({"name": "Pname", "tenant_id": "Ptenant_id", "heat_timeout": "C1"})
}

/// A file of the project's source tree.
pub fn script(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The conformance corpus, the one place the tests look it up: `HEAT_RECONCILER_CONFORMANCE`, else
/// the repository's copy `tests/conformance` (kept in sync with `../shared/conformance` by
/// `scripts/sync-shared.sh`; the tests never read `../shared`).
pub fn corpus() -> std::path::PathBuf {
    let dir = std::env::var_os("HEAT_RECONCILER_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"));
    assert!(dir.join("scenarios").is_dir(), "conformance corpus not found at {}", dir.display());
    dir
}

/// The flagship load balancer's id (`UpdateLoadbalancerInterface_05`).
pub const FLAGSHIP_LB: &str = "b311c470-d878-4fea-8466-a4393938f2d4";

/// The six records of the flagship flow (`UpdateLoadbalancerInterface_05`: config, job,
/// heat_stacks, job_state, state, monitoring) as (key, raw etcd value), in the order they were
/// written; the config body as Gohan writes it (a JSON string).
pub fn flagship_records() -> Vec<(String, Vec<u8>)> {
    let mut records = Vec::new();
    for stage in ["01_Gohan", "02_JobManager", "03_HeatWorker", "04_CollectorAgent"] {
        let page =
            corpus().join(format!("scenarios/05_load_balancer/records/{stage}/UpdateLoadbalancerInterface_05.json"));
        let page: Value = serde_json::from_str(&std::fs::read_to_string(page).expect("flagship page")).unwrap();
        for point in page["points"].as_array().unwrap() {
            let mut value = point["value"].clone();
            if let Some(body) = value.get("body").filter(|b| b.is_object()).cloned() {
                value["body"] = Value::String(body.to_string());
            }
            records.push((point["key"].as_str().unwrap().to_owned(), value.to_string().into_bytes()));
        }
    }
    assert_eq!(records.len(), 6, "config, job, heat_stacks, job_state, state, monitoring");
    records
}

/// The `vpn_gateway` template of the worker and operator tests: a network-like stack whose job
/// waits for a subnet's (its `net` param reads the subnet's `network_id` output).
pub async fn vpn_gateway_template(h: &Harness) {
    h.template("vpn_gateway", json!({"name": "Pid", "tenant_id": "Ptenant_id", "net": "Msubnet:subnet_id:network_id"}))
        .await;
    set_template(
        h,
        "vpn_gateway",
        &NETWORK.replace("  tenant_id: {type: string}", "  tenant_id: {type: string}\n  net: {type: string}"),
    )
    .await;
}

/// The flagship example's Gohan writes (the demo's timeline).
pub fn flagship() -> heat_reconciler::conformance::Scenario {
    heat_reconciler::conformance::Scenario::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/load_balancer"),
    )
}

/// The `/state` record of a resource, if any.
pub async fn state_at(store: &Store, key: &str) -> Option<StateRecord> {
    let kv = store.get(key).await.expect("etcd answers")?;
    match Record::from_etcd(&kv.key, &kv.value) {
        Ok(Record::State(state)) => Some(state),
        other => panic!("{key} is not a state record: {other:?}"),
    }
}

/// Writes the flagship example's configuration as Gohan did, waiting where Gohan waited for a
/// job to finish: until the resource's `/state` has reached that job's version, or is gone for a
/// deletion. The controller under test (a child process logging to `log`) is the only one that
/// can get it there.
pub async fn write_flagship_as_gohan(
    store: &Store,
    schema: &Schema,
    controller: &mut std::process::Child,
    log: &std::path::Path,
) {
    for (line, event) in flagship().timeline().expect("the example's timeline") {
        match event {
            heat_reconciler::conformance::TimelineEvent::Config { key, value: Some(value), .. } => {
                store.put(&key, serde_json::to_vec(&value).unwrap()).await.expect("Gohan's write");
            }
            heat_reconciler::conformance::TimelineEvent::Config { key, value: None, .. } => {
                store.delete(&key).await.expect("Gohan's delete");
            }
            heat_reconciler::conformance::TimelineEvent::JobCreated { .. } => {}
            heat_reconciler::conformance::TimelineEvent::JobFinished {
                resource_type,
                resource_id,
                version,
                action,
                ..
            } => {
                let key = schema
                    .resource_types
                    .key(heat_reconciler::protocol::ResourceRoot::State, &resource_type, &resource_id)
                    .unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(300);
                loop {
                    let found = state_at(store, &key).await;
                    let done = match &found {
                        Some(state) => state.version >= version && !state.state.worker_state.ends_with("_IN_PROGRESS"),
                        None => action == "logical_delete",
                    };
                    if done {
                        break;
                    }
                    if let Ok(Some(status)) = controller.try_wait() {
                        panic!("the controller exited ({status}):\n{}", std::fs::read_to_string(log).unwrap());
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "timeline.jsonl:{line}: {key} did not reach version {version} within 300 s (found {found:?})"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
