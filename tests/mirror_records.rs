//! The mirror's pure mapping from etcd records to a `LoadBalancer` custom resource, fed with the
//! corpus's flagship records (`UpdateLoadbalancerInterface_05`: config, job, heat_stacks,
//! job_state, state, monitoring), and the committed CRD checked against `crdgen`.

use heat_reconciler::mirror::crd::{MANAGED_BY_LABEL, TENANT_LABEL};
use heat_reconciler::mirror::project::{desired_object, status};
use heat_reconciler::mirror::view::{MirrorView, ROOTS};
use heat_reconciler::mirror::{LoadBalancer, MirrorStatus};
use heat_reconciler::protocol::ResourceKey;
use heat_reconciler::standing::Observed;
use heat_reconciler::store::{KeyValue, WatchEvent};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use std::path::Path;

mod support;
use support::{FLAGSHIP_LB as LB, flagship_records};

const PREFIX: &str = "/v2.0/load_balancers";
const CONFIG_KEY: &str = "/config/v2.0/load_balancers/b311c470-d878-4fea-8466-a4393938f2d4";

fn put(key: &str, value: Vec<u8>) -> WatchEvent {
    WatchEvent::Put(KeyValue { key: key.to_owned(), value, mod_revision: 1, create_revision: 1, lease: 0 })
}

/// A view fed with `records` the way the mirror's four watches would deliver them.
fn view_of(records: &[(String, Vec<u8>)]) -> MirrorView {
    let mut view = MirrorView::new(PREFIX);
    for root in ROOTS {
        view.apply(root, WatchEvent::Listed { items: Vec::new(), revision: 1 });
    }
    for (key, value) in records {
        // The job and job_state records are under roots the mirror does not watch.
        let Some(root) = ResourceKey::parse(key).map(|k| k.root).filter(|r| ROOTS.contains(r)) else { continue };
        view.apply(root, put(key, value.clone()));
    }
    assert!(view.complete());
    view
}

fn now() -> Time {
    Time("2026-12-01T10:00:00Z".parse().unwrap())
}

fn status_of(observed: &Observed) -> MirrorStatus {
    status::<LoadBalancer>(observed, None, Some(1), &now())
}

fn condition<'a>(status: &'a MirrorStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status.conditions.iter().find(|c| c.type_ == type_).expect("condition");
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn the_flagship_records_make_a_ready_load_balancer_at_version_2() {
    let view = view_of(&flagship_records());
    let observed = view.get(LB).expect("the load balancer is in the view");

    let object = desired_object::<LoadBalancer>(observed, CONFIG_KEY).expect("a custom resource");
    assert_eq!(object.labels[TENANT_LABEL], "fe3a4a1a72c04479bb6c19c2c0ccba4c");
    assert_eq!(object.labels[MANAGED_BY_LABEL], "heat-reconciler");
    let spec = object.spec.expect("the body fits the spec");
    assert_eq!(spec.id.as_deref(), Some(LB));
    assert_eq!(spec.vnf_instance_id.as_deref(), Some("398d65ba-0060-456e-b415-5bc954450717"));
    assert_eq!(spec.status.as_deref(), Some("PENDING_UPDATE"));
    let spec_text = serde_json::to_string(&spec).unwrap();
    for secret in ["RBvaP4je2j5Q", "lGxSVYSIdLqu", "assword"] {
        assert!(!spec_text.contains(secret), "{spec_text}");
    }

    let status = status_of(observed);
    assert_eq!(status.desired_version, Some(2));
    assert_eq!(status.applied_version, Some(2));
    assert_eq!(status.state.as_deref(), Some("MODIFY_COMPLETED"));
    assert_eq!(status.worker_state.as_deref(), Some("MODIFY_COMPLETED"));
    assert_eq!(status.orchestration_state.as_deref(), Some("UPDATE_COMPLETE"));
    assert_eq!(status.stack_id.as_deref(), Some(format!("load_balancer_{LB}").as_str()));
    assert_eq!(status.stack_status.as_deref(), Some("UPDATE_COMPLETE"));
    assert_eq!(status.monitoring.as_deref(), Some("UP"));
    assert_eq!(status.last_error, None);
    assert_eq!(condition(&status, "Synced"), ("True", "Applied"));
    assert_eq!(condition(&status, "Ready"), ("True", "Available"));
    assert!(status.conditions.iter().all(|c| c.observed_generation == Some(1) && c.last_transition_time == now()));
}

