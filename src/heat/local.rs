//! A local standalone Heat for `replay --worker heat` and `demo`: the project's
//! `heat/start-heat.sh` (installs Heat from PyPI on first use, then starts it on loopback).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The port of the local Heat the demo and `replay --worker heat` start afresh on every run
/// (the tests share another, see `tests/support`).
pub const PORT: u16 = 18104;

/// `HEAT_RECONCILER_HEAT_SCRIPT`, else `heat/start-heat.sh` of the source tree this was built from.
fn script() -> PathBuf {
    std::env::var_os("HEAT_RECONCILER_HEAT_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("heat/start-heat.sh"))
}

/// Starts the local Heat with no stacks (restarting it if it runs), so every run starts from
/// the same place; returns its base URL. Its `MonitoringTarget`s register with no collector.
pub fn start() -> anyhow::Result<String> {
    start_with_collector(PORT, None)
}

/// A monitor's target API that a local Heat's `MonitoringTarget`s register with.
pub struct Collector<'a> {
    pub url: &'a str,
    /// Reaches Heat through its environment, never its command line.
    pub token: &'a str,
}

/// Starts a local Heat on `port` with no stacks (restarting it if it runs), its
/// `MonitoringTarget`s registering with `collector` (none: they only make up ids).
pub fn start_with_collector(port: u16, collector: Option<Collector>) -> anyhow::Result<String> {
    let script = script();
    anyhow::ensure!(script.exists(), "{} not found (set HEAT_RECONCILER_HEAT_SCRIPT)", script.display());
    tracing::info!(script = %script.display(), port, "starting the local standalone Heat (the first start installs it)");
    let mut command = Command::new("bash");
    command.arg(&script).args(["--port", &port.to_string(), "--fresh"]);
    match collector {
        Some(collector) => command.env("ESI_COLLECTOR_URL", collector.url).env("ESI_COLLECTOR_TOKEN", collector.token),
        None => command.env_remove("ESI_COLLECTOR_URL").env_remove("ESI_COLLECTOR_TOKEN"),
    };
    let output = command.output()?;
    if !output.status.success() {
        anyhow::bail!("{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(format!("http://127.0.0.1:{port}"))
}

/// Starts the local Heat on `port` (`fresh`: with no stacks, restarting it if it runs; else it
/// keeps its database, so stacks survive a stop and start), with its state (database, pid file)
/// and logs under `dir` when given (else under `$HEAT_HOME`); returns its base URL. For `chaos`,
/// which stops and starts its own Heat.
pub fn start_on(port: u16, fresh: bool, dir: Option<&Path>) -> anyhow::Result<String> {
    let script = script();
    anyhow::ensure!(script.exists(), "{} not found (set HEAT_RECONCILER_HEAT_SCRIPT)", script.display());
    let mut command = Command::new("bash");
    command.arg(&script).args(["--port", &port.to_string()]);
    if let Some(dir) = dir {
        command.arg("--state-dir").arg(dir.join("state")).arg("--log-dir").arg(dir.join("logs"));
    }
    if fresh {
        command.arg("--fresh");
    }
    let output = command.output()?;
    if !output.status.success() {
        anyhow::bail!("{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(format!("http://127.0.0.1:{port}"))
}

/// Stops the local Heat that [`start_on`] started on `port` with `dir`, with the `stop-heat.sh`
/// beside the start script (SIGTERM, then SIGKILL after 15 s); its database is kept.
pub fn stop_on(port: u16, dir: Option<&Path>) -> anyhow::Result<()> {
    let script = script().with_file_name("stop-heat.sh");
    let mut command = Command::new("bash");
    command.arg(&script).args(["--port", &port.to_string()]);
    if let Some(dir) = dir {
        command.arg("--state-dir").arg(dir.join("state"));
    }
    let output = command.output()?;
    if !output.status.success() {
        anyhow::bail!("{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}
