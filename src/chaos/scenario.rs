//! The scenario: resources, their versions and their templates.

use super::*;
use crate::protocol::{ConfigRecord, ResourceRoot};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Network,
    Subnet,
    Port,
}

impl Kind {
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Port => "port",
        }
    }

    pub(super) fn prefix(self) -> &'static str {
        match self {
            Kind::Network => "/v2.0/networks",
            Kind::Subnet => "/v2.0/subnets",
            Kind::Port => "/v2.0/ports",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Resource {
    pub(super) kind: Kind,
    pub(super) id: String,
    /// The network of a subnet or port.
    pub(super) network: Option<String>,
    /// The subnet of a port.
    pub(super) subnet: Option<String>,
    /// Gets a version 2 during the chaos.
    pub(super) modified: bool,
    /// Is marked for deletion (at the version after its last) and its config then removed.
    pub(super) deleted: bool,
    /// A network whose stack fails until the network template is fixed during the chaos (as an
    /// operator would fix a broken template): it, and what depends on it, must be retried.
    pub(super) flaky: bool,
}

impl Resource {
    pub(super) fn last_live_version(&self) -> u64 {
        if self.modified { 2 } else { 1 }
    }

    pub(super) fn final_version(&self) -> u64 {
        self.last_live_version() + u64::from(self.deleted)
    }

    pub(super) fn key(&self, root: ResourceRoot) -> String {
        root.key(self.kind.prefix(), &self.id)
    }

    pub(super) fn stack_name(&self) -> String {
        format!("{}_{}", self.kind.type_name(), self.id)
    }

    /// The name a version carries; the stack's `name` output shows which version Heat has.
    pub(super) fn name(&self, version: u64) -> String {
        format!("{}-v{version}", self.id)
    }

    pub(super) fn body(&self, version: u64) -> Map<String, Value> {
        let mut body = json!({"id": self.id, "tenant_id": TENANT, "name": self.name(version), "wait": 1});
        if self.flaky {
            body["flaky"] = json!(true);
        }
        if let Some(network) = &self.network {
            body["network_id"] = json!(network);
        }
        match self.kind {
            Kind::Network => {}
            Kind::Subnet => body["cidr"] = json!("10.0.0.0/24"),
            Kind::Port => {
                body["device_owner"] = json!("compute:nova");
                body["fixed_ips"] = json!([{"subnet_id": self.subnet, "ip_address": "10.0.0.5"}]);
            }
        }
        match body {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The `/config` value Gohan writes for `version`.
    pub(super) fn config(&self, version: u64, marked: bool) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&ConfigRecord::new(self.body(version), version, marked))
    }
}

/// `resources` resources: a fifth networks, two fifths subnets (on the networks in turn), the
/// rest ports (on the subnets in turn). Every fourth of each kind is modified; every tenth port
/// is deleted, and so is every twentieth subnet whose ports are all deleted; every eighth network
/// is flaky, and neither it nor what depends on it is modified (only retries can bring them
/// about).
pub(super) fn scenario(resources: usize) -> Vec<Resource> {
    let networks = (resources / 5).max(1);
    let subnets = (resources * 2 / 5).max(1);
    let ports = resources.saturating_sub(networks + subnets);
    let network_id = |i: usize| format!("net-{i:03}");
    let subnet_id = |i: usize| format!("sub-{i:03}");
    let mut all = Vec::new();
    for i in 0..networks {
        let id = network_id(i);
        all.push(Resource {
            kind: Kind::Network,
            id,
            network: None,
            subnet: None,
            modified: i % 4 == 1,
            deleted: false,
            flaky: i % 8 == 6,
        });
    }
    for i in 0..subnets {
        let network = Some(network_id(i % networks));
        // Deleted with its ports when all of them are deleted (fixed below).
        let deleted = i % 20 == 3;
        all.push(Resource {
            kind: Kind::Subnet,
            id: subnet_id(i),
            network,
            subnet: None,
            modified: i % 4 == 1,
            deleted,
            flaky: false,
        });
    }
    for j in 0..ports {
        let s = j % subnets;
        all.push(Resource {
            kind: Kind::Port,
            id: format!("port-{j:03}"),
            network: Some(network_id(s % networks)),
            subnet: Some(subnet_id(s)),
            modified: j % 4 == 1,
            deleted: j % 10 == 3,
            flaky: false,
        });
    }
    // A subnet goes only if every port on it goes too (as Gohan would insist).
    let kept_subnets: Vec<String> =
        all.iter().filter(|r| r.kind == Kind::Port && !r.deleted).filter_map(|r| r.subnet.clone()).collect();
    for r in all.iter_mut().filter(|r| r.kind == Kind::Subnet) {
        r.deleted &= !kept_subnets.contains(&r.id);
    }
    all
}

pub(super) const NETWORK_TEMPLATE: &str = include_str!("../../heat/templates/chaos-network.yaml");

pub(super) const SUBNET_TEMPLATE: &str = include_str!("../../heat/templates/chaos-subnet.yaml");

pub(super) const PORT_TEMPLATE: &str = include_str!("../../heat/templates/chaos-port.yaml");

/// What the network template says only for the flaky networks: a resource that fails.
pub(super) const FLAKY_PART: &str =
    "{% if jinja_flaky %}\n  boom:\n    type: OS::Heat::TestResource\n    properties: {fail: true}\n{% endif %}\n";

/// The three heat templates as Gohan stores them; `fixed`: only the network template, without
/// the flaky networks' failing resource, at version 2.
pub(super) fn templates(fixed: bool) -> Result<Vec<(&'static str, Vec<u8>)>, serde_json::Error> {
    let network = if fixed { NETWORK_TEMPLATE.replace(FLAKY_PART, "") } else { NETWORK_TEMPLATE.to_owned() };
    let common = |extra: Value| {
        let mut mappings = json!({"rid": "Pid", "name": "Pname", "wait": {"field": "wait"}, "heat_timeout": "C1"});
        if let (Some(mappings), Value::Object(extra)) = (mappings.as_object_mut(), extra) {
            mappings.extend(extra);
        }
        mappings
    };
    let subnets = json!({"for_field": "fixed_ips",
        "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}], "output_key": "id"}});
    [
        ("network", network.as_str(), common(json!({"tenant_id": "Ptenant_id", "jinja_flaky": {"field": "flaky"}}))),
        ("subnet", SUBNET_TEMPLATE, common(json!({"network_id": "Mnetwork:network_id:id"}))),
        ("port", PORT_TEMPLATE, common(json!({"virtual_network": "Mnetwork:network_id:id", "jinja_subnets": subnets}))),
    ]
    .into_iter()
    .filter(|(id, _, _)| !fixed || *id == "network")
    .map(|(id, text, mappings)| {
        let body = json!({"id": id, "handler": "heat_worker", "watch": [], "template_file": text,
            "parameter_mappings": mappings});
        let body = match body {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let version = if fixed { 2 } else { 1 };
        Ok((id, serde_json::to_vec(&ConfigRecord::new(body, version, false))?))
    })
    .collect()
}