/// The flagship records with the record under `root` replaced (or removed, for `None`).
fn flagship_with(root: &str, value: Option<Value>) -> Observed {
    let mut records: Vec<(String, Vec<u8>)> =
        flagship_records().into_iter().filter(|(key, _)| !key.starts_with(&format!("{root}/"))).collect();
    if let Some(value) = value {
        records.push((format!("{root}{PREFIX}/{LB}"), value.to_string().into_bytes()));
    }
    view_of(&records).get(LB).cloned().unwrap_or_default()
}

fn config(version: u64, marked_for_deletion: bool, extra: Value) -> Value {
    let mut body = json!({"id": LB, "tenant_id": "fe3a4a1a72c04479bb6c19c2c0ccba4c", "admin_password": "RBvaP4je2j5Q"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"body": body.to_string(), "version": version, "marked_for_deletion": marked_for_deletion})
}

#[test]
fn a_newer_config_version_is_in_progress_until_its_state_arrives() {
    let status = status_of(&flagship_with("/config", Some(config(3, false, json!({})))));
    assert_eq!((status.desired_version, status.applied_version), (Some(3), Some(2)));
    assert_eq!(status.state.as_deref(), Some("MODIFY_IN_PROGRESS"));
    assert_eq!(condition(&status, "Synced"), ("False", "Progressing"));
    assert_eq!(condition(&status, "Ready"), ("False", "Progressing"));

    let status = status_of(&flagship_with("/state", None));
    assert_eq!(status.state.as_deref(), Some("CREATE_IN_PROGRESS"));
}

#[test]
fn a_failed_job_shows_its_error_with_secrets_masked() {
    let failed = json!({"error": "HTTPBadRequest: admin_password RBvaP4je2j5Q rejected",
                        "state": {"worker_state": "MODIFY_FAILED", "orchestration_state": "MODIFY_ERROR", "heat_outputs": "[]"},
                        "version": 2});
    let status = status_of(&flagship_with("/state", Some(failed)));
    assert_eq!(status.state.as_deref(), Some("MODIFY_FAILED"));
    assert_eq!(condition(&status, "Synced"), ("False", "ApplyFailed"));
    assert_eq!(condition(&status, "Ready"), ("False", "ApplyFailed"));
    let error = status.last_error.unwrap();
    assert!(error.contains("HTTPBadRequest") && error.contains("***") && !error.contains("RBvaP4je2j5Q"), "{error}");
}

#[test]
fn a_two_step_delete_shows_deleting_first() {
    let status = status_of(&flagship_with("/config", Some(config(3, true, json!({})))));
    assert_eq!(status.state.as_deref(), Some("DELETE_IN_PROGRESS"));
    assert_eq!(condition(&status, "Ready"), ("False", "Deleting"));

    let deleted = json!({"error": "", "state": {"worker_state": "DELETE_COMPLETED", "orchestration_state": "DELETE_COMPLETE",
                         "heat_outputs": "[]"}, "version": 3});
    let mut records: Vec<(String, Vec<u8>)> = flagship_records()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("/config/") && !k.starts_with("/state/"))
        .collect();
    records.push((format!("/config{PREFIX}/{LB}"), config(3, true, json!({})).to_string().into_bytes()));
    records.push((format!("/state{PREFIX}/{LB}"), deleted.to_string().into_bytes()));
    let status = status_of(view_of(&records).get(LB).unwrap());
    assert_eq!(status.state.as_deref(), Some("DELETE_COMPLETED"));
    assert_eq!(condition(&status, "Ready"), ("False", "Deleting"));

    // Gohan then deletes /config: the custom resource goes.
    assert!(desired_object::<LoadBalancer>(&flagship_with("/config", None), CONFIG_KEY).is_none());
}

