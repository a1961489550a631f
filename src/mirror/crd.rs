//! The custom resources the mirror writes: their Rust types are the CRDs (`crdgen` prints them;
//! `crds/` holds the committed copy). A kind is its spec (the `/config` body's fields, secrets
//! left out) plus the status every mirrored kind shares ([`MirrorStatus`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every mirrored kind.
pub const GROUP: &str = "esi.heat-reconciler.io";
/// Label with the resource's tenant, so `kubectl get lb -l esi.heat-reconciler.io/tenant=T` selects.
pub const TENANT_LABEL: &str = "esi.heat-reconciler.io/tenant";
/// Label with the ESI resource type (`load_balancer`).
pub const TYPE_LABEL: &str = "esi.heat-reconciler.io/type";
/// The standard label saying who owns an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotation naming the etcd key the custom resource mirrors.
pub const CONFIG_KEY_ANNOTATION: &str = "esi.heat-reconciler.io/config-key";

/// An ESI load balancer, mirrored from `/config/v2.0/load_balancers/<id>` (its status from
/// `/state`, `/esi-worker/heat_stacks` and `/monitoring`). etcd is the source of truth: the
/// mirror puts back any change made here.
// Each `printcolumn(...)` repeats `type_` and `priority`, which clippy takes for duplicated
// attributes of the struct.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[kube(
    group = "esi.heat-reconciler.io",
    version = "v1alpha1",
    kind = "LoadBalancer",
    plural = "loadbalancers",
    shortname = "lb",
    category = "esi",
    namespaced,
    status = "MirrorStatus",
    derive = "PartialEq",
    doc = "An ESI load balancer mirrored from etcd by heat-reconciler (read-only: etcd is the source of truth).",
    printcolumn(
        name = "Version",
        type_ = "integer",
        json_path = ".status.appliedVersion",
        description = "The config version the worker last applied (/state)"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "The worker's state at the desired version, or <ACTION>_IN_PROGRESS"
    ),
    printcolumn(
        name = "Monitoring",
        type_ = "string",
        json_path = ".status.monitoring",
        description = "The monitor's status (/monitoring)"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantId", priority = 1),
    printcolumn(
        name = "Stack",
        type_ = "string",
        json_path = ".status.stackId",
        priority = 1,
        description = "The Heat stack"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desiredVersion",
        priority = 1,
        description = "The config version in etcd"
    ),
    selectable = ".spec.tenantId"
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    /// The resource id in ESI (the object's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The OpenStack project (tenant) that owns the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// The load_balancer_plan it is built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_plan_id: Option<String>,
    /// Its load_balancer_conf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_conf_id: Option<String>,
    /// The vnf_instance that runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnf_instance_id: Option<String>,
    /// Internet port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_port_id: Option<String>,
    /// Default gateway (IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_gateway: Option<String>,
    /// Attached interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<LoadBalancerInterface>,
    /// Connected syslog servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syslog_servers: Vec<SyslogServer>,
    /// Free-form in the Gohan schema (`items: {type: object}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_objects")]
    pub networks: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Gohan's own status of the resource (`PENDING_UPDATE`, `ACTIVE`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Gohan's operational state (from the monitor: `UP`, `FAIL`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operational_state: Option<String>,
    /// Gohan's orchestration state (`CREATE_IN_PROGRESS`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration_state: Option<String>,
    /// Admin user name (its password is never mirrored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_username: Option<String>,
    /// Read-only user name (its password is never mirrored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_username: Option<String>,
    /// Other user name (its password is never mirrored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_username: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerInterface {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnf_interface_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyslogServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_facility: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Where a mirrored resource stands, from its etcd records. The same for every kind.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStatus {
    /// The version of `/config` (what is wanted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_version: Option<u64>,
    /// The version `/state` reports (what the worker last finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_version: Option<u64>,
    /// At a glance: `/state`'s `worker_state` when it is at the desired version, else
    /// `CREATE_IN_PROGRESS`, `MODIFY_IN_PROGRESS` or `DELETE_IN_PROGRESS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `/state`'s `state.worker_state`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_state: Option<String>,
    /// `/state`'s `state.orchestration_state` (Heat's stack status, or `<ACTION>_ERROR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration_state: Option<String>,
    /// The Heat stack (`/esi-worker/heat_stacks`' `stack_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_status: Option<String>,
    /// `/monitoring`'s status: `UP`, `FAIL`, ...; a pool as `member=STATUS,...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<String>,
    /// The last error `/state` reports (secrets masked), or why the records could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Synced` (the desired version is applied) and `Ready` (applied and not failing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
}

/// The CRD of every mirrored kind, as YAML documents (what `crdgen` prints).
pub fn crds_yaml() -> Result<String, yaml_serde::Error> {
    use kube::CustomResourceExt as _;
    yaml_serde::to_string(&LoadBalancer::crd())
}

fn free_form_objects(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

/// Conditions as Kubernetes lists them: a map keyed by `type` (so server-side apply merges by
/// type), with the fields of `metav1.Condition`.
fn conditions(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "properties": {
                "lastTransitionTime": {"format": "date-time", "type": "string"},
                "message": {"type": "string"},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "reason": {"type": "string"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "type": {"type": "string"}
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
        },
    })
}
