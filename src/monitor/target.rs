//! Monitoring targets as the Collector Agent front end takes and answers them (PROTOCOL.md §8,
//! corpus `collector_agents/CreateLoadbalancer_02.md`): the body a `MonitoringTarget` resource
//! POSTs, and the record we keep and answer with (`id`, `link`, `created_at`, `monitorer` added).

use crate::protocol::monitoring::MonitoringStatus;
use crate::secrets::{Secrets, mask_secrets};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// Where the status of a resource is written: `/monitoring<prefix>/<plural>/<id>`, with the
/// Collector Agent's `default_additional_prefix`.
pub const MONITORING_PREFIX: &str = "/monitoring/v2.0";

/// What a `MonitoringTarget` registers: its HOT properties as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The probe family: `snmp_device_lb`, `snmp_ports`, `vrrp_pool`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The plural of the resource type (`load_balancers`); the second-to-last key segment.
    pub resource_type: String,
    pub resource_id: String,
    pub field_name: String,
    pub tenant_id: String,
    /// The config version whose stack registered the target; becomes the record's `version`.
    #[serde(deserialize_with = "version_number")]
    pub version: u64,
    /// What to probe: `device_ip`, `community_name`, `if_name`, pool members …
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// `etcd.status.key` (and `etcd.hold_options`) say what is written to `/monitoring`;
    /// `tsdb` names metrics, which this monitor does not collect.
    #[serde(default)]
    pub syncer_properties: Map<String, Value>,
}

/// A registered target as stored in etcd and answered by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub link: String,
    /// UTC, seconds, like `2018-02-19T05:21:58Z`.
    pub created_at: String,
    /// The base URL of the monitor that took the registration.
    pub monitorer: String,
    #[serde(flatten)]
    pub spec: TargetSpec,
}

/// The body's fields and the JSON type each must have, checked before serde reads the body:
/// serde's own refusal quotes the value it got (`invalid type: string "…", expected a map`), and
/// that value may be a community string or a password sent in the wrong place.
const FIELDS: [(&str, Shape); 8] = [
    ("type", Shape::Name),
    ("resource_type", Shape::Name),
    ("resource_id", Shape::Name),
    ("field_name", Shape::Name),
    ("tenant_id", Shape::Name),
    ("version", Shape::Version),
    ("properties", Shape::Object),
    ("syncer_properties", Shape::Object),
];

#[derive(Clone, Copy)]
enum Shape {
    /// A string; required.
    Name,
    /// A number or a string of one (see `version_number`); required.
    Version,
    /// An object; may be left out.
    Object,
}

impl Shape {
    fn expected(self) -> &'static str {
        match self {
            Shape::Name => "a string",
            Shape::Version => "a whole number",
            Shape::Object => "an object",
        }
    }
}

/// What kind of JSON value `value` is, for a message that must not show the value itself.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why a target body cannot be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTarget(pub String);

/// `etcd.hold_options`: statuses written at once; any other is written only once it has held for
/// `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldOptions {
    pub positive: Vec<MonitoringStatus>,
    pub time: Duration,
}

