//! A real etcd on loopback with a temporary data dir, for tests, `replay`, `demo`, the
//! benchmarks and the kube-apiserver's own store.

use super::process::{ChildProcess, free_tcp_ports, scratch_dir};
use crate::store::{Store, StoreError};
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
}

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
        let ports = free_tcp_ports(2).context("finding free ports for etcd")?;
        let (client_url, peer_url) = (url(ports[0]), url(ports[1]));
        let member =
            Member { name: "local".into(), initial_cluster: format!("local={peer_url}"), client_url, peer_url };
        let mut etcd = LocalEtcd::spawn(binary, member, ports[0])?;
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    /// Starts a cluster of `size` members on loopback and waits until every member answers.
    pub async fn start_cluster(size: usize) -> anyhow::Result<Vec<LocalEtcd>> {
        let ports = free_tcp_ports(size * 2).context("finding free ports for etcd")?;
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
            members.push(LocalEtcd::spawn(default_binary(), member, format!("{}-m{n}", ports[0]))?);
        }
        // A member answers only once a quorum has formed, so every one is started first.
        for member in &mut members {
            member.wait_ready().await?;
        }
        Ok(members)
    }

    fn spawn(binary: PathBuf, member: Member, tag: impl std::fmt::Display) -> anyhow::Result<LocalEtcd> {
        let dir = scratch_dir("etcd", tag).context("making etcd's data dir")?;
        let data_dir = dir.join("data");
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
                    .args(["--auto-compaction-retention", "1h", "--log-level", "error"]);
                command
            })?;
        Ok(LocalEtcd { process, dir, client_url, peer_url })
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.process.exited() {
                anyhow::bail!("etcd at {} exited at start ({status}): {}", self.client_url, self.process.log_tail(5));
            }
            // Bounded, so a connection that never completes cannot outlast the deadline.
            let attempt = async {
                let store = Store::connect(std::slice::from_ref(&self.client_url)).await?;
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
        self.process.start()?;
        self.wait_ready().await
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.client_url.clone()]
    }

    pub async fn connect(&self) -> Result<Store, StoreError> {
        Store::connect(&self.endpoints()).await
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `ETCD_BIN`, else `etcd` from `PATH`.
fn default_binary() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}
