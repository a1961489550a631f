//! A real standalone OpenStack Heat on loopback, run by the project's `heat/start-heat.sh`
//! (installed from PyPI on first use). The script daemonizes it and keeps its pid file in its
//! state dir, so a Heat is known by its port and that dir: the shared ones (the tests' and the
//! demo's, on the ports of [`super::ports`]) under `$HEAT_HOME`, and a test's or chaos's own in a
//! dir of its own, where it can be killed, broken or restarted on its database.

use super::process::free_tcp_port;
use crate::heat::{HeatClient, StackRef, StackRequest};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

/// Creates a stack of one `OS::Heat::None` through Heat's API and waits (up to 2 minutes) until it
/// is complete: a real stack, for tests and benchmarks that need some (e.g. as the model of the
/// copies `LocalHeat::seed_stacks` adds).
pub async fn create_none_stack(heat: &HeatClient, tenant: &str, name: &str) -> anyhow::Result<StackRef> {
    let request = StackRequest {
        stack_name: Some(name.to_owned()),
        template: "heat_template_version: 2013-05-23\nresources:\n  x: {type: OS::Heat::None}\n".into(),
        parameters: Default::default(),
        timeout_mins: None,
        disable_rollback: true,
    };
    let stack = heat.create(tenant, &request).await?;
    let since = Instant::now();
    while heat.show(tenant, &stack, false).await?.stack_status != "CREATE_COMPLETE" {
        anyhow::ensure!(since.elapsed() < Duration::from_secs(120), "stack {name} not complete after 2 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(stack)
}

/// Where a test's own Heats keep their dirs, one `<name>-<port>` each (so `scripts/test.sh` can
/// stop whatever a killed test left running).
pub fn own_heats_root() -> PathBuf {
    std::env::temp_dir().join("heat-reconciler-heats")
}

/// A Heat run by `heat/start-heat.sh`.
pub struct LocalHeat {
    pub port: u16,
    /// `Some`: its own state (`state/`: config, database, pid file) and logs (`logs/`); `None`:
    /// the script's default place under `$HEAT_HOME`.
    dir: Option<PathBuf>,
    /// Stopped (and its own dir removed) when dropped.
    owned: bool,
    running: bool,
    /// A monitor's target API its `MonitoringTarget`s register with (URL, token).
    collector: Option<(String, String)>,
}

impl LocalHeat {
    /// The Heat on a shared `port` (state under `$HEAT_HOME`), left running when dropped.
    pub fn shared(port: u16) -> LocalHeat {
        LocalHeat { port, dir: None, owned: false, running: false, collector: None }
    }

    /// A Heat of the caller's own, `name`d, on a free port with its own dir under
    /// [`own_heats_root`]; stopped and removed when dropped.
    pub fn own(name: &str) -> anyhow::Result<LocalHeat> {
        let port = free_tcp_port().context("finding a free port for Heat")?;
        LocalHeat::own_in(own_heats_root().join(format!("{name}-{port}")), port)
    }

    /// A Heat of the caller's own on `port` with its dir at `dir`; stopped when dropped (the dir
    /// is the caller's).
    pub fn own_in(dir: PathBuf, port: u16) -> anyhow::Result<LocalHeat> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(LocalHeat { port, dir: Some(dir), owned: true, running: false, collector: None })
    }

    /// Its `MonitoringTarget`s register with the monitor at `url` (token in Heat's environment,
    /// never its command line); without it they only make up ids.
    pub fn with_collector(mut self, url: &str, token: &str) -> LocalHeat {
        self.collector = Some((url.to_owned(), token.to_owned()));
        self
    }

    /// Starts it (`fresh`: with no stacks, restarting one that runs; else on its database, or
    /// leaving a running one alone) and waits until it answers; returns its base URL.
    pub async fn start(&mut self, fresh: bool) -> anyhow::Result<String> {
        let mut command = self.script("start-heat.sh");
        if let Some(dir) = &self.dir {
            command.arg("--log-dir").arg(dir.join("logs"));
        }
        if fresh {
            command.arg("--fresh");
        }
        match &self.collector {
            Some((url, token)) => command.env("ESI_COLLECTOR_URL", url).env("ESI_COLLECTOR_TOKEN", token),
            None => command.env_remove("ESI_COLLECTOR_URL").env_remove("ESI_COLLECTOR_TOKEN"),
        };
        tracing::info!(port = self.port, "starting a local standalone Heat (the first start installs it from PyPI)");
        run(command).await?;
        self.running = true;
        Ok(self.base())
    }

    /// Stops it (SIGTERM, then SIGKILL after 15 s); its database is kept.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.running = false;
        run(self.script("stop-heat.sh")).await
    }

    /// SIGKILL, as a crashed Heat host: unlike a stop, which lets running operations finish for
    /// a few seconds, this leaves the stacks in flight `*_IN_PROGRESS` for good. Returns once the
    /// process is gone; its database is kept.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let pid_file = self.state_dir().join("heat.pid");
        let text = std::fs::read_to_string(&pid_file).with_context(|| format!("reading {}", pid_file.display()))?;
        let pid: u32 = text.trim().parse().with_context(|| format!("{} holds no pid", pid_file.display()))?;
        self.running = false;
        let killed = tokio::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().await?;
        anyhow::ensure!(killed.success(), "kill -KILL {pid} failed");
        let process = PathBuf::from(format!("/proc/{pid}"));
        let since = Instant::now();
        while process.exists() && since.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where its config, database and pid file are.
    pub fn state_dir(&self) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.join("state"),
            None => heat_home().join("state").join(self.port.to_string()),
        }
    }

    /// Adds stacks straight into its database, each a copy of the stack `model` under another
    /// name, `CREATE_COMPLETE` or (`failed`) `CREATE_FAILED` (`heat/seed-stacks.py`): Heat lists
    /// them like any other. Creating them through the API takes about 1/6 s each on 2 CPUs.
    pub async fn seed_stacks(&self, model: &str, stacks: &[(String, bool)]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let db = self.state_dir().join("heat.sqlite");
        let mut child = tokio::process::Command::new(heat_home().join("venv/bin/python"))
            .arg(scripts_dir().join("seed-stacks.py"))
            .arg("--db")
            .arg(&db)
            .args(["--model", model])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running heat/seed-stacks.py")?;
        let lines: String = stacks
            .iter()
            .map(|(name, failed)| format!("{name} {}\n", if *failed { "FAILED" } else { "COMPLETE" }))
            .collect();
        let mut stdin = child.stdin.take().context("seed-stacks.py's stdin")?;
        stdin.write_all(lines.as_bytes()).await?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        anyhow::ensure!(
            output.status.success(),
            "heat/seed-stacks.py failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// `heat/<script> --port P [--state-dir D]`.
    fn script(&self, name: &str) -> Command {
        let mut command = Command::new("bash");
        command.arg(scripts_dir().join(name)).args(["--port", &self.port.to_string()]);
        if self.dir.is_some() {
            command.arg("--state-dir").arg(self.state_dir());
        }
        command
    }
}

impl Drop for LocalHeat {
    fn drop(&mut self) {
        if self.owned {
            let mut stop = self.script("stop-heat.sh");
            stop.arg("--purge");
            let _ = stop.output();
            if let Some(dir) = &self.dir
                && dir.starts_with(own_heats_root())
            {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The shared Heat on `port`, started (without `--fresh`) if it does not run, serialised across
/// processes with a file lock so two test binaries never start it at once; returns its base URL.
pub fn ensure_shared(port: u16) -> anyhow::Result<String> {
    // `flock -o`: the lock is not inherited by the Heat process the script leaves running.
    let mut command = Command::new("flock");
    command
        .arg("-o")
        .arg(std::env::temp_dir().join(format!("heat-reconciler-heat-{port}.lock")))
        .arg("bash")
        .arg(scripts_dir().join("start-heat.sh"))
        .args(["--port", &port.to_string()]);
    let output = command.output().context("running flock (util-linux) and heat/start-heat.sh")?;
    anyhow::ensure!(output.status.success(), "heat/start-heat.sh failed:\n{}", String::from_utf8_lossy(&output.stderr));
    Ok(format!("http://127.0.0.1:{port}"))
}

/// `HEAT_RECONCILER_HEAT_SCRIPT`'s dir, else the source tree's `heat/`.
fn scripts_dir() -> PathBuf {
    std::env::var_os("HEAT_RECONCILER_HEAT_SCRIPT")
        .map(PathBuf::from)
        .and_then(|script| script.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("heat"))
}

/// Whether the standalone Heat is installed (its first start installs it).
pub fn installed() -> bool {
    heat_home().join("venv/bin/python").exists()
}

/// Where Heat is installed and keeps its state: `$HEAT_HOME`.
pub fn home() -> PathBuf {
    heat_home()
}

/// `$HEAT_HOME`, as `heat/start-heat.sh` defaults it.
fn heat_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HEAT_HOME") {
        return home.into();
    }
    super::cache_home().join("heat")
}

/// Runs a start or stop script; its stderr is the error when it fails.
async fn run(command: Command) -> anyhow::Result<()> {
    let what = format!("{:?}", command.get_args().collect::<Vec<_>>());
    let output = tokio::process::Command::from(command).output().await.with_context(|| format!("running {what}"))?;
    anyhow::ensure!(output.status.success(), "{what} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}
