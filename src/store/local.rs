//! A real etcd process on loopback with a temporary data dir, for tests, `replay` and `demo`.

use super::{Store, StoreError};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An `etcd` child process; killed and its data dir removed when dropped.
pub struct LocalEtcd {
    child: Child,
    data_dir: PathBuf,
    pub client_url: String,
    pub peer_url: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalEtcd {
    /// Starts `etcd` (from `PATH` or `ETCD_BIN`) and waits until it answers.
    pub async fn start() -> Result<LocalEtcd, StoreError> {
        let io = |e: std::io::Error| StoreError::Other(format!("starting etcd: {e}"));
        let (client_port, peer_port) = (free_port().map_err(io)?, free_port().map_err(io)?);
        let data_dir = std::env::temp_dir().join(format!("heat-reconciler-etcd-{}-{client_port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let child = Command::new(&binary)
            .args(["--name", "local", "--data-dir"])
            .arg(&data_dir)
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("local={peer_url}")])
            .args(["--auto-compaction-retention", "1h", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| StoreError::Other(format!("starting `{binary}` (install the etcd-server package): {e}")))?;
        let etcd = LocalEtcd { child, data_dir, client_url, peer_url };
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    async fn wait_ready(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(store) = Store::connect(std::slice::from_ref(&self.client_url)).await
                && store.revision().await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Other(format!("etcd at {} did not become ready", self.client_url)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
