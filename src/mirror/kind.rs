//! What the mirror needs to know of a kind: which ESI resource type it mirrors and how its spec is
//! made from a `/config` body. Mirroring another type means a spec struct in [`super::crd`] and
//! one `impl MirroredKind`; the loop, the status and the writes are shared.

use super::crd::{LoadBalancer, LoadBalancerSpec, MirrorStatus};
use crate::protocol::Body;
use crate::secrets::strip_secrets;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

pub trait MirroredKind:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Spec: Serialize + DeserializeOwned + PartialEq + Default + Clone + Debug + Send + Sync;

    /// The ESI resource type, as the schema names it (`load_balancer`).
    const RESOURCE_TYPE: &'static str;

    fn new(name: &str, spec: Self::Spec) -> Self;
    fn spec(&self) -> &Self::Spec;
    fn status(&self) -> Option<&MirrorStatus>;

    /// The spec for a `/config` body: its fields in camelCase, every secret key left out (at any
    /// depth), fields the spec does not describe dropped.
    fn spec_from_body(body: &Body) -> Result<Self::Spec, serde_json::Error> {
        let mut value = Value::Object(body.clone());
        strip_secrets(&mut value);
        serde_json::from_value(camel_case_keys(value))
    }
}

impl MirroredKind for LoadBalancer {
    type Spec = LoadBalancerSpec;
    const RESOURCE_TYPE: &'static str = "load_balancer";

    fn new(name: &str, spec: LoadBalancerSpec) -> Self {
        LoadBalancer::new(name, spec)
    }

    fn spec(&self) -> &LoadBalancerSpec {
        &self.spec
    }

    fn status(&self) -> Option<&MirrorStatus> {
        self.status.as_ref()
    }
}

/// `load_balancer_plan_id` → `loadBalancerPlanId`, in every object of the document: Gohan's
/// field names as Kubernetes API conventions spell them.
fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (camel_case(&k), camel_case_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' if !out.is_empty() => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_become_camel_case() {
        assert_eq!(camel_case("load_balancer_plan_id"), "loadBalancerPlanId");
        assert_eq!(camel_case("id"), "id");
        assert_eq!(camel_case("_private"), "_private");
    }

    #[test]
    fn a_spec_never_carries_a_secret() {
        let body = json!({"id": "lb1", "admin_password": "RBvaP4je2j5Q", "user_password": "lGxS",
                          "tenant_id": "t1", "load_balancer_plan_id": "p1",
                          "interfaces": [{"id": "i1", "slot_number": 2, "type": 1}],
                          "networks": [{"id": "n1", "community_name": "public"}], "unknown_field": 3});
        let Value::Object(body) = body else { unreachable!() };
        let spec = LoadBalancer::spec_from_body(&body).unwrap();
        assert_eq!(spec.id.as_deref(), Some("lb1"));
        assert_eq!(spec.load_balancer_plan_id.as_deref(), Some("p1"));
        assert_eq!(spec.interfaces[0].slot_number, Some(2));
        assert_eq!(spec.interfaces[0].type_, Some(1));
        let text = serde_json::to_string(&spec).unwrap();
        for secret in ["RBvaP4je2j5Q", "lGxS", "public", "Password", "community", "unknown"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
