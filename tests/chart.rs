//! The Helm chart (`charts/heat-reconciler`): `helm lint --strict`; `helm template` with the
//! default values, `ci/all-on-values.yaml` and a few variants, every document parsed as its
//! Kubernetes type (and serialised back to the same JSON, so no field is misspelt or misplaced)
//! and checked: hardened pods, probes on the metrics port, only flags the binary has, secrets only
//! as mounted files, Services, disruption budgets, the mirror's Role. The chart's CRD is the
//! project's. The rendered arguments start the real binary (its probe endpoints answer); the etcd
//! TLS and password Secrets, mounted as the kubelet would, get it into a real etcd with TLS,
//! client certificates and authentication; and on a real kube-apiserver the chart installs, and the real mirror, run with the installed arguments
//! and the mirror ServiceAccount's token, mirrors a load balancer (creating, patching, status,
//! deleting) while everything outside its Role is forbidden.
//!
//! helm, kubectl and kube-apiserver come from `scripts/prepare-kube.sh`: without them these tests
//! fail, they never skip.

use heat_reconciler::bench::mirror::{load_balancer_id, load_balancer_records};
use heat_reconciler::local::LocalEtcd;
use heat_reconciler::local::LocalKubeApiserver;
use heat_reconciler::local::kube_apiserver::binary;
use heat_reconciler::secrets::is_secret_key;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/heat-reconciler");
const BIN: &str = env!("CARGO_BIN_EXE_heat-reconciler");
const RELEASE: &str = "rel";
const NAMESPACE: &str = "esi";
const METRICS_PORT: i32 = 9090;
/// The user and group of the image (Dockerfile: `USER 65532:65532`).
const IMAGE_USER: i64 = 65532;
/// What the mirror's Role grants: resource → verbs (the Role's comment says why each is needed).
const MIRROR_RULES: [(&str, &[&str]); 2] =
    [("loadbalancers", &["create", "delete", "list", "patch", "watch"]), ("loadbalancers/status", &["patch"])];
const API_GROUP: &str = "esi.heat-reconciler.io";

// ---------------------------------------------------------------------------------------------
// Running helm, kubectl and the binary

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("heat-reconciler-{prefix}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique_suffix() -> String {
    format!("{}-{:08x}", std::process::id(), rand::random::<u32>())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// helm from the prepared binaries, with HOME and Helm's directories inside `home`, so it never
/// writes into the user's home or the project, and no HELM_* or KUBECONFIG of the caller's.
fn helm(home: &Path, args: &[&str]) -> Output {
    let helm = binary("helm").expect("helm is needed (bash scripts/prepare-kube.sh)");
    let mut command = Command::new(helm);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HELM_") {
            command.env_remove(key);
        }
    }
    command
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running helm")
}

/// helm's stdout; panics with its stderr when it fails.
fn helm_ok(home: &Path, args: &[&str]) -> String {
    let output = helm(home, args);
    assert!(
        output.status.success(),
        "helm {} failed ({}):\n{}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("helm prints UTF-8")
}

/// `helm template` of the chart in [`NAMESPACE`] as [`RELEASE`], CRDs included.
fn render(home: &Path, extra: &[&str]) -> String {
    let mut args = vec!["template", RELEASE, CHART, "--namespace", NAMESPACE, "--include-crds"];
    args.extend_from_slice(extra);
    helm_ok(home, &args)
}

fn all_on_values() -> String {
    format!("{CHART}/ci/all-on-values.yaml")
}

/// Every long flag the binary accepts: the options of `heat-reconciler --help` (the global ones)
/// and of `heat-reconciler run --help`, read from clap's option lines (`  -x, --name <V>`).
fn cli_flags() -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let output = Command::new(BIN).args(args).output().expect("running heat-reconciler");
        assert!(output.status.success(), "heat-reconciler {} failed", args.join(" "));
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            // Option lines: `  -x, --name` or `      --name`; descriptions are indented further.
            let option = line.trim_start();
            if line.len() - option.len() > 6 || !option.starts_with('-') {
                continue;
            }
            let option = option.split_once(", ").map_or(option, |(_, long)| long);
            if let Some(long) = option.strip_prefix("--") {
                let name: String = long.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                flags.insert(name);
            }
        }
    }
    assert!(flags.contains("etcd-endpoints") && flags.contains("schema-dir"), "no flags parsed: {flags:?}");
    flags
}

/// A child process killed when dropped; its stderr goes to a file quoted on failure.
struct Process {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Process {
    fn start(name: &str, args: &[String], dir: &Path) -> Process {
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting heat-reconciler");
        Process { name: name.to_owned(), child, stderr }
    }

