//! A real kube-apiserver on loopback, with its own etcd, for the mirror's tests, its benchmark and
//! `demo --kubernetes` — what controller-runtime's envtest runs, started from Rust. Serving
//! certificate and service-account key are made here (rcgen); clients authenticate with a static
//! admin token, or with a service account's token to check RBAC. There is no kubelet: pods never
//! run, but every object is validated and stored as in a cluster.
//!
//! The binaries (kube-apiserver, kubectl, helm and an etcd new enough for this apiserver) are
//! built or unpacked by `scripts/prepare-kube.sh` into [`bin_dir`].

use super::etcd::LocalEtcd;
use super::process::{ChildProcess, free_tcp_port, scratch_dir};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The Kubernetes release the tests run (the wrapper module `kube/go.mod` pins it; k8s-openapi's
/// version feature matches it).
pub fn kubernetes_version() -> &'static str {
    const GO_MOD: &str = include_str!("../../kube/go.mod");
    GO_MOD
        .lines()
        .find_map(|line| line.trim().strip_prefix("k8s.io/kubernetes "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("unknown")
}

/// Where `scripts/prepare-kube.sh` puts the binaries: `HEAT_RECONCILER_KUBE_BIN`, else
/// `${HEAT_RECONCILER_HOME:-~/.cache/heat-reconciler}/kube/<version>/bin`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEAT_RECONCILER_KUBE_BIN") {
        return PathBuf::from(dir);
    }
    super::cache_home().join("kube").join(kubernetes_version()).join("bin")
}

/// One of the binaries, or an error saying how to get it.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `bash scripts/prepare-kube.sh` (builds kube-apiserver {} and fetches kubectl and helm)",
        path.display(),
        kubernetes_version()
    );
    Ok(path)
}

/// A kube-apiserver child process and its etcd; both stop, and the files go, when dropped.
pub struct LocalKubeApiserver {
    process: ChildProcess,
    // Dropped after the apiserver (fields drop in order), which takes ~10 s to exit without its etcd.
    _etcd: LocalEtcd,
    dir: PathBuf,
    port: u16,
    admin_token: String,
    /// A kubeconfig with the admin token.
    pub kubeconfig: PathBuf,
}

impl LocalKubeApiserver {
    /// Starts etcd and the apiserver on free loopback ports and waits until `/readyz` answers.
    pub async fn start() -> anyhow::Result<LocalKubeApiserver> {
        let apiserver = binary("kube-apiserver")?;
        let etcd = LocalEtcd::start_binary(binary("etcd")?).await.context("the apiserver's etcd")?;
        let port = free_tcp_port()?;
        let dir = scratch_dir("kube", port)?;
        let admin_token = crate::ids::random_id();
        write_credentials(&dir, &admin_token)?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(port, &dir.join("ca.crt"), &admin_token))?;
        let (etcd_url, files) = (etcd.client_url.clone(), dir.clone());
        let process = ChildProcess::spawn("kube-apiserver", &dir.join("kube-apiserver.log"), move || {
            command(&apiserver, &etcd_url, port, &files)
        })?;
        let mut server = LocalKubeApiserver { process, _etcd: etcd, dir, port, admin_token, kubeconfig };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        // A plain HTTP client: kube's logs every refused connection and 500 at error level, and
        // those are expected while the apiserver starts.
        crate::tls::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(self.dir.join("ca.crt"))?)?;
        let client = reqwest::Client::builder().add_root_certificate(ca).timeout(Duration::from_secs(5)).build()?;
        let readyz = format!("{}/readyz", self.url());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.process.exited() {
                anyhow::bail!("kube-apiserver exited at start ({status}):\n{}", self.log_tail());
            }
            let answer = client.get(&readyz).bearer_auth(&self.admin_token).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "kube-apiserver did not become ready in 90 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Its log (kept until the server is dropped).
    pub fn log(&self) -> PathBuf {
        self.dir.join("kube-apiserver.log")
    }

    /// The last lines of its log (the log goes with the server, so errors quote it).
    fn log_tail(&self) -> String {
        self.process.log_tail(15)
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A client with the admin token.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        crate::tls::install_crypto_provider();
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Writes a kubeconfig that authenticates with `token` (a service account's, say).
    pub fn kubeconfig_with_token(&self, name: &str, token: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("kubeconfig-{name}"));
        std::fs::write(&path, kubeconfig_yaml(self.port, &self.dir.join("ca.crt"), token))?;
        Ok(path)
    }

    /// Runs kubectl (from [`bin_dir`]) as the admin; its output, whatever its exit status.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(Command::new(binary("kubectl")?).arg("--kubeconfig").arg(&self.kubeconfig).args(args).output()?)
    }

    /// kubectl's stdout; an error with its stderr when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.kubectl(args)?;
        anyhow::ensure!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Requests the apiserver has served so far, from its `apiserver_request_total` metric, by
    /// verb (`GET`, `LIST`, `WATCH`, `PATCH`, ...), summed over resources and codes.
    pub async fn request_counts(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        let client = self.client().await?;
        let text = client.request_text(http::Request::get("/metrics").body(Vec::new())?).await?;
        let mut counts = std::collections::BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
            let verb = line.split("verb=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("?");
            let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
            *counts.entry(verb.to_owned()).or_default() += value as u64;
        }
        Ok(counts)
    }

    /// Installs the CRDs of the mirrored kinds (as the chart does) and waits until they are
    /// Established.
    pub async fn install_crds(&self) -> anyhow::Result<()> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::CustomResourceExt as _;
        use kube::runtime::wait::{await_condition, conditions};
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client().await?);
        let crd = crate::mirror::LoadBalancer::crd();
        let name = crd.metadata.name.clone().unwrap_or_default();
        let apply = kube::api::PatchParams::apply(crate::mirror::writer::FIELD_MANAGER).force();
        api.patch(&name, &apply, &kube::api::Patch::Apply(&crd)).await.with_context(|| format!("applying {name}"))?;
        let established = await_condition(api, &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .with_context(|| format!("{name} not Established within 60 s"))??;
        Ok(())
    }

    /// Kills the apiserver (as a crash would); its etcd keeps running, so everything stays.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port and etcd and waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.process.start()?;
        self.wait_ready().await
    }

    /// The admin token (for tools that take a token rather than a kubeconfig).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

