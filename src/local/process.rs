//! The one way a local service's process is run: a child that is killed when its guard goes, can
//! be stopped (as a crash would) and started again with the same command, and whose log tells why
//! it did not start. Also free loopback ports.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// Runs `start_again` (a stopped service started again on the ports it had, until it answers)
/// up to ten times, 200 ms apart, while `port_held` says it failed for want of its port: a
/// stopped service's ports are free, and a free-port search elsewhere (which binds port 0 and
/// lets go) may hold one for a moment, so that the service exits at once.
pub async fn again_while_port_held<E>(
    name: &str,
    mut start_again: impl AsyncFnMut() -> Result<(), E>,
    port_held: impl Fn(&E) -> bool,
) -> Result<(), E> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match start_again().await {
            Err(e) if attempts < 10 && port_held(&e) => {
                tracing::debug!("{name} did not start again, its port is held; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

/// A child process of a local service: its command (to start it again), its log file, and the
/// process while it runs. Killed when dropped.
pub struct ChildProcess {
    /// What the service is, for messages (`etcd`, `snmpd`, `kube-apiserver`).
    name: String,
    make: Box<dyn Fn() -> Command + Send + Sync>,
    log: PathBuf,
    child: Option<Child>,
}

impl ChildProcess {
    /// Starts the command `make` builds, its stdout and stderr going to `log` (stdin closed).
    pub fn spawn(
        name: &str,
        log: &Path,
        make: impl Fn() -> Command + Send + Sync + 'static,
    ) -> anyhow::Result<ChildProcess> {
        let mut process =
            ChildProcess { name: name.to_owned(), make: Box::new(make), log: log.to_owned(), child: None };
        process.start()?;
        Ok(process)
    }

    /// Starts the process again (after [`ChildProcess::stop`]); a running one is left alone.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = std::fs::File::create(&self.log)
            .map_err(|e| anyhow::anyhow!("{}: creating its log {}: {e}", self.name, self.log.display()))?;
        let mut command = (self.make)();
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {} (`{program}`): {e}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the process (as a crash would) and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process runs (started, not stopped, not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// How the process ended, if it has (forgetting it, so it can be started again).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())?;
        self.child = None;
        Some(status)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of its log, which say why it failed.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `count` distinct free TCP ports on loopback. Every listener is held until all are chosen, so
/// none is picked twice; a port is only free until someone binds it.
pub fn free_tcp_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| bind_outside_ephemeral(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port))))
        .collect::<Result<_, _>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// A free TCP port on loopback.
pub fn free_tcp_port() -> std::io::Result<u16> {
    Ok(free_tcp_ports(1)?[0])
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> std::io::Result<u16> {
    bind_outside_ephemeral(|port| UdpSocket::bind((Ipv4Addr::LOCALHOST, port)))?.local_addr().map(|a| a.port())
}

/// The lowest port a picked port may have: below it are the fixed ports of the shared local
/// services ([`super::ports`]) and the ports well-known services are known by.
const LOWEST_PICKED_PORT: u16 = 20_000;

/// A socket `bind` made on a random free port below the kernel's ephemeral range.
///
/// Why not port 0: the kernel hands out the same range to every outgoing connection, and the
/// tests make many (to etcd, Heat, the monitor). Once the picking socket is closed, such a
/// connection may take the port before the service binds it, and the service then fails with
/// "address already in use". Ports below the range are only ever taken by someone binding them.
/// Where the range cannot be read (or leaves no room below it), port 0 it is.
fn bind_outside_ephemeral<S>(bind: impl Fn(u16) -> std::io::Result<S>) -> std::io::Result<S> {
    let Some(first_ephemeral) = first_ephemeral_port().filter(|&p| p > LOWEST_PICKED_PORT + 1000) else {
        return bind(0);
    };
    for _ in 0..100 {
        if let Ok(socket) = bind(rand::random_range(LOWEST_PICKED_PORT..first_ephemeral)) {
            return Ok(socket);
        }
    }
    bind(0)
}

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), read once
/// per process rather than once per port picked.
fn first_ephemeral_port() -> Option<u16> {
    static FIRST: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();
    *FIRST.get_or_init(|| {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        range.split_whitespace().next()?.parse().ok()
    })
}

/// A fresh directory for a service's files under the temp dir, named after the service, this
/// process and `tag` (a port, say); whatever was there before is removed.
pub fn scratch_dir(service: &str, tag: impl std::fmt::Display) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("heat-reconciler-{service}-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ports_are_distinct_and_below_the_ephemeral_range() {
        let first_ephemeral = first_ephemeral_port().expect("the kernel's ephemeral range is readable");
        let ports = free_tcp_ports(20).unwrap();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        let udp = free_udp_port().unwrap();
        for port in ports.into_iter().chain([udp]) {
            assert!((LOWEST_PICKED_PORT..first_ephemeral).contains(&port), "{port} is not below {first_ephemeral}");
        }
    }
}
