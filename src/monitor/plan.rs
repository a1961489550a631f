//! Which probe reads a target's status, by target `type`, and what status each reading means.
//!
//! Built in, as the original Collector Agent's handlers did: the `snmp_device*` types read the
//! device's sysUpTime (`UP` / `FAIL`); `snmp_ports*` read the named interface's ifOperStatus
//! (`UP` / `DOWN`, `FAIL` when unreachable or no such interface); the NETCONF pools `vrrp_pool`
//! and `bgp_pool` get a TCP connect to each member's `host:port` (`UP` / `FAIL` per member: VRRP
//! and BGP roles are not read). Any type can be given a TCP or HTTP probe in the probe
//! configuration instead, e.g. `compute` (Nova) or `virtual_machine_interface` (Contrail
//! analytics). A type with no probe is not probed (logged once per target).

use super::target::Target;
use crate::protocol::monitoring::{MonitoringRecord, MonitoringStatus};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Every target `type` the original Collector Agent took (PROTOCOL.md §8 and the corpus's
/// templates), probed here or not. The API takes these even where no probe is configured for one
/// (`compute` without a Nova probe: logged and not probed), so monitoring never fails a stack the
/// original accepted; it refuses any other type the probe configuration does not name, which can
/// only be a mistake (a registration nothing would ever probe).
pub const COLLECTOR_TYPES: [&str; 11] = [
    "bgp_pool",
    "compute",
    "igs_counter",
    "snmp_device",
    "snmp_device_fw",
    "snmp_device_lb",
    "snmp_ports",
    "snmp_ports_metric",
    "snmp_ports_status",
    "virtual_machine_interface",
    "vrrp_pool",
];

/// How targets of one `type` are probed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindProbe {
    /// SNMP GET of sysUpTime at `device_ip` with `community_name`.
    SnmpDevice,
    /// SNMP ifOperStatus of the interface named `if_name` at `device_ip`.
    SnmpPort,
    /// TCP connect to every member (`primary`, `secondary`, …) that has a `host` and `port`.
    PoolTcp,
    /// TCP connect; `{property}` placeholders are filled from the target's properties.
    Tcp { host: String, port: String },
    /// HTTP GET, 2xx is up; `{property}` placeholders as for `tcp`.
    Http { url: String },
}

/// The probe configuration: per-type probes and where devices are reached.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub kinds: BTreeMap<String, KindProbe>,
    /// The SNMP port when `device_ip` names none (the original agents' `port: 161`).
    pub snmp_port: u16,
    /// Device addresses as targets name them → where this monitor reaches them (`host` or
    /// `host:port`), for management networks reached through NAT or a tunnel; the key `*`
    /// stands for every address not named.
    pub address_map: HashMap<String, String>,
    /// Probe nothing outside 127.0.0.0/8 and ::1 (the demo and the benchmark: their example
    /// data names real management addresses, which must never be sent a packet from here).
    pub loopback_only: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        let builtin = [
            ("snmp_device", KindProbe::SnmpDevice),
            ("snmp_device_lb", KindProbe::SnmpDevice),
            ("snmp_device_fw", KindProbe::SnmpDevice),
            ("snmp_ports", KindProbe::SnmpPort),
            ("snmp_ports_status", KindProbe::SnmpPort),
            ("vrrp_pool", KindProbe::PoolTcp),
            ("bgp_pool", KindProbe::PoolTcp),
        ];
        ProbeConfig {
            kinds: builtin.into_iter().map(|(kind, probe)| (kind.to_owned(), probe)).collect(),
            snmp_port: 161,
            address_map: HashMap::new(),
            loopback_only: false,
        }
    }
}

impl ProbeConfig {
    /// Adds or replaces per-type probes from a YAML or JSON map, e.g.
    /// `compute: {http: {url: "http://nova:8774/v2.1/servers/{server_id}"}}`.
    pub fn extend_from_yaml(&mut self, text: &str) -> anyhow::Result<()> {
        // Through a JSON value: the YAML crate reads enums only from `!tags`, and a plain
        // `http: {url: ...}` map is what an operator writes.
        let value: Value = yaml_serde::from_str(text)?;
        let kinds: BTreeMap<String, KindProbe> = serde_json::from_value(value)?;
        self.kinds.extend(kinds);
        Ok(())
    }

