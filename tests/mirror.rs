//! The mirror against a real kube-apiserver (built by `scripts/prepare-kube.sh`, started on
//! loopback with its own etcd) and a real etcd holding the ESI records: the CRD is accepted, the
//! flagship load balancer shows in `kubectl get loadbalancers`, hand edits and deletes are put
//! back, and the mirror converges after being killed and after an apiserver restart.

mod support;

use heat_reconciler::bench::mirror::{load_balancer_id, load_balancer_records};
use heat_reconciler::local::LocalEtcd;
use heat_reconciler::local::LocalKubeApiserver;
use heat_reconciler::mirror::{self, LoadBalancer, MirrorOptions};
use heat_reconciler::store::Store;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::{FLAGSHIP_LB, eventually, flagship_records};
use tokio::sync::watch;

const PREFIX: &str = "/v2.0/load_balancers";
const TENANT: &str = "fe3a4a1a72c04479bb6c19c2c0ccba4c";

/// The ESI etcd, the apiserver with the CRD installed, and a namespace of the test's own.
struct Cluster {
    _etcd: LocalEtcd,
    etcd_endpoints: Vec<String>,
    store: Store,
    kube: LocalKubeApiserver,
    namespace: String,
}

impl Cluster {
    async fn start() -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let etcd = LocalEtcd::start().await.expect("etcd");
        let store = etcd.connect().await.unwrap();
        let kube = LocalKubeApiserver::start().await.expect("kube-apiserver (bash scripts/prepare-kube.sh)");
        let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/loadbalancers.yaml");
        kube.kubectl_ok(&["apply", "--server-side", "-f", crd.to_str().unwrap()]).expect("the CRD is accepted");
        kube.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/loadbalancers.esi.heat-reconciler.io",
        ])
        .expect("the CRD becomes Established");
        let namespace = support::unique("lb");
        kube.kubectl_ok(&["create", "namespace", &namespace]).unwrap();
        Cluster { etcd_endpoints: etcd.endpoints(), _etcd: etcd, store, kube, namespace }
    }

    async fn api(&self) -> Api<LoadBalancer> {
        Api::namespaced(self.kube.client().await.unwrap(), &self.namespace)
    }

    async fn put(&self, key: &str, value: impl Into<Vec<u8>>) {
        self.store.put(key, value).await.unwrap();
    }

    /// `kubectl get loadbalancers` in the test's namespace, as rows of columns.
    fn table(&self, extra: &[&str]) -> Vec<Vec<String>> {
        let mut args = vec!["get", "loadbalancers", "-n", &self.namespace];
        args.extend_from_slice(extra);
        let text = self.kube.kubectl_ok(&args).unwrap();
        text.lines().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-n", &self.namespace]);
        self.kube.kubectl_ok(&all).unwrap()
    }

    /// Waits until the custom resources are exactly `expected`: name → (desired version, state).
    async fn mirrored(&self, expected: &BTreeMap<String, (u64, &str)>) {
        let api = self.api().await;
        eventually(60, || async {
            let objects = api.list(&ListParams::default()).await.ok()?;
            let seen: BTreeMap<String, (u64, String)> = objects
                .items
                .iter()
                .filter_map(|lb| {
                    let status = lb.status.as_ref()?;
                    Some((lb.metadata.name.clone()?, (status.desired_version?, status.state.clone()?)))
                })
                .collect();
            let want: BTreeMap<String, (u64, String)> =
                expected.iter().map(|(k, (v, s))| (k.clone(), (*v, (*s).to_owned()))).collect();
            (seen == want && objects.items.len() == expected.len()).then_some(())
        })
        .await;
    }
}

/// The mirror role in this process, with a fast resync.
struct RunningMirror {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    requests: Arc<AtomicU64>,
}

