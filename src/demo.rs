//! `demo`: the flagship load-balancer flow on a local etcd and a local standalone Heat. Gohan's
//! writes of the example (the load balancer, its vnf_instance, load_balancer_conf and what they
//! reference, then the interface update that brings the load balancer to version 2) are replayed
//! from `demo/load_balancer/timeline.jsonl`; the planner, worker and monitor run in-process;
//! every record is shown as it appears, and the demo ends once the load balancer's `/state` is at
//! version 2 and the monitor has written its `/monitoring` record for that version (point 6).
//! The example's devices are played by a local `snmpd`: every device address the example names
//! is probed there, and nothing outside loopback is ever probed. With `--kubernetes` a local
//! kube-apiserver and the mirror run too, and the demo ends with `kubectl get loadbalancers`.

use crate::conformance::Scenario;
use crate::heat::{Endpoint, HeatClient};
use crate::local::LocalEtcd;
use crate::local::{LocalHeat, LocalKubeApiserver, LocalSnmpd, ports};
use crate::mirror;
use crate::monitor;
use crate::protocol::{Record, RecordKind, ResourceKey, ResourceRoot};
use crate::replay::{ReplayOptions, replay};
use crate::schema::Schema;
use crate::store::{WatchEvent, watch_prefix};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The example's Gohan writes: `HEAT_RECONCILER_DEMO_DIR`, else the source tree's `demo/load_balancer`.
fn example() -> PathBuf {
    std::env::var_os("HEAT_RECONCILER_DEMO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/load_balancer"))
}

/// The version the load balancer must reach.
const TARGET_VERSION: u64 = 2;

/// The SNMP community the example's load-balancer templates name.
const COMMUNITY: &str = "LOAD_BALANCER_COMMUNITY";

/// The interfaces the example's load-balancer interfaces name (`0/1`, `1/<slot>`).
const INTERFACES: [(&str, bool); 4] = [("0/1", true), ("1/1", true), ("1/2", true), ("1/3", true)];

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// One JSON line per record instead of the story.
    pub json_lines: bool,
    /// Also a local kube-apiserver and the mirror.
    pub kubernetes: bool,
    /// Where the controller's own logs went (said at the start), if not to the terminal.
    pub log_file: Option<PathBuf>,
}

