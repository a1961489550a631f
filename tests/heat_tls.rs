//! Heat and Keystone over TLS, as in a cloud whose API endpoints are https with a private CA: a
//! TLS-terminating proxy (`support::tls_proxy`, certificates of `local::certs`) in front of the
//! real shared Heat and the real shared Keystone, whose catalog's admin orchestration endpoint
//! is the proxy in front of Heat (`support::test_keystone`).
//!
//! The real binary, given the CA bundle (`--os-cacert`, or `OS_CACERT` in its Keystone env
//! file), converges a stack through the https endpoints. Without the CA, or with another one, the
//! resource's `/state` says which server's certificate was not trusted and by which CAs, and the
//! process keeps running. A CA bundle that cannot be used ends start-up with one line naming it.

mod support;

use heat_reconciler::heat::keystone::Keystone;
use heat_reconciler::heat::trust::{Refusal, Service, Trust};
use heat_reconciler::heat::{Endpoint, HeatClient, HeatError};
use heat_reconciler::local::certs::TestCa;
use heat_reconciler::local::ports;
use heat_reconciler::telemetry::metrics::HeatErrorLabels;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::test_keystone::*;
use support::tls_proxy::TlsProxy;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_heat-reconciler");

/// The binary with `args` and `env`, and nothing of the test's own `OS_*` or
/// `HEAT_RECONCILER_*` environment.
fn command(args: &[String], env: &[(&str, &Path)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("OS_") || name.starts_with("HEAT_RECONCILER_") {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// A running controller (planner and worker) and its log.
struct Controller {
    child: Spawned,
    log: PathBuf,
}

impl Controller {
    /// `run` on `etcd` with these Heat flags and environment.
    fn start(etcd: &str, heat: &[String], env: &[(&str, &Path)], log: PathBuf) -> Controller {
        let mut args: Vec<String> = ["run", "--roles", "planner,worker", "--leader-ttl", "3", "--etcd-endpoints", etcd]
            .map(String::from)
            .into();
        args.extend(heat.iter().cloned());
        let child = command(&args, env)
            .env("RUST_LOG", "heat_reconciler=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the binary starts");
        Controller { child: Spawned(child), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test if the process has ended.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the controller exited ({status}):\n{}", self.log());
        }
    }

    fn stop(self) {
        drop(self);
    }
}

/// Writes a network as Gohan does and waits for its final `/state` at version 1, checking all
/// along that the controller runs.
async fn network_state(h: &mut Harness, controller: &mut Controller) -> heat_reconciler::protocol::StateRecord {
    let id = unique("net");
    h.config("networks", json!({"id": id, "name": format!("{id}-v1"), "tenant_id": TENANT}), 1, false).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        controller.assert_running();
        if let Some(state) = h.state("networks", &id).await.filter(|s| s.version == 1)
            && !state.state.worker_state.is_empty()
            && !state.state.worker_state.ends_with("_IN_PROGRESS")
        {
            return state;
        }
        assert!(Instant::now() < deadline, "networks/{id} has no final /state within 120 s:\n{}", controller.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heat_over_tls_converges_with_the_ca_bundle_and_names_an_untrusted_certificate() {
    let mut h = Harness::without_planner().await;
    put_template(&h.store, "network", network_mappings(), NETWORK).await;
    let ca = TestCa::new("heat-reconciler test cloud CA").unwrap();
    let proxy = TlsProxy::start(&ca, 0, &heat_url()).await;
    let scratch = Scratch::new("heat-tls");
    let ca_file = scratch.file("cloud-ca.pem", ca.pem());
    let other_ca = scratch.file("other-ca.pem", TestCa::new("another CA").unwrap().pem());
    let heat = vec!["--heat-url".to_owned(), proxy.url()];
    let etcd = h.etcd.client_url.clone();

    // With the cloud's CA (the flag wins over an OS_CACERT of the environment): converged.
    let flagged = [heat.clone(), vec![format!("--os-cacert={}", path(&ca_file))]].concat();
    let mut controller =
        Controller::start(&etcd, &flagged, &[("OS_CACERT", other_ca.as_path())], scratch.path().join("with-ca.log"));
    let state = network_state(&mut h, &mut controller).await;
    assert_eq!((state.state.worker_state.as_str(), state.error.as_str()), ("CREATE_COMPLETED", ""));
    assert_eq!(state.state.orchestration_state.as_deref(), Some("CREATE_COMPLETE"));
    assert!(controller.log().contains("trusting only these CAs"), "{}", controller.log());
    controller.stop();

    // Without it: the system's store does not know the test CA. The job fails at once (no retry
    // heals a certificate), saying so, and the process goes on.
    let mut controller = Controller::start(&etcd, &heat, &[], scratch.path().join("without-ca.log"));
    let state = network_state(&mut h, &mut controller).await;
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert_eq!(
        state.error,
        format!(
            "TLS: Heat at {}: the server certificate is not trusted: it is not signed by a CA of the system's store \
             (give the cloud's CA bundle with --os-cacert or OS_CACERT)",
            proxy.url()
        )
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    controller.assert_running();
    assert!(controller.log().contains(&state.error), "the log names it too:\n{}", controller.log());
    controller.stop();

    // Another CA, from the environment.
    let mut controller =
        Controller::start(&etcd, &heat, &[("OS_CACERT", other_ca.as_path())], scratch.path().join("other.log"));
    let state = network_state(&mut h, &mut controller).await;
    assert_eq!(
        state.error,
        format!(
            "TLS: Heat at {}: the server certificate is not trusted: it is not signed by a CA of the bundle {} \
             (OS_CACERT)",
            proxy.url(),
            path(&other_ca)
        )
    );
    controller.assert_running();
    controller.stop();
}

/// The test Keystone's application-credential env file, with Keystone's URL `auth_url`, the
/// admin orchestration endpoint (the TLS proxy in front of Heat) and these extra lines.
fn keystone_env(ks: &TestKeystone, auth_url: &str, extra: &str) -> String {
    let lines: Vec<String> = ks
        .openrc("appcred")
        .lines()
        .filter(|line| !line.starts_with("OS_AUTH_URL=") && !line.starts_with("OS_INTERFACE="))
        .map(String::from)
        .collect();
    format!("{}\nOS_AUTH_URL={auth_url}\nOS_INTERFACE=admin\n{extra}", lines.join("\n"))
}

fn heat_client(vars_text: &str, flag: Option<&Path>) -> HeatClient {
    let vars = Keystone::parse_env_file(vars_text);
    let keystone = Keystone::from_vars(&vars).unwrap().expect("OS_AUTH_URL is set");
    let trust = Trust::given(flag, &vars, None).expect("the bundle reads");
    HeatClient::with_trust(Endpoint::Keystone(keystone), trust).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_and_heat_from_its_catalog_over_tls_trust_the_bundle_of_the_env_file() {
    let ks = keystone();
    // Keystone and Heat behind front ends with certificates of different CAs; the bundle that
    // works holds both.
    let (keystone_ca, heat_ca) =
        (TestCa::new("keystone front end CA").unwrap(), TestCa::new("heat front end CA").unwrap());
    let keystone_proxy = TlsProxy::start(&keystone_ca, 0, &ks.auth_url).await;
    let heat_proxy = TlsProxy::start(&heat_ca, ports::TEST_HEAT_TLS, &heat_url()).await;
    assert_eq!(heat_proxy.url(), heat_tls_url());
    let auth_url = format!("{}/v3", keystone_proxy.url());
    let scratch = Scratch::new("heat-tls");
    let both = scratch.file("both.pem", &format!("{}{}", keystone_ca.pem(), heat_ca.pem()));
    let keystone_only = scratch.file("keystone-ca.pem", keystone_ca.pem());
    let project = ks.project_id();

    // Heat is found in the catalog at its https endpoint, and answers through it.
    let heat = heat_client(&keystone_env(ks, &auth_url, ""), Some(&both));
    assert_eq!(heat.find(&project, "no-such-stack").await.unwrap(), None);
    let vars = Keystone::parse_env_file(&keystone_env(ks, &auth_url, ""));
    let keystone = Keystone::from_vars(&vars).unwrap().unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(keystone_ca.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let session = keystone.session(&trusting, &project).await.unwrap();
    assert_eq!(session.orchestration_url, format!("{}/v1/{project}", heat_tls_url()));

    // Each server whose certificate is not trusted is named, with what was trusted.
    let refused = |service, origin: String, trusted: String| HeatError::Untrusted {
        service,
        origin,
        refusal: Refusal::UnknownIssuer,
        trusted: Some(trusted),
    };
    let error = heat_client(&keystone_env(ks, &auth_url, ""), Some(&keystone_only))
        .find(&project, "no-such-stack")
        .await
        .unwrap_err();
    let only = format!("a CA of the bundle {} (--os-cacert)", path(&keystone_only));
    assert_eq!(error.to_string(), refused(Service::Heat, heat_tls_url(), only).to_string());
    assert!(!error.is_transient());
    // Counted as the certificate's fault, not the network's (this binary's other tests run the
    // controller in processes of their own).
    let errors = |status: &str| {
        let labels = HeatErrorLabels { status: status.to_owned() };
        heat_reconciler::telemetry::metrics().heat_errors.get_or_create(&labels).get()
    };
    assert_eq!((errors("untrusted"), errors("unreachable")), (1, 0));
    let error = heat_client(&keystone_env(ks, &auth_url, ""), None).find(&project, "no-such-stack").await.unwrap_err();
    let system = "a CA of the system's store (give the cloud's CA bundle with --os-cacert or OS_CACERT)".to_owned();
    assert_eq!(error.to_string(), refused(Service::Keystone, keystone_proxy.url(), system).to_string());

    // The binary, with OS_CACERT in its env file, converges a stack through both.
    let mut h = Harness::without_planner().await;
    put_template(&h.store, "network", network_mappings(), NETWORK).await;
    let env_file = scratch.file("keystone.env", &keystone_env(ks, &auth_url, &format!("OS_CACERT={}\n", path(&both))));
    let flags = vec![format!("--keystone-env-file={}", path(&env_file))];
    let mut controller = Controller::start(&h.etcd.client_url, &flags, &[], scratch.path().join("keystone.log"));
    let state = network_state(&mut h, &mut controller).await;
    assert_eq!(
        (state.state.worker_state.as_str(), state.error.as_str()),
        ("CREATE_COMPLETED", ""),
        "{}",
        controller.log()
    );
    controller.stop();
}

/// Environment variables given to the binary.
type Env<'a> = Vec<(&'a str, &'a Path)>;

/// Runs `args` expecting it to end within 15 s; its exit code and stderr.
fn run_bounded(args: &[String], env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let began = Instant::now();
    let mut child = command(args, env).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > Duration::from_secs(15) {
            child.kill().ok();
            panic!("{args:?} still runs after 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_ca_bundle_that_cannot_be_used_ends_start_up_with_one_line_naming_it() {
    let scratch = Scratch::new("heat-tls");
    let missing = scratch.path().join("no-such-ca.pem");
    let key_only = scratch.file("key.pem", &TestCa::new("a CA").unwrap().loopback_server().unwrap().key_pem);
    let env_file = scratch.file("keystone.env", &format!("OS_AUTH_URL=https://keystone:5000\nOS_APPLICATION_CREDENTIAL_ID=x\nOS_APPLICATION_CREDENTIAL_SECRET=y\nOS_CACERT={}\n", path(&missing)));
    // No etcd listens there: the bundle is checked before etcd is asked.
    let run = |heat: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["run", "--etcd-endpoints", "http://127.0.0.1:9"].map(String::from).into();
        args.extend(heat.iter().map(|s| s.to_string()));
        args
    };
    let cases: [(Vec<String>, Env, String); 4] = [
        (
            run(&["--heat-url", "https://heat:8004", "--os-cacert", &path(&missing)]),
            vec![],
            format!(
                "error: the CA bundle {} (--os-cacert) cannot be read: No such file or directory (os error 2)",
                path(&missing)
            ),
        ),
        (
            run(&["--heat-url", "https://heat:8004"]),
            vec![("OS_CACERT", key_only.as_path())],
            format!("error: the CA bundle {} (OS_CACERT) holds no PEM certificate", path(&key_only)),
        ),
        (
            run(&["--keystone-env-file", &path(&env_file)]),
            vec![],
            format!(
                "error: the CA bundle {} (OS_CACERT in {}) cannot be read: No such file or directory (os error 2)",
                path(&missing),
                path(&env_file)
            ),
        ),
        (
            // The flag wins: the env file's missing bundle is not read.
            run(&["--keystone-env-file", &path(&env_file), "--os-cacert", &path(&key_only)]),
            vec![],
            format!("error: the CA bundle {} (--os-cacert) holds no PEM certificate", path(&key_only)),
        ),
    ];
    for (args, env, expected) in cases {
        let (code, stderr) = run_bounded(&args, &env);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), expected, "{args:?}");
    }
}