impl Drop for LocalKubeApiserver {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The apiserver's command line: its etcd, its port, and the files [`write_credentials`] made.
fn command(binary: &Path, etcd_url: &str, port: u16, dir: &Path) -> Command {
    let file = |name: &str| dir.join(name).display().to_string();
    let mut command = Command::new(binary);
    command
        .arg(format!("--etcd-servers={etcd_url}"))
        .arg(format!("--secure-port={port}"))
        .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
        // No kubelet, no Service endpoints to keep: and 1.37 refuses a loopback address for them.
        .arg("--endpoint-reconciler-type=none")
        .arg(format!("--cert-dir={}", file("certs")))
        .arg(format!("--tls-cert-file={}", file("serving.crt")))
        .arg(format!("--tls-private-key-file={}", file("serving.key")))
        .arg(format!("--token-auth-file={}", file("tokens.csv")))
        .arg(format!("--service-account-issuer=https://127.0.0.1:{port}/"))
        .arg(format!("--service-account-key-file={}", file("service-account.pub")))
        .arg(format!("--service-account-signing-key-file={}", file("service-account.key")))
        .args(["--authorization-mode=RBAC", "--service-cluster-ip-range=10.0.0.0/24"])
        .args(["--disable-admission-plugins=ServiceAccount", "--allow-privileged=true"]);
    command
}

/// The serving certificate (a CA of its own and a leaf for 127.0.0.1), the service-account key
/// and the token file with one admin.
fn write_credentials(dir: &Path, admin_token: &str) -> anyhow::Result<()> {
    let ca = super::certs::TestCa::new("heat-reconciler test CA")?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    ca.loopback_server()?.write(dir, "serving")?;
    let service_account = rcgen::KeyPair::generate()?;
    std::fs::write(dir.join("service-account.key"), service_account.serialize_pem())?;
    std::fs::write(dir.join("service-account.pub"), service_account.public_key_pem())?;
    std::fs::write(dir.join("tokens.csv"), format!("{admin_token},admin,admin,\"system:masters\"\n"))?;
    Ok(())
}

fn kubeconfig_yaml(port: u16, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: user
  user:
    token: {token}
contexts:
- name: local
  context:
    cluster: local
    user: user
    namespace: default
current-context: local
",
        ca = ca.display()
    )
}
