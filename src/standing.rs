//! Where a resource stands, read from its records alone: the one reading that `status`, `why` and
//! the mirror's custom resources share (pure). The records are those of `/config`, `/state`,
//! `/esi-worker/heat_stacks` and `/monitoring`; a record that did not decode is kept as why.

use crate::protocol::{
    ConfigRecord, HeatStackRecord, MonitoringRecord, MonitoringStatus, Record, ResourceRoot, StateRecord,
};
use crate::secrets::Secrets;

/// The records of one resource. A record that did not decode is the reason it did not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub config: Option<Result<ConfigRecord, String>>,
    pub state: Option<Result<StateRecord, String>>,
    pub heat_stack: Option<Result<HeatStackRecord, String>>,
    pub monitoring: Option<Result<MonitoringRecord, String>>,
}

impl Observed {
    /// Whether nothing is known of the resource any more.
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.state.is_none() && self.heat_stack.is_none() && self.monitoring.is_none()
    }

    /// Takes the raw value of `key` (a record under `root`) into its slot; roots it does not
    /// keep are ignored.
    pub fn put(&mut self, root: ResourceRoot, key: &str, raw: &[u8]) {
        let decoded = Record::from_etcd(key, raw).map_err(|e| e.to_string());
        let wrong = || format!("{key} is not a {} record", root.as_str());
        match root {
            ResourceRoot::Config => {
                self.config = Some(decoded.and_then(|r| match r {
                    Record::Config(r) => Ok(r),
                    _ => Err(wrong()),
                }))
            }
            ResourceRoot::State => {
                self.state = Some(decoded.and_then(|r| match r {
                    Record::State(r) => Ok(r),
                    _ => Err(wrong()),
                }))
            }
            ResourceRoot::HeatStacks => {
                self.heat_stack = Some(decoded.and_then(|r| match r {
                    Record::HeatStack(r) => Ok(r),
                    _ => Err(wrong()),
                }))
            }
            ResourceRoot::Monitoring => {
                self.monitoring = Some(decoded.and_then(|r| match r {
                    Record::Monitoring(r) => Ok(r),
                    _ => Err(wrong()),
                }))
            }
            ResourceRoot::Snapshot | ResourceRoot::JobState => {}
        }
    }

    /// Empties the slot of `root`; whether it held a record.
    pub fn clear(&mut self, root: ResourceRoot) -> bool {
        match root {
            ResourceRoot::Config => self.config.take().is_some(),
            ResourceRoot::State => self.state.take().is_some(),
            ResourceRoot::HeatStacks => self.heat_stack.take().is_some(),
            ResourceRoot::Monitoring => self.monitoring.take().is_some(),
            ResourceRoot::Snapshot | ResourceRoot::JobState => false,
        }
    }
}

/// The roots whose records say where a resource stands.
pub const ROOTS: [ResourceRoot; 4] =
    [ResourceRoot::Config, ResourceRoot::State, ResourceRoot::HeatStacks, ResourceRoot::Monitoring];

/// How a resource is doing, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `/state` says the desired version is done (or the resource is gone from `/config` with
    /// nothing left to do).
    Converged,
    /// A version is being applied, or being deleted.
    InProgress,
    /// `/state` says the desired version failed, or a record cannot be read.
    Failed,
}

/// Where a resource stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// `/config`'s version.
    pub desired_version: Option<u64>,
    /// `/state`'s version.
    pub applied_version: Option<u64>,
    /// `/state`'s `worker_state` at the desired version, else `CREATE_`/`MODIFY_`/
    /// `DELETE_IN_PROGRESS`.
    pub state: Option<String>,
    pub worker_state: Option<String>,
    pub orchestration_state: Option<String>,
    pub stack_id: Option<String>,
    pub stack_status: Option<String>,
    /// `/monitoring`'s status: `UP`, a pool as `member=STATUS,...`.
    pub monitoring: Option<String>,
    /// The monitor reports `FAIL` or `DOWN`.
    pub monitoring_failing: bool,
    /// `/config` is marked for deletion.
    pub deleting: bool,
    /// The desired version is the one `/state` reports.
    pub applied: bool,
    /// `/state`'s `worker_state` ends in `_FAILED`.
    pub failed: bool,
    /// Why: records that cannot be read, and `/state`'s error, with the body's secrets masked.
    pub errors: Vec<String>,
    pub phase: Phase,
}