    /// Whether the API takes targets of type `kind` (see [`COLLECTOR_TYPES`]).
    pub fn knows(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind) || COLLECTOR_TYPES.contains(&kind)
    }

    /// The types the API takes, sorted: the Collector Agent's and the configured ones.
    pub fn known_types(&self) -> Vec<&str> {
        let known: std::collections::BTreeSet<&str> =
            COLLECTOR_TYPES.into_iter().chain(self.kinds.keys().map(String::as_str)).collect();
        known.into_iter().collect()
    }

    /// The probe for `target`, or why it cannot be probed.
    pub fn plan(&self, target: &Target) -> Result<Plan, PlanError> {
        let plan = self.plan_unchecked(target)?;
        if self.loopback_only {
            let hosts: Vec<String> = match &plan {
                Plan::SnmpDevice(device) | Plan::SnmpPort { device, .. } => vec![device.host.clone()],
                Plan::Pool(members) => members.iter().map(|m| m.endpoint.host.clone()).collect(),
                Plan::Tcp(endpoint) => vec![endpoint.host.clone()],
                Plan::Http(url) => {
                    vec![
                        reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default(),
                    ]
                }
            };
            if let Some(outside) = hosts.into_iter().find(|host| !is_loopback(host)) {
                return Err(PlanError::NotLoopback(outside));
            }
        }
        Ok(plan)
    }

    fn plan_unchecked(&self, target: &Target) -> Result<Plan, PlanError> {
        let spec = &target.spec;
        let probe = self.kinds.get(&spec.kind).ok_or_else(|| PlanError::NoProbe(spec.kind.clone()))?;
        let property = |name: &str| {
            spec.property(name).filter(|v| !v.is_empty()).ok_or_else(|| PlanError::MissingProperty(name.to_owned()))
        };
        Ok(match probe {
            KindProbe::SnmpDevice => {
                Plan::SnmpDevice(self.snmp_endpoint(property("device_ip")?, property("community_name")?))
            }
            KindProbe::SnmpPort => Plan::SnmpPort {
                device: self.snmp_endpoint(property("device_ip")?, property("community_name")?),
                if_name: property("if_name")?.to_owned(),
                if_index: None,
            },
            KindProbe::PoolTcp => {
                let members: Vec<Member> = spec
                    .properties
                    .iter()
                    .filter_map(|(name, member)| {
                        let host = member.get("host").and_then(Value::as_str)?;
                        let port = member.get("port").and_then(scalar)?;
                        Some(Member { name: name.clone(), endpoint: self.tcp_endpoint(host, &port) })
                    })
                    .collect();
                if members.is_empty() {
                    return Err(PlanError::NoPoolMember);
                }
                Plan::Pool(members)
            }
            KindProbe::Tcp { host, port } => {
                Plan::Tcp(self.tcp_endpoint(&fill(host, &spec.properties)?, &fill(port, &spec.properties)?))
            }
            KindProbe::Http { url } => Plan::Http(fill(url, &spec.properties)?),
        })
    }

    fn mapped<'a>(&'a self, host: &'a str) -> &'a str {
        self.address_map.get(host).or_else(|| self.address_map.get("*")).map(String::as_str).unwrap_or(host)
    }

    fn snmp_endpoint(&self, device_ip: &str, community: &str) -> SnmpEndpoint {
        let (host, port) = split_host_port(self.mapped(device_ip), self.snmp_port);
        SnmpEndpoint { host, port, community: community.to_owned() }
    }

    fn tcp_endpoint(&self, host: &str, port: &str) -> Endpoint {
        let mapped = self.mapped(host);
        let default_port = port.trim().parse().unwrap_or(0);
        let (host, port) = split_host_port(mapped, default_port);
        Endpoint { host, port }
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host` or `host:port` (an IPv6 literal only in brackets).
fn split_host_port(address: &str, default_port: u16) -> (String, u16) {
    if let Some((host, port)) = address.rsplit_once(':')
        && let Ok(port) = port.parse()
        && (!host.contains(':') || host.starts_with('['))
    {
        return (host.trim_matches(['[', ']']).to_owned(), port);
    }
    (address.trim_matches(['[', ']']).to_owned(), default_port)
}

/// A property as text: strings as they are, numbers printed, lists joined with `:` (Contrail's
/// fq_name form).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>().map(|parts| parts.join(":")),
        _ => None,
    }
}

/// Why a target cannot be probed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no probe is configured for type `{0}`")]
    NoProbe(String),
    #[error("property `{0}` is missing")]
    MissingProperty(String),
    #[error("no pool member has a `host` and a `port`")]
    NoPoolMember,
    #[error("unclosed `{{` in `{0}`")]
    Unclosed(String),
    #[error("`{0}` is not a loopback address (only loopback is probed here)")]
    NotLoopback(String),
}

/// `pattern` with every `{name}` replaced by the property `name`.
fn fill(pattern: &str, properties: &serde_json::Map<String, Value>) -> Result<String, PlanError> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or_else(|| PlanError::Unclosed(pattern.to_owned()))? + open;
        let name = &rest[open + 1..close];
        let value = properties.get(name).and_then(scalar).ok_or_else(|| PlanError::MissingProperty(name.to_owned()))?;
        out.push_str(&rest[..open]);
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Clone, PartialEq)]
pub struct SnmpEndpoint {
    pub host: String,
    pub port: u16,
    pub community: String,
}

impl std::fmt::Debug for SnmpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "snmp://***@{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub endpoint: Endpoint,
}

/// One target's probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    SnmpDevice(SnmpEndpoint),
    /// `if_index`: where the name was found last time, so the next reading is one GET.
    SnmpPort {
        device: SnmpEndpoint,
        if_name: String,
        if_index: Option<u64>,
    },
    Pool(Vec<Member>),
    Tcp(Endpoint),
    Http(String),
}

impl Plan {
    /// What kind of probe it is, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Plan::SnmpDevice(_) => "snmp_device",
            Plan::SnmpPort { .. } => "snmp_port",
            Plan::Pool(_) => "pool",
            Plan::Tcp(_) => "tcp",
            Plan::Http(_) => "http",
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Up,
    /// Reachable, but the interface is not up.
    Down,
    /// Unreachable or broken, with why (for the log).
    Fail(String),
    Pool(Vec<(String, Reading)>),
}

impl Reading {
    /// In one word, for metrics: `UP`, `DOWN` or `FAIL`; a pool is its worst member.
    pub fn summary(&self) -> &'static str {
        match self {
            Reading::Pool(members) => {
                let words: Vec<&str> = members.iter().map(|(_, reading)| reading.summary()).collect();
                ["FAIL", "DOWN"].into_iter().find(|worst| words.contains(worst)).unwrap_or("UP")
            }
            single => single.word(),
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Reading::Up => "UP",
            Reading::Down => "DOWN",
            Reading::Fail(_) | Reading::Pool(_) => "FAIL",
        }
    }

    /// The `/monitoring` record this reading makes for a target.
    pub fn record(&self, status_key: &str, version: u64) -> MonitoringRecord {
        let status = match self {
            Reading::Pool(members) => {
                MonitoringStatus::Pool(members.iter().map(|(name, r)| (name.clone(), r.word().to_owned())).collect())
            }
            single => MonitoringStatus::Single(single.word().to_owned()),
        };
        MonitoringRecord { status_key: status_key.to_owned(), status, version }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::target::TargetSpec;
    use serde_json::json;

    fn target(kind: &str, properties: Value) -> Target {
        let spec: TargetSpec = serde_json::from_value(json!({
            "type": kind, "resource_type": "load_balancers", "resource_id": "lb", "field_name": "x",
            "tenant_id": "t", "version": 2, "properties": properties,
            "syncer_properties": {"etcd": {"status": {"key": "load_balancer"}}}
        }))
        .unwrap();
        Target { id: "id".into(), link: String::new(), created_at: String::new(), monitorer: String::new(), spec }
    }

    #[test]
    fn snmp_types_use_the_device_address_and_community() {
        let mut config = ProbeConfig::default();
        let lb = target("snmp_device_lb", json!({"device_ip": "100.64.193.3", "community_name": "LB"}));
        assert_eq!(
            config.plan(&lb).unwrap(),
            Plan::SnmpDevice(SnmpEndpoint { host: "100.64.193.3".into(), port: 161, community: "LB".into() })
        );
        config.address_map.insert("100.64.193.3".into(), "127.0.0.1:16161".into());
        assert_eq!(
            config.plan(&lb).unwrap(),
            Plan::SnmpDevice(SnmpEndpoint { host: "127.0.0.1".into(), port: 16161, community: "LB".into() })
        );
        let port = target("snmp_ports", json!({"device_ip": "127.0.0.1", "community_name": "c", "if_name": "0/1"}));
        assert!(matches!(config.plan(&port).unwrap(), Plan::SnmpPort { if_name, .. } if if_name == "0/1"));
        let broken = target("snmp_ports", json!({"device_ip": "127.0.0.1", "community_name": "c"}));
        assert_eq!(config.plan(&broken).unwrap_err().to_string(), "property `if_name` is missing");
        assert!(!format!("{:?}", config.plan(&lb).unwrap()).contains("LB"), "the community is a secret");
        config.loopback_only = true;
        assert!(config.plan(&lb).is_ok());
        config.address_map.clear();
        assert!(config.plan(&lb).unwrap_err().to_string().contains("not a loopback address"));
    }

    #[test]
    fn pools_probe_each_member_and_record_a_map() {
        let config = ProbeConfig::default();
        let pool = target(
            "vrrp_pool",
            json!({"vrid": [1], "primary": {"host": "127.0.0.1", "port": 830, "password": "pw"},
                   "secondary": {"host": "127.0.0.2", "port": "831"}}),
        );
        let Plan::Pool(members) = config.plan(&pool).unwrap() else { panic!("not a pool") };
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].endpoint, Endpoint { host: "127.0.0.2".into(), port: 831 });
        let reading =
            Reading::Pool(vec![("primary".into(), Reading::Up), ("secondary".into(), Reading::Fail("x".into()))]);
        assert_eq!(
            serde_json::to_value(reading.record("status", 1)).unwrap(),
            json!({"status": {"primary": "UP", "secondary": "FAIL"}, "version": 1})
        );
    }

    #[test]
    fn configured_http_and_tcp_probes_fill_properties() {
        let mut config = ProbeConfig::default();
        config
            .extend_from_yaml(
                "compute: {http: {url: 'http://127.0.0.1:8774/servers/{server_id}'}}\n\
                 virtual_machine_interface: {http: {url: 'http://127.0.0.1:8081/uves/{fq_name}'}}\n\
                 ssh_box: {tcp: {host: '{ip}', port: '22'}}\n",
            )
            .unwrap();
        let server = target("compute", json!({"server_id": "abc"}));
        assert_eq!(config.plan(&server).unwrap(), Plan::Http("http://127.0.0.1:8774/servers/abc".into()));
        let vmi = target("virtual_machine_interface", json!({"fq_name": ["default-domain", "t", "vmi1"]}));
        assert_eq!(config.plan(&vmi).unwrap(), Plan::Http("http://127.0.0.1:8081/uves/default-domain:t:vmi1".into()));
        let tcp = target("ssh_box", json!({"ip": "127.0.0.1"}));
        assert_eq!(config.plan(&tcp).unwrap(), Plan::Tcp(Endpoint { host: "127.0.0.1".into(), port: 22 }));
        assert!(config.plan(&target("igs_counter", json!({}))).unwrap_err().to_string().contains("no probe"));
        // The API takes the Collector Agent's types, probed or not, and the configured ones.
        assert!(config.knows("igs_counter") && config.knows("ssh_box") && !config.knows("snmp_devcie"));
        assert!(!ProbeConfig::default().knows("ssh_box"));
        assert_eq!(config.known_types().len(), COLLECTOR_TYPES.len() + 1);
        assert!(config.extend_from_yaml("x: {teleport: {}}").is_err());
    }

    #[test]
    fn readings_make_corpus_records() {
        assert_eq!(
            serde_json::to_value(Reading::Up.record("load_balancer", 2)).unwrap(),
            json!({"load_balancer": "UP", "version": 2})
        );
        assert_eq!(
            serde_json::to_value(Reading::Down.record("port", 1)).unwrap(),
            json!({"port": "DOWN", "version": 1})
        );
        assert_eq!(
            serde_json::to_value(Reading::Fail("timeout".into()).record("vmi", 3)).unwrap(),
            json!({"version": 3, "vmi": "FAIL"})
        );
    }
}
