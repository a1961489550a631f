//! The `heat-reconciler` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use heat_reconciler::conformance::{Scenario, check, params};
use heat_reconciler::handoff::Handoff;
use heat_reconciler::schema::{self, Schema};
use heat_reconciler::telemetry::server::Checks;
use heat_reconciler::telemetry::{LogFormat, init_logs, init_logs_to};
use heat_reconciler::{heat, mirror, monitor, planner, replay, store, worker};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Turns ESI resource configuration in etcd into OpenStack Heat stacks")]
struct Cli {
    /// Directory with resource_types.json, relations.json and template_mappings.json
    /// (default: the shipped configuration).
    #[arg(long, global = true, env = "HEAT_RECONCILER_SCHEMA_DIR")]
    schema_dir: Option<PathBuf>,
    /// How log lines are written (what `RUST_LOG` lets through: default `info`).
    #[arg(long, global = true, value_enum, default_value = "text", env = "HEAT_RECONCILER_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller roles against an etcd cluster.
    Run(Box<RunArgs>),
    /// Measure planning throughput on a synthetic resource graph against the raw etcd write rate.
    BenchPlanner {
        /// How many resources the synthetic graph holds.
        #[arg(long, default_value_t = 10_000)]
        resources: usize,
        /// How many planned jobs one transaction may hold (the planner's default; 1: each alone).
        #[arg(long, default_value_t = planner::PlannerOptions::new("").batch_size)]
        batch_size: usize,
        /// Use this (empty) etcd instead of starting a local one; comma-separated.
        #[arg(long, value_delimiter = ',')]
        etcd_endpoints: Option<Vec<String>>,
    },
    /// Measure the monitor's probes per second and CPU over many targets against one local snmpd.
    BenchMonitor {
        /// How many targets are registered.
        #[arg(long, default_value_t = 10_000)]
        targets: usize,
        /// How long the steady state is measured, in seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// How many probes run at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
    /// Mirror N load balancers into a local kube-apiserver and print the time and the apiserver's
    /// request counts next to its server-side-apply ceiling of the same run.
    BenchMirror {
        /// How many load balancers.
        #[arg(long, default_value_t = 500)]
        load_balancers: usize,
        /// The mirror's write pace (as `run --mirror-writes-per-second`).
        #[arg(long, default_value_t = 50.0)]
        writes_per_second: f64,
    },
    /// Time `status` over N resources next to the raw etcd list of the same keys.
    BenchStatus {
        /// How many resources (load balancers with all four records).
        #[arg(long, default_value_t = 10_000)]
        resources: usize,
    },
    /// Time a planner process's cold start over N converged resources (until it has decided that
    /// nothing is to be done) and its peak RSS, next to one raw list of the same store.
    BenchResync {
        /// How many converged load balancers the store holds.
        #[arg(long, default_value_t = 100_000)]
        resources: usize,
    },
    /// Create, then update, N small stacks through the whole controller and by a direct Heat
    /// client at the same concurrency on one local Heat; print both times, their ratio, the
    /// controller's own overhead per job and its etcd round trips per job.
    BenchE2e {
        /// How many stacks.
        #[arg(long, default_value_t = 200)]
        stacks: usize,
        /// How many stacks are in Heat's hands at once (the worker's slots; the direct client's
        /// requests in flight).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Time one drift-repair pass over N converged resources (Heat calls, etcd round trips) next
    /// to the bare paged stack list and etcd list it is made of.
    BenchDrift {
        /// How many converged load balancers (and stacks, 1% of them gone, 1% failed).
        #[arg(long, default_value_t = 10_000)]
        stacks: usize,
        /// The pass's repair cap (as `run --drift-repairs-per-pass`).
        #[arg(long, default_value_t = worker::drift::DEFAULT_MAX_REPAIRS)]
        max_repairs: usize,
    },
    /// Show the flagship load-balancer flow on a local etcd and a local standalone Heat.
    Demo {
        /// Print every record seen as one JSON line `{"key": ..., "value": ...}`.
        #[arg(long)]
        json: bool,
        /// Also start a local kube-apiserver and the mirror, and end with `kubectl get
        /// loadbalancers` (needs `bash scripts/prepare-kube.sh` once).
        #[arg(long)]
        kubernetes: bool,
        /// Show the controller's own logs here too (by default they go to a file the demo names).
        #[arg(long)]
        verbose: bool,
        /// Where the logs went instead (set by `main`, not an argument).
        #[arg(skip)]
        log_file: Option<PathBuf>,
    },
    /// Check that every record of a scenario directory decodes and re-encodes unchanged.
    CheckRecords {
        /// A scenario in the conformance layout (records/, watch/, timeline.jsonl).
        dir: PathBuf,
    },
    /// Re-evaluate every param of every recorded job of a scenario and compare.
    CheckParams { dir: PathBuf },
    /// Replay a scenario's timeline against the planner on a real etcd and compare with the corpus.
    Replay {
        /// A scenario in the conformance layout.
        #[arg(long)]
        scenario: PathBuf,
        /// Where to write the JSON report.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Use this (empty) etcd instead of starting a local one; comma-separated.
        #[arg(long, value_delimiter = ',')]
        etcd_endpoints: Option<Vec<String>>,
        /// `heat`: run the project's worker against a real Heat instead of completing jobs as
        /// the corpus did.
        #[arg(long, value_parser = ["heat"])]
        worker: Option<String>,
        /// The standalone Heat to use with `--worker heat` (default: start the project's own).
        #[arg(long)]
        heat_url: Option<String>,
    },
    /// Kill controllers at random, restart etcd, stop Heat, on a scenario of many resources; then
    /// check that every resource converged exactly once (exit status 1 if not).
    Chaos {
        /// How many resources (a fifth networks, two fifths subnets, the rest ports).
        #[arg(long, default_value_t = 200)]
        resources: usize,
        /// How long controllers are killed (config writes and both faults fall within it).
        #[arg(long, default_value = "90s", value_parser = heat_reconciler::chaos::parse_duration)]
        duration: std::time::Duration,
        /// How long Heat is down.
        #[arg(long, default_value = "25s", value_parser = heat_reconciler::chaos::parse_duration)]
        heat_outage: std::time::Duration,
        /// How long to wait for convergence after the chaos.
        #[arg(long, default_value = "300s", value_parser = heat_reconciler::chaos::parse_duration)]
        converge_timeout: std::time::Duration,
        /// The port of the (fresh) local Heat the run starts and stops (default: a free one).
        #[arg(long)]
        heat_port: Option<u16>,
        /// Seed of the random kills (default: random; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Keep the controllers' logs even when the run is good.
        #[arg(long)]
        keep_logs: bool,
    },
    /// Where every resource stands: a row each (versions, state, stack, monitoring, live job, last
    /// error) and how many are converged, in progress and failed.
    Status(StatusArgs),
    /// Why a resource is not converged (or that it is), as a tree down to the root cause; every
    /// line names the record or the Heat call it read.
    Why(WhyArgs),
    /// What applying a resource's current config would do in Heat (dry run: rendered as the
    /// worker would, previewed by Heat; nothing is written anywhere).
    Plan(PlanArgs),
    /// Print the CustomResourceDefinitions of the mirrored kinds as YAML (`crds/loadbalancers.yaml`).
    Crdgen,
    /// Derive resource_types.json, relations.json and template_mappings.json from Gohan schemas.
    ImportSchemas {
        /// A Gohan schema dump: `{"schemas": [...]}` or a list.
        schemas: PathBuf,
        /// Where to write the three files.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where etcd is and how to reach it securely.
#[derive(clap::Args)]
struct EtcdArgs {
    /// etcd client URLs, comma-separated (`https://` with the TLS options below).
    #[arg(
        long,
        value_delimiter = ',',
        env = "HEAT_RECONCILER_ETCD_ENDPOINTS",
        default_value = "http://127.0.0.1:2379"
    )]
    etcd_endpoints: Vec<String>,
    /// A PEM bundle of the CA that signed etcd's server certificates.
    #[arg(long, env = "HEAT_RECONCILER_ETCD_CA_FILE")]
    etcd_ca_file: Option<PathBuf>,
    /// A PEM client certificate, for etcd's client-certificate authentication (with
    /// `--etcd-key-file`).
    #[arg(long, env = "HEAT_RECONCILER_ETCD_CERT_FILE", requires = "etcd_key_file")]
    etcd_cert_file: Option<PathBuf>,
    /// The PEM key of `--etcd-cert-file`.
    #[arg(long, env = "HEAT_RECONCILER_ETCD_KEY_FILE", requires = "etcd_cert_file")]
    etcd_key_file: Option<PathBuf>,
    /// An etcd user (etcd's `auth enable`); its password comes from `--etcd-password-file` or
    /// `HEAT_RECONCILER_ETCD_PASSWORD`, never from an argument.
    #[arg(long, env = "HEAT_RECONCILER_ETCD_USER")]
    etcd_user: Option<String>,
    /// A file holding the password of `--etcd-user`.
    #[arg(long, env = "HEAT_RECONCILER_ETCD_PASSWORD_FILE", requires = "etcd_user")]
    etcd_password_file: Option<PathBuf>,
}

impl EtcdArgs {
    fn access(&self) -> anyhow::Result<store::EtcdAccess> {
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        let identity = match (&self.etcd_cert_file, &self.etcd_key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        let user = match &self.etcd_user {
            Some(user) => {
                let password = match &self.etcd_password_file {
                    Some(path) => String::from_utf8(read(path)?).context("the etcd password file is not UTF-8")?,
                    None => std::env::var("HEAT_RECONCILER_ETCD_PASSWORD").unwrap_or_default(),
                };
                let password = password.trim_end_matches(['\r', '\n']).to_owned();
                anyhow::ensure!(
                    !password.is_empty(),
                    "--etcd-user {user} needs a password: --etcd-password-file or HEAT_RECONCILER_ETCD_PASSWORD"
                );
                Some((user.clone(), password))
            }
            None => None,
        };
        let ca = self.etcd_ca_file.as_ref().map(read).transpose()?;
        Ok(store::EtcdAccess { ca, identity, user })
    }

    /// Connects and checks, with one read of `/config/` (every command reads it), that etcd
    /// lets this process in: a refusal ends the command with its cause.
    async fn connect(&self) -> anyhow::Result<store::Store> {
        Ok(store::Store::connect_checked(&self.etcd_endpoints, &self.access()?, "/config/").await?)
    }
}

#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Only resources of this type (as the schema names it: `load_balancer`, `network`, ...).
    #[arg(long = "type", value_name = "TYPE")]
    resource_type: Option<String>,
    /// Only resources that are not converged.
    #[arg(long)]
    not_converged: bool,
    /// `table`, or `json` (an array of one object per resource).
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
    /// Draw the table again whenever the store changes (Ctrl-C ends it).
    #[arg(long)]
    watch: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(clap::Args)]
struct WhyArgs {
    /// The resource: `TYPE/ID`, e.g. `load_balancer/b311c470-d878-4fea-8466-a4393938f2d4`.
    resource: String,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Heat, to read a failed stack's events (optional: without it `why` reads etcd only).
    #[command(flatten)]
    heat: HeatArgs,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// The resource: `TYPE/ID`.
    resource: String,
    #[command(flatten)]
    etcd: EtcdArgs,
    #[command(flatten)]
    heat: HeatArgs,
    /// `table` (the report), or `json`.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

/// Where Heat is and how to authenticate.
#[derive(clap::Args)]
struct HeatArgs {
    /// A standalone Heat without Keystone, e.g. `http://127.0.0.1:8004` (the endpoint
    /// `heat/start-heat.sh` prints, `.../v1/<tenant>`, is taken too: each call uses the resource's
    /// own tenant). Without it, Keystone from the `OS_*` environment or `--keystone-env-file`.
    #[arg(long, env = "HEAT_RECONCILER_HEAT_URL")]
    heat_url: Option<String>,
    /// A file of `OS_*=...` lines with the Keystone credentials.
    #[arg(long, env = "HEAT_RECONCILER_KEYSTONE_ENV_FILE")]
    keystone_env_file: Option<PathBuf>,
    /// A PEM bundle of the CAs to trust for Heat and Keystone over TLS, instead of the system's
    /// (as the OpenStack clients' `--os-cacert`). Without it, `OS_CACERT` of the env file or the
    /// environment.
    #[arg(long, value_name = "PATH")]
    os_cacert: Option<PathBuf>,
}

impl HeatArgs {
    /// Whether any way to reach Heat was given (`OS_AUTH_URL` counts).
    fn given(&self) -> bool {
        self.heat_url.is_some() || self.keystone_env_file.is_some() || std::env::var_os("OS_AUTH_URL").is_some()
    }

    /// The Heat client the flags ask for. A CA bundle that cannot be used ends the command here,
    /// naming the file, before any request could fail on it.
    fn client(&self) -> anyhow::Result<heat::HeatClient> {
        let env_file = self.keystone_env_file.as_deref();
        let vars = match env_file {
            Some(path) => heat::keystone::Keystone::parse_env_file(
                &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            ),
            None => std::env::vars().collect(),
        };
        let endpoint = heat_endpoint(self.heat_url.as_deref(), &vars)?;
        let trust =
            heat::trust::Trust::given(self.os_cacert.as_deref(), &vars, env_file).map_err(anyhow::Error::msg)?;
        if let heat::trust::Trust::Only(bundle) = &trust {
            tracing::info!(
                bundle = bundle.name(),
                certificates = bundle.len(),
                "Heat and Keystone: trusting only these CAs"
            );
        }
        Ok(heat::HeatClient::with_trust(endpoint, trust)?)
    }
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Serve `/healthz`, `/readyz` and `/metrics` (Prometheus) here, e.g. `0.0.0.0:9090`.
    #[arg(long, env = "HEAT_RECONCILER_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Which roles this process runs: planner, worker, monitor, mirror.
    #[arg(long, value_delimiter = ',', default_value = "planner,worker")]
    roles: Vec<String>,
    #[command(flatten)]
    heat: HeatArgs,
    /// How many jobs the worker has in Heat at once (a job's results are written after its slot is freed).
    #[arg(long, default_value_t = 8)]
    slots: usize,
    /// This process's id in leader election (default: a random one).
    #[arg(long)]
    id: Option<String>,
    /// TTL of the planner's (and the monitor's, the mirror's, drift repair's) leader lease, in seconds: a standby takes over
    /// at most about this long (plus etcd's 0.5 s expiry check) after the leader dies.
    #[arg(long, default_value_t = 15)]
    leader_ttl: u64,
    /// TTL of the worker's lease, in seconds: the jobs of a worker that dies are queued again
    /// this long after.
    #[arg(long, default_value_t = 60)]
    worker_lease_ttl: u64,
    /// How often, in seconds, the planner reconciles everything again and one worker (elected)
    /// looks for stacks that vanished or failed behind its back.
    #[arg(long, default_value_t = 60)]
    resync_interval: u64,
    /// Do not re-apply resources whose Heat stack vanished or failed outside the controller.
    #[arg(long)]
    no_drift_repair: bool,
    /// At most this many drifted resources are queued again per resync interval; the rest wait
    /// for the next intervals (a Heat that lost every stack is re-applied a slice at a time).
    #[arg(long, default_value_t = worker::drift::DEFAULT_MAX_REPAIRS)]
    drift_repairs_per_pass: usize,
    #[command(flatten)]
    monitor: MonitorArgs,
    #[command(flatten)]
    mirror: MirrorArgs,
}

/// The mirror role: the load balancers as `LoadBalancer` custom resources in Kubernetes.
#[derive(clap::Args)]
struct MirrorArgs {
    /// The kubeconfig of the cluster to mirror into (default: `KUBECONFIG`, `~/.kube/config`, or
    /// the pod's service account when run in a cluster).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The namespace of the custom resources.
    #[arg(long, env = "HEAT_RECONCILER_MIRROR_NAMESPACE", default_value = "default")]
    mirror_namespace: String,
    /// At most this many writes a second to the Kubernetes API.
    #[arg(long, default_value_t = 50.0)]
    mirror_writes_per_second: f64,
}

impl MirrorArgs {
    async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .with_context(|| format!("kubeconfig {}", path.display()))?
            }
            None => kube::Config::infer().await.context(
                "no Kubernetes configuration: give --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
            )?,
        };
        Ok(kube::Client::try_from(config)?)
    }
}

