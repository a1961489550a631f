//! A real etcd process on loopback with a temporary data dir, for tests, `replay` and `demo`.

use super::{Store, StoreError};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An `etcd` child process; killed and its data dir removed when dropped.
pub struct LocalEtcd {
    /// `None` while stopped.
    child: Option<Child>,
    data_dir: PathBuf,
    /// Member name and the `--initial-cluster` it was started with.
    name: String,
    initial_cluster: String,
    /// The `etcd` command.
    binary: PathBuf,
    pub client_url: String,
    pub peer_url: String,
}

/// Two distinct free loopback ports. Both listeners are held until both ports are chosen, so the
/// second cannot be the port the first just released.
fn free_ports() -> std::io::Result<(u16, u16)> {
    let first = TcpListener::bind("127.0.0.1:0")?;
    let second = TcpListener::bind("127.0.0.1:0")?;
    Ok((first.local_addr()?.port(), second.local_addr()?.port()))
}

impl LocalEtcd {
    /// Starts `etcd` (from `PATH` or `ETCD_BIN`) and waits until it answers.
    pub async fn start() -> Result<LocalEtcd, StoreError> {
        LocalEtcd::start_binary(default_binary()).await
    }

    /// Starts the `etcd` at `binary` (a newer one than the machine's, say) and waits until it
    /// answers.
    pub async fn start_binary(binary: PathBuf) -> Result<LocalEtcd, StoreError> {
        let io = |e: std::io::Error| StoreError::Other(format!("starting etcd: {e}"));
        let (client_port, peer_port) = free_ports().map_err(io)?;
        let data_dir = std::env::temp_dir().join(format!("heat-reconciler-etcd-{}-{client_port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let initial_cluster = format!("local={peer_url}");
        let mut etcd =
            LocalEtcd { child: None, data_dir, name: "local".into(), initial_cluster, binary, client_url, peer_url };
        etcd.spawn()?;
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    /// Starts a cluster of `size` members on loopback and waits until every member answers.
    pub async fn start_cluster(size: usize) -> Result<Vec<LocalEtcd>, StoreError> {
        let io = |e: std::io::Error| StoreError::Other(format!("starting etcd: {e}"));
        // Hold every listener until all ports are chosen, so none is picked twice.
        let listeners: Vec<TcpListener> =
            (0..size * 2).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>().map_err(io)?;
        let ports: Vec<u16> =
            listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<_, _>>().map_err(io)?;
        drop(listeners);
        let peer = |n: usize| format!("http://127.0.0.1:{}", ports[2 * n + 1]);
        let initial_cluster: Vec<String> = (0..size).map(|n| format!("m{n}={}", peer(n))).collect();
        let initial_cluster = initial_cluster.join(",");
        let mut members = Vec::with_capacity(size);
        for n in 0..size {
            let data_dir =
                std::env::temp_dir().join(format!("heat-reconciler-etcd-{}-{}-m{n}", std::process::id(), ports[0]));
            let _ = std::fs::remove_dir_all(&data_dir);
            let mut member = LocalEtcd {
                child: None,
                data_dir,
                name: format!("m{n}"),
                initial_cluster: initial_cluster.clone(),
                binary: default_binary(),
                client_url: format!("http://127.0.0.1:{}", ports[2 * n]),
                peer_url: peer(n),
            };
            member.spawn()?;
            members.push(member);
        }
        // A member answers only once a quorum has formed, so every one is started first.
        for member in &mut members {
            member.wait_ready().await?;
        }
        Ok(members)
    }

    fn spawn(&mut self) -> Result<(), StoreError> {
        let binary = &self.binary;
        let child = Command::new(binary)
            .args(["--name", &self.name, "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url, "--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url, "--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--auto-compaction-retention", "1h", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                StoreError::Other(format!("starting `{}` (install the etcd-server package): {e}", binary.display()))
            })?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<(), StoreError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(StoreError::Other(format!("etcd at {} exited at start: {status}", self.client_url)));
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
                return Err(StoreError::Other(format!("etcd at {} did not become ready", self.client_url)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process (as a crash would), keeping its ports and data dir for [`restart`].
    ///
    /// [`restart`]: LocalEtcd::restart
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running (not stopped, and has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the process if it runs, starts it again on the same ports and data dir, and waits
    /// until it answers. Everything written before the stop is still there.
    pub async fn restart(&mut self) -> Result<(), StoreError> {
        self.stop();
        self.spawn()?;
        self.wait_ready().await
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.client_url.clone()]
    }

    pub async fn connect(&self) -> Result<Store, StoreError> {
        Store::connect(&self.endpoints()).await
    }
}

/// `ETCD_BIN`, else `etcd` from `PATH`.
fn default_binary() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
