//! The mirror's writes to Kubernetes: server-side apply of metadata + spec and of the status
//! subresource under one field manager, deletes, and a pace that bounds the write rate. A write
//! is made only when the object differs from what it should be.

use super::crd::MirrorStatus;
use super::kind::MirroredKind;
use super::project::{DesiredObject, MANAGER};
use crate::telemetry::metrics::MirrorWriteLabels;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The field manager of every write (`kubectl get lb X --show-managed-fields` names it).
pub const FIELD_MANAGER: &str = MANAGER;

pub struct Writer<K: MirroredKind> {
    api: Api<K>,
    pace: tokio::time::Interval,
    /// Requests sent to the apiserver (writes only), for benchmarks and metrics.
    pub requests: Arc<AtomicU64>,
}

impl<K: MirroredKind> Writer<K> {
    /// Writes at most `per_second` requests a second (no bursts: the mirror is never in a hurry
    /// that would justify crowding the apiserver).
    pub fn new(api: Api<K>, per_second: f64, requests: Arc<AtomicU64>) -> Self {
        let period = Duration::from_secs_f64(1.0 / per_second.max(0.1));
        let mut pace = tokio::time::interval(period);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Writer { api, pace, requests }
    }

    /// Waits for the pace, then counts the write about to be made.
    async fn paced(&mut self, write: &str) {
        self.pace.tick().await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let labels = MirrorWriteLabels { kind: K::kind(&()).into_owned(), write: write.to_owned() };
        crate::telemetry::metrics().mirror_writes.get_or_create(&labels).inc();
    }

    /// Makes `name`'s metadata and spec what `desired` says (creating the object if needed);
    /// returns the object as the apiserver has it after the write, or `current` when nothing had
    /// to change.
    pub async fn converge_object(
        &mut self,
        name: &str,
        desired: &DesiredObject<K::Spec>,
        current: Option<&K>,
    ) -> Result<K, kube::Error> {
        if let Some(current) = current.filter(|c| object_matches::<K>(c, desired)) {
            return Ok(current.clone());
        }
        // An unreadable body keeps the spec the object has; a new object starts empty.
        let spec = match (&desired.spec, current) {
            (Some(spec), _) => spec.clone(),
            (None, Some(current)) => current.spec().clone(),
            (None, None) => K::Spec::default(),
        };
        let mut apply = serde_json::to_value(K::new(name, spec.clone())).map_err(kube::Error::SerdeError)?;
        apply["metadata"]["labels"] = json!(desired.labels);
        apply["metadata"]["annotations"] = json!(desired.annotations);
        if let Some(status) = apply.as_object_mut() {
            status.remove("status");
        }
        self.paced("apply").await;
        let written = self.api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&apply)).await?;
        if written.spec() == &spec {
            return Ok(written);
        }
        // Someone else set spec fields we leave unset: apply does not remove what it does not
        // own, so take them out explicitly.
        let patch = json_patch::diff(&json!({"spec": written.spec()}), &json!({"spec": spec}));
        self.paced("patch").await;
        self.api.patch(name, &json_patch_params(), &Patch::Json::<()>(patch)).await
    }

    /// Makes `name`'s status `status`; returns the object after the write.
    pub async fn converge_status(&mut self, name: &str, object: &K, status: &MirrorStatus) -> Result<K, kube::Error> {
        if object.status() == Some(status) {
            return Ok(object.clone());
        }
        let mut apply = serde_json::to_value(K::new(name, K::Spec::default())).map_err(kube::Error::SerdeError)?;
        if let Some(fields) = apply.as_object_mut() {
            fields.remove("spec");
            fields.insert("status".into(), serde_json::to_value(status).map_err(kube::Error::SerdeError)?);
        }
        self.paced("apply_status").await;
        let written =
            self.api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&apply)).await?;
        if written.status() == Some(status) {
            return Ok(written);
        }
        let before = serde_json::to_value(written.status()).map_err(kube::Error::SerdeError)?;
        let patch = json_patch::diff(&json!({"status": before}), &json!({"status": status}));
        self.paced("patch_status").await;
        self.api.patch_status(name, &json_patch_params(), &Patch::Json::<()>(patch)).await
    }

    /// Deletes `name`; a missing object is fine.
    pub async fn delete(&mut self, name: &str) -> Result<(), kube::Error> {
        self.paced("delete").await;
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Parameters of the JSON patches that remove what apply cannot: under the same field manager.
fn json_patch_params() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..Default::default() }
}

/// Whether `current` has the labels, annotations and spec `desired` asks for (other labels and
/// annotations may be there too: other tools may add theirs).
pub fn object_matches<K: MirroredKind>(current: &K, desired: &DesiredObject<K::Spec>) -> bool {
    let meta = current.meta();
    let has_all = |wanted: &std::collections::BTreeMap<String, String>,
                   have: &Option<std::collections::BTreeMap<String, String>>| {
        wanted.iter().all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    has_all(&desired.labels, &meta.labels)
        && has_all(&desired.annotations, &meta.annotations)
        && desired.spec.as_ref().is_none_or(|spec| current.spec() == spec)
}

/// An apiserver error in one line: its message and code (the whole `Status` is noise in a log).
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
