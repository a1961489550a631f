//! A real etcd on loopback with a temporary data dir, for tests, `replay`, `demo`, the
//! benchmarks and the kube-apiserver's own store; or secured as a production etcd is (TLS,
//! client-certificate authentication and `auth enable`), for the tests of the controller's etcd
//! options.

use super::certs::TestCa;
use super::process::{ChildProcess, again_while_port_held, free_tcp_ports, scratch_dir};
use crate::store::{EtcdAccess, Store, StoreError};
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// An `etcd` member; killed and its data dir removed when dropped.
pub struct LocalEtcd {
    process: ChildProcess,
    dir: PathBuf,
    pub client_url: String,
    pub peer_url: String,
    /// How [`LocalEtcd::connect`] (and the readiness check) reach it: as root when secured.
    access: EtcdAccess,
    /// What [`LocalEtcd::start_secured`] made; `None` for a plain one.
    pub security: Option<EtcdSecurity>,
}

/// The files and users of a secured [`LocalEtcd`]. The files are in its scratch dir (they go
/// with it).
#[derive(Debug, Clone)]
pub struct EtcdSecurity {
    /// The CA that signed etcd's serving certificate and the client certificate.
    pub ca_file: PathBuf,
    /// A client certificate (and its key) etcd accepts. Its subject, [`CLIENT_CERT_NAME`], is no
    /// etcd user, so it grants nothing by itself: rights come from the user a client logs in as.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The user with `root`'s role (what Gohan would write as in the tests).
    pub root_password: String,
    /// A user allowed to read and write every key under `/` (what the controller needs).
    pub user: String,
    pub password: String,
    /// A user with no role at all: it logs in, and may read nothing.
    pub powerless_user: String,
    pub powerless_password: String,
}

/// etcd's own default `--auth-token-ttl`.
const ETCD_TOKEN_TTL: Duration = Duration::from_secs(300);

/// The subject of a secured etcd's client certificate.
pub const CLIENT_CERT_NAME: &str = "heat-reconciler-client";

/// The role that gives a secured etcd's controller user its rights.
const CONTROLLER_ROLE: &str = "heat-reconciler";

/// One member's place in a cluster.
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    initial_cluster: String,
}

impl LocalEtcd {
    /// Starts `etcd` (from `PATH` or `ETCD_BIN`) and waits until it answers.
    pub async fn start() -> anyhow::Result<LocalEtcd> {
        LocalEtcd::start_binary(default_binary()).await
    }

    /// Starts the `etcd` at `binary` (a newer one than the machine's, say) and waits until it
    /// answers.
    pub async fn start_binary(binary: PathBuf) -> anyhow::Result<LocalEtcd> {
        LocalEtcd::start_with(binary, Vec::new()).await
    }

    /// [`LocalEtcd::start`] taking requests of up to `bytes` (`--max-request-bytes`; 1.5 MiB by
    /// default): an etcd configured to hold values larger than the controller reads.
    pub async fn start_with_max_request_bytes(bytes: usize) -> anyhow::Result<LocalEtcd> {
        LocalEtcd::start_with(default_binary(), vec![format!("--max-request-bytes={bytes}")]).await
    }

    async fn start_with(binary: PathBuf, extra_args: Vec<String>) -> anyhow::Result<LocalEtcd> {
        let (binary, extra_args) = (&binary, &extra_args);
        on_free_ports(2, |ports| async move {
            let (client_url, peer_url) = (url(ports[0]), url(ports[1]));
            let member =
                Member { name: "local".into(), initial_cluster: format!("local={peer_url}"), client_url, peer_url };
            let mut etcd = LocalEtcd::spawn(binary.clone(), member, ports[0], None, extra_args.clone())?;
            etcd.wait_ready().await?;
            Ok(etcd)
        })
        .await
    }

    /// Starts `etcd` (as [`LocalEtcd::start`]) secured: an `https://` client URL with a serving
    /// certificate for 127.0.0.1, client certificates required (`--client-cert-auth`), and
    /// etcd's own authentication enabled with the users of [`EtcdSecurity`]. [`connect`] logs in
    /// as root.
    ///
    /// [`connect`]: LocalEtcd::connect
    pub async fn start_secured() -> anyhow::Result<LocalEtcd> {
        LocalEtcd::start_secured_with_token_ttl(ETCD_TOKEN_TTL).await
    }

