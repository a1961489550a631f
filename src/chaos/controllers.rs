//! The controller processes.

use rand::RngExt;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub(super) struct Controller {
    pub(super) id: String,
    pub(super) child: Child,
}

/// This very executable: `/proc/self/exe` where there is one, so the controllers run the same
/// build as the chaos even when the file is rebuilt while it runs; else `current_exe`.
pub(super) fn own_executable() -> std::io::Result<PathBuf> {
    let proc_self = PathBuf::from("/proc/self/exe");
    if proc_self.exists() { Ok(proc_self) } else { std::env::current_exe() }
}

/// The `heat-reconciler run` children, their logs, and what happened to them.
pub(super) struct Controllers {
    pub(super) exe: PathBuf,
    pub(super) args: Vec<String>,
    pub(super) dir: PathBuf,
    pub(super) running: Vec<Controller>,
    pub(super) logs: Vec<PathBuf>,
    pub(super) started: usize,
    pub(super) kills: usize,
    pub(super) leader_kills: usize,
    /// Children that exited on their own: id and status.
    pub(super) exits: Vec<(String, String)>,
}

impl Controllers {
    pub(super) fn new(etcd: &str, heat: &str, dir: &Path, schema_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut args: Vec<String> = Vec::new();
        if let Some(dir) = schema_dir {
            args.extend(["--schema-dir".into(), dir.display().to_string()]);
        }
        args.extend(
            ["run", "--etcd-endpoints", etcd, "--heat-url", heat, "--leader-ttl", "3", "--worker-lease-ttl", "5"]
                .map(str::to_owned),
        );
        Ok(Controllers {
            exe: own_executable()?,
            args,
            dir: dir.to_owned(),
            running: Vec::new(),
            logs: Vec::new(),
            started: 0,
            kills: 0,
            leader_kills: 0,
            exits: Vec::new(),
        })
    }

    pub(super) fn spawn(&mut self) -> anyhow::Result<String> {
        self.started += 1;
        let id = format!("c{}", self.started);
        let log = self.dir.join(format!("{id}.log"));
        let child = Command::new(&self.exe)
            .args(&self.args)
            .args(["--id", &id])
            .env("RUST_LOG", "heat_reconciler=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        self.logs.push(log);
        self.running.push(Controller { id: id.clone(), child });
        Ok(id)
    }

    /// SIGKILLs one at random; returns its id.
    pub(super) fn kill_one(&mut self, rng: &mut StdRng, leader: Option<&str>) -> Option<String> {
        if self.running.is_empty() {
            return None;
        }
        let mut victim = self.running.remove(rng.random_range(0..self.running.len()));
        let _ = victim.child.kill();
        let _ = victim.child.wait();
        self.kills += 1;
        if leader == Some(victim.id.as_str()) {
            self.leader_kills += 1;
        }
        Some(victim.id)
    }

    /// Children that exited on their own (recorded, not replaced here).
    pub(super) fn reap(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        self.running.retain_mut(|c| match c.child.try_wait() {
            Ok(Some(status)) => {
                gone.push(c.id.clone());
                self.exits.push((c.id.clone(), status.to_string()));
                false
            }
            _ => true,
        });
        gone
    }

    pub(super) fn stop_all(&mut self) {
        for mut c in self.running.drain(..) {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.stop_all();
    }
}
