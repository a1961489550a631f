//! The worker against a real Heat whose database fails, as in the corpus's failed run (Heat's
//! MySQL was down and Heat answered `HTTPInternalServerError`). A second standalone Heat of its own
//! runs on a free port; its sqlite database is broken underneath the running Heat in two ways a real
//! outage does:
//!
//! * **read-only** (`chattr +i` on the database file, as a disk remounted read-only): reads work,
//!   so the worker finds no stack / the existing stack, and Heat answers the create or the update
//!   with 500 ("attempt to write a readonly database" in its log);
//! * **gone** (the file replaced by a directory, as an unreachable database): every call is 500,
//!   the worker's first lookup included.
//!
//! `chattr +i` needs root (CAP_LINUX_IMMUTABLE) on a file system with inode flags (ext4, xfs,
//! btrfs): the project's machines and CI run as root on ext4. Without it the test fails; it skips
//! nothing.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::local::LocalHeat;
use heat_reconciler::protocol::StateRecord;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::*;

/// Heat's explanation of every 500 (`heat.api.middleware.fault`).
const EXPLANATION: &str = "The server has either erred or is incapable of performing the requested operation.";

/// The test's own Heat, whose database can be broken under it.
struct FailingHeat {
    heat: LocalHeat,
}

impl FailingHeat {
    async fn start() -> FailingHeat {
        let mut heat = FailingHeat { heat: LocalHeat::own("heat-failure").expect("a port for Heat") };
        let base = heat.heat.start(true).await.expect("the failing test's Heat starts");
        assert_eq!(base, heat.heat.base());
        heat
    }

    fn base(&self) -> String {
        self.heat.base()
    }

    fn state_dir(&self) -> PathBuf {
        self.heat.state_dir()
    }

    fn database(&self) -> PathBuf {
        self.state_dir().join("heat.sqlite")
    }

    /// `chattr -i` / `chattr +i` on the database file: an immutable file cannot be opened for
    /// writing, even by root, so sqlite falls back to read-only and every write fails.
    fn set_writable(&self, writable: bool, must: bool) {
        if !self.database().is_file() {
            return;
        }
        let flag = if writable { "-i" } else { "+i" };
        let output = Command::new("chattr").arg(flag).arg(self.database()).output();
        if must {
            let output = output.expect("chattr runs (e2fsprogs)");
            assert!(
                output.status.success(),
                "chattr {flag} {} failed (it needs root on ext4/xfs/btrfs): {}",
                self.database().display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// The database becomes unreachable: its files move aside and a directory takes its path.
    fn lose_database(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let file = self.state_dir().join(format!("heat.sqlite{suffix}"));
            if file.exists() {
                std::fs::rename(&file, self.state_dir().join(format!("lost.sqlite{suffix}"))).expect("move aside");
            }
        }
        std::fs::create_dir(self.database()).expect("a directory where the database was");
    }

    fn restore_database(&self) {
        if self.database().is_dir() {
            std::fs::remove_dir(self.database()).expect("remove the directory");
        }
        for suffix in ["", "-wal", "-shm"] {
            let lost = self.state_dir().join(format!("lost.sqlite{suffix}"));
            if lost.exists() {
                std::fs::rename(&lost, self.state_dir().join(format!("heat.sqlite{suffix}"))).expect("move back");
            }
        }
    }
}

impl Drop for FailingHeat {
    fn drop(&mut self) {
        // Before the Heat (a field) is stopped and its folder deleted.
        self.set_writable(true, false);
    }
}

fn network(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "tenant_id": TENANT})
}

/// The state of a job Heat refused with a 500: `<ACTION>_FAILED`, `<ACTION>_ERROR`, and the error
/// as the original worker wrote it, `HTTPInternalServerError: <Heat's JSON body>`.
fn assert_internal_server_error(state: &StateRecord, action: &str, heat_error_type: &str) {
    assert_eq!(state.state.worker_state, format!("{action}_FAILED"), "{}", state.error);
    assert_eq!(state.state.orchestration_state.as_deref(), Some(format!("{action}_ERROR").as_str()));
    assert_eq!(state.state.heat_outputs, Some(Vec::new()));
    let body = state.error.strip_prefix("HTTPInternalServerError: ").unwrap_or_else(|| panic!("{}", state.error));
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("Heat's JSON body ({e}): {body}"));
    assert_eq!(body["code"], json!(500));
    assert_eq!(body["explanation"], json!(EXPLANATION));
    assert_eq!(body["error"]["type"], json!(heat_error_type), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heat_database_outage_fails_the_job_with_heats_500() {
    let failing = FailingHeat::start().await;
    let mut h = Harness::without_planner().await;
    h.template("network", json!({"name": "Pname", "tenant_id": "Ptenant_id", "heat_timeout": "C1"})).await;
    set_template(&h, "network", NETWORK).await;
    h.planner = Some(RunningPlanner::start(&h.store, "planner", Duration::from_secs(3)));
    let heat = HeatClient::new(Endpoint::NoAuth { base: failing.base() }).expect("heat client");
    let worker = RunningWorker::fast(&h.store, heat.clone());

    // While the database is healthy: a stack to modify later.
    let existing = unique("net");
    h.config("networks", network(&existing, "blue"), 1, false).await;
    let state = h.settled("networks", &existing, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{}", state.error);
    h.queues_drained().await;

    // The database turns read-only: lookups still work, writes fail.
    failing.set_writable(false, true);
    let refused = unique("net");
    h.config("networks", network(&refused, "red"), 1, false).await;
    h.config("networks", network(&existing, "green"), 2, false).await;
    let state = h.settled("networks", &refused, 1).await;
    assert_internal_server_error(&state, "CREATE", "OperationalError");
    assert!(h.heat_stack("networks", &refused).await.is_none(), "Heat gave no stack status: no heat_stacks record");
    assert_eq!(heat.find(TENANT, &format!("network_{refused}")).await.unwrap(), None, "the lookup worked, no stack");
    let state = h.settled("networks", &existing, 2).await;
    assert_internal_server_error(&state, "MODIFY", "OperationalError");
    let kept = h.heat_stack("networks", &existing).await.expect("the create's heat_stacks record");
    assert_eq!((kept.stack_status.as_str(), kept.output[0].output_value.clone()), ("CREATE_COMPLETE", json!("blue")));
    h.queues_drained().await;

    // The database is gone altogether: the worker's first lookup already gets the 500.
    failing.set_writable(true, true);
    failing.lose_database();
    let unreachable = unique("net");
    h.config("networks", network(&unreachable, "black"), 1, false).await;
    let state = h.settled("networks", &unreachable, 1).await;
    assert_internal_server_error(&state, "CREATE", "DBNonExistentDatabase");
    h.queues_drained().await;

    // The database is back: the next version of the refused resource goes through.
    failing.restore_database();
    h.config("networks", network(&refused, "red"), 2, false).await;
    let state = h.settled("networks", &refused, 2).await;
    assert!(state.state.worker_state.ends_with("_COMPLETED"), "{state:?}");
    assert_eq!(h.heat_stack("networks", &refused).await.expect("heat_stacks").output[0].output_value, json!("red"));
    h.queues_drained().await;

    worker.stop().await;
    drop(failing);
}