    /// [`LocalEtcd::start_secured`] whose login tokens expire after `token_ttl` without use
    /// (etcd's `--auth-token-ttl`, whole seconds; 5 minutes by default).
    pub async fn start_secured_with_token_ttl(token_ttl: Duration) -> anyhow::Result<LocalEtcd> {
        let ca = TestCa::new("heat-reconciler test etcd CA")?;
        let ca = &ca;
        let mut etcd = on_free_ports(2, |ports| async move {
            let member = Member {
                name: "local".into(),
                initial_cluster: format!("local={}", url(ports[1])),
                client_url: format!("https://127.0.0.1:{}", ports[0]),
                peer_url: url(ports[1]),
            };
            let mut etcd = LocalEtcd::spawn(default_binary(), member, ports[0], Some((ca, token_ttl)), Vec::new())?;
            let client = ca.client(CLIENT_CERT_NAME)?;
            client.write(&etcd.dir, "client")?;
            etcd.access = EtcdAccess {
                ca: Some(ca.pem().as_bytes().to_vec()),
                identity: Some((client.cert_pem.into_bytes(), client.key_pem.into_bytes())),
                user: None,
            };
            etcd.wait_ready().await?;
            Ok(etcd)
        })
        .await?;
        let security = EtcdSecurity {
            ca_file: etcd.dir.join("ca.crt"),
            cert_file: etcd.dir.join("client.crt"),
            key_file: etcd.dir.join("client.key"),
            root_password: crate::ids::random_id(),
            user: "heat-reconciler".into(),
            password: crate::ids::random_id(),
            powerless_user: "nobody".into(),
            powerless_password: crate::ids::random_id(),
        };
        enable_auth(&etcd.connect().await?, &security).await.context("enabling etcd's authentication")?;
        etcd.access.user = Some(("root".into(), security.root_password.clone()));
        etcd.security = Some(security);
        Ok(etcd)
    }

    /// Starts a cluster of `size` members on loopback and waits until every member answers.
    pub async fn start_cluster(size: usize) -> anyhow::Result<Vec<LocalEtcd>> {
        on_free_ports(size * 2, |ports| async move {
            let initial_cluster: Vec<String> = (0..size).map(|n| format!("m{n}={}", url(ports[2 * n + 1]))).collect();
            let initial_cluster = initial_cluster.join(",");
            let mut members = Vec::with_capacity(size);
            for n in 0..size {
                let member = Member {
                    name: format!("m{n}"),
                    client_url: url(ports[2 * n]),
                    peer_url: url(ports[2 * n + 1]),
                    initial_cluster: initial_cluster.clone(),
                };
                let tag = format!("{}-m{n}", ports[0]);
                members.push(LocalEtcd::spawn(default_binary(), member, tag, None, Vec::new())?);
            }
            // A member answers only once a quorum has formed, so every one is started first.
            for member in &mut members {
                member.wait_ready().await?;
            }
            Ok(members)
        })
        .await
    }