impl TargetSpec {
    /// Parses and checks a body: the fields the monitor relies on must be usable. The refusal
    /// names the field at fault and never quotes a value of the body (see [`FIELDS`]); a secret
    /// of the body that a message would still contain is masked.
    pub fn from_json(body: &[u8]) -> Result<TargetSpec, InvalidTarget> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| InvalidTarget(format!("the body is not JSON: {e}")))?;
        TargetSpec::from_value(value.clone())
            .map_err(|invalid| InvalidTarget(Secrets::collect([("body", &value)]).mask(&invalid.0)))
    }

    fn from_value(value: Value) -> Result<TargetSpec, InvalidTarget> {
        let Value::Object(fields) = &value else {
            return Err(InvalidTarget(format!("a target body must be a JSON object, not {}", json_type(&value))));
        };
        for (field, shape) in FIELDS {
            match (fields.get(field), shape) {
                (None, Shape::Object) => {}
                (None, _) => return Err(InvalidTarget(format!("not a target body: missing field `{field}`"))),
                (Some(Value::String(_)), Shape::Name | Shape::Version)
                | (Some(Value::Number(_)), Shape::Version)
                | (Some(Value::Object(_)), Shape::Object) => {}
                (Some(other), _) => {
                    return Err(InvalidTarget(format!(
                        "`{field}` must be {}, not {}",
                        shape.expected(),
                        json_type(other)
                    )));
                }
            }
        }
        // Only `version`'s own check can refuse now, and it says what it expects, not what it got.
        let spec: TargetSpec =
            serde_json::from_value(value).map_err(|e| InvalidTarget(format!("not a target body: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), InvalidTarget> {
        for (field, value) in
            [("type", &self.kind), ("resource_type", &self.resource_type), ("resource_id", &self.resource_id)]
        {
            if value.is_empty() || value.contains('/') {
                return Err(InvalidTarget(format!("`{field}` must be a non-empty name without `/`")));
            }
        }
        self.status_key()?;
        self.hold_options()?;
        Ok(())
    }

    /// `syncer_properties.etcd.status.key`; `None` for metrics-only targets (nothing is written).
    pub fn status_key(&self) -> Result<Option<&str>, InvalidTarget> {
        let Some(etcd) = self.syncer_properties.get("etcd") else { return Ok(None) };
        match etcd.pointer("/status/key") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(key)) if !key.is_empty() && key != "version" => Ok(Some(key)),
            Some(_) => {
                Err(InvalidTarget("`syncer_properties.etcd.status.key` must be a name other than `version`".into()))
            }
        }
    }

    /// Whether the target has a status to write (else it only names metrics).
    pub fn writes_status(&self) -> bool {
        matches!(self.status_key(), Ok(Some(_)))
    }

    /// `syncer_properties.etcd.hold_options`, when given.
    pub fn hold_options(&self) -> Result<Option<HoldOptions>, InvalidTarget> {
        let Some(hold) = self.syncer_properties.get("etcd").and_then(|etcd| etcd.get("hold_options")) else {
            return Ok(None);
        };
        let invalid = |what: &str| InvalidTarget(format!("`syncer_properties.etcd.hold_options`: {what}"));
        let time = hold
            .get("time_seconds")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid("`time_seconds` must be a whole number of seconds"))?;
        let positive = match hold.get("positive_status") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| serde_json::from_value(item.clone()))
                .collect::<Result<_, _>>()
                .map_err(|_| invalid("`positive_status` entries must be statuses or maps of member statuses"))?,
            Some(_) => return Err(invalid("`positive_status` must be a list")),
        };
        Ok(Some(HoldOptions { positive, time: Duration::from_secs(time) }))
    }

    /// The `/monitoring` key this target's status goes to.
    pub fn monitoring_key(&self) -> String {
        format!("{MONITORING_PREFIX}/{}/{}", self.resource_type, self.resource_id)
    }

    /// A string property (`device_ip`, `if_name`, …).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }
}

impl Target {
    /// The answer to a client: the record with every secret masked.
    pub fn masked(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        mask_secrets(&mut value);
        value
    }
}

