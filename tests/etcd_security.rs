//! The controller on a real etcd secured as in production: TLS with a serving certificate for
//! 127.0.0.1, client certificates required, and etcd's own authentication enabled (certificates
//! made here with rcgen, users created through etcd's auth API; `LocalEtcd::start_secured`).
//!
//! The real binary, given only its `--etcd-*` flags, converges the flagship load-balancer flow
//! (planner and worker on the shared standalone Heat), `status`, `why` and `plan` read the
//! secured etcd, the monitor serves its target API and writes `/monitoring` (a real snmpd), and
//! the mirror fills a real kube-apiserver. A wrong CA, a missing client certificate, a wrong
//! password and a user without rights each end `run` of every role, `status`, `why` and `plan`
//! within seconds with one line naming the cause. A right revoked while `run` runs is named in
//! the same terms, once per loop, and granting it back heals the controller without a restart.
//! No output ever holds a password.

mod support;

use heat_reconciler::local::certs::TestCa;
use heat_reconciler::local::{LocalEtcd, LocalKubeApiserver, LocalSnmpd};
use heat_reconciler::schema::Schema;
use heat_reconciler::store::{EtcdAccess, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{Scratch, Spawned};

const BIN: &str = env!("CARGO_BIN_EXE_heat-reconciler");

/// How long a refused command may take to end (the start-up check's own bound is 10 s).
const REFUSAL_BOUND: Duration = Duration::from_secs(15);

fn path(path: &Path) -> String {
    path.display().to_string()
}

/// The binary with `args`, its etcd password (if any) in the environment only, and no other etcd
/// setting inherited from the test's environment.
fn command(args: &[String], password: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("HEAT_RECONCILER_ETCD") {
            command.env_remove(name);
        }
    }
    if let Some(password) = password {
        command.env("HEAT_RECONCILER_ETCD_PASSWORD", password);
    }
    command
}