pub async fn run(schema: &Schema, options: DemoOptions) -> anyhow::Result<()> {
    let DemoOptions { json_lines, kubernetes, log_file } = options;
    let say = |text: String| {
        if !json_lines {
            println!("{text}");
        }
    };
    if let Some(path) = &log_file {
        say(format!("the controller's logs go to {} (--verbose shows them here)", path.display()));
    }
    say("starting a local etcd ...".into());
    let etcd = LocalEtcd::start().await?;
    say(format!("  etcd at {}", etcd.client_url));
    let store = etcd.connect().await?;
    let device = LocalSnmpd::start(&[COMMUNITY], &INTERFACES).await?;
    say(format!("  the example's devices: a local snmpd at {}", device.addr()));
    let (stop_monitor, monitor_shutdown) = tokio::sync::watch::channel(false);
    let (collector, monitor) = start_monitor(&store, &device, monitor_shutdown).await?;
    say(format!("  monitor (target API) at {}", collector.0));
    let (stop_mirror, mirror_shutdown) = tokio::sync::watch::channel(false);
    let kube = if kubernetes {
        say("starting a local kube-apiserver (with its own etcd) and the mirror ...".into());
        let (kube, mirror) = start_mirror(&store, schema, mirror_shutdown).await?;
        say(format!("  kube-apiserver at {} (kubeconfig {})", kube.url(), kube.kubeconfig.display()));
        Some((kube, mirror))
    } else {
        None
    };
    if crate::local::heat::installed() {
        say("starting the local standalone Heat ...".into());
    } else {
        say(format!(
            "installing OpenStack Heat 27.0.1 from PyPI into {} (once: about a minute with a fast \
             index, up to five otherwise), then starting it ...",
            crate::local::heat::home().display()
        ));
    }
    let heat_url = LocalHeat::shared(ports::DEMO_HEAT).with_collector(&collector.0, &collector.1).start(true).await?;
    say(format!("  Heat at {heat_url}/v1/<tenant>"));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url })?;

    let scenario = Scenario::new(example());
    anyhow::ensure!(scenario.dir.join("timeline.jsonl").exists(), "the example is missing: {}", scenario.dir.display());
    let options = ReplayOptions { etcd_endpoints: Some(etcd.endpoints()), heat: Some(heat) };
    let schema_for_replay = schema.clone();
    let flow = tokio::spawn(async move { replay(&scenario, &schema_for_replay, options).await });
    say("writing the example's configuration as Gohan would; planner and worker running\n".into());

    let started = Instant::now();
    let mut converged = false;
    let mut monitored: Option<(String, String)> = None;
    let mut events = watch_prefix(store.clone(), "/".to_owned());
    let deadline = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            event = events.recv() => event.ok_or_else(|| anyhow::anyhow!("the etcd watch ended"))?,
            _ = &mut deadline => anyhow::bail!("the load balancer did not reach version {TARGET_VERSION} (state and monitoring) within 10 minutes"),
        };
        let (key, value) = match event {
            WatchEvent::Put(kv) => (kv.key.clone(), Some(kv.value)),
            WatchEvent::Deleted { key, .. } => (key, None),
            _ => continue,
        };
        let Some(kind) = RecordKind::of_key(&key) else { continue };
        if matches!(kind, RecordKind::LeaderId | RecordKind::GohanLock | RecordKind::GohanWatchIndex) {
            continue;
        }
        let record = value.as_deref().and_then(|bytes| Record::from_etcd(&key, bytes).ok());
        if json_lines {
            let value = record.as_ref().and_then(|r| r.to_value().ok()).unwrap_or(Value::Null);
            println!("{}", json!({"key": key, "value": value}));
        } else {
            println!(
                "{:>7.1}s  {:<6} {key}{}",
                started.elapsed().as_secs_f64(),
                if value.is_some() { "put" } else { "delete" },
                record.as_ref().map(describe).unwrap_or_default()
            );
        }
        let load_balancer = ResourceKey::parse(&key).filter(|k| k.prefix == "/v2.0/load_balancers");
        match (&record, load_balancer.map(|k| k.root)) {
            (Some(Record::State(state)), Some(ResourceRoot::State))
                if state.version >= TARGET_VERSION && state.state.worker_state.ends_with("_COMPLETED") =>
            {
                converged = true;
                say(format!(
                    "\nthe load balancer is at version {} ({}) after {:.1} s",
                    state.version,
                    state.state.worker_state,
                    started.elapsed().as_secs_f64()
                ));
            }
            (Some(Record::Monitoring(status)), Some(ResourceRoot::Monitoring)) if status.version >= TARGET_VERSION => {
                let text = String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned();
                monitored = Some((key.clone(), text));
            }
            (None, Some(ResourceRoot::Monitoring)) => monitored = None,
            _ => {}
        }
        if let (true, Some((key, value))) = (converged, &monitored) {
            say(format!(
                "the monitor reports the load balancer after {:.1} s:\n  {key} = {value}",
                started.elapsed().as_secs_f64()
            ));
            break;
        }
    }
    // The flow's last steps finish (its planner and worker stop themselves), then the other
    // roles stop, all before their etcd and apiserver go: nothing is cut off mid-call.
    match tokio::time::timeout(Duration::from_secs(120), flow).await {
        Ok(finished) => drop(finished?),
        Err(_) => tracing::warn!("the example's last steps did not finish within 120 s"),
    }
    let _ = stop_monitor.send(true);
    monitor.await??;
    show_status(&store, schema, json_lines).await?;
    if let Some((kube, mirror)) = kube {
        show_custom_resource(&kube, json_lines).await?;
        let _ = stop_mirror.send(true);
        mirror.await??;
    }
    Ok(())
}