/// The monitor role: the target API the `MonitoringTarget` resources call, and the prober.
#[derive(clap::Args)]
struct MonitorArgs {
    /// Where the target API listens.
    #[arg(long, default_value = "0.0.0.0:7070")]
    monitor_listen: std::net::SocketAddr,
    /// The API's base URL as Heat reaches it: targets' `link` and `monitorer` (default: the
    /// listen address, with 127.0.0.1 for 0.0.0.0).
    #[arg(long, env = "HEAT_RECONCILER_MONITOR_URL")]
    monitor_url: Option<String>,
    /// A file holding the token API clients must send (else `HEAT_RECONCILER_MONITOR_TOKEN`).
    #[arg(long, env = "HEAT_RECONCILER_MONITOR_TOKEN_FILE")]
    monitor_token_file: Option<PathBuf>,
    /// Seconds between two probes of a target.
    #[arg(long, default_value_t = 60)]
    probe_interval: u64,
    /// Seconds one probe may take.
    #[arg(long, default_value_t = 10)]
    probe_timeout: u64,
    /// How many probes run at once.
    #[arg(long, default_value_t = 256)]
    probe_concurrency: usize,
    /// A YAML file of per-type probes, added to the built-in ones, e.g.
    /// `compute: {http: {url: "http://nova:8774/v2.1/servers/{server_id}"}}`.
    #[arg(long)]
    probe_config: Option<PathBuf>,
    /// The SNMP port of devices whose address names none.
    #[arg(long, default_value_t = 161)]
    snmp_port: u16,
    /// Reach a device address through another: `FROM=TO[:PORT]`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    device_address: Vec<String>,
}