#[test]
fn failing_monitoring_makes_it_not_ready() {
    let status = status_of(&flagship_with("/monitoring", Some(json!({"load_balancer": "FAIL", "version": 2}))));
    assert_eq!(status.monitoring.as_deref(), Some("FAIL"));
    assert_eq!(condition(&status, "Synced"), ("True", "Applied"));
    assert_eq!(condition(&status, "Ready"), ("False", "MonitoringFailed"));

    let status = status_of(&flagship_with("/monitoring", None));
    assert_eq!((status.monitoring.as_deref(), condition(&status, "Ready")), (None, ("True", "Available")));

    let pool = json!({"status": {"primary": "UP", "secondary": "FAIL"}, "version": 2});
    let status = status_of(&flagship_with("/monitoring", Some(pool)));
    assert_eq!(status.monitoring.as_deref(), Some("primary=UP,secondary=FAIL"));
}

#[test]
fn unreadable_records_keep_the_object_and_say_why() {
    let mut records: Vec<(String, Vec<u8>)> =
        flagship_records().into_iter().filter(|(k, _)| !k.starts_with("/config/")).collect();
    records.push((format!("/config{PREFIX}/{LB}"), b"{not json".to_vec()));
    let observed = view_of(&records).get(LB).cloned().unwrap();
    let object = desired_object::<LoadBalancer>(&observed, CONFIG_KEY).expect("still mirrored");
    assert!(object.spec.is_none(), "the spec it has is kept");
    let status = status_of(&observed);
    assert_eq!(condition(&status, "Synced"), ("False", "RecordsUnreadable"));
    assert!(status.last_error.unwrap().contains("/config record unreadable"));

    // A body whose fields do not fit the spec's types.
    let observed = flagship_with("/config", Some(config(2, false, json!({"interfaces": "eth0"}))));
    assert!(desired_object::<LoadBalancer>(&observed, CONFIG_KEY).unwrap().spec.is_none());
    assert!(status_of(&observed).last_error.unwrap().contains("does not fit the LoadBalancer spec"));
}

#[test]
fn unchanged_conditions_keep_their_transition_time() {
    let observed = flagship_with("/monitoring", None);
    let before = status::<LoadBalancer>(&observed, None, Some(1), &Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let again = status::<LoadBalancer>(&observed, Some(&before), Some(1), &now());
    assert_eq!(again, before, "nothing changed: nothing to write");

    let failing = flagship_with("/monitoring", Some(json!({"load_balancer": "FAIL", "version": 2})));
    let after = status::<LoadBalancer>(&failing, Some(&before), Some(2), &now());
    let time =
        |s: &MirrorStatus, t: &str| s.conditions.iter().find(|c| c.type_ == t).unwrap().last_transition_time.clone();
    assert_eq!(time(&after, "Synced"), time(&before, "Synced"));
    assert_eq!(time(&after, "Ready"), now());
}

#[test]
fn deleting_a_record_forgets_it_and_a_relist_replaces_the_view() {
    let mut view = view_of(&flagship_records());
    let touched = view.apply(
        heat_reconciler::protocol::ResourceRoot::Monitoring,
        WatchEvent::Deleted { key: format!("/monitoring{PREFIX}/{LB}"), revision: 2 },
    );
    assert_eq!(touched, vec![LB.to_owned()]);
    assert!(view.get(LB).unwrap().monitoring.is_none());
    let touched = view
        .apply(heat_reconciler::protocol::ResourceRoot::Config, WatchEvent::Listed { items: Vec::new(), revision: 3 });
    assert_eq!(touched, vec![LB.to_owned()]);
    assert!(view.get(LB).unwrap().config.is_none());
}

#[test]
fn the_committed_crd_is_what_crdgen_prints() {
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/loadbalancers.yaml"))
        .expect("crds/loadbalancers.yaml");
    let generated = heat_reconciler::mirror::crds_yaml().unwrap();
    assert!(
        committed == generated,
        "crds/loadbalancers.yaml differs from `heat-reconciler crdgen`; regenerate it with\n  cargo run -- crdgen > crds/loadbalancers.yaml && cp crds/loadbalancers.yaml charts/heat-reconciler/crds/"
    );
}