    /// Starts the process; with a CA, serving TLS with a certificate it signs and requiring
    /// client certificates it signed (the files go into the scratch dir), and with that TTL of
    /// login tokens; `extra_args` go on its command line as they are.
    fn spawn(
        binary: PathBuf,
        member: Member,
        tag: impl std::fmt::Display,
        tls: Option<(&TestCa, Duration)>,
        extra_args: Vec<String>,
    ) -> anyhow::Result<LocalEtcd> {
        let dir = scratch_dir("etcd", tag).context("making etcd's data dir")?;
        let data_dir = dir.join("data");
        let tls_args: Vec<String> = match tls {
            Some((ca, token_ttl)) => {
                std::fs::write(dir.join("ca.crt"), ca.pem())?;
                ca.loopback_server()?.write(&dir, "server")?;
                let file = |name: &str| dir.join(name).display().to_string();
                vec![
                    format!("--cert-file={}", file("server.crt")),
                    format!("--key-file={}", file("server.key")),
                    format!("--trusted-ca-file={}", file("ca.crt")),
                    "--client-cert-auth".into(),
                    format!("--auth-token-ttl={}", token_ttl.as_secs().max(1)),
                ]
            }
            None => Vec::new(),
        };
        let Member { name, client_url, peer_url, initial_cluster } = member;
        let (client, peer) = (client_url.clone(), peer_url.clone());
        let process =
            ChildProcess::spawn("etcd (install the etcd-server package)", &dir.join("etcd.log"), move || {
                let mut command = Command::new(&binary);
                command
                    .args(["--name", &name, "--data-dir"])
                    .arg(&data_dir)
                    .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
                    .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
                    .args(["--initial-cluster", &initial_cluster])
                    .args(["--auto-compaction-retention", "1h", "--log-level", "error"])
                    .args(&tls_args)
                    .args(&extra_args);
                command
            })?;
        Ok(LocalEtcd { process, dir, client_url, peer_url, access: EtcdAccess::default(), security: None })
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.process.exited() {
                anyhow::bail!("etcd at {} exited at start ({status}): {}", self.client_url, self.process.log_tail(5));
            }
            // Bounded, so a connection that never completes cannot outlast the deadline.
            let attempt = async {
                let store = Store::connect_with(std::slice::from_ref(&self.client_url), &self.access).await?;
                store.revision().await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("etcd at {} did not become ready: {}", self.client_url, self.process.log_tail(5));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process (as a crash would), keeping its ports and data dir for [`restart`].
    ///
    /// [`restart`]: LocalEtcd::restart
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Whether the process is running (not stopped, and has not exited).
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Stops the process if it runs, starts it again on the same ports and data dir, and waits
    /// until it answers. Everything written before the stop is still there.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let start_again = async || {
            self.process.start()?;
            self.wait_ready().await
        };
        again_while_port_held("etcd", start_again, port_taken).await
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.client_url.clone()]
    }

    /// A client; as root when secured.
    pub async fn connect(&self) -> Result<Store, StoreError> {
        Store::connect_with(&self.endpoints(), &self.access).await
    }

    /// Takes the controller user's role from it (`granted` false: it may then read and write
    /// nothing), or gives it back, as `etcdctl user revoke-role` / `grant-role` would, as root.
    pub async fn set_controller_rights(&self, granted: bool) -> anyhow::Result<()> {
        let security = self.security.as_ref().context("not a secured etcd")?;
        let mut client = self.connect().await?.client();
        if granted {
            client.user_grant_role(security.user.as_str(), CONTROLLER_ROLE).await?;
        } else {
            client.user_revoke_role(security.user.as_str(), CONTROLLER_ROLE).await?;
        }
        Ok(())
    }
}

/// What etcdctl's `user add root`, `auth enable` and a few role grants do: root (with the root
/// role, which etcd requires before it enables authentication), a user with read and write on
/// every key under `/`, and one with no role.
async fn enable_auth(store: &Store, security: &EtcdSecurity) -> Result<(), etcd_client::Error> {
    use etcd_client::Permission;
    let mut client = store.client();
    client.user_add("root", security.root_password.as_str(), None).await?;
    client.role_add("root").await?;
    client.user_grant_role("root", "root").await?;
    let role = CONTROLLER_ROLE;
    client.role_add(role).await?;
    client.role_grant_permission(role, Permission::read_write("/").with_prefix()).await?;
    client.user_add(security.user.as_str(), security.password.as_str(), None).await?;
    client.user_grant_role(security.user.as_str(), role).await?;
    client.user_add(security.powerless_user.as_str(), security.powerless_password.as_str(), None).await?;
    client.auth_enable().await?;
    Ok(())
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `start` on `count` free ports, again on fresh ones (up to three times in all) when etcd
/// could not bind one: a port is only free until someone else binds it.
async fn on_free_ports<T, Fut>(count: usize, start: impl Fn(Vec<u16>) -> Fut) -> anyhow::Result<T>
where
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let ports = free_tcp_ports(count).context("finding free ports for etcd")?;
        match start(ports).await {
            Err(e) if attempts < 3 && port_taken(&e) => {
                tracing::debug!("etcd did not start, trying other ports: {e:#}");
            }
            result => return result,
        }
    }
}

/// Whether etcd failed to start because one of its ports was bound by someone else.
fn port_taken(error: &anyhow::Error) -> bool {
    format!("{error:#}").contains("address already in use")
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `ETCD_BIN`, else `etcd` from `PATH`.
fn default_binary() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}