/// Runs a command that is expected to end by itself within [`REFUSAL_BOUND`]; its output and
/// how long it took. A command still running then is killed and fails the test.
fn run_bounded(mut command: Command) -> (Output, Duration) {
    let began = Instant::now();
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    while child.try_wait().expect("waiting").is_none() {
        if began.elapsed() > REFUSAL_BOUND {
            child.kill().ok();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {REFUSAL_BOUND:?}; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr).lines().take(20).collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), began.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `--etcd-*` flags of a client of `etcd` (endpoint, CA, client certificate, user).
struct Flags {
    endpoint: String,
    ca: Option<PathBuf>,
    cert: Option<(PathBuf, PathBuf)>,
    user: Option<String>,
    password_file: Option<PathBuf>,
}

impl Flags {
    /// Everything right: the CA, the client certificate and the controller's user.
    fn good(etcd: &LocalEtcd) -> Flags {
        let security = etcd.security.as_ref().expect("a secured etcd");
        Flags {
            endpoint: etcd.client_url.clone(),
            ca: Some(security.ca_file.clone()),
            cert: Some((security.cert_file.clone(), security.key_file.clone())),
            user: Some(security.user.clone()),
            password_file: None,
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![format!("--etcd-endpoints={}", self.endpoint)];
        if let Some(ca) = &self.ca {
            args.push(format!("--etcd-ca-file={}", path(ca)));
        }
        if let Some((cert, key)) = &self.cert {
            args.push(format!("--etcd-cert-file={}", path(cert)));
            args.push(format!("--etcd-key-file={}", path(key)));
        }
        if let Some(user) = &self.user {
            args.push(format!("--etcd-user={user}"));
        }
        if let Some(file) = &self.password_file {
            args.push(format!("--etcd-password-file={}", path(file)));
        }
        args
    }
}

/// `run` of the planner and worker roles with these flags.
fn run_args(flags: &Flags, heat_url: &str) -> Vec<String> {
    with_flags(&["run", "--roles", "planner,worker", "--leader-ttl", "3", "--heat-url", heat_url], flags)
}

/// `args`, then the `--etcd-*` flags.
fn with_flags(args: &[&str], flags: &Flags) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(flags.args());
    all
}

/// The binary running as a child process (its password from a file, never the environment),
/// its stderr in a file.
struct Running {
    what: &'static str,
    child: Spawned,
    log: PathBuf,
}

impl Running {
    fn start(what: &'static str, args: &[String], log: PathBuf) -> Running {
        let child = command(args, None)
            .env("RUST_LOG", "heat_reconciler=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the binary starts");
        Running { what, child: Spawned(child), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test, with the log, if the process has ended.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the {} exited ({status}):\n{}", self.what, self.log());
        }
    }

    /// Waits until `done` holds, at most `secs` seconds, checking all along that the process
    /// runs.
    async fn until<F: AsyncFnMut() -> bool>(&mut self, secs: u64, waiting_for: &str, mut done: F) {
        let began = Instant::now();
        loop {
            self.assert_running();
            if done().await {
                return;
            }
            assert!(began.elapsed() < Duration::from_secs(secs), "{waiting_for} within {secs} s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ends it; its log, checked to show neither `password` nor a refusal.
    fn stop_clean(mut self, password: &str) -> String {
        self.child.kill().ok();
        self.child.wait().ok();
        let log = self.log();
        assert!(!log.contains(password), "the password is in the {}'s log", self.what);
        assert!(!log.contains("permission denied") && !log.contains("authentication failed"), "{log}");
        log
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_converges_the_flagship_flow_over_tls_and_etcd_auth() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start_secured().await.expect("a secured etcd starts");
    let security = etcd.security.clone().unwrap();
    let root = etcd.connect().await.expect("root connects");
    let schema = Schema::shipped().unwrap();
    let heat_url = support::heat_url();
    let scratch = Scratch::new("etcd-security");

    // `run` reads its password from a file (as the chart mounts it), with a trailing newline.
    let mut flags = Flags::good(&etcd);
    flags.password_file = Some(scratch.file("password", &format!("{}\n", security.password)));
    let log = scratch.path().join("controller.log");
    let mut controller = command(&run_args(&flags, &heat_url), None)
        .stdout(std::fs::File::create(scratch.path().join("controller.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the controller starts");

    support::write_flagship_as_gohan(&root, &schema, &mut controller, &log).await;
    let lb = format!("/state/v2.0/load_balancers/{}", support::FLAGSHIP_LB);
    let lb_state = support::state_at(&root, &lb).await.expect("the load balancer has a state");
    assert_eq!((lb_state.version, lb_state.state.worker_state.as_str()), (2, "MODIFY_COMPLETED"), "{lb_state:?}");

    // The operator's commands, with the password from the environment.
    let operator = |args: &[&str]| -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(Flags::good(&etcd).args());
        command(&all, Some(&security.password)).output().expect("the command runs")
    };
    let status = operator(&["status", "-o", "json"]);
    assert!(status.status.success(), "status: {}", text(&status.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&status.stdout).expect("status -o json");
    let row = rows.iter().find(|r| r["id"] == support::FLAGSHIP_LB).expect("the load balancer's row");
    assert_eq!((row["applied_version"].clone(), row["converged"].clone()), (2.into(), true.into()), "{row}");
    let unconverged: Vec<&Value> = rows.iter().filter(|r| r["converged"] != true).collect();
    assert!(unconverged.is_empty(), "not converged: {unconverged:?}");

    let resource = format!("load_balancer/{}", support::FLAGSHIP_LB);
    let why = operator(&["why", &resource]);
    assert!(why.status.success(), "why exits 0 for a converged resource: {}{}", text(&why.stdout), text(&why.stderr));
    assert!(text(&why.stdout).contains("converged: version 2 applied"), "{}", text(&why.stdout));

    let plan = operator(&["plan", &resource, "--heat-url", &heat_url]);
    assert!(plan.status.success(), "plan: {}{}", text(&plan.stdout), text(&plan.stderr));
    let report = text(&plan.stdout);
    assert!(report.starts_with(&format!("plan {resource} (etcd revision ")), "{report}");
    assert!(report.contains("already converged"), "{report}");

    controller.kill().ok();
    controller.wait().ok();
    let logs = std::fs::read_to_string(&log).unwrap();
    for (what, output) in
        [("run", logs.as_str()), ("status", &text(&status.stderr)), ("why", &text(&why.stdout)), ("plan", &report)]
    {
        assert!(!output.contains(&security.password), "the password is in the output of {what}");
    }
    // Nothing was refused on the way.
    assert!(!logs.contains("permission denied") && !logs.contains("authentication failed"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_ends_every_role_and_command_within_seconds_with_its_cause() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start_secured().await.expect("a secured etcd starts");
    let security = etcd.security.clone().unwrap();
    let scratch = Scratch::new("etcd-security");
    let other_ca = scratch.file("other-ca.crt", TestCa::new("another CA").unwrap().pem());
    let endpoint = etcd.client_url.clone();

    let wrong_ca = Flags { ca: Some(other_ca), ..Flags::good(&etcd) };
    let no_client_cert = Flags { cert: None, ..Flags::good(&etcd) };
    let powerless = Flags { user: Some(security.powerless_user.clone()), ..Flags::good(&etcd) };
    let wrong_password = "not-the-password-7f3a";
    let cases = [
        (
            "a wrong CA",
            wrong_ca,
            security.password.as_str(),
            "TLS: the server certificate is not signed by the CA in --etcd-ca-file",
        ),
        (
            "no client certificate",
            no_client_cert,
            &security.password,
            "TLS: etcd requires a client certificate: give --etcd-cert-file and --etcd-key-file",
        ),
        (
            "a wrong password",
            Flags::good(&etcd),
            wrong_password,
            "etcd rejected the user `heat-reconciler`: authentication failed (wrong password, or no such user?)",
        ),
        (
            "a user without rights",
            powerless,
            &security.powerless_password,
            "etcd user `nobody` may not read /config/: permission denied",
        ),
    ];
    let resource = format!("load_balancer/{}", support::FLAGSHIP_LB);
    for (what, flags, password, cause) in cases {
        // Every role, and every command that reads etcd (nothing listens on port 9: none of them
        // may get as far as Heat, the monitor's listener or Kubernetes).
        let commands = [
            run_args(&flags, "http://127.0.0.1:9"),
            with_flags(&["run", "--roles", "monitor", "--monitor-listen", "127.0.0.1:0"], &flags),
            with_flags(&["run", "--roles", "mirror", "--kubeconfig", "/nonexistent/kubeconfig"], &flags),
            with_flags(&["status"], &flags),
            with_flags(&["why", &resource], &flags),
            with_flags(&["plan", &resource, "--heat-url", "http://127.0.0.1:9"], &flags),
        ];
        for args in commands {
            let (output, took) = run_bounded(command(&args, Some(password)));
            let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
            let context = format!("{} with {what} (took {took:?}):\n{stderr}", args[..3].join(" "));
            assert_eq!(output.status.code(), Some(2), "{context}");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines, [format!("error: etcd at {endpoint}: {cause}")], "{context}");
            assert!(stdout.is_empty(), "{context}\nstdout: {stdout}");
            for secret in [security.password.as_str(), &security.powerless_password, wrong_password] {
                assert!(!stderr.contains(secret), "a password in the output: {context}");
            }
        }
    }

    // The password is never an argument.
    let mut args = run_args(&Flags::good(&etcd), "http://127.0.0.1:9");
    args.push(format!("--etcd-password={}", security.password));
    let (output, _) = run_bounded(command(&args, None));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unexpected argument '--etcd-password'"), "{}", text(&output.stderr));
}

/// A client certificate of another CA, and endpoints of the wrong scheme, are named too (checked
/// in-process: the binary prints what [`Store::connect_checked`] says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_client_certificate_and_a_wrong_scheme_are_named() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start_secured().await.expect("a secured etcd starts");
    let plain = LocalEtcd::start().await.expect("a plain etcd starts");
    let security = etcd.security.clone().unwrap();
    let ca = std::fs::read(&security.ca_file).unwrap();
    let user = Some((security.user.clone(), security.password.clone()));
    let foreign = TestCa::new("another CA").unwrap().client("intruder").unwrap();
    let cases = [
        (
            etcd.client_url.clone(),
            EtcdAccess {
                ca: Some(ca.clone()),
                identity: Some((foreign.cert_pem.into_bytes(), foreign.key_pem.into_bytes())),
                user: user.clone(),
            },
            "TLS: etcd did not accept the client certificate of --etcd-cert-file",
        ),
        (
            etcd.client_url.replace("https://", "http://"),
            EtcdAccess::default(),
            "etcd closed the connection: does it serve TLS? then use https:// endpoints",
        ),
        (
            plain.client_url.replace("http://", "https://"),
            EtcdAccess { ca: Some(ca), ..Default::default() },
            "does etcd serve TLS on this port? (a plain etcd needs http://)",
        ),
    ];
    for (endpoint, access, cause) in cases {
        let began = Instant::now();
        let error = match Store::connect_checked(std::slice::from_ref(&endpoint), &access, "/config/").await {
            Ok(_) => panic!("{endpoint} with {access:?} was let in"),
            Err(error) => error.to_string(),
        };
        assert!(began.elapsed() < REFUSAL_BOUND, "{endpoint}: took {:?}", began.elapsed());
        assert!(error.starts_with(&format!("etcd at {endpoint}: ")) && error.contains(cause), "{endpoint}: {error}");
        assert!(!error.contains(&security.password), "{error}");
        assert!(!format!("{access:?}").contains(&security.password), "the access's Debug shows the password");
    }
}

/// Files that hold no PEM certificate or key, or a key that is not the certificate's, are named
/// before any connection (TLS would only say that the server is not trusted, or "transport
/// error").
#[tokio::test]
async fn unusable_certificate_files_are_named_before_connecting() {
    heat_reconciler::tls::install_crypto_provider();
    let ca = TestCa::new("a CA").unwrap();
    let client = ca.client("someone").unwrap();
    let other = ca.client("someone else").unwrap();
    let pem = |text: &str| text.as_bytes().to_vec();
    let with = |ca_pem: &[u8], cert: &str, key: &str| EtcdAccess {
        ca: Some(ca_pem.to_vec()),
        identity: Some((pem(cert), pem(key))),
        user: Some(("heat-reconciler".into(), "a-password-9c1e".into())),
    };
    let cases = [
        (with(b"not a certificate", &client.cert_pem, &client.key_pem), "--etcd-ca-file holds no PEM certificate"),
        (with(ca.pem().as_bytes(), "garbage", &client.key_pem), "--etcd-cert-file holds no PEM certificate"),
        (with(ca.pem().as_bytes(), &client.key_pem, &client.cert_pem), "--etcd-cert-file holds no PEM certificate"),
        (with(ca.pem().as_bytes(), &client.cert_pem, "garbage"), "--etcd-key-file holds no PEM private key"),
        (
            with(ca.pem().as_bytes(), &client.cert_pem, &other.key_pem),
            "--etcd-key-file is not the key of --etcd-cert-file",
        ),
    ];
    // Nothing listens on port 9: the check must not get as far as connecting.
    let endpoint = "https://127.0.0.1:9".to_owned();
    for (access, cause) in cases {
        let error = match Store::connect_checked(std::slice::from_ref(&endpoint), &access, "/config/").await {
            Ok(_) => panic!("{access:?} connected"),
            Err(error) => error.to_string(),
        };
        assert_eq!(error, format!("etcd at {endpoint}: {cause}"));
    }
}

/// etcd's login tokens expire when unused (5 minutes by default; 1 s here): the store logs in
/// again, where a client that does not is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_login_token_is_renewed() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start_secured_with_token_ttl(Duration::from_secs(1)).await.expect("a secured etcd starts");
    let security = etcd.security.clone().unwrap();
    let read = |path: &Path| std::fs::read(path).unwrap();
    let access = EtcdAccess {
        ca: Some(read(&security.ca_file)),
        identity: Some((read(&security.cert_file), read(&security.key_file))),
        user: Some((security.user.clone(), security.password.clone())),
    };
    let store = Store::connect_checked(&etcd.endpoints(), &access, "/config/").await.expect("the user gets in");
    // The same login without renewal, to show that the token did expire.
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read(&security.ca_file)))
        .identity(etcd_client::Identity::from_pem(read(&security.cert_file), read(&security.key_file)));
    let options = etcd_client::ConnectOptions::new().with_tls(tls).with_user(&security.user, &security.password);
    let mut plain = etcd_client::Client::connect(etcd.endpoints(), Some(options)).await.expect("connects");
    plain.get("/config/", None).await.expect("a fresh token works");

    tokio::time::sleep(Duration::from_secs(4)).await;
    let refused = plain.get("/config/", None).await.expect_err("the unused token expired");
    assert!(refused.to_string().contains("invalid auth token"), "{refused}");
    store.list("/config/").await.expect("the store logs in again");
    store.put("/config/renewed", "yes").await.expect("and writes");
}

/// The monitor role on the secured etcd with only its `--etcd-*` flags (the password from a
/// file): it starts, serves its target API, keeps the registered target in etcd and writes the
/// device's `/monitoring` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_serves_its_api_and_writes_monitoring_on_the_secured_etcd() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start_secured().await.expect("a secured etcd starts");
    let security = etcd.security.clone().unwrap();
    let root = etcd.connect().await.expect("root connects");
    let community = "community-7d1e";
    let device = LocalSnmpd::start(&[community], &[]).await.expect("snmpd starts");
    let scratch = Scratch::new("etcd-security-monitor");
    let token = "monitor-token-52ab";
    let token_file = scratch.file("token", token);
    let mut flags = Flags::good(&etcd);
    flags.password_file = Some(scratch.file("password", &format!("{}\n", security.password)));
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let args = with_flags(
        &[
            "run",
            "--roles",
            "monitor",
            "--leader-ttl",
            "3",
            "--monitor-listen",
            &api.to_string(),
            "--monitor-token-file",
            &path(&token_file),
            "--probe-interval",
            "1",
            "--probe-timeout",
            "1",
            "--device-address",
            &format!("lb.example={}", device.addr()),
        ],
        &flags,
    );
    let mut monitor = Running::start("monitor", &args, scratch.path().join("monitor.log"));

    let client = reqwest::Client::new();
    let api = format!("http://{api}");
    monitor
        .until(30, "the target API answers", async || {
            client.get(format!("{api}/healthz")).send().await.is_ok_and(|a| a.status() == 200)
        })
        .await;
    let lb = support::unique("lb");
    let target = serde_json::json!({"type": "snmp_device_lb", "resource_type": "load_balancers",
        "resource_id": lb, "field_name": "load_balancer", "tenant_id": support::TENANT, "version": 1,
        "properties": {"device_ip": "lb.example", "community_name": community},
        "syncer_properties": {"etcd": {"status": {"key": "load_balancer"}}}});
    let answer = client.post(format!("{api}/targets")).header("X-Auth-Token", token).json(&target).send().await;
    let answer = answer.expect("the target API answers");
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap_or_default());

    let key = format!("/monitoring/v2.0/load_balancers/{lb}");
    monitor
        .until(30, &format!("{key} is UP"), async || {
            let found = root.get(&key).await.expect("root reads").map(|kv| text(&kv.value));
            found.as_deref() == Some(r#"{"load_balancer":"UP","version":1}"#)
        })
        .await;
    monitor.stop_clean(&security.password);
}

/// The mirror role on the secured etcd with only its `--etcd-*` flags: the flagship load
/// balancer's records become its `LoadBalancer` custom resource in a real kube-apiserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_mirrors_from_the_secured_etcd() {
    heat_reconciler::tls::install_crypto_provider();
    let etcd = LocalEtcd::start_secured().await.expect("a secured etcd starts");
    let security = etcd.security.clone().unwrap();
    let root = etcd.connect().await.expect("root connects");
    for (key, value) in support::flagship_records() {
        root.put(&key, value).await.expect("root writes");
    }
    let kube = LocalKubeApiserver::start().await.expect("kube-apiserver (bash scripts/prepare-kube.sh)");
    kube.install_crds().await.expect("the CRD is installed");
    let namespace = support::unique("lb");
    kube.kubectl_ok(&["create", "namespace", &namespace]).unwrap();
    let scratch = Scratch::new("etcd-security-mirror");
    let mut flags = Flags::good(&etcd);
    flags.password_file = Some(scratch.file("password", &security.password));
    let kubeconfig = path(&kube.kubeconfig);
    let args = with_flags(
        &[
            "run",
            "--roles",
            "mirror",
            "--leader-ttl",
            "3",
            "--kubeconfig",
            &kubeconfig,
            "--mirror-namespace",
            &namespace,
        ],
        &flags,
    );
    let mut mirror = Running::start("mirror", &args, scratch.path().join("mirror.log"));
    mirror
        .until(60, &format!("the LoadBalancer in {namespace}"), async || {
            let shown = kube.kubectl_ok(&["get", "loadbalancers", "-n", &namespace, "-o", "name"]);
            shown.unwrap_or_default().contains(support::FLAGSHIP_LB)
        })
        .await;
    mirror.stop_clean(&security.password);
}

/// etcd refusing once the controller runs (its user's role revoked, as an operator might by
/// mistake): the log says so in the start-up check's terms, naming the user and the keys, once
/// per loop rather than at every retry; the process keeps trying, and once the role is granted
/// back a new config converges without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_revoked_while_running_is_named_once_and_healed_by_granting_it_back() {
    heat_reconciler::tls::install_crypto_provider();
    let mut h = support::Harness::on(LocalEtcd::start_secured().await.expect("a secured etcd starts")).await;
    support::put_template(&h.store, "network", support::network_mappings(), support::NETWORK).await;
    let security = h.etcd.security.clone().unwrap();
    let scratch = Scratch::new("etcd-security-revoked");
    let mut flags = Flags::good(&h.etcd);
    flags.password_file = Some(scratch.file("password", &security.password));
    let mut controller =
        Running::start("controller", &run_args(&flags, &support::heat_url()), scratch.path().join("controller.log"));
    // Writes a network as Gohan does; its id.
    let write = async |h: &mut support::Harness| {
        let id = support::unique("net");
        h.config("networks", serde_json::json!({"id": id, "name": id, "tenant_id": support::TENANT}), 1, false).await;
        id
    };
    let converged = async |h: &support::Harness, controller: &mut Running, id: &str| {
        controller
            .until(120, &format!("networks/{id} converged"), async || {
                let state = h.state("networks", id).await.filter(|s| s.version == 1);
                let Some(state) = state.filter(|s| !s.state.worker_state.ends_with("_IN_PROGRESS")) else {
                    return false;
                };
                assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{state:?}");
                true
            })
            .await
    };
    let first = write(&mut h).await;
    converged(&h, &mut controller, &first).await;

    // Revoked: the open watches go on (etcd checks a watch's rights when it is made), so the
    // controller hears of the next config, and etcd refuses what it then writes and reads.
    h.etcd.set_controller_rights(false).await.expect("the role is revoked");
    let waiting = write(&mut h).await;
    let refused =
        |line: &&str| line.contains("etcd user `heat-reconciler` may not") && line.contains("permission denied");
    let log = controller.log.clone();
    controller
        .until(30, "a line naming the refusal", async || {
            std::fs::read_to_string(&log).unwrap_or_default().lines().any(|line| refused(&line))
        })
        .await;
    // Long enough for every loop to retry several times (the backoff reaches 5 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    controller.assert_running();
    let during = controller.log();
    let lines: Vec<&str> = during.lines().filter(refused).collect();
    assert!(lines.iter().any(|line| line.contains("may not read and write /")), "the keys are named: {lines:#?}");
    let mut seen = std::collections::BTreeSet::new();
    for line in &lines {
        // The same loop logs the same cause once: no two lines alike but for their time.
        let content = line.split_once(' ').map_or(*line, |(_, rest)| rest);
        assert!(seen.insert(content.to_owned()), "logged again: {content}\n{during}");
    }
    assert!(!during.contains("status:") && !during.contains("GRpcStatus"), "a raw gRPC status:\n{during}");
    eprintln!("while refused:\n{}", lines.join("\n"));

    // Granted back: the config written meanwhile converges, and so does a new one.
    h.etcd.set_controller_rights(true).await.expect("the role is granted again");
    converged(&h, &mut controller, &waiting).await;
    let last = write(&mut h).await;
    converged(&h, &mut controller, &last).await;
    assert!(controller.log().contains("etcd answers again"), "{}", controller.log());
    controller.child.kill().ok();
    controller.child.wait().ok();
    assert!(!controller.log().contains(&security.password), "the password is in the log");
}
