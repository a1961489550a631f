//! The pure heart of the mirror: what a resource's etcd records say its custom resource should
//! be. No I/O; the loop feeds it what the watches saw and writes the difference.

use super::crd::{CONFIG_KEY_ANNOTATION, MANAGED_BY_LABEL, MirrorStatus, TENANT_LABEL, TYPE_LABEL};
use super::kind::MirroredKind;
use crate::protocol::{ConfigRecord, HeatStackRecord, MonitoringRecord, MonitoringStatus, StateRecord};
use crate::secrets::Secrets;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeMap;

/// The value of [`MANAGED_BY_LABEL`] on everything the mirror writes.
pub const MANAGER: &str = "heat-reconciler";

/// The records of one resource, as the etcd watches last saw them. A record that did not decode
/// is kept as the reason it did not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// `/config`'s key (for the annotation), known once any record of the resource is seen.
    pub config_key: String,
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
}

/// The metadata and spec a resource's custom resource should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject<S> {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `None`: the body does not fit the spec; whatever spec the object has stays (the status says
    /// why).
    pub spec: Option<S>,
}

/// What the custom resource of a resource should be: `None` when it should not exist (no
/// `/config`). An unreadable `/config` still has a custom resource: its status says what is wrong.
pub fn desired_object<K: MirroredKind>(observed: &Observed) -> Option<DesiredObject<K::Spec>> {
    let config = observed.config.as_ref()?;
    let mut labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
        (TYPE_LABEL.to_owned(), K::RESOURCE_TYPE.to_owned()),
    ]);
    let spec = match config {
        Ok(record) => {
            if let Some(tenant) = record.body().get("tenant_id").and_then(|t| t.as_str()).filter(|t| is_label_value(t))
            {
                labels.insert(TENANT_LABEL.to_owned(), tenant.to_owned());
            }
            K::spec_from_body(record.body()).ok()
        }
        Err(_) => None,
    };
    let annotations = BTreeMap::from([(CONFIG_KEY_ANNOTATION.to_owned(), observed.config_key.clone())]);
    Some(DesiredObject { labels, annotations, spec })
}

/// The status the records give, for an object at `generation`. Conditions whose status did not
/// change keep their `lastTransitionTime` from `previous`; others take `now`.
pub fn status<K: MirroredKind>(
    observed: &Observed,
    previous: Option<&MirrorStatus>,
    generation: Option<i64>,
    now: &Time,
) -> MirrorStatus {
    let mut errors = Vec::new();
    let config = readable(&observed.config, "/config", &mut errors);
    let state = readable(&observed.state, "/state", &mut errors);
    let heat_stack = readable(&observed.heat_stack, "/esi-worker/heat_stacks", &mut errors);
    let monitoring = readable(&observed.monitoring, "/monitoring", &mut errors);
    if let Some(Ok(record)) = &observed.config
        && let Err(e) = K::spec_from_body(record.body())
    {
        errors.push(format!("the /config body does not fit the {} spec: {e}", K::kind(&())));
    }

    let desired_version = config.map(|c| c.version);
    let applied_version = state.map(|s| s.version);
    let deleting = config.is_some_and(|c| c.marked_for_deletion);
    let applied = desired_version.is_some() && applied_version == desired_version;
    let worker_state = state.map(|s| s.state.worker_state.clone());
    let failed = worker_state.as_deref().is_some_and(|w| w.ends_with("_FAILED"));
    let state_summary = match (config, &worker_state) {
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
    // record written by anything else from leaking one into the custom resource.
    let secrets = config.map(|c| Secrets::collect([("body", &serde_json::Value::Object(c.body().clone()))]));
    let mask = |text: &str| secrets.as_ref().map_or_else(|| text.to_owned(), |s| s.mask(text));
    if let Some(error) = state.map(|s| s.error.as_str()).filter(|e| !e.is_empty()) {
        errors.push(mask(error));
    }
    let monitoring_text = monitoring.map(|m| monitoring_summary(&m.status));
    let monitoring_failing = monitoring.is_some_and(|m| is_failing(&m.status));

    let version = desired_version.map_or_else(|| "?".to_owned(), |v| v.to_string());
    let synced = if !errors.is_empty() && !applied {
        condition("Synced", false, "RecordsUnreadable", errors.join("; "))
    } else if applied && failed {
        condition("Synced", false, "ApplyFailed", format!("version {version}: {}", errors.join("; ")))
    } else if applied {
        let what = worker_state.as_deref().unwrap_or_default();
        condition("Synced", true, "Applied", format!("version {version} applied ({what})"))
    } else {
        let last = applied_version.map_or_else(|| "none".to_owned(), |v| v.to_string());
        condition("Synced", false, "Progressing", format!("version {version} is being applied (last applied: {last})"))
    };
    let ready = if deleting {
        condition("Ready", false, "Deleting", format!("marked for deletion at version {version}"))
    } else if synced.status != "True" {
        condition("Ready", false, &synced.reason, synced.message.clone())
    } else if monitoring_failing {
        let text = monitoring_text.clone().unwrap_or_default();
        condition("Ready", false, "MonitoringFailed", format!("/monitoring reports {text}"))
    } else {
        let seen =
            monitoring_text.as_deref().map_or_else(|| "no monitoring yet".to_owned(), |m| format!("monitoring {m}"));
        condition("Ready", true, "Available", format!("version {version} applied; {seen}"))
    };
    let conditions = [synced, ready]
        .into_iter()
        .map(|mut c| {
            let before = previous.and_then(|p| p.conditions.iter().find(|old| old.type_ == c.type_));
            c.last_transition_time = match before {
                Some(old) if old.status == c.status => old.last_transition_time.clone(),
                _ => now.clone(),
            };
            c.observed_generation = generation;
            c
        })
        .collect();

    MirrorStatus {
        desired_version,
        applied_version,
        state: state_summary,
        worker_state,
        orchestration_state: state.and_then(|s| s.state.orchestration_state.clone()),
        stack_id: heat_stack.map(|h| h.stack_id.clone()).filter(|s| !s.is_empty()),
        stack_status: heat_stack.map(|h| h.stack_status.clone()).filter(|s| !s.is_empty()),
        monitoring: monitoring_text,
        last_error: (!errors.is_empty()).then(|| errors.join("; ")),
        observed_generation: generation,
        conditions,
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

fn condition(type_: &str, status: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: Time(Default::default()),
        observed_generation: None,
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

/// Kubernetes label values: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn is_label_value(text: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.len() <= 63
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && alnum(text.chars().next())
        && alnum(text.chars().last())
}

/// Whether `name` can name a namespaced object (a DNS-1123 subdomain).
pub fn is_object_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}
