//! A benchmark's scratch directory, for the logs of the processes it starts and what it keeps to
//! read afterwards: removed when the benchmark ends, however it ends (done, an error, Ctrl-C or
//! SIGTERM, which drop the command), unless `BENCH_KEEP` is set.

use std::path::{Path, PathBuf};

use crate::local::process::scratch_dir;

pub struct RunDir(PathBuf);

impl RunDir {
    /// A fresh directory for the benchmark `name`.
    pub fn new(name: &str) -> std::io::Result<RunDir> {
        scratch_dir(name, "run").map(RunDir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Whether its files are kept (`BENCH_KEEP` set).
    pub fn kept() -> bool {
        std::env::var_os("BENCH_KEEP").is_some()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if RunDir::kept() {
            println!("kept (BENCH_KEEP): {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dir_goes_when_dropped_unless_kept() {
        let dir = RunDir::new("bench-run-dir-test").unwrap();
        let path = dir.path().to_owned();
        std::fs::write(path.join("controller.log"), "a line").unwrap();
        assert!(path.is_dir());
        drop(dir);
        assert_eq!(path.exists(), RunDir::kept(), "{}", path.display());
    }
}