impl MonitorArgs {
    fn token(&self) -> anyhow::Result<String> {
        let token = match &self.monitor_token_file {
            Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            None => std::env::var("HEAT_RECONCILER_MONITOR_TOKEN").unwrap_or_default(),
        };
        let token = token.trim().to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "the monitor role needs a token: HEAT_RECONCILER_MONITOR_TOKEN or --monitor-token-file"
        );
        Ok(token)
    }

    fn url(&self) -> String {
        self.monitor_url.clone().unwrap_or_else(|| {
            let mut address = self.monitor_listen;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{address}")
        })
    }

    fn options(&self, id: String) -> anyhow::Result<monitor::MonitorOptions> {
        let mut options = monitor::MonitorOptions::new(id);
        options.interval = std::time::Duration::from_secs(self.probe_interval.max(1));
        options.timeout = std::time::Duration::from_secs(self.probe_timeout.max(1));
        options.concurrency = self.probe_concurrency.max(1);
        options.probes.snmp_port = self.snmp_port;
        if let Some(path) = &self.probe_config {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            options.probes.extend_from_yaml(&text).with_context(|| format!("in {}", path.display()))?;
        }
        for mapping in &self.device_address {
            let (from, to) =
                mapping.split_once('=').with_context(|| format!("--device-address `{mapping}` is not FROM=TO"))?;
            options.probes.address_map.insert(from.trim().to_owned(), to.trim().to_owned());
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    heat_reconciler::tls::install_crypto_provider();
    let mut cli = Cli::parse();
    // The demo's output is its story: the controller's logs go to a file unless asked for.
    let logs = if let Command::Demo { verbose: false, log_file, .. } = &mut cli.command {
        let path = std::env::temp_dir().join(format!("heat-reconciler-demo-{}.log", std::process::id()));
        match std::fs::File::create(&path) {
            Ok(file) => {
                *log_file = Some(path);
                init_logs_to(cli.log_format, file)
            }
            Err(_) => init_logs(cli.log_format),
        }
    } else {
        init_logs(cli.log_format)
    };
    let result = run(cli);
    // The queued log lines go out before the error that ends the process.
    drop(logs);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_roles(args: RunArgs, schema: Schema) -> anyhow::Result<()> {
    let known = ["planner", "worker", "monitor", "mirror"];
    if let Some(unknown) = args.roles.iter().find(|r| !known.contains(&r.as_str())) {
        anyhow::bail!("unknown role `{unknown}` (available: {})", known.join(", "));
    }
    // A Heat configuration mistake (a CA bundle that cannot be read, say) ends start-up before
    // etcd is even asked.
    let heat = if args.roles.iter().any(|r| r == "worker") { Some(args.heat.client()?) } else { None };
    let store = args.etcd.connect().await?;
    let mut checks = Checks::default();
    let etcd = store.clone();
    checks.add("etcd", move || {
        let etcd = etcd.clone();
        async move { etcd.revision().await.map(|_| ()).map_err(|e| etcd.describe(&e, "read /")) }
    });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    // With both roles here, the planner claims jobs for this worker as it plans them.
    let handoff = (heat.is_some() && args.roles.iter().any(|r| r == "planner")).then(Handoff::default);
    if args.roles.iter().any(|r| r == "planner") {
        let mut options = planner::PlannerOptions::new(args.id.clone().unwrap_or_else(heat_reconciler::ids::random_id));
        options.lease_ttl = std::time::Duration::from_secs(args.leader_ttl.max(2));
        options.resync_interval = std::time::Duration::from_secs(args.resync_interval.max(1));
        options.handoff = handoff.clone();
        let (progress, _) = tokio::sync::watch::channel(0);
        tasks.spawn(planner::run(store.clone(), schema.clone(), options, progress, shutdown.clone()));
    }
    if let Some(heat) = heat {
        let options = worker::WorkerOptions {
            slots: args.slots,
            lease_ttl: std::time::Duration::from_secs(args.worker_lease_ttl.max(2)),
            handoff,
            ..Default::default()
        };
        if !args.no_drift_repair {
            let mut options =
                worker::drift::DriftOptions::new(args.id.clone().unwrap_or_else(heat_reconciler::ids::random_id));
            options.lease_ttl = std::time::Duration::from_secs(args.leader_ttl.max(2));
            options.interval = std::time::Duration::from_secs(args.resync_interval.max(1));
            options.max_repairs = args.drift_repairs_per_pass;
            let (store, schema, heat, shutdown) = (store.clone(), schema.clone(), heat.clone(), shutdown.clone());
            tasks.spawn(async move { worker::drift::run(store, schema, heat, options, shutdown).await });
        }
        let reach = heat.clone();
        checks.add("heat", move || {
            let heat = reach.clone();
            async move { heat.reachable().await.map_err(|e| e.to_string()) }
        });
        tasks.spawn(worker::run(store.clone(), schema.clone(), heat, options, shutdown.clone()));
    }
    if args.roles.iter().any(|r| r == "monitor") {
        let token = args.monitor.token()?;
        let id = args.id.clone().unwrap_or_else(heat_reconciler::ids::random_id);
        let mut options = args.monitor.options(id)?;
        options.lease_ttl = std::time::Duration::from_secs(args.leader_ttl.max(2));
        let listener = tokio::net::TcpListener::bind(args.monitor.monitor_listen)
            .await
            .with_context(|| format!("listening on {}", args.monitor.monitor_listen))?;
        let (store, url, shutdown) = (store.clone(), args.monitor.url(), shutdown.clone());
        tasks.spawn(async move { monitor::serve(store, listener, &url, token, options, shutdown).await });
    }
    if args.roles.iter().any(|r| r == "mirror") {
        let client = args.mirror.client().await?;
        let reach = client.clone();
        checks.add("kubernetes", move || {
            let client = reach.clone();
            async move { client.apiserver_version().await.map(|_| ()).map_err(|e| e.to_string()) }
        });
        let id = args.id.clone().unwrap_or_else(heat_reconciler::ids::random_id);
        let mut options = mirror::MirrorOptions::new(id, args.mirror.mirror_namespace.clone());
        options.lease_ttl = std::time::Duration::from_secs(args.leader_ttl.max(2));
        options.writes_per_second = args.mirror.mirror_writes_per_second;
        options.resync_interval = std::time::Duration::from_secs(args.resync_interval.max(1));
        let (store, schema, shutdown) = (store.clone(), schema.clone(), shutdown.clone());
        tasks
            .spawn(async move { mirror::run::<mirror::LoadBalancer>(store, &schema, client, options, shutdown).await });
    }
    if let Some(address) = args.metrics_listen {
        let listener =
            tokio::net::TcpListener::bind(address).await.with_context(|| format!("--metrics-listen {address}"))?;
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
        tasks.spawn(heat_reconciler::telemetry::server::serve(listener, checks, shutdown.clone()));
    }
    tokio::spawn(async move {
        let signal = heat_reconciler::shutdown::signalled().await;
        tracing::info!(signal, "shutting down");
        let _ = stop.send(true);
    });
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

/// Runs a command that starts local services (etcd, Heat, snmpd, controllers), on a runtime of
/// its own, until it ends or the process is told to stop. Those services are child processes
/// killed when their guards drop; a signal's default action ends the process without dropping
/// anything and leaves them running, so a stop drops the command (and its guards) first.
fn run_until_stopped<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Runtime::new()?.block_on(async {
        tokio::select! {
            result = work => result,
            signal = heat_reconciler::shutdown::signalled() => {
                anyhow::bail!("stopped by {signal} (the local services it started are stopped too)")
            }
        }
    })
}

/// No-auth when a Heat URL is given, else Keystone from the `OS_*` values (of the env file or
/// the environment).
fn heat_endpoint(
    heat_url: Option<&str>,
    vars: &std::collections::HashMap<String, String>,
) -> anyhow::Result<heat::Endpoint> {
    if let Some(url) = heat_url {
        return Ok(heat::Endpoint::NoAuth { base: heat::standalone_base(url)? });
    }
    match heat::keystone::Keystone::from_vars(vars).map_err(anyhow::Error::msg)? {
        Some(keystone) => Ok(heat::Endpoint::Keystone(keystone)),
        None => {
            anyhow::bail!("the worker needs --heat-url (standalone Heat) or Keystone credentials (OS_AUTH_URL, ...)")
        }
    }
}

async fn status(args: StatusArgs, schema: &Schema) -> anyhow::Result<()> {
    use heat_reconciler::inspect::{snapshot::Snapshot, status};
    let store = args.etcd.connect().await?;
    let filter = status::Filter { resource_type: args.resource_type.clone(), not_converged: args.not_converged };
    let show = |snapshot: &Snapshot| -> anyhow::Result<String> {
        let rows = status::rows(snapshot, &filter);
        Ok(match args.output {
            Output::Table => status::table(&rows),
            Output::Json => format!("{}\n", serde_json::to_string_pretty(&rows)?),
        })
    };
    let snapshot = Snapshot::load(&store, schema).await?;
    if !args.watch {
        print!("{}", show(&snapshot)?);
        return Ok(());
    }
    // Redraw after each burst of changes (a transaction's events arrive together).
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut events = store::watch_prefix(store.clone(), "/".to_owned());
    let mut shown = String::new();
    loop {
        let snapshot = Snapshot::load(&store, schema).await?;
        let text = show(&snapshot)?;
        if text != shown {
            if terminal {
                print!("\x1b[2J\x1b[H");
            } else if !shown.is_empty() {
                println!();
            }
            print!("{text}");
            shown = text;
        }
        tokio::select! {
            event = events.recv() => { event.context("the etcd watch ended")?; }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        while events.try_recv().is_ok() {}
    }
}

/// Prints the explanation; whether the resource is converged.
async fn why(args: WhyArgs, schema: &Schema) -> anyhow::Result<bool> {
    use heat_reconciler::inspect::{snapshot, why};
    let resource = snapshot::parse_resource(&args.resource, schema)?;
    let store = args.etcd.connect().await?;
    let heat = if args.heat.given() { Some(args.heat.client()?) } else { None };
    let snapshot = snapshot::Snapshot::load(&store, schema).await?;
    let explanation = why::why(&snapshot, schema, heat.as_ref(), &resource).await?;
    print!("{}", explanation.render());
    Ok(explanation.converged)
}

/// Prints the dry run; whether applying would fail.
async fn plan(args: PlanArgs, schema: &Schema) -> anyhow::Result<bool> {
    use heat_reconciler::inspect::{dry_run, snapshot};
    let (resource_type, id) = snapshot::parse_resource(&args.resource, schema)?;
    let store = args.etcd.connect().await?;
    let heat = args.heat.client()?;
    let report = dry_run::dry_run(&store, schema, &heat, &resource_type, &id).await?;
    match args.output {
        Output::Table => print!("{}", report.render_text()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(report.would_fail())
}

fn load_schema(dir: Option<&PathBuf>) -> anyhow::Result<Schema> {
    match dir {
        Some(dir) => Schema::load(dir),
        None => Schema::shipped(),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(run_roles(*args, schema))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchPlanner { resources, batch_size, etcd_endpoints } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            run_until_stopped(heat_reconciler::bench::planner(resources, batch_size, &schema, etcd_endpoints))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchMonitor { targets, seconds, concurrency } => {
            run_until_stopped(heat_reconciler::bench::monitor(targets, seconds, concurrency))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchMirror { load_balancers, writes_per_second } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            run_until_stopped(heat_reconciler::bench::mirror(load_balancers, writes_per_second, &schema))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchStatus { resources } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            run_until_stopped(heat_reconciler::bench::status(resources, &schema))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchResync { resources } => {
            run_until_stopped(heat_reconciler::bench::resync(resources))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchE2e { stacks, concurrency } => {
            run_until_stopped(heat_reconciler::bench::e2e(stacks, concurrency))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchDrift { stacks, max_repairs } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            run_until_stopped(heat_reconciler::bench::drift(stacks, max_repairs, &schema))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { json, kubernetes, log_file, .. } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            let options = heat_reconciler::demo::DemoOptions { json_lines: json, kubernetes, log_file };
            run_until_stopped(heat_reconciler::demo::run(&schema, options))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckRecords { dir } => {
            let report = check::check_scenario(&Scenario::new(&dir))?;
            for line in report.lines() {
                println!("{line}");
            }
            Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::CheckParams { dir } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            let report = params::recheck_params(&Scenario::new(&dir), &schema)?;
            for mismatch in &report.mismatches {
                println!("FAIL {mismatch}");
            }
            println!(
                "{} jobs re-evaluated ({} without a recorded value), {} of {} params matched",
                report.jobs, report.jobs_without_record, report.params_matched, report.params_checked
            );
            let failed = report.params_checked - report.params_matched;
            println!("{} passed, {} failed", report.params_matched, failed);
            Ok(if report.mismatches.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Replay { scenario, report, etcd_endpoints, worker, heat_url } => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            let heat = match (worker, heat_url) {
                (None, _) => None,
                (Some(_), Some(base)) => {
                    Some(heat::HeatClient::new(heat::Endpoint::NoAuth { base: heat::standalone_base(&base)? })?)
                }
                (Some(_), None) => {
                    let mut local = heat_reconciler::local::LocalHeat::shared(heat_reconciler::local::ports::DEMO_HEAT);
                    let base = tokio::runtime::Runtime::new()?.block_on(local.start(true))?;
                    Some(heat::HeatClient::new(heat::Endpoint::NoAuth { base })?)
                }
            };
            let options = replay::ReplayOptions { etcd_endpoints, heat };
            let result = run_until_stopped(replay::replay(&Scenario::new(&scenario), &schema, options))?;
            if let Some(path) = report {
                replay::write_report(&result, &path)?;
            }
            for line in result.summary() {
                println!("{line}");
            }
            Ok(if result.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Chaos { resources, duration, heat_outage, converge_timeout, heat_port, seed, keep_logs } => {
            let options = heat_reconciler::chaos::ChaosOptions {
                resources,
                duration,
                heat_outage,
                converge_timeout,
                heat_port,
                seed,
                keep_logs,
                schema_dir: cli.schema_dir,
                ..Default::default()
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(heat_reconciler::chaos::run(options))?;
            println!("{}", summary.last_line());
            Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Status(args) => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            tokio::runtime::Runtime::new()?.block_on(status(args, &schema))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Why(args) => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            let converged = tokio::runtime::Runtime::new()?.block_on(why(args, &schema))?;
            Ok(if converged { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Plan(args) => {
            let schema = load_schema(cli.schema_dir.as_ref())?;
            let fails = tokio::runtime::Runtime::new()?.block_on(plan(args, &schema))?;
            Ok(if fails { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Crdgen => {
            print!("{}", mirror::crds_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportSchemas { schemas, out } => {
            let text = std::fs::read_to_string(&schemas).with_context(|| format!("reading {}", schemas.display()))?;
            let derived = schema::derive_from_gohan_schemas(&serde_json::from_str(&text)?)?;
            derived.write(&out)?;
            println!(
                "{} resource types, {} with relations, written to {}",
                derived.resource_types.len(),
                derived.relations.values().filter(|r| !r.is_empty()).count(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
