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
        let io = |e: std::io::Error| StoreError::Other(format!("starting etcd: {e}"));
        let (client_port, peer_port) = free_ports().map_err(io)?;
        let data_dir = std::env::temp_dir().join(format!("heat-reconciler-etcd-{}-{client_port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = LocalEtcd { child: None, data_dir, client_url, peer_url };
        etcd.spawn()?;
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    fn spawn(&mut self) -> Result<(), StoreError> {
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let child = Command::new(&binary)
            .args(["--name", "local", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url, "--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url, "--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &format!("local={}", self.peer_url)])
            .args(["--auto-compaction-retention", "1h", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| StoreError::Other(format!("starting `{binary}` (install the etcd-server package): {e}")))?;
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

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
