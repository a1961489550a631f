//! A local net-snmp `snmpd` on loopback, for tests, the demo and the benchmark.
//!
//! The agent reads only the config file written here (read-only communities, and an interface
//! table made of `override` directives), keeps its state in a temporary dir, and loads no MIB
//! module but the system group: it shows none of the machine's own interfaces, so a name that was
//! not given is missing for sure.

use super::process::{ChildProcess, again_while_port_held, free_udp_port, scratch_dir};
use crate::monitor::probe::{SnmpTarget, snmp_device};
use anyhow::{Context, anyhow, ensure};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// IF-MIB columns the fake interfaces fill: ifIndex, ifOperStatus (ifTable) and ifName (ifXTable).
const IF_INDEX: &str = ".1.3.6.1.2.1.2.2.1.1";
const IF_OPER_STATUS: &str = ".1.3.6.1.2.1.2.2.1.8";
const IF_NAME: &str = ".1.3.6.1.2.1.31.1.1.1.1";

/// An `snmpd` child process; killed and its temp dir removed when dropped.
pub struct LocalSnmpd {
    /// `None` until the first start.
    process: Option<ChildProcess>,
    dir: PathBuf,
    addr: SocketAddr,
    /// The first community given, used to see that the agent answers.
    community: String,
}

impl LocalSnmpd {
    /// Starts `snmpd` (`SNMPD_BIN`, else `/usr/sbin/snmpd`, else from `PATH`) on 127.0.0.1 and a
    /// free UDP port, and waits until it answers.
    ///
    /// `communities` may read everything; there must be at least one. `interfaces` are
    /// `(ifName, up)` pairs that become ifIndex 1, 2, ... in that order, with ifOperStatus
    /// `up(1)` or `down(2)`. Neither may contain quotes, backslashes or control characters (they
    /// go into the config file), and communities no whitespace.
    pub async fn start(communities: &[&str], interfaces: &[(&str, bool)]) -> anyhow::Result<LocalSnmpd> {
        let config = config(communities, interfaces)?;
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = scratch_dir("snmpd", STARTED.fetch_add(1, Ordering::Relaxed)).context("snmpd's temp dir")?;
        std::fs::create_dir_all(dir.join("persist")).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("snmpd.conf"), config).context("writing snmpd.conf")?;
        let mut snmpd = LocalSnmpd {
            process: None,
            dir,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            community: communities[0].to_owned(),
        };
        // The free port is only free until snmpd binds it, so another process may take it first:
        // then snmpd exits at once and a new port is tried.
        let mut attempts = 0;
        loop {
            attempts += 1;
            snmpd.addr.set_port(free_udp_port().context("finding a free UDP port")?);
            snmpd.spawn()?;
            match snmpd.wait_ready().await {
                Ok(()) => return Ok(snmpd),
                Err(NotReady::Exited(e)) if attempts < 3 => tracing::debug!("snmpd did not start: {e:#}"),
                Err(NotReady::Exited(e) | NotReady::Silent(e)) => return Err(e),
            }
        }
    }

    /// Where the agent listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The agent's process id while it runs (the benchmark reads its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildProcess::pid)
    }

    /// A probe target for this agent with `community`.
    pub fn target(&self, community: &str) -> SnmpTarget {
        SnmpTarget::new(self.addr, community)
    }

    /// Kills the process (as a crash would), keeping its port and config for [`start_again`].
    ///
    /// [`start_again`]: LocalSnmpd::start_again
    pub fn stop(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.stop();
        }
    }

    /// Whether the process is running (not stopped, and has not exited).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ChildProcess::is_running)
    }

    /// Stops the process if it runs, starts it again on the same port with the same config, and
    /// waits until it answers.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        let start_again = async || {
            if let Some(process) = self.process.as_mut() {
                process.start().map_err(NotReady::Silent)?;
            }
            self.wait_ready().await
        };
        // An agent that exits at once could not open its port.
        let result = again_while_port_held("snmpd", start_again, |e| matches!(e, NotReady::Exited(_))).await;
        result.map_err(|(NotReady::Exited(e) | NotReady::Silent(e))| e)
    }

    /// Starts the agent on the current port (a new process, so the port can change).
    fn spawn(&mut self) -> anyhow::Result<()> {
        let (dir, addr) = (self.dir.clone(), self.addr);
        let make = move || {
            let persist = dir.join("persist");
            let mut command = Command::new(binary());
            // Foreground; only our config file; log to a file in the temp dir.
            command
                .args(["-f", "-C", "-c"])
                .arg(dir.join("snmpd.conf"))
                .arg("-Lf")
                .arg(dir.join("snmpd.log"))
                .arg(format!("--persistentDir={}", persist.display()))
                // No MIB files: the agent needs none to answer numeric OIDs, and without this it
                // logs hundreds of lines about the MIBs Debian does not ship.
                .args(["-m", ""])
                // Only sysUpTime & co., the overrides and the communities: the host's own
                // interfaces stay out of IF-MIB, and a GETBULK that runs past the last ifName
                // meets the end of the MIB instead of making the agent read /proc for
                // host-resources tables (which made it ~40 times slower per port probe).
                .args(["-I", "system_mib,override,vacm_conf"])
                // The default receive buffer (rmem_default, ~200 KiB) holds only about 70
                // requests: a burst of a few hundred probes lost the rest, which then waited out
                // their timeout. The kernel caps this at net.core.rmem_max.
                .arg("--serverRecvBuf=4194304")
                .arg(format!("udp:{addr}"))
                // The library reads its own config and state from these when they are set.
                .env("SNMPCONFPATH", &dir)
                .env("SNMP_PERSISTENT_DIR", &persist);
            command
        };
        self.process =
            Some(ChildProcess::spawn("snmpd (install the snmpd package)", &self.dir.join("stdio.log"), make)?);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<(), NotReady> {
        let target = self.target(&self.community);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.process.as_mut().and_then(ChildProcess::exited) {
                let why = anyhow!("snmpd on {} exited at start ({status}): {}", self.addr, self.log_tail());
                return Err(NotReady::Exited(why));
            }
            if snmp_device(&target, Duration::from_millis(200)).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                let why = anyhow!("snmpd on {} did not answer within 10 s: {}", self.addr, self.log_tail());
                return Err(NotReady::Silent(why));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("snmpd.log")
    }

    /// The end of snmpd's log, which says why it failed (e.g. the port was taken).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
    }
}