impl RunningMirror {
    async fn start(cluster: &Cluster) -> RunningMirror {
        let client = cluster.kube.client().await.unwrap();
        let mut options = MirrorOptions::new(support::unique("mirror"), cluster.namespace.clone());
        options.lease_ttl = Duration::from_secs(3);
        options.resync_interval = Duration::from_secs(1);
        options.writes_per_second = 200.0;
        let requests = options.requests.clone();
        let (shutdown, stop) = watch::channel(false);
        let store = cluster.store.clone();
        let task = tokio::spawn(async move {
            let schema = heat_reconciler::schema::Schema::shipped()?;
            mirror::run::<LoadBalancer>(store, &schema, client, options, stop).await
        });
        RunningMirror { shutdown, task, requests }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_flagship_load_balancer_shows_in_kubectl_and_quiet_means_no_writes() {
    let cluster = Cluster::start().await;
    for (key, value) in flagship_records() {
        cluster.put(&key, value).await;
    }
    let mirror = RunningMirror::start(&cluster).await;
    cluster.mirrored(&BTreeMap::from([(FLAGSHIP_LB.to_owned(), (2, "MODIFY_COMPLETED"))])).await;
    let table = eventually(30, || async {
        let table = cluster.table(&[]);
        (table.len() == 2 && table[1].get(4).map(String::as_str) == Some("True")).then_some(table)
    })
    .await;
    assert_eq!(table[0], ["NAME", "VERSION", "STATE", "MONITORING", "READY", "AGE"]);
    assert_eq!(table[1][..5], [FLAGSHIP_LB, "2", "MODIFY_COMPLETED", "UP", "True"]);

    let wide = cluster.table(&["-o", "wide"]);
    assert_eq!(wide[0], ["NAME", "VERSION", "STATE", "MONITORING", "READY", "AGE", "TENANT", "STACK", "DESIRED"]);
    assert_eq!(wide[1][6..], [TENANT.to_owned(), format!("load_balancer_{FLAGSHIP_LB}"), "2".to_owned()]);
    let label = format!("esi.heat-reconciler.io/tenant={TENANT}");
    assert_eq!(cluster.table(&["-l", &label, "--no-headers"]).len(), 1);
    assert!(cluster.table(&["-l", "esi.heat-reconciler.io/tenant=someone-else", "--no-headers"]).is_empty());
    let by_short_name = cluster.kubectl(&["get", "lb", "--no-headers"]);
    assert!(by_short_name.contains(FLAGSHIP_LB), "{by_short_name}");

    // The object carries no secret, and its conditions name the generation they describe.
    let yaml = cluster.kubectl(&["get", "lb", FLAGSHIP_LB, "-o", "yaml"]);
    for secret in ["RBvaP4je2j5Q", "lGxSVYSIdLqu", "assword"] {
        assert!(!yaml.contains(secret), "{yaml}");
    }
    let object = cluster.api().await.get(FLAGSHIP_LB).await.unwrap();
    let status = object.status.unwrap();
    assert!(status.conditions.iter().all(|c| c.observed_generation == object.metadata.generation));
    assert_eq!(status.observed_generation, object.metadata.generation);
    let managers: Vec<String> =
        object.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(managers.iter().all(|m| m == "heat-reconciler"), "{managers:?}");

    let metrics = heat_reconciler::telemetry::metrics().encode();
    for write in ["apply", "apply_status"] {
        let sample = format!(r#"heat_reconciler_mirror_writes_total{{kind="LoadBalancer",write="{write}"}}"#);
        assert!(metrics.contains(&sample), "{sample} in\n{metrics}");
    }

    // Resyncs every second compare everything again and write nothing.
    let before = mirror.requests.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(mirror.requests.load(Ordering::Relaxed), before, "writes while nothing changed");
    mirror.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hand_deletes_and_edits_are_put_back() {
    let cluster = Cluster::start().await;
    let id = load_balancer_id(1);
    for (key, value) in load_balancer_records(&id, 2, false, "MODIFY_COMPLETED") {
        cluster.put(&key, value).await;
    }
    let mirror = RunningMirror::start(&cluster).await;
    let expected = BTreeMap::from([(id.clone(), (2, "MODIFY_COMPLETED"))]);
    cluster.mirrored(&expected).await;
    let api = cluster.api().await;
    let original = api.get(&id).await.unwrap();

    cluster.kubectl(&["delete", "lb", &id]);
    let back =
        eventually(30, || async { api.get(&id).await.ok().filter(|b| b.metadata.uid != original.metadata.uid) }).await;
    assert_ne!(back.metadata.uid, original.metadata.uid, "a new object");
    cluster.mirrored(&expected).await;

    let put_back = |what: &'static str| {
        let api = api.clone();
        let id = id.clone();
        let original = original.clone();
        async move {
            eventually(30, || async {
                let now = api.get(&id).await.ok()?;
                let labels_back = now.metadata.labels == original.metadata.labels;
                (now.spec == original.spec
                    && now.status.as_ref().map(|s| &s.state) == original.status.as_ref().map(|s| &s.state)
                    && labels_back)
                    .then_some(())
            })
            .await;
            eprintln!("{what}: put back");
        }
    };
    cluster.kubectl(&["patch", "lb", &id, "--type=merge", "-p", r#"{"spec":{"name":"renamed by hand"}}"#]);
    put_back("a spec field edited").await;
    cluster.kubectl(&["patch", "lb", &id, "--type=merge", "-p", r#"{"spec":{"defaultGateway":"10.0.0.1"}}"#]);
    put_back("a spec field added").await;
    cluster.kubectl(&["label", "lb", &id, "--overwrite", "esi.heat-reconciler.io/tenant=someone-else"]);
    put_back("the tenant label changed").await;
    cluster.kubectl(&[
        "patch",
        "lb",
        &id,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"state":"EDITED","lastError":"by hand"}}"#,
    ]);
    put_back("the status edited").await;
    // The mirror's apply puts the state back; the error added by hand, a field another manager
    // owns, goes in the write after it.
    eventually(30, || async { api.get(&id).await.ok()?.status?.last_error.is_none().then_some(()) }).await;

    // A custom resource no /config stands behind is removed.
    let stray = json!({"apiVersion": "esi.heat-reconciler.io/v1alpha1", "kind": "LoadBalancer",
                       "metadata": {"name": "made-by-hand", "namespace": cluster.namespace}, "spec": {"name": "x"}});
    let file = std::env::temp_dir().join(format!("{}.json", support::unique("stray")));
    std::fs::write(&file, stray.to_string()).unwrap();
    cluster.kubectl(&["create", "-f", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    cluster.mirrored(&expected).await;
    mirror.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_changes_flow_through_including_a_two_step_delete() {
    let cluster = Cluster::start().await;
    let id = load_balancer_id(2);
    for (key, value) in load_balancer_records(&id, 1, false, "CREATE_COMPLETED") {
        cluster.put(&key, value).await;
    }
    let mirror = RunningMirror::start(&cluster).await;
    cluster.mirrored(&BTreeMap::from([(id.clone(), (1, "CREATE_COMPLETED"))])).await;

    // Gohan writes version 2: in progress until the worker's /state says otherwise.
    let (config_key, config_v2) = load_balancer_records(&id, 2, false, "MODIFY_COMPLETED").remove(0);
    cluster.put(&config_key, config_v2).await;
    cluster.mirrored(&BTreeMap::from([(id.clone(), (2, "MODIFY_IN_PROGRESS"))])).await;
    let ready = cluster.table(&["--no-headers"]);
    assert_eq!(ready[0][4], "False", "{ready:?}");
    for (key, value) in load_balancer_records(&id, 2, false, "MODIFY_COMPLETED") {
        cluster.put(&key, value).await;
    }
    cluster.mirrored(&BTreeMap::from([(id.clone(), (2, "MODIFY_COMPLETED"))])).await;

    // A two-step delete: marked first (deleting shows), then the config goes (so does the object).
    let (config_key, config_v3) = load_balancer_records(&id, 3, true, "DELETE_COMPLETED").remove(0);
    cluster.put(&config_key, config_v3).await;
    cluster.mirrored(&BTreeMap::from([(id.clone(), (3, "DELETE_IN_PROGRESS"))])).await;
    for (key, value) in load_balancer_records(&id, 3, true, "DELETE_COMPLETED") {
        cluster.put(&key, value).await;
    }
    cluster.mirrored(&BTreeMap::from([(id.clone(), (3, "DELETE_COMPLETED"))])).await;
    cluster.store.delete(&config_key).await.unwrap();
    cluster.store.delete(&format!("/state{PREFIX}/{id}")).await.unwrap();
    cluster.mirrored(&BTreeMap::new()).await;
    mirror.stop().await;
}

/// Writes `count` load balancers from `first`, converged at `version`; returns what they should
/// look like mirrored.
async fn write_many(
    cluster: &Cluster,
    first: usize,
    count: usize,
    version: u64,
) -> BTreeMap<String, (u64, &'static str)> {
    let mut expected = BTreeMap::new();
    for n in first..first + count {
        for (key, value) in load_balancer_records(&load_balancer_id(n), version, false, "MODIFY_COMPLETED") {
            cluster.put(&key, value).await;
        }
        expected.insert(load_balancer_id(n), (version, "MODIFY_COMPLETED"));
    }
    expected
}

async fn delete_config(cluster: &Cluster, n: usize) {
    cluster.store.delete(&format!("/config{PREFIX}/{}", load_balancer_id(n))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_mirror_process_converges_when_started_again() {
    let cluster = Cluster::start().await;
    let mut expected = write_many(&cluster, 0, 20, 1).await;
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
            .args(["run", "--roles", "mirror", "--leader-ttl", "2", "--resync-interval", "5"])
            .args(["--etcd-endpoints", &cluster.etcd_endpoints.join(",")])
            .arg("--kubeconfig")
            .arg(&cluster.kube.kubeconfig)
            .args(["--mirror-namespace", &cluster.namespace])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(support::Spawned)
            .expect("heat-reconciler run --roles mirror")
    };
    let mut process = start();
    cluster.mirrored(&expected).await;

    process.kill().unwrap(); // SIGKILL
    process.wait().unwrap();
    for n in 0..5 {
        delete_config(&cluster, n).await;
        expected.remove(&load_balancer_id(n));
    }
    expected.extend(write_many(&cluster, 5, 5, 2).await);
    expected.extend(write_many(&cluster, 20, 5, 1).await);
    let mut process = start();
    cluster.mirrored(&expected).await;
    process.kill().unwrap();
    process.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apiserver_restart_mid_run_converges() {
    let mut cluster = Cluster::start().await;
    let mut expected = write_many(&cluster, 0, 10, 1).await;
    let mirror = RunningMirror::start(&cluster).await;
    cluster.mirrored(&expected).await;

    cluster.kube.stop();
    for n in 0..3 {
        delete_config(&cluster, n).await;
        expected.remove(&load_balancer_id(n));
    }
    expected.extend(write_many(&cluster, 3, 3, 2).await);
    expected.extend(write_many(&cluster, 10, 3, 1).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.kube.restart().await.unwrap();
    cluster.mirrored(&expected).await;
    mirror.stop().await;
}