/// Heat passes `{get_param: version}` of a `number` parameter: an integer, sometimes as a float
/// or a string.
fn version_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    use serde::de::Error as _;
    let value = Value::deserialize(deserializer)?;
    let number = match &value {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    // The value is not quoted: whatever was sent, it is not shown back (see `FIELDS`).
    number.ok_or_else(|| D::Error::custom("`version` must be a whole number (a number or a string of digits)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The load balancer's registration, as the corpus recorded it (tsdb shortened).
    fn corpus_body() -> Value {
        json!({
            "resource_id": "b311c470-d878-4fea-8466-a4393938f2d4",
            "tenant_id": "fe3a4a1a72c04479bb6c19c2c0ccba4c",
            "version": 1,
            "syncer_properties": {
                "tsdb": {"cpu.usage": {"metric": "cpu.percents", "tags": {"type": "usage"}}},
                "etcd": {"status": {"key": "load_balancer"}}
            },
            "field_name": "load_balancer",
            "type": "snmp_device_lb",
            "properties": {"community_name": "LOAD_BALANCER_COMMUNITY", "device_ip": "100.64.193.3"},
            "resource_type": "load_balancers"
        })
    }

    #[test]
    fn corpus_registration_round_trips_and_answers_masked() {
        let body = corpus_body();
        let spec = TargetSpec::from_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(spec.status_key().unwrap(), Some("load_balancer"));
        assert_eq!(spec.monitoring_key(), "/monitoring/v2.0/load_balancers/b311c470-d878-4fea-8466-a4393938f2d4");
        assert_eq!(serde_json::to_value(&spec).unwrap(), body);
        let target = Target {
            id: "8a031503-513d-4d7b-ac78-0ac2631fe786".into(),
            link: "http://collector-agents-se:7070/targets/8a031503-513d-4d7b-ac78-0ac2631fe786".into(),
            created_at: "2018-02-19T05:21:58Z".into(),
            monitorer: "http://collector-agents-se:7070".into(),
            spec,
        };
        let answer = target.masked();
        assert_eq!(answer["properties"], json!({"community_name": "***", "device_ip": "100.64.193.3"}));
        assert_eq!(answer["id"], "8a031503-513d-4d7b-ac78-0ac2631fe786");
        let stored: Target = serde_json::from_value(serde_json::to_value(&target).unwrap()).unwrap();
        assert_eq!(stored, target);
    }

    #[test]
    fn hold_options_of_the_corpus_templates() {
        let mut body = corpus_body();
        body["syncer_properties"]["etcd"]["hold_options"] =
            json!({"positive_status": ["UP", "DOWN"], "time_seconds": 30});
        let spec = TargetSpec::from_json(body.to_string().as_bytes()).unwrap();
        let hold = spec.hold_options().unwrap().unwrap();
        assert_eq!(hold.time, Duration::from_secs(30));
        assert_eq!(hold.positive[1], MonitoringStatus::Single("DOWN".into()));

        body["syncer_properties"]["etcd"]["hold_options"] =
            json!({"positive_status": [{"primary": "MASTER", "secondary": "BACKUP"}], "time_seconds": 360});
        let spec = TargetSpec::from_json(body.to_string().as_bytes()).unwrap();
        let hold = spec.hold_options().unwrap().unwrap();
        assert!(matches!(&hold.positive[0], MonitoringStatus::Pool(members) if members["primary"] == "MASTER"));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let cases = [
            (json!({"type": "snmp_device"}), "not a target body"),
            (json!({"version": "two"}), "`version` must be a whole number"),
            (json!({"resource_type": "a/b"}), "`resource_type` must be"),
            (json!({"syncer_properties": {"etcd": {"status": {"key": 3}}}}), "status.key"),
            (
                json!({"syncer_properties": {"etcd": {"status": {"key": "s"}, "hold_options": {"time_seconds": "x"}}}}),
                "time_seconds",
            ),
        ];
        for (patch, expected) in cases {
            let mut body = corpus_body();
            if patch.get("type").is_some() {
                body = patch.clone();
            } else if let (Value::Object(body), Value::Object(patch)) = (&mut body, patch) {
                body.extend(patch);
            }
            let error = TargetSpec::from_json(body.to_string().as_bytes()).unwrap_err();
            assert!(error.0.contains(expected), "{error} lacks {expected}");
        }
    }

    #[test]
    fn refusals_name_the_field_and_never_quote_the_body() {
        let secret = "community-s3cr3t-7f2a";
        let patches = [
            (json!({"properties": secret}), "`properties` must be an object, not a string"),
            (json!({"syncer_properties": [secret]}), "`syncer_properties` must be an object, not an array"),
            (json!({"tenant_id": {"community_name": secret}}), "`tenant_id` must be a string, not an object"),
            (json!({"version": {"password": secret}}), "`version` must be a whole number, not an object"),
            (json!({"version": secret}), "`version` must be a whole number (a number or a string of digits)"),
            (json!({"version": -1}), "`version` must be a whole number"),
            (json!({"type": null}), "`type` must be a string, not null"),
        ];
        for (patch, expected) in patches {
            let mut body = corpus_body();
            if let (Value::Object(body), Value::Object(patch)) = (&mut body, patch) {
                body.extend(patch);
            }
            let error = TargetSpec::from_json(body.to_string().as_bytes()).unwrap_err().0;
            assert!(error.contains(expected), "{error} lacks {expected}");
            assert!(!error.contains(secret), "{error}");
        }
        let mut missing = corpus_body();
        missing.as_object_mut().unwrap().remove("resource_id");
        let error = TargetSpec::from_json(missing.to_string().as_bytes()).unwrap_err().0;
        assert_eq!(error, "not a target body: missing field `resource_id`");
        for (body, expected) in [
            (json!(secret).to_string(), "a target body must be a JSON object, not a string"),
            (json!([{"community_name": secret}]).to_string(), "a target body must be a JSON object, not an array"),
            (format!(r#"{{"properties": {{"community_name": "{secret}""#), "the body is not JSON: EOF while parsing"),
            (format!(r#"{{"properties": {{"community_name": {secret}}}}}"#), "the body is not JSON: expected value"),
            (String::new(), "the body is not JSON"),
        ] {
            let error = TargetSpec::from_json(body.as_bytes()).unwrap_err().0;
            assert!(error.contains(expected), "{error} lacks {expected}");
            assert!(!error.contains(secret), "{error}");
        }
    }

    #[test]
    fn metrics_only_targets_have_no_status_key() {
        let mut body = corpus_body();
        body["syncer_properties"] = json!({"tsdb": {}});
        assert_eq!(TargetSpec::from_json(body.to_string().as_bytes()).unwrap().status_key().unwrap(), None);
        body["version"] = json!("3");
        assert_eq!(TargetSpec::from_json(body.to_string().as_bytes()).unwrap().version, 3);
        body["version"] = json!(2.0);
        assert_eq!(TargetSpec::from_json(body.to_string().as_bytes()).unwrap().version, 2);
    }

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let mut value = json!({"primary": {"host": "127.0.0.1", "password": "pw", "login": "admin"},
                               "community_name": "c", "items": [{"token": "t"}]});
        mask_secrets(&mut value);
        assert_eq!(
            value,
            json!({"primary": {"host": "127.0.0.1", "password": "***", "login": "admin"},
                   "community_name": "***", "items": [{"token": "***"}]})
        );
    }
}