/// Why a started agent is not answering: an agent that exited at once most likely lost its port
/// to another process and may be tried on another one; a silent one will not get better.
enum NotReady {
    Exited(anyhow::Error),
    Silent(anyhow::Error),
}

impl fmt::Debug for LocalSnmpd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSnmpd").field("addr", &self.addr).field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Drop for LocalSnmpd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("SNMPD_BIN") {
        return binary.into();
    }
    // Debian installs it in /usr/sbin, which is not on every user's PATH.
    let debian = Path::new("/usr/sbin/snmpd");
    if debian.exists() { debian.to_owned() } else { PathBuf::from("snmpd") }
}

/// The snmpd.conf for these communities and interfaces.
fn config(communities: &[&str], interfaces: &[(&str, bool)]) -> anyhow::Result<String> {
    ensure!(!communities.is_empty(), "snmpd needs at least one community");
    let mut config = String::from("# Written by heat-reconciler's LocalSnmpd.\n");
    for community in communities {
        ensure!(
            !community.is_empty() && community.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '#')),
            "a community must be printable ASCII without spaces, quotes, backslashes or '#'"
        );
        // Only from loopback, where the agent listens anyway.
        config.push_str(&format!("rocommunity {community} 127.0.0.1\n"));
    }
    for (position, (name, up)) in interfaces.iter().enumerate() {
        ensure!(
            !name.is_empty() && !name.chars().any(|c| c.is_control() || matches!(c, '"' | '\\')),
            "interface name {name:?} must be non-empty, without quotes, backslashes or control characters"
        );
        let index = position + 1;
        let status = if *up { 1 } else { 2 };
        // `override` registers an instance even where no MIB module provides the table.
        config.push_str(&format!("override {IF_INDEX}.{index} integer {index}\n"));
        config.push_str(&format!("override {IF_NAME}.{index} octet_str \"{name}\"\n"));
        config.push_str(&format!("override {IF_OPER_STATUS}.{index} integer {status}\n"));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_communities_and_interfaces() {
        let config = config(&["public", "s3cret"], &[("0/1", true), ("Gi 1/2", false)]).unwrap();
        assert!(config.contains("rocommunity s3cret 127.0.0.1\n"));
        assert!(config.contains("override .1.3.6.1.2.1.31.1.1.1.1.2 octet_str \"Gi 1/2\"\n"));
        assert!(config.contains("override .1.3.6.1.2.1.2.2.1.8.1 integer 1\n"));
        assert!(config.contains("override .1.3.6.1.2.1.2.2.1.8.2 integer 2\n"));
    }

    #[test]
    fn config_rejects_what_would_break_the_file() {
        assert!(config(&[], &[]).is_err());
        assert!(config(&["two words"], &[]).is_err());
        assert!(config(&["public"], &[("a\"b", true)]).is_err());
        assert!(config(&["public"], &[("a\nb", true)]).is_err());
    }
}