    /// Its stderr so far (the last 60 lines).
    fn stderr(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Panics with its stderr if it has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}); its stderr:\n{}", self.name, self.stderr());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` every 200 ms; panics after `secs` with `process`'s stderr.
async fn eventually<T, F, Fut>(secs: u64, what: &str, process: &mut Process, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        process.assert_running();
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s; {}'s stderr:\n{}",
            process.name,
            process.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// GET `http://127.0.0.1:port/path`: status and body, or `None` while nothing answers.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_with(port, path, None).await
}

/// The same, with an `X-Auth-Token`.
async fn http_get_with(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    heat_reconciler::tls::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
    let mut request = client.get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(token) = token {
        request = request.header("x-auth-token", token);
    }
    let answer = request.send().await.ok()?;
    let status = answer.status().as_u16();
    Some((status, answer.text().await.unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------------
// Rendered documents and their types

/// One YAML document of a rendering.
#[derive(Debug, Clone)]
struct Doc {
    text: String,
    json: Value,
}

impl Doc {
    fn api_version(&self) -> &str {
        self.json["apiVersion"].as_str().unwrap_or("")
    }
    fn kind(&self) -> &str {
        self.json["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.json["metadata"]["name"].as_str().unwrap_or("")
    }
    fn namespace(&self) -> Option<&str> {
        self.json["metadata"]["namespace"].as_str()
    }
    fn what(&self) -> String {
        format!("{} {}", self.kind(), self.name())
    }
}

/// The documents of a multi-document YAML stream (Helm separates them with `---` lines); empty
/// ones (comments only) are left out.
fn documents(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        let text = std::mem::take(current);
        let json: Value = yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
        if !json.is_null() {
            docs.push(Doc { text, json });
        }
    };
    for line in text.lines() {
        if line.trim_end() == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

/// A rendered object as its Kubernetes type (a ServiceMonitor, which k8s-openapi does not have,
/// as its JSON).
#[derive(Debug, Clone)]
enum Object {
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ServiceAccount(Box<ServiceAccount>),
    Role(Box<Role>),
    RoleBinding(Box<RoleBinding>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    ConfigMap(Box<ConfigMap>),
    CustomResourceDefinition(Box<CustomResourceDefinition>),
    ServiceMonitor(Value),
}

/// Parses a document with `yaml_serde::from_str` as `T` and checks that `T` serialises back to
/// the same JSON: k8s-openapi ignores unknown fields, so a misspelt or misplaced field would
/// otherwise pass unseen.
fn typed<T: DeserializeOwned + Serialize>(doc: &Doc) -> Result<T, String> {
    let object: T =
        yaml_serde::from_str(&doc.text).map_err(|e| format!("{}: not a valid {}: {e}", doc.what(), doc.kind()))?;
    let back = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    match json_difference(&doc.json, &back, "") {
        None => Ok(object),
        Some(path) => {
            Err(format!("{}: field {path} is not part of {} (or has the wrong type)", doc.what(), doc.kind()))
        }
    }
}

/// The first path where `a` and `b` differ.
fn json_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => json_difference(x, y, &format!("{path}.{k}")),
                _ => Some(format!("{path}.{k}")),
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| json_difference(x, y, &format!("{path}[{i}]")))
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(if path.is_empty() { ".".to_owned() } else { path.to_owned() }),
    }
}

fn parse(doc: &Doc) -> Result<Object, String> {
    Ok(match (doc.api_version(), doc.kind()) {
        ("apps/v1", "Deployment") => Object::Deployment(Box::new(typed(doc)?)),
        ("v1", "Service") => Object::Service(Box::new(typed(doc)?)),
        ("v1", "ServiceAccount") => Object::ServiceAccount(Box::new(typed(doc)?)),
        ("rbac.authorization.k8s.io/v1", "Role") => Object::Role(Box::new(typed(doc)?)),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Object::RoleBinding(Box::new(typed(doc)?)),
        ("policy/v1", "PodDisruptionBudget") => Object::PodDisruptionBudget(Box::new(typed(doc)?)),
        ("v1", "ConfigMap") => Object::ConfigMap(Box::new(typed(doc)?)),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            Object::CustomResourceDefinition(Box::new(typed(doc)?))
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => Object::ServiceMonitor(doc.json.clone()),
        ("v1", "Secret") => return Err(format!("{}: the chart must create no Secret", doc.what())),
        (api_version, kind) => return Err(format!("{}: unexpected kind {api_version} {kind}", doc.what())),
    })
}

/// A rendering: its documents and objects, and the problems the checks found.
struct Rendering {
    objects: Vec<(Doc, Object)>,
}

impl Rendering {
    /// Parses every document; panics on any that is not one of the expected types.
    fn parse(text: &str) -> Rendering {
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        for doc in documents(text) {
            match parse(&doc) {
                Ok(object) => objects.push((doc, object)),
                Err(e) => errors.push(e),
            }
        }
        assert!(errors.is_empty(), "rendered documents that are not what they should be:\n{}", errors.join("\n"));
        Rendering { objects }
    }

    fn kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for (doc, _) in &self.objects {
            *kinds.entry(doc.kind().to_owned()).or_default() += 1;
        }
        kinds
    }

    fn deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.objects.iter().filter_map(|(_, o)| match o {
            Object::Deployment(d) => Some(&**d),
            _ => None,
        })
    }

    fn services(&self) -> impl Iterator<Item = &Service> {
        self.objects.iter().filter_map(|(_, o)| match o {
            Object::Service(s) => Some(&**s),
            _ => None,
        })
    }

    fn deployment(&self, name: &str) -> &Deployment {
        self.deployments()
            .find(|d| d.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    }

    /// A Deployment's only container's args.
    fn args(&self, deployment: &str) -> Vec<String> {
        container(self.deployment(deployment)).args.clone().unwrap_or_default()
    }

    fn roles(&self) -> Vec<&Role> {
        self.objects
            .iter()
            .filter_map(|(_, o)| match o {
                Object::Role(r) => Some(&**r),
                _ => None,
            })
            .collect()
    }

    fn config_maps(&self) -> Vec<&ConfigMap> {
        self.objects
            .iter()
            .filter_map(|(_, o)| match o {
                Object::ConfigMap(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment.spec.template.spec.as_ref().expect("a pod spec")
}

fn container(deployment: &Deployment) -> &Container {
    let containers = &pod_spec(deployment).containers;
    assert_eq!(containers.len(), 1, "one container per pod");
    &containers[0]
}

fn selector(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment.spec.selector.match_labels.clone().unwrap_or_default()
}

fn replicas(deployment: &Deployment) -> i32 {
    deployment.spec.replicas.unwrap_or(1)
}

/// The value of `--name=VALUE` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().find_map(|a| a.strip_prefix(&format!("--{name}=")))
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    !small.is_empty() && small.iter().all(|(k, v)| big.get(k) == Some(v))
}

// ---------------------------------------------------------------------------------------------
// The checks

/// Everything a rendering must satisfy whatever the values; one line per problem.
fn problems(rendering: &Rendering, flags: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut service_accounts = BTreeMap::new();
    for (doc, object) in &rendering.objects {
        match object {
            Object::CustomResourceDefinition(crd) => {
                if crd.spec.group != API_GROUP || crd.spec.names.plural != "loadbalancers" {
                    problems.push(format!("{}: not the LoadBalancer CRD", doc.what()));
                }
            }
            _ => {
                for label in [
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/instance",
                    "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by",
                    "helm.sh/chart",
                ] {
                    if doc.json["metadata"]["labels"][label].as_str().is_none() {
                        problems.push(format!("{}: no label {label}", doc.what()));
                    }
                }
                if doc.namespace().is_none() {
                    problems.push(format!("{}: no namespace", doc.what()));
                }
            }
        }
        if let Object::ServiceAccount(sa) = object {
            service_accounts.insert(sa.metadata.name.clone().unwrap_or_default(), sa.automount_service_account_token);
        }
    }
    for deployment in rendering.deployments() {
        check_deployment(deployment, flags, &service_accounts, &mut problems);
        check_exposure(rendering, deployment, &mut problems);
    }
    check_services(rendering, &mut problems);
    check_rbac(rendering, &mut problems);
    for config_map in rendering.config_maps() {
        let name = config_map.metadata.name.clone().unwrap_or_default();
        for (key, text) in config_map.data.iter().flatten() {
            if is_secret_key(key) {
                problems.push(format!("ConfigMap {name}: key {key} names a secret"));
            }
            if let Ok(value) = yaml_serde::from_str::<Value>(text)
                && let Some(path) = secret_path(&value, "")
            {
                problems.push(format!("ConfigMap {name}: {key} holds a secret at {path}"));
            }
        }
        if config_map.binary_data.is_some() {
            problems.push(format!("ConfigMap {name}: binary data"));
        }
    }
    for (doc, object) in &rendering.objects {
        if let Object::ServiceMonitor(json) = object {
            check_service_monitor(rendering, doc, json, &mut problems);
        }
    }
    problems
}

/// The path of a string held under a secret key, if any.
fn secret_path(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            if is_secret_key(k) && !v.is_null() { Some(here) } else { secret_path(v, &here) }
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| secret_path(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn check_deployment(
    deployment: &Deployment,
    flags: &BTreeSet<String>,
    service_accounts: &BTreeMap<String, Option<bool>>,
    problems: &mut Vec<String>,
) {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let mut problem = |text: String| problems.push(format!("Deployment {name}: {text}"));
    let spec = &deployment.spec;
    let pod_labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    if !is_subset(&selector(deployment), &pod_labels) {
        problem("the selector does not select the pod template's labels".into());
    }
    for label in ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"] {
        if !selector(deployment).contains_key(label) {
            problem(format!("the selector lacks {label}"));
        }
    }
    let pod = pod_spec(deployment);

    // Pod security.
    let pod_security = pod.security_context.clone().unwrap_or_default();
    if pod_security.run_as_non_root != Some(true) {
        problem("pod: runAsNonRoot is not true".into());
    }
    if pod_security.run_as_user != Some(IMAGE_USER) || pod_security.run_as_group != Some(IMAGE_USER) {
        problem(format!("pod: runAsUser/runAsGroup are not {IMAGE_USER}"));
    }
    if pod_security.seccomp_profile.as_ref().map(|p| p.type_.as_str()) != Some("RuntimeDefault") {
        problem("pod: seccompProfile is not RuntimeDefault".into());
    }
    if pod.host_network == Some(true) || pod.host_pid == Some(true) || pod.host_ipc == Some(true) {
        problem("pod: shares a host namespace".into());
    }

    // The Kubernetes API token only where the API is used (the mirror).
    let container = container(deployment);
    let args = container.args.clone().unwrap_or_default();
    let roles: Vec<&str> = flag(&args, "roles").map(|r| r.split(',').collect()).unwrap_or_default();
    let uses_api = roles.contains(&"mirror");
    if pod.automount_service_account_token != Some(uses_api) {
        problem(format!(
            "automountServiceAccountToken is {:?}, expected {uses_api}",
            pod.automount_service_account_token
        ));
    }
    let account = pod.service_account_name.clone().unwrap_or_default();
    if account.is_empty() {
        problem("no serviceAccountName".into());
    }
    if let Some(automount) = service_accounts.get(&account)
        && *automount != Some(uses_api)
    {
        problem(format!("its ServiceAccount {account} has automountServiceAccountToken {automount:?}"));
    }

    // Container security.
    if container.command.is_some() {
        problem("the container overrides the image's entrypoint".into());
    }
    let security = container.security_context.clone().unwrap_or_default();
    if security.run_as_non_root.or(pod_security.run_as_non_root) != Some(true) {
        problem("container: runAsNonRoot is not true".into());
    }
    if security.read_only_root_filesystem != Some(true) {
        problem("container: readOnlyRootFilesystem is not true".into());
    }
    if security.allow_privilege_escalation != Some(false) {
        problem("container: allowPrivilegeEscalation is not false".into());
    }
    if security.privileged == Some(true) {
        problem("container: privileged".into());
    }
    let capabilities = security.capabilities.clone().unwrap_or_default();
    if !capabilities.drop.unwrap_or_default().iter().any(|c| c == "ALL") {
        problem("container: capabilities do not drop ALL".into());
    }
    if capabilities.add.is_some_and(|add| !add.is_empty()) {
        problem("container: adds capabilities".into());
    }
    if security.seccomp_profile.or(pod_security.seccomp_profile).map(|p| p.type_) != Some("RuntimeDefault".to_owned()) {
        problem("container: seccompProfile is not RuntimeDefault".into());
    }
    let resources = container.resources.clone().unwrap_or_default();
    for (what, map) in [("requests", &resources.requests), ("limits", &resources.limits)] {
        let map = map.clone().unwrap_or_default();
        if !map.contains_key("cpu") || !map.contains_key("memory") {
            problem(format!("container: no cpu and memory {what}"));
        }
    }

    // Ports and probes: the metrics port serves /healthz and /readyz.
    let ports: BTreeMap<String, i32> =
        container.ports.iter().flatten().filter_map(|p| Some((p.name.clone()?, p.container_port))).collect();
    if ports.get("metrics") != Some(&METRICS_PORT) {
        problem(format!("no container port metrics = {METRICS_PORT}"));
    }
    for (which, probe, path) in
        [("liveness", &container.liveness_probe, "/healthz"), ("readiness", &container.readiness_probe, "/readyz")]
    {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        if get.and_then(|g| g.path.as_deref()) != Some(path)
            || get.map(|g| &g.port) != Some(&IntOrString::String("metrics".into()))
        {
            problem(format!("the {which} probe is not GET {path} on port metrics"));
        }
    }

    // Args: `run`, then `--flag[=value]`, each a flag of the binary, each once.
    if args.first().map(String::as_str) != Some("run") {
        problem(format!("args do not start with run: {args:?}"));
    }
    let mut seen = BTreeSet::new();
    for arg in args.iter().skip(1) {
        let Some(option) = arg.strip_prefix("--") else {
            problem(format!("argument {arg:?} is not a --flag"));
            continue;
        };
        let (name, value) = option.split_once('=').map_or((option, None), |(n, v)| (n, Some(v)));
        if !flags.contains(name) {
            problem(format!("--{name} is not a flag of heat-reconciler"));
        }
        if !seen.insert(name.to_owned()) {
            problem(format!("--{name} is given twice"));
        }
        if is_secret_key(name) && !name.ends_with("-file") {
            problem(format!("--{name} puts a secret in the args"));
        }
        if (name.ends_with("-file") || ["schema-dir", "os-cacert"].contains(&name))
            && let Some(path) = value
        {
            check_mounted(pod, container, path, &mut problem);
        }
    }
    if flag(&args, "metrics-listen") != Some(&format!("0.0.0.0:{METRICS_PORT}")) {
        problem(format!("--metrics-listen is not 0.0.0.0:{METRICS_PORT}"));
    }
    if roles.is_empty() || roles.iter().any(|r| !["planner", "worker", "monitor", "mirror"].contains(r)) {
        problem(format!("--roles is {roles:?}"));
    }
    if roles.contains(&"monitor") {
        let listen = flag(&args, "monitor-listen").and_then(|l| l.rsplit(':').next()?.parse::<i32>().ok());
        if listen.is_none() || listen != ports.get("api").copied() {
            problem("--monitor-listen is not the container port api".into());
        }
    }

    // The environment carries no secret: secrets are mounted files.
    for env in container.env.iter().flatten() {
        if env.value_from.as_ref().is_some_and(|v| v.secret_key_ref.is_some()) {
            problem(format!("env {} comes from a Secret (secrets are mounted files)", env.name));
        }
        if is_secret_key(&env.name) && env.value.is_some() {
            problem(format!("env {} holds a secret value", env.name));
        }
    }
    if container.env_from.iter().flatten().any(|e| e.secret_ref.is_some()) {
        problem("envFrom a Secret (secrets are mounted files)".into());
    }

    // /tmp is the only writable place.
    let tmp = container.volume_mounts.iter().flatten().find(|m| m.mount_path == "/tmp");
    let tmp_volume = tmp.and_then(|m| pod.volumes.iter().flatten().find(|v| v.name == m.name));
    if tmp_volume.is_none_or(|v| v.empty_dir.is_none()) {
        problem("no emptyDir at /tmp".into());
    }
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name);
        match volume {
            None => problem(format!("volume mount {} has no volume", mount.name)),
            Some(v) if v.empty_dir.is_none() && mount.read_only != Some(true) => {
                problem(format!("volume {} is mounted writable", mount.name))
            }
            Some(v) => {
                if let Some(secret) = &v.secret
                    && secret.default_mode != Some(0o440)
                {
                    problem(format!("Secret volume {} is not mode 0440", v.name));
                }
            }
        }
    }
    if pod.volumes.iter().flatten().any(|v| v.secret.is_some()) && pod_security.fs_group != Some(IMAGE_USER) {
        problem(format!("Secret files of mode 0440 need fsGroup {IMAGE_USER}"));
    }
}

/// A path given to a `--*-file` flag must be a file of a read-only mounted volume (one of its
/// items, when the volume names them).
fn check_mounted(pod: &PodSpec, container: &Container, path: &str, problem: &mut impl FnMut(String)) {
    let mount =
        container.volume_mounts.iter().flatten().find(|m| {
            path == m.mount_path || path.strip_prefix(&m.mount_path).is_some_and(|rest| rest.starts_with('/'))
        });
    let Some(mount) = mount else {
        problem(format!("{path} is not in a mounted volume"));
        return;
    };
    let relative = path[mount.mount_path.len()..].trim_start_matches('/');
    let Some(volume) = pod.volumes.iter().flatten().find(|v| v.name == mount.name) else { return };
    let items = volume
        .secret
        .as_ref()
        .map(|s| s.items.clone())
        .or_else(|| volume.config_map.as_ref().map(|c| c.items.clone()))
        .flatten();
    if let Some(items) = items
        && !relative.is_empty()
        && !items.iter().any(|i| i.path == relative)
    {
        problem(format!("{path}: volume {} has no item {relative}", volume.name));
    }
    if volume.secret.is_none() && volume.config_map.is_none() {
        problem(format!("{path}: volume {} is neither a Secret nor a ConfigMap", volume.name));
    }
}

/// Each Deployment has a Service exposing its metrics port, and a disruption budget exactly when
/// it runs two replicas or more.
fn check_exposure(rendering: &Rendering, deployment: &Deployment, problems: &mut Vec<String>) {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let selects = |labels: &BTreeMap<String, String>| labels == &selector(deployment);
    let metrics_service = rendering.services().any(|s| {
        let spec = s.spec.clone().unwrap_or_default();
        selects(&spec.selector.unwrap_or_default())
            && spec.ports.iter().flatten().any(|p| {
                p.name.as_deref() == Some("metrics") && p.target_port == Some(IntOrString::String("metrics".into()))
            })
    });
    if !metrics_service {
        problems.push(format!("Deployment {name}: no Service exposes its metrics port"));
    }
    let budgets: Vec<&PodDisruptionBudget> = rendering
        .objects
        .iter()
        .filter_map(|(_, o)| match o {
            Object::PodDisruptionBudget(p) => Some(&**p),
            _ => None,
        })
        .filter(|p| {
            p.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.match_labels.as_ref()).is_some_and(selects)
        })
        .collect();
    match (replicas(deployment) >= 2, budgets.as_slice()) {
        (true, [budget]) => {
            if budget.spec.as_ref().and_then(|s| s.min_available.clone()) != Some(IntOrString::Int(1)) {
                problems.push(format!("Deployment {name}: its PodDisruptionBudget is not minAvailable 1"));
            }
        }
        (false, []) => {}
        (many, found) => problems.push(format!(
            "Deployment {name}: {} PodDisruptionBudgets with {} replicas (one wanted exactly when >= 2, many: {many})",
            found.len(),
            replicas(deployment)
        )),
    }
}

/// Every Service selects one Deployment's pods, and each port targets a named port of them.
fn check_services(rendering: &Rendering, problems: &mut Vec<String>) {
    for service in rendering.services() {
        let name = service.metadata.name.clone().unwrap_or_default();
        let spec = service.spec.clone().unwrap_or_default();
        let selector_labels = spec.selector.clone().unwrap_or_default();
        let Some(target) = rendering.deployments().find(|d| {
            let labels = d.spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            is_subset(&selector_labels, &labels)
        }) else {
            problems.push(format!("Service {name}: selects no Deployment's pods"));
            continue;
        };
        let named: BTreeSet<String> = container(target).ports.iter().flatten().filter_map(|p| p.name.clone()).collect();
        for port in spec.ports.iter().flatten() {
            match &port.target_port {
                Some(IntOrString::String(target)) if named.contains(target) => {}
                other => problems.push(format!("Service {name}: port {:?} targets {other:?}", port.name)),
            }
        }
    }
}

/// At most the mirror's Role and RoleBinding, with exactly [`MIRROR_RULES`], in the namespace
/// the mirror writes to, bound to the mirror's ServiceAccount.
fn check_rbac(rendering: &Rendering, problems: &mut Vec<String>) {
    let mirror = rendering.deployments().find(|d| {
        let args = container(d).args.clone().unwrap_or_default();
        flag(&args, "roles").is_some_and(|r| r.split(',').any(|r| r == "mirror"))
    });
    let roles = rendering.roles();
    let bindings: Vec<&RoleBinding> = rendering
        .objects
        .iter()
        .filter_map(|(_, o)| match o {
            Object::RoleBinding(b) => Some(&**b),
            _ => None,
        })
        .collect();
    let Some(mirror) = mirror else {
        if !roles.is_empty() || !bindings.is_empty() {
            problems.push("a Role or RoleBinding without the mirror".into());
        }
        return;
    };
    let (Some(role), Some(binding), 1, 1) = (roles.first(), bindings.first(), roles.len(), bindings.len()) else {
        problems.push(format!(
            "{} Roles and {} RoleBindings for the mirror; one of each wanted",
            roles.len(),
            bindings.len()
        ));
        return;
    };
    let args = container(mirror).args.clone().unwrap_or_default();
    let namespace = flag(&args, "mirror-namespace");
    if role.metadata.namespace.as_deref() != namespace || binding.metadata.namespace.as_deref() != namespace {
        problems.push(format!("the Role and RoleBinding are not in the mirror namespace {namespace:?}"));
    }
    let rules: BTreeMap<String, BTreeSet<String>> = role
        .rules
        .iter()
        .flatten()
        .flat_map(|rule| {
            assert_eq!(rule.api_groups.as_deref(), Some(&[API_GROUP.to_owned()][..]), "the Role's API groups");
            assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
            let verbs: BTreeSet<String> = rule.verbs.iter().cloned().collect();
            rule.resources.iter().flatten().map(move |r| (r.clone(), verbs.clone()))
        })
        .collect();
    let expected: BTreeMap<String, BTreeSet<String>> = MIRROR_RULES
        .iter()
        .map(|(resource, verbs)| (resource.to_string(), verbs.iter().map(|v| v.to_string()).collect()))
        .collect();
    if rules != expected {
        problems.push(format!("the mirror's Role grants {rules:?}, not {expected:?}"));
    }
    if binding.role_ref.kind != "Role" || Some(&binding.role_ref.name) != role.metadata.name.as_ref() {
        problems.push("the RoleBinding does not bind the Role".into());
    }
    let pod = pod_spec(mirror);
    let subjects: Vec<(String, String, Option<String>)> =
        binding.subjects.iter().flatten().map(|s| (s.kind.clone(), s.name.clone(), s.namespace.clone())).collect();
    let expected_subject = (
        "ServiceAccount".to_owned(),
        pod.service_account_name.clone().unwrap_or_default(),
        mirror.metadata.namespace.clone(),
    );
    if subjects != [expected_subject] {
        problems.push(format!("the RoleBinding's subjects are {subjects:?}"));
    }
}

/// The ServiceMonitor scrapes the metrics port of every component's Service.
fn check_service_monitor(rendering: &Rendering, doc: &Doc, json: &Value, problems: &mut Vec<String>) {
    let endpoints = json["spec"]["endpoints"].as_array().cloned().unwrap_or_default();
    if endpoints.is_empty() || endpoints.iter().any(|e| e["port"] != "metrics" || e["path"] != "/metrics") {
        problems.push(format!("{}: endpoints are not the metrics port's /metrics", doc.what()));
    }
    let wanted: BTreeMap<String, String> =
        serde_json::from_value(json["spec"]["selector"]["matchLabels"].clone()).unwrap_or_default();
    for service in rendering.services() {
        let labels = service.metadata.labels.clone().unwrap_or_default();
        if !is_subset(&wanted, &labels) {
            problems.push(format!("{}: does not select Service {:?}", doc.what(), service.metadata.name));
        }
    }
    if json["spec"]["namespaceSelector"]["matchNames"][0].as_str() != doc.namespace() {
        problems.push(format!("{}: namespaceSelector is not its namespace", doc.what()));
    }
}

/// Renders, parses and checks; panics listing the problems.
fn render_checked(home: &Path, flags: &BTreeSet<String>, extra: &[&str]) -> Rendering {
    let rendering = Rendering::parse(&render(home, extra));
    let found = problems(&rendering, flags);
    assert!(found.is_empty(), "helm template {}:\n{}", extra.join(" "), found.join("\n"));
    rendering
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn the_charts_crd_is_the_projects() {
    let project = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/loadbalancers.yaml")).unwrap();
    let chart = std::fs::read(format!("{CHART}/crds/loadbalancers.yaml")).unwrap();
    assert!(
        project == chart,
        "charts/heat-reconciler/crds/loadbalancers.yaml differs from crds/loadbalancers.yaml: \
         cp crds/loadbalancers.yaml charts/heat-reconciler/crds/"
    );
}

/// Every value in values.yaml has a comment right above it, or sits in a block whose key has one
/// (a free-form map such as `resources` or `podSecurityContext`).
#[test]
fn every_value_is_documented() {
    let text = std::fs::read_to_string(format!("{CHART}/values.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut undocumented = Vec::new();
    // The keys enclosing the current line: (indent, documented).
    let mut enclosing: Vec<(usize, bool)> = Vec::new();
    let mut commented = false;
    for (i, line) in lines.iter().enumerate() {
        let content = line.trim_start();
        let indent = line.len() - content.len();
        if content.is_empty() {
            commented = false;
            continue;
        }
        if content.starts_with('#') {
            commented = true;
            continue;
        }
        if content.starts_with('-') {
            commented = false;
            continue;
        }
        let Some((key, value)) = content.split_once(':') else { continue };
        enclosing.retain(|(at, _)| *at < indent);
        let covered = enclosing.iter().any(|(_, documented)| *documented);
        let next = lines[i + 1..].iter().map(|l| l.trim_start()).find(|l| !l.is_empty() && !l.starts_with('#'));
        let leaf = !value.trim().is_empty() || next.is_some_and(|l| l.starts_with('-'));
        if leaf && !commented && !covered {
            undocumented.push(format!("line {}: {key}", i + 1));
        }
        enclosing.push((indent, commented));
        commented = false;
    }
    assert!(undocumented.is_empty(), "values without a comment:\n{}", undocumented.join("\n"));
}

#[test]
fn helm_lint_strict_passes() {
    let home = Scratch::new("helm-lint");
    for values in [None, Some(all_on_values())] {
        let mut args = vec!["lint", "--strict", CHART];
        if let Some(values) = &values {
            args.extend(["--values", values]);
        }
        let out = helm_ok(home.path(), &args);
        assert!(out.contains("0 chart(s) failed"), "{out}");
        assert!(!out.contains("[WARNING]") && !out.contains("[ERROR]"), "helm lint: {out}");
    }
}

#[test]
fn default_values_render_hardened_valid_objects() {
    let home = Scratch::new("helm-template");
    let flags = cli_flags();
    let rendering = render_checked(home.path(), &flags, &[]);
    let kinds = rendering.kinds();
    let expected: BTreeMap<String, usize> = [
        ("CustomResourceDefinition", 1),
        ("Deployment", 3),
        ("PodDisruptionBudget", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Service", 3),
        ("ServiceAccount", 2),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(kinds, expected, "the objects of the default values");

    let controller = rendering.deployment("rel-heat-reconciler-controller");
    assert_eq!(replicas(controller), 2);
    let args = rendering.args("rel-heat-reconciler-controller");
    assert_eq!(flag(&args, "roles"), Some("planner,worker"));
    assert_eq!(flag(&args, "keystone-env-file"), Some("/etc/heat-reconciler/keystone/keystone.env"));
    assert_eq!(flag(&args, "heat-url"), None);
    assert_eq!(flag(&args, "os-cacert"), None, "the system's CAs unless a bundle is given");
    let args = rendering.args("rel-heat-reconciler-monitor");
    assert_eq!(flag(&args, "roles"), Some("monitor"));
    assert_eq!(flag(&args, "monitor-token-file"), Some("/etc/heat-reconciler/monitor-token/token"));
    assert_eq!(flag(&args, "monitor-url"), Some("http://rel-heat-reconciler-monitor.esi.svc:7070"));
    let args = rendering.args("rel-heat-reconciler-mirror");
    assert_eq!(flag(&args, "roles"), Some("mirror"));
    assert_eq!(flag(&args, "mirror-namespace"), Some(NAMESPACE));
    assert_eq!(flag(&args, "kubeconfig"), None, "in-cluster configuration");
    assert_eq!(replicas(rendering.deployment("rel-heat-reconciler-mirror")), 1);
    assert!(rendering.config_maps().is_empty());
}

#[test]
fn all_on_values_render_hardened_valid_objects() {
    let home = Scratch::new("helm-template");
    let flags = cli_flags();
    let values = all_on_values();
    let rendering = render_checked(home.path(), &flags, &["--values", &values]);
    let kinds = rendering.kinds();
    assert_eq!(kinds.get("Deployment"), Some(&3));
    assert_eq!(kinds.get("PodDisruptionBudget"), Some(&3), "every component runs 2+ replicas");
    assert_eq!(kinds.get("ServiceMonitor"), Some(&1));
    assert_eq!(kinds.get("ConfigMap"), Some(&1), "the probe configuration");

    let args = rendering.args("esi-controller");
    for (name, value) in [
        ("etcd-endpoints", "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379"),
        ("etcd-ca-file", "/etc/heat-reconciler/etcd-tls/ca.crt"),
        ("etcd-cert-file", "/etc/heat-reconciler/etcd-tls/tls.crt"),
        ("etcd-key-file", "/etc/heat-reconciler/etcd-tls/tls.key"),
        ("etcd-user", "heat-reconciler"),
        ("etcd-password-file", "/etc/heat-reconciler/etcd-auth/password"),
        ("schema-dir", "/etc/heat-reconciler/schema"),
        ("log-format", "text"),
        ("keystone-env-file", "/etc/heat-reconciler/keystone/keystone.env"),
        ("os-cacert", "/etc/heat-reconciler/openstack-ca/ca.crt"),
    ] {
        assert_eq!(flag(&args, name), Some(value), "--{name} in {args:?}");
    }
    // The CA bundle and the env file, two keys of the one Secret, each mounted as its own file.
    let secret_items = |volume: &str| {
        let pod = pod_spec(rendering.deployment("esi-controller"));
        let secret = pod.volumes.iter().flatten().find(|v| v.name == volume).and_then(|v| v.secret.clone());
        let secret = secret.unwrap_or_else(|| panic!("no Secret volume {volume}"));
        let items = secret.items.unwrap_or_default().into_iter().map(|i| (i.key, i.path)).collect::<Vec<_>>();
        (secret.secret_name.unwrap_or_default(), items)
    };
    assert_eq!(secret_items("openstack-ca"), ("esi-openrc".into(), vec![("cloud-ca.pem".into(), "ca.crt".into())]));
    assert_eq!(secret_items("keystone"), ("esi-openrc".into(), vec![("openrc.sh".into(), "keystone.env".into())]));
    assert_eq!(flag(&rendering.args("esi-monitor"), "os-cacert"), None, "the monitor never calls Heat");
    assert!(args.contains(&"--no-drift-repair".to_owned()));
    let monitor = rendering.args("esi-monitor");
    assert_eq!(flag(&monitor, "device-address"), Some("10.0.0.1=127.0.0.1:1161,*=192.0.2.1"));
    assert_eq!(flag(&monitor, "probe-config"), Some("/etc/heat-reconciler/probes/probe-config.yaml"));
    assert_eq!(flag(&monitor, "monitor-url"), Some("http://monitor.esi.example.com:7070"));
    assert_eq!(rendering.roles()[0].metadata.namespace.as_deref(), Some("esi-view"));
    let image = container(rendering.deployment("esi-mirror")).image.clone().unwrap_or_default();
    assert!(image.starts_with("registry.example.com/esi/heat-reconciler@sha256:"), "{image}");
}

#[test]
fn variants_render_and_the_checks_catch_mistakes() {
    let home = Scratch::new("helm-template");
    let flags = cli_flags();

    // A standalone Heat: no Keystone Secret mounted.
    let rendering = render_checked(home.path(), &flags, &["--set", "heat.url=http://heat-api:8004"]);
    let controller = rendering.deployment("rel-heat-reconciler-controller");
    assert_eq!(flag(&rendering.args("rel-heat-reconciler-controller"), "heat-url"), Some("http://heat-api:8004"));
    assert_eq!(flag(&rendering.args("rel-heat-reconciler-controller"), "keystone-env-file"), None);
    assert!(pod_spec(controller).volumes.iter().flatten().all(|v| v.secret.is_none()));

    // A standalone Heat over TLS with a private CA: only the bundle is mounted, and trusted.
    let rendering = render_checked(
        home.path(),
        &flags,
        &["--set", "heat.url=https://heat-api:8004", "--set", "heat.caBundle.secretName=cloud-ca"],
    );
    let args = rendering.args("rel-heat-reconciler-controller");
    assert_eq!(flag(&args, "os-cacert"), Some("/etc/heat-reconciler/openstack-ca/ca.crt"), "{args:?}");
    let secrets: Vec<String> = pod_spec(rendering.deployment("rel-heat-reconciler-controller"))
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
        .collect();
    assert_eq!(secrets, ["cloud-ca"]);

    // The controller alone: no mirror, so no Role, no RoleBinding and no token anywhere.
    let rendering =
        render_checked(home.path(), &flags, &["--set", "monitor.enabled=false", "--set", "mirror.enabled=false"]);
    let kinds = rendering.kinds();
    assert_eq!(kinds.get("Deployment"), Some(&1));
    assert_eq!(kinds.get("ServiceAccount"), Some(&1));
    assert!(!kinds.contains_key("Role") && !kinds.contains_key("RoleBinding"));

    // One replica: no disruption budget (it would block every drain).
    let rendering = render_checked(home.path(), &flags, &["--set", "controller.replicas=1"]);
    assert!(!rendering.kinds().contains_key("PodDisruptionBudget"));

    // The checks see a flag the binary does not have, and a flag given twice.
    let rendering = Rendering::parse(&render(
        home.path(),
        &["--set", "controller.extraArgs[0]=--no-such-flag", "--set", "monitor.extraArgs[0]=--probe-interval=5"],
    ));
    let found = problems(&rendering, &flags).join("\n");
    assert!(found.contains("--no-such-flag is not a flag of heat-reconciler"), "{found}");
    assert!(found.contains("--probe-interval is given twice"), "{found}");

    // And a weakened security context.
    let rendering = Rendering::parse(&render(
        home.path(),
        &["--set", "securityContext.readOnlyRootFilesystem=false", "--set", "podSecurityContext.runAsUser=0"],
    ));
    let found = problems(&rendering, &flags).join("\n");
    assert!(found.contains("readOnlyRootFilesystem is not true"), "{found}");
    assert!(found.contains("runAsUser/runAsGroup are not 65532"), "{found}");

    // Values that would fail only at run time fail the rendering.
    for (set, message) in [
        ("etcd.auth.user=someone", "etcd.auth.passwordSecret is required"),
        ("logFormat=xml", "logFormat must be json or text"),
    ] {
        let output = helm(home.path(), &["template", RELEASE, CHART, "--set", set]);
        assert!(!output.status.success(), "--set {set} rendered");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(message),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Replaces the values of `replace`'s flags and moves `/etc/heat-reconciler/...` (the mounts)
/// under `root`, writing each `--*-file` the args name with test content.
fn local_args(args: &[String], replace: &[(&str, String)], root: &Path) -> Vec<String> {
    let mut local = Vec::new();
    for arg in args {
        let (name, value) = arg.split_once('=').map_or((arg.as_str(), None), |(n, v)| (n, Some(v)));
        let name = name.trim_start_matches("--");
        if let Some((_, new)) = replace.iter().find(|(n, _)| *n == name) {
            local.push(format!("--{name}={new}"));
        } else if let Some(path) = value.and_then(|v| v.strip_prefix("/etc/heat-reconciler/")) {
            let path = root.join(path);
            let content = match name {
                // A Keystone that does not answer: the worker keeps trying, and says so in /readyz.
                "keystone-env-file" => {
                    "export OS_AUTH_URL=http://127.0.0.1:9/v3\nOS_USERNAME=heat\nOS_PASSWORD='chart test'\n"
                }
                "monitor-token-file" => "chart-test-token\n",
                other => panic!("no test content for --{other}"),
            };
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            local.push(format!("--{name}={}", path.display()));
        } else {
            local.push(arg.clone());
        }
    }
    for (name, value) in replace {
        if flag(&local, name).is_none() {
            local.push(format!("--{name}={value}"));
        }
    }
    local
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_args_start_the_real_binary() {
    let home = Scratch::new("chart-args");
    let rendering = Rendering::parse(&render(home.path(), &[]));
    let etcd = LocalEtcd::start().await.expect("etcd");
    let endpoints = etcd.endpoints().join(",");

    let metrics = free_port();
    let api = free_port();
    let args = local_args(
        &rendering.args("rel-heat-reconciler-monitor"),
        &[
            ("etcd-endpoints", endpoints.clone()),
            ("metrics-listen", format!("127.0.0.1:{metrics}")),
            ("monitor-listen", format!("127.0.0.1:{api}")),
        ],
        home.path(),
    );
    let mut monitor = Process::start("monitor", &args, home.path());
    for path in ["/healthz", "/readyz", "/metrics"] {
        let what = format!("the monitor's {path} answers 200");
        eventually(30, &what, &mut monitor, || async { http_get(metrics, path).await.filter(|(s, _)| *s == 200) })
            .await;
    }
    // The target API asks for the token of the mounted file.
    let (status, _) = http_get(api, "/targets").await.expect("the target API answers");
    assert_eq!(status, 401, "the target API without a token");
    let (status, body) = http_get_with(api, "/targets", Some("chart-test-token")).await.unwrap();
    assert_eq!(status, 200, "the target API with the mounted token: {body}");

    let metrics = free_port();
    let args = local_args(
        &rendering.args("rel-heat-reconciler-controller"),
        &[("etcd-endpoints", endpoints), ("metrics-listen", format!("127.0.0.1:{metrics}"))],
        home.path(),
    );
    let mut controller = Process::start("controller", &args, home.path());
    eventually(30, "the controller's /healthz answers 200", &mut controller, || async {
        http_get(metrics, "/healthz").await.filter(|(s, _)| *s == 200)
    })
    .await;
    eventually(30, "the controller's /metrics answers 200", &mut controller, || async {
        http_get(metrics, "/metrics").await.filter(|(s, _)| *s == 200)
    })
    .await;
    // Its Keystone does not answer: /readyz answers, and may say not ready because of it.
    let (status, body) = http_get(metrics, "/readyz").await.expect("/readyz answers");
    assert!(status == 200 || status == 503, "/readyz: {status} {body}");
    eprintln!("the controller's /readyz with an unreachable Keystone: {status} {}", body.trim());
    controller.assert_running();
    monitor.assert_running();
}

/// What the kubelet does with a pod's Secret volumes, on this machine: each Secret volume the
/// container mounts becomes a directory under `root` (its mount path, `/etc/heat-reconciler/...`
/// moved under `root`) holding the Secret's keys the volume's items name, at their paths. A
/// Secret the test does not provide, or a key it lacks, fails the test (in a cluster the pod
/// would not start).
fn mount_secrets(deployment: &Deployment, secrets: &BTreeMap<&str, BTreeMap<&str, String>>, root: &Path) {
    let pod = pod_spec(deployment);
    for mount in container(deployment).volume_mounts.iter().flatten() {
        let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).expect("the mount's volume");
        let Some(secret) = &volume.secret else { continue };
        let name = secret.secret_name.clone().unwrap_or_default();
        let data = secrets.get(name.as_str()).unwrap_or_else(|| panic!("the chart mounts a Secret {name}"));
        let dir = root.join(mount.mount_path.trim_start_matches("/etc/heat-reconciler/"));
        std::fs::create_dir_all(&dir).unwrap();
        for item in secret.items.iter().flatten() {
            let content =
                data.get(item.key.as_str()).unwrap_or_else(|| panic!("Secret {name} has no key {}", item.key));
            std::fs::write(dir.join(&item.path), content).unwrap();
        }
    }
}

/// `args` with `/etc/heat-reconciler/...` paths moved under `root` and the flags of `replace`
/// set to their values.
fn moved_args(args: &[String], replace: &[(&str, String)], root: &Path) -> Vec<String> {
    args.iter()
        .map(|arg| {
            let (name, value) = arg.split_once('=').map_or((arg.as_str(), None), |(n, v)| (n, Some(v)));
            if let Some((_, new)) = replace.iter().find(|(n, _)| format!("--{n}") == name) {
                format!("{name}={new}")
            } else if let Some(path) = value.and_then(|v| v.strip_prefix("/etc/heat-reconciler/")) {
                format!("{name}={}", root.join(path).display())
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// values → Secret volumes → mounted files → `--etcd-*` flags → the real binary on a real etcd
/// with TLS, client certificates and authentication: the controller gets in with the Secrets'
/// contents, and a wrong password in the Secret ends it with the cause. The cloud's CA bundle
/// (`heat.caBundle`) reaches it the same way, as `--os-cacert`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_etcd_secrets_reach_a_secured_etcd() {
    let home = Scratch::new("chart-etcd-tls");
    let flags = cli_flags();
    // The password under a key of another name than the file it is mounted as.
    let rendering = render_checked(
        home.path(),
        &flags,
        &[
            "--set",
            "etcd.endpoints={https://etcd:2379}",
            "--set",
            "etcd.tls.secretName=etcd-client-tls",
            "--set",
            "etcd.auth.user=heat-reconciler",
            "--set",
            "etcd.auth.passwordSecret=etcd-heat-reconciler",
            "--set",
            "etcd.auth.passwordKey=etcd-password",
            "--set",
            "heat.url=http://127.0.0.1:9",
            "--set",
            "heat.caBundle.secretName=cloud-ca",
            "--set",
            "heat.caBundle.key=bundle.pem",
            "--set",
            "mirror.enabled=false",
        ],
    );
    let etcd = LocalEtcd::start_secured().await.expect("a secured etcd");
    let security = etcd.security.clone().unwrap();
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    let tls = BTreeMap::from([
        ("ca.crt", read(&security.ca_file)),
        ("tls.crt", read(&security.cert_file)),
        ("tls.key", read(&security.key_file)),
    ]);
    let secrets_with = |password: &str| {
        BTreeMap::from([
            ("etcd-client-tls", tls.clone()),
            ("etcd-heat-reconciler", BTreeMap::from([("etcd-password", format!("{password}\n"))])),
            ("cloud-ca", BTreeMap::from([("bundle.pem", read(&security.ca_file))])),
        ])
    };
    for deployment in ["rel-heat-reconciler-controller", "rel-heat-reconciler-monitor"] {
        let args = rendering.args(deployment);
        assert_eq!(flag(&args, "etcd-user"), Some("heat-reconciler"), "{deployment}: {args:?}");
        for name in ["etcd-ca-file", "etcd-cert-file", "etcd-key-file", "etcd-password-file"] {
            assert!(flag(&args, name).is_some(), "{deployment}: no --{name} in {args:?}");
        }
    }

    // The controller with the right Secrets: past the start-up check, and etcd is ready.
    let root = home.path().join("good");
    let controller = rendering.deployment("rel-heat-reconciler-controller");
    mount_secrets(controller, &secrets_with(&security.password), &root);
    let metrics = free_port();
    let args = moved_args(
        &rendering.args("rel-heat-reconciler-controller"),
        &[("etcd-endpoints", etcd.client_url.clone()), ("metrics-listen", format!("127.0.0.1:{metrics}"))],
        &root,
    );
    let mut process = Process::start("controller", &args, home.path());
    let (_, body) = eventually(30, "the controller's /readyz answers", &mut process, || async {
        http_get(metrics, "/readyz").await
    })
    .await;
    // Heat (port 9) does not answer, so /readyz may say not ready, but never because of etcd.
    assert!(!body.lines().any(|l| l.starts_with("etcd")), "/readyz: {body}");
    process.assert_running();
    let stderr = process.stderr();
    // The mounted CA bundle was read, and is what Heat and Keystone are trusted by.
    let trusted = stderr.lines().find(|l| l.contains("trusting only these CAs")).unwrap_or_default();
    assert!(
        trusted.contains("openstack-ca/ca.crt (--os-cacert)") && trusted.contains(r#""certificates":1"#),
        "{stderr}"
    );
    assert!(!stderr.contains(&security.password), "the password in the logs");
    drop(process);

    // The same with a wrong password in the Secret: the controller ends, saying why.
    let root = home.path().join("wrong");
    mount_secrets(controller, &secrets_with("not-the-password"), &root);
    let args = moved_args(
        &rendering.args("rel-heat-reconciler-controller"),
        &[("etcd-endpoints", etcd.client_url.clone()), ("metrics-listen", format!("127.0.0.1:{}", free_port()))],
        &root,
    );
    let mut process = Process::start("controller-wrong-password", &args, home.path());
    let began = Instant::now();
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(began.elapsed() < Duration::from_secs(15), "still running: {}", process.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let stderr = process.stderr();
    assert!(stderr.contains("etcd rejected the user `heat-reconciler`: authentication failed"), "{stderr}");
}

/// kubectl with a kubeconfig of one's choice; (success, stdout, stderr).
fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary("kubectl").expect("kubectl (bash scripts/prepare-kube.sh)"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("running kubectl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The resource rows of `kubectl auth can-i --list`: resource → verbs (non-resource URLs left out).
fn rights(list: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut rights = BTreeMap::new();
    for line in list.lines().skip(1) {
        let Some(resource) = line.split_whitespace().next() else { continue };
        if resource.starts_with('[') {
            continue;
        }
        let Some(at) = line.rfind('[') else { continue };
        let verbs = line[at..].trim().trim_matches(|c| c == '[' || c == ']').split_whitespace().map(str::to_owned);
        rights.entry(resource.to_owned()).or_insert_with(BTreeSet::new).extend(verbs);
    }
    rights
}

/// Installs the chart; returns the release's manifest (what the API accepted).
fn install(home: &Path, kube: &LocalKubeApiserver, release: &str, namespace: &str, extra: &[&str]) -> Rendering {
    let kubeconfig = kube.kubeconfig.to_str().unwrap();
    let mut args = vec!["install", release, CHART, "--namespace", namespace, "--kubeconfig", kubeconfig];
    args.extend_from_slice(extra);
    helm_ok(home, &args);
    let manifest = helm_ok(home, &["get", "manifest", release, "--namespace", namespace, "--kubeconfig", kubeconfig]);
    let rendering = Rendering::parse(&manifest);
    for (doc, _) in &rendering.objects {
        let namespace = doc.namespace().unwrap_or(namespace);
        kube.kubectl_ok(&["get", doc.kind(), doc.name(), "--namespace", namespace, "-o", "name"])
            .unwrap_or_else(|e| panic!("{} of release {release} is not in the API: {e}", doc.what()));
    }
    rendering
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_on_a_real_apiserver_and_the_mirror_role_is_enough_and_no_more() {
    let home = Scratch::new("chart-install");
    let kube = LocalKubeApiserver::start().await.expect("kube-apiserver (bash scripts/prepare-kube.sh)");
    let namespace = unique("chart");
    kube.kubectl_ok(&["create", "namespace", &namespace]).unwrap();

    // The default values (the mirror is on by default); helm installs crds/ first.
    let rendering = install(home.path(), &kube, "hr", &namespace, &[]);
    assert_eq!(rendering.kinds().get("Deployment"), Some(&3));
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/loadbalancers.esi.heat-reconciler.io",
    ])
    .expect("the chart's CRD is Established");

    // Everything on, in other namespaces (less the ServiceMonitor: no Prometheus Operator here).
    let (all_on, view) = (unique("chart-all-on"), unique("chart-view"));
    kube.kubectl_ok(&["create", "namespace", &all_on]).unwrap();
    kube.kubectl_ok(&["create", "namespace", &view]).unwrap();
    let values = all_on_values();
    let set_view = format!("mirror.namespace={view}");
    let other = install(
        home.path(),
        &kube,
        "esi",
        &all_on,
        &["--values", &values, "--set", "serviceMonitor.enabled=false", "--set", &set_view],
    );
    assert_eq!(other.roles()[0].metadata.namespace.as_deref(), Some(view.as_str()));

    // The mirror, out of cluster, with the installed args and the mirror ServiceAccount's token.
    let token = kube.kubectl_ok(&["create", "token", "hr-heat-reconciler-mirror", "--namespace", &namespace]).unwrap();
    let mirror_kubeconfig = kube.kubeconfig_with_token("chart-mirror", token.trim()).unwrap();
    let etcd = LocalEtcd::start().await.expect("etcd");
    let store = etcd.connect().await.unwrap();
    let id = load_balancer_id(0);
    for (key, value) in load_balancer_records(&id, 1, false, "CREATE_COMPLETED") {
        store.put(&key, value).await.unwrap();
    }
    // A LoadBalancer that no /config stands behind, made by hand: the mirror must delete it.
    let stray = serde_json::json!({"apiVersion": "esi.heat-reconciler.io/v1alpha1", "kind": "LoadBalancer",
        "metadata": {"name": "made-by-hand", "namespace": namespace}, "spec": {"name": "x"}});
    let stray_file = home.path().join("stray.json");
    std::fs::write(&stray_file, stray.to_string()).unwrap();
    kube.kubectl_ok(&["create", "-f", stray_file.to_str().unwrap()]).unwrap();

    let metrics = free_port();
    let installed = rendering.args("hr-heat-reconciler-mirror");
    assert_eq!(flag(&installed, "mirror-namespace"), Some(namespace.as_str()));
    let args = local_args(
        &installed,
        &[
            ("etcd-endpoints", etcd.endpoints().join(",")),
            ("metrics-listen", format!("127.0.0.1:{metrics}")),
            ("kubeconfig", mirror_kubeconfig.display().to_string()),
        ],
        home.path(),
    );
    let mut mirror = Process::start("mirror", &args, home.path());
    let admin = kube.kubeconfig.clone();
    let get_lb = |name: &str| {
        let (ok, out, _) = kubectl_as(&admin, &["get", "loadbalancer", name, "--namespace", &namespace, "-o", "json"]);
        ok.then(|| serde_json::from_str::<Value>(&out).unwrap())
    };
    // create (server-side apply of a new object) and the status subresource.
    let mirrored = eventually(60, "the LoadBalancer is mirrored with its status", &mut mirror, || async {
        get_lb(&id).filter(|lb| lb["status"]["state"] == "CREATE_COMPLETED")
    })
    .await;
    assert_eq!(mirrored["status"]["desiredVersion"], 1);
    // list + watch saw the stray one, delete removed it.
    eventually(60, "the stray LoadBalancer is deleted", &mut mirror, || async {
        get_lb("made-by-hand").is_none().then_some(())
    })
    .await;
    // patch: a spec field added by hand is taken out; a status edited by hand is put back.
    kube.kubectl_ok(&[
        "patch",
        "lb",
        &id,
        "-n",
        &namespace,
        "--type=merge",
        "-p",
        r#"{"spec":{"defaultGateway":"10.0.0.1"}}"#,
    ])
    .unwrap();
    eventually(60, "the hand-added spec field is removed", &mut mirror, || async {
        get_lb(&id).filter(|lb| lb["spec"].get("defaultGateway").is_none())
    })
    .await;
    kube.kubectl_ok(&[
        "patch",
        "lb",
        &id,
        "-n",
        &namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"state":"EDITED"}}"#,
    ])
    .unwrap();
    eventually(60, "the hand-edited status is put back", &mut mirror, || async {
        get_lb(&id).filter(|lb| lb["status"]["state"] == "CREATE_COMPLETED")
    })
    .await;
    // Its probes answer on the metrics port, the apiserver check included.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let what = format!("the mirror's {path} answers 200");
        eventually(30, &what, &mut mirror, || async { http_get(metrics, path).await.filter(|(s, _)| *s == 200) }).await;
    }
    let log = std::fs::read_to_string(&mirror.stderr).unwrap_or_default();
    assert!(!log.contains("forbidden") && !log.contains("Forbidden"), "the mirror was refused something:\n{log}");
    mirror.assert_running();
    drop(mirror);

    // The token can do what the Role grants and nothing else.
    let sa = mirror_kubeconfig.as_path();
    let can = |args: &[&str]| -> String {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let (_, out, err) = kubectl_as(sa, &all);
        format!("{}{}", out.trim(), if out.trim().is_empty() { err.trim() } else { "" })
    };
    let lbs = format!("loadbalancers.{API_GROUP}");
    for (resource, verbs) in MIRROR_RULES {
        let (resource, subresource) = resource.split_once('/').map_or((resource, None), |(r, s)| (r, Some(s)));
        let resource = format!("{resource}.{API_GROUP}");
        for verb in verbs {
            let mut args = vec![*verb, resource.as_str(), "--namespace", namespace.as_str()];
            let sub = subresource.map(|s| format!("--subresource={s}"));
            args.extend(sub.as_deref());
            assert_eq!(can(&args), "yes", "can-i {}", args.join(" "));
        }
    }
    for args in [
        vec!["get", lbs.as_str()],
        vec!["update", lbs.as_str()],
        vec!["deletecollection", lbs.as_str()],
        vec!["update", lbs.as_str(), "--subresource=status"],
        vec!["get", "secrets"],
        vec!["list", "configmaps"],
        vec!["create", "events"],
        vec!["create", "events.events.k8s.io"],
        vec!["get", "leases.coordination.k8s.io"],
        vec!["list", "pods"],
        vec!["list", "customresourcedefinitions.apiextensions.k8s.io"],
    ] {
        let mut all = args.clone();
        all.extend(["--namespace", namespace.as_str()]);
        assert_eq!(can(&all), "no", "can-i {}", all.join(" "));
    }
    assert_eq!(can(&["list", &lbs, "--namespace", "default"]), "no", "another namespace");
    assert_eq!(can(&["list", &lbs, "--all-namespaces"]), "no", "all namespaces");

    // `auth can-i --list`: in the namespace, only the Role's rules beyond what every
    // authenticated user has (the self-reviews and the discovery URLs).
    let (ok, list, err) = kubectl_as(sa, &["auth", "can-i", "--list", "--namespace", &namespace]);
    assert!(ok, "auth can-i --list: {err}");
    eprintln!("the mirror's rights in its namespace:\n{list}");
    // The baseline is what the controller's account (bound to nothing) gets: what every
    // authenticated user may do (self reviews, discovery, cluster trust bundles, ...).
    let token = kube.kubectl_ok(&["create", "token", "hr-heat-reconciler", "--namespace", &namespace]).unwrap();
    let plain = kube.kubeconfig_with_token("chart-controller", token.trim()).unwrap();
    let (ok, baseline_list, err) = kubectl_as(&plain, &["auth", "can-i", "--list", "--namespace", &namespace]);
    assert!(ok, "auth can-i --list: {err}");
    let baseline = rights(&baseline_list);
    let mut expected = baseline.clone();
    for (resource, verbs) in MIRROR_RULES {
        let name = match resource.split_once('/') {
            Some((r, s)) => format!("{r}.{API_GROUP}/{s}"),
            None => format!("{resource}.{API_GROUP}"),
        };
        assert!(!baseline.contains_key(&name), "everyone may {name}:\n{baseline_list}");
        expected.insert(name, verbs.iter().map(|v| v.to_string()).collect());
    }
    assert_eq!(rights(&list), expected, "the mirror's rights beyond everyone's:\n{list}");

    // And the requests themselves are refused.
    for (args, what) in [
        (vec!["get", "secrets", "--namespace", namespace.as_str()], "secrets"),
        (vec!["get", "loadbalancers", "--namespace", "default"], "LoadBalancers of another namespace"),
        (vec!["get", "loadbalancer", id.as_str(), "--namespace", namespace.as_str()], "get of one LoadBalancer"),
        (vec!["create", "configmap", "x", "--namespace", namespace.as_str()], "a ConfigMap"),
        (vec!["get", "pods", "--namespace", namespace.as_str()], "pods"),
    ] {
        let (ok, _, err) = kubectl_as(sa, &args);
        assert!(
            !ok && err.to_lowercase().contains("forbidden"),
            "{what}: kubectl {} was not forbidden: {err}",
            args.join(" ")
        );
    }
    let (ok, out, _) = kubectl_as(sa, &["get", "loadbalancers", "--namespace", &namespace, "-o", "name"]);
    assert!(ok && out.contains(&id), "listing its own LoadBalancers: {out}");

    // The controller's and monitor's ServiceAccount may do nothing beyond everyone's.
    for args in [vec!["list", lbs.as_str()], vec!["get", "secrets"], vec!["get", "configmaps"]] {
        let mut all = vec!["auth", "can-i"];
        all.extend(args.iter().copied());
        all.extend(["--namespace", namespace.as_str()]);
        let (_, out, _) = kubectl_as(&plain, &all);
        assert_eq!(out.trim(), "no", "the controller's account: can-i {}", all.join(" "));
    }
}