/// `heat-reconciler status` of the example's resources (in `--json` mode one
/// `{"status": [...]}` line).
async fn show_status(store: &crate::store::Store, schema: &Schema, json_lines: bool) -> anyhow::Result<()> {
    use crate::inspect::{snapshot::Snapshot, status};
    let snapshot = Snapshot::load(store, schema).await?;
    let rows = status::rows(&snapshot, &status::Filter::default());
    if json_lines {
        println!("{}", json!({ "status": rows }));
    } else {
        println!("\n$ heat-reconciler status\n{}", status::table(&rows));
    }
    Ok(())
}

/// Starts a local kube-apiserver with the CRDs installed and the mirror of load balancers into
/// its `default` namespace.
async fn start_mirror(
    store: &crate::store::Store,
    schema: &Schema,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(LocalKubeApiserver, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let kube = LocalKubeApiserver::start().await?;
    kube.install_crds().await?;
    let mut options = mirror::MirrorOptions::new("demo", "default");
    options.resync_interval = Duration::from_secs(5);
    let (store, schema, client) = (store.clone(), schema.clone(), kube.client().await?);
    let mirror =
        tokio::spawn(
            async move { mirror::run::<mirror::LoadBalancer>(store, &schema, client, options, shutdown).await },
        );
    Ok((kube, mirror))
}

/// Waits until the load balancer's custom resource is Ready at the target version, then prints
/// `kubectl get loadbalancers` (in `--json` mode, as one `{"kubectl": ..., "output": ...}` line).
async fn show_custom_resource(kube: &LocalKubeApiserver, json_lines: bool) -> anyhow::Result<()> {
    let api: kube::Api<mirror::LoadBalancer> = kube::Api::namespaced(kube.client().await?, "default");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let objects = api.list(&Default::default()).await?;
        let ready = objects.items.iter().any(|lb| {
            lb.status.as_ref().is_some_and(|s| {
                s.desired_version == Some(TARGET_VERSION)
                    && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
            })
        });
        if ready {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the LoadBalancer custom resource was not Ready within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let args = ["get", "loadbalancers", "-o", "wide"];
    let table = kube.kubectl_ok(&args)?;
    if json_lines {
        println!("{}", json!({"kubectl": args.join(" "), "output": table}));
    } else {
        println!(
            "
$ kubectl {}
{table}",
            args.join(" ")
        );
    }
    Ok(())
}

/// Serves the target API on a free loopback port with a fresh token and runs the prober, which
/// reaches every device address at `device`; returns the API's URL and token.
async fn start_monitor(
    store: &crate::store::Store,
    device: &LocalSnmpd,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<((String, String), tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let token = uuid::Uuid::new_v4().to_string();
    let mut options = monitor::MonitorOptions::new("demo");
    options.interval = Duration::from_secs(2);
    options.timeout = Duration::from_secs(1);
    options.probes.address_map.insert("*".into(), device.addr().to_string());
    options.probes.loopback_only = true;
    let (store, served_url, served_token) = (store.clone(), url.clone(), token.clone());
    let monitor =
        tokio::spawn(
            async move { monitor::serve(store, listener, &served_url, served_token, options, shutdown).await },
        );
    Ok(((url, token), monitor))
}

/// A short reading of a record for the progress display.
fn describe(record: &Record) -> String {
    match record {
        Record::Config(config) => format!(
            "  (config v{}{})",
            config.version,
            if config.marked_for_deletion { ", marked for deletion" } else { "" }
        ),
        Record::HeatTemplate(_, template) => format!("  (heat template {})", template.id),
        Record::Snapshot(snapshot) => format!("  (snapshot v{})", snapshot.version),
        Record::Job(job) => format!("  (job, {} dependencies)", job.job.dependency.len()),
        Record::HeatStack(stack) => format!("  ({}, {} outputs)", stack.stack_status, stack.output.len()),
        Record::JobState(state) => format!("  ({})", serde_json::to_string(state).unwrap_or_default()),
        Record::State(state) => {
            let error = if state.error.is_empty() { String::new() } else { format!(": {}", state.error) };
            format!("  ({} v{}{error})", state.state.worker_state, state.version)
        }
        Record::Monitoring(monitoring) => format!("  ({})", serde_json::to_string(monitoring).unwrap_or_default()),
        Record::Text(_, text) if !text.is_empty() => format!("  ({text})"),
        _ => String::new(),
    }
}
