//! A real Keystone v3 on loopback, run by the project's `keystone/start-keystone.sh` (installed
//! from PyPI on first use), for the Keystone authentication tests.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::Command;

/// The shared Keystone on `port` (catalog: the public orchestration endpoint `heat_url`, the
/// admin one `heat_admin_url`; tokens living `token_expiration` seconds), started if it does not
/// run, serialised across processes with a file lock; returns its auth URL
/// (`http://127.0.0.1:PORT/v3`).
pub fn ensure_shared(port: u16, heat_url: &str, heat_admin_url: &str, token_expiration: u64) -> anyhow::Result<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keystone/start-keystone.sh");
    // `flock -o`: the lock is not inherited by the Keystone process the script leaves running.
    let output = Command::new("flock")
        .arg("-o")
        .arg(std::env::temp_dir().join(format!("heat-reconciler-keystone-{port}.lock")))
        .arg("bash")
        .arg(&script)
        .args(["--port", &port.to_string(), "--heat-url", heat_url, "--heat-admin-url", heat_admin_url])
        .args(["--token-expiration", &token_expiration.to_string()])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `$KEYSTONE_HOME`, as `keystone/start-keystone.sh` defaults it: where its state
/// (`state/<port>/credentials.json`) is.
pub fn keystone_home() -> PathBuf {
    if let Some(home) = std::env::var_os("KEYSTONE_HOME") {
        return home.into();
    }
    super::cache_home().join("keystone")
}
