//! The pure heart of the mirror: what a resource's etcd records say its custom resource should
//! be. No I/O; the loop feeds it what the watches saw and writes the difference.

use super::crd::{CONFIG_KEY_ANNOTATION, MANAGED_BY_LABEL, MirrorStatus, TENANT_LABEL, TYPE_LABEL};
use super::kind::MirroredKind;
use crate::standing::{Observed, Standing, standing};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeMap;

/// The value of [`MANAGED_BY_LABEL`] on everything the mirror writes.
pub const MANAGER: &str = "heat-reconciler";

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
pub fn desired_object<K: MirroredKind>(observed: &Observed, config_key: &str) -> Option<DesiredObject<K::Spec>> {
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
    let annotations = BTreeMap::from([(CONFIG_KEY_ANNOTATION.to_owned(), config_key.to_owned())]);
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
    let standing = standing(observed);
    let mut errors = standing.errors.clone();
    if let Some(Ok(record)) = &observed.config
        && let Err(e) = K::spec_from_body(record.body())
    {
        errors.push(format!("the /config body does not fit the {} spec: {e}", K::kind(&())));
    }
    let Standing { desired_version, applied, failed, deleting, .. } = standing;
    let worker_state = standing.worker_state.clone();
    let monitoring_text = standing.monitoring.clone();
    let monitoring_failing = standing.monitoring_failing;
    let applied_version = standing.applied_version;

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
        state: standing.state,
        worker_state,
        orchestration_state: standing.orchestration_state,
        stack_id: standing.stack_id,
        stack_status: standing.stack_status,
        monitoring: monitoring_text,
        last_error: (!errors.is_empty()).then(|| errors.join("; ")),
        observed_generation: generation,
        conditions,
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