/// Where the resource with these records stands.
pub fn standing(observed: &Observed) -> Standing {
    let mut errors = Vec::new();
    let config = readable(&observed.config, "/config", &mut errors);
    let state = readable(&observed.state, "/state", &mut errors);
    let heat_stack = readable(&observed.heat_stack, "/esi-worker/heat_stacks", &mut errors);
    let monitoring = readable(&observed.monitoring, "/monitoring", &mut errors);
    let unreadable = !errors.is_empty();

    let desired_version = config.map(|c| c.version);
    let applied_version = state.map(|s| s.version);
    let deleting = config.is_some_and(|c| c.marked_for_deletion);
    let applied = desired_version.is_some() && applied_version == desired_version;
    let worker_state = state.map(|s| s.state.worker_state.clone());
    let failed = worker_state.as_deref().is_some_and(|w| w.ends_with("_FAILED"));
    let summary = match (config, &worker_state) {
        (None, _) => None,
        (Some(_), Some(worker_state)) if applied => Some(worker_state.clone()),
        (Some(_), _) => {
            let action = if deleting {
                "DELETE"
            } else if applied_version.is_some() {
                "MODIFY"
            } else {
                "CREATE"
            };
            Some(format!("{action}_IN_PROGRESS"))
        }
    };
    // The worker masks secrets in what it writes; masking again with this body's secrets keeps a
    // record written by anything else from leaking one.
    let secrets = config.map(|c| Secrets::collect([("body", &serde_json::Value::Object(c.body().clone()))]));
    if let Some(error) = state.map(|s| s.error.as_str()).filter(|e| !e.is_empty()) {
        errors.push(secrets.as_ref().map_or_else(|| error.to_owned(), |s| s.mask(error)));
    }
    // A deleted resource that reached DELETE_COMPLETED waits only for Gohan to remove its
    // /config: nothing is left for the controller to do.
    let phase = if (unreadable && !applied) || (applied && failed) {
        Phase::Failed
    } else if config.is_none() || applied {
        Phase::Converged
    } else {
        Phase::InProgress
    };
    Standing {
        desired_version,
        applied_version,
        state: summary,
        worker_state,
        orchestration_state: state.and_then(|s| s.state.orchestration_state.clone()),
        stack_id: heat_stack.map(|h| h.stack_id.clone()).filter(|s| !s.is_empty()),
        stack_status: heat_stack.map(|h| h.stack_status.clone()).filter(|s| !s.is_empty()),
        monitoring: monitoring.map(|m| monitoring_summary(&m.status)),
        monitoring_failing: monitoring.is_some_and(|m| is_failing(&m.status)),
        deleting,
        applied,
        failed,
        errors,
        phase,
    }
}

fn readable<'a, T>(record: &'a Option<Result<T, String>>, root: &str, errors: &mut Vec<String>) -> Option<&'a T> {
    match record {
        Some(Ok(record)) => Some(record),
        Some(Err(e)) => {
            errors.push(format!("{root} record unreadable: {e}"));
            None
        }
        None => None,
    }
}

/// `UP`; a pool as `primary=MASTER,secondary=BACKUP` (members in name order).
fn monitoring_summary(status: &MonitoringStatus) -> String {
    match status {
        MonitoringStatus::Single(s) => s.clone(),
        MonitoringStatus::Pool(members) => {
            members.iter().map(|(member, s)| format!("{member}={s}")).collect::<Vec<_>>().join(",")
        }
    }
}

/// The statuses the monitor writes when a device does not answer or a link is down.
fn is_failing(status: &MonitoringStatus) -> bool {
    let bad = |s: &str| matches!(s, "FAIL" | "DOWN");
    match status {
        MonitoringStatus::Single(s) => bad(s),
        MonitoringStatus::Pool(members) => members.values().any(|s| bad(s)),
    }
}
