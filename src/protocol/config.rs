//! Records of desired configuration: the Gohan `/config` envelope, heat templates and the worker's
//! snapshot of the last processed config (PROTOCOL.md §2.1–2.3).

use super::json_style::go_json;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A resource body: the Gohan resource as a JSON object.
pub type Body = Map<String, Value>;

/// A body held by several owners at once (the config record, the planner's index, the snapshot
/// of the same version): a decoded body costs about a kilobyte, and a large estate has one per
/// resource.
pub type SharedBody = Arc<Body>;

/// How a `/config` body was stored: Gohan writes a JSON string, the corpus docs show an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `"body": "{\"id\":…}"`, re-encoded like Go's `encoding/json`.
    String,
    /// `"body": {"id": …}`.
    Object,
}

/// `/config<prefix>/<id>`, written by Gohan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigRecord {
    #[serde(serialize_with = "encode_body", deserialize_with = "decode_body")]
    pub body: (SharedBody, BodyEncoding),
    pub version: u64,
    #[serde(default)]
    pub marked_for_deletion: bool,
}

impl ConfigRecord {
    /// A record as Gohan writes it (body double-encoded).
    pub fn new(body: impl Into<SharedBody>, version: u64, marked_for_deletion: bool) -> Self {
        ConfigRecord { body: (body.into(), BodyEncoding::String), version, marked_for_deletion }
    }

    pub fn body(&self) -> &Body {
        &self.body.0
    }

    /// The body, to hold without copying it.
    pub fn shared_body(&self) -> &SharedBody {
        &self.body.0
    }

    /// The resource id the body names, if any.
    pub fn body_id(&self) -> Option<&str> {
        self.body.0.get("id").and_then(Value::as_str)
    }
}

fn encode_body<S: Serializer>(body: &(SharedBody, BodyEncoding), serializer: S) -> Result<S::Ok, S::Error> {
    match body.1 {
        BodyEncoding::String => go_json(&Value::Object(Body::clone(&body.0))).serialize(serializer),
        BodyEncoding::Object => Body::serialize(&body.0, serializer),
    }
}

/// serde_json reads an object whose first key is this one as a raw value, not as an object (its
/// `raw_value` feature, which a dependency turns on). A string-encoded body is written back with
/// its keys sorted, as Go sorts them, and `$` sorts first: a body holding this key anywhere would
/// decode once and never again. It is refused when read.
const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

fn holds_raw_value_key(body: &Body) -> bool {
    fn within(value: &Value) -> bool {
        match value {
            Value::Object(map) => holds_raw_value_key(map),
            Value::Array(items) => items.iter().any(within),
            _ => false,
        }
    }
    body.iter().any(|(key, value)| key == RAW_VALUE_KEY || within(value))
}

fn decode_body<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(SharedBody, BodyEncoding), D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Object(body) => Ok((exact(body), BodyEncoding::Object)),
        Value::String(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(body)) if holds_raw_value_key(&body) => {
                Err(D::Error::custom(format!("body holds the key `{RAW_VALUE_KEY}`, which cannot be written back")))
            }
            Ok(Value::Object(body)) => Ok((exact(body), BodyEncoding::String)),
            Ok(_) => Err(D::Error::custom("body string does not hold a JSON object")),
            Err(e) => Err(D::Error::custom(format!("body string is not JSON: {e}"))),
        },
        _ => Err(D::Error::custom("body must be a JSON object or a string holding one")),
    }
}

/// The body with room for its own fields only: decoding grows a map by doubling, which leaves a
/// typical body's table a quarter empty, and a planner holds one body per resource. The fields
/// move, nothing else is copied; their order stays.
fn exact(body: Body) -> SharedBody {
    Arc::new(body.into_iter().collect())
}

/// Whether two bodies are the same, keys in the same order too: the order is part of what is
/// written from a body (a job's `resource_input`, an object-encoded config body), so a body may
/// stand for another only if it is identical. (`Map`'s own `==` ignores the order.)
pub fn identical(a: &Body, b: &Body) -> bool {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => identical(a, b),
            (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)),
            _ => a == b,
        }
    }
    a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
}

/// The decoded body of `/config/v2.0/heat_templates/<id>` (PROTOCOL.md §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatTemplate {
    pub id: String,
    pub handler: String,
    pub template_file: String,
    /// Param name → mapping (a string or an object); parsed by the `mapping` module.
    pub parameter_mappings: Map<String, Value>,
    /// Always `[]` in the corpus; kept, unused (PROTOCOL.md §5.3). `null` reads as empty but is
    /// written back as `null`, so a record round-trips unchanged.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub watch: Option<Option<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl HeatTemplate {
    pub fn from_body(body: &Body) -> Result<Self, serde_json::Error> {
        serde_json::from_value(Value::Object(body.clone()))
    }

    pub fn watch(&self) -> &[String] {
        self.watch.as_ref().and_then(Option::as_deref).unwrap_or_default()
    }
}

/// Tells a field that is present but `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// `/esi-worker/config<prefix>/<id>`: the config version the planner last processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// Most often the very body of the current config, which the planner then holds once.
    pub body: SharedBody,
    pub deleted: bool,
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_body_round_trips_in_both_encodings() {
        let raw = json!({"body": "{\"id\":\"n1\",\"name\":\"a\\u003cb\"}", "marked_for_deletion": false, "version": 1});
        let record: ConfigRecord = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(record.body_id(), Some("n1"));
        assert_eq!(record.body().get("name"), Some(&json!("a<b")));
        assert_eq!(serde_json::to_value(&record).unwrap(), raw);

        let docs = json!({"body": {"id": "n1"}, "marked_for_deletion": true, "version": 4});
        let record: ConfigRecord = serde_json::from_value(docs.clone()).unwrap();
        assert!(record.marked_for_deletion);
        assert_eq!(serde_json::to_value(&record).unwrap(), docs);
    }

    #[test]
    fn identical_bodies_have_their_keys_in_the_same_order() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let a = body(json!({"id": "n1", "tags": [{"x": 1, "y": 2}], "name": "a"}));
        assert!(identical(&a, &a.clone()));
        assert!(!identical(&a, &body(json!({"name": "a", "id": "n1", "tags": [{"x": 1, "y": 2}]}))));
        assert!(!identical(&a, &body(json!({"id": "n1", "tags": [{"y": 2, "x": 1}], "name": "a"}))));
        assert!(!identical(&a, &body(json!({"id": "n1", "tags": [{"x": 1, "y": 2}], "name": "b"}))));
        assert!(!identical(&a, &body(json!({"id": "n1", "tags": [{"x": 1, "y": 2}]}))));
    }

    #[test]
    fn a_body_holding_serde_jsons_raw_value_key_is_refused() {
        // Anywhere: written back with its keys sorted, it would come first and read as raw.
        for body in [
            json!({"id": "n1", "$serde_json::private::RawValue": "x"}),
            json!({"id": "n1", "tags": [{"name": "a", "$serde_json::private::RawValue": "x"}]}),
            json!({"id": "n1", "nested": {"z": {"a": 2, "$serde_json::private::RawValue": 1}}}),
            json!({"id": "n1", "grid": [[{"a": 1, "$serde_json::private::RawValue": 2}]]}),
        ] {
            let raw = json!({"body": body.to_string(), "version": 1});
            let error = serde_json::from_value::<ConfigRecord>(raw).unwrap_err().to_string();
            assert!(error.contains("body holds the key `$serde_json::private::RawValue`"), "{error}");
        }
        let fine =
            json!({"body": json!({"id": "n1", "note": "$serde_json::private::RawValue"}).to_string(), "version": 1});
        assert!(serde_json::from_value::<ConfigRecord>(fine).is_ok(), "as a value it is only text");
    }

    #[test]
    fn config_body_must_be_an_object() {
        for bad in
            [json!({"body": "[1]", "version": 1}), json!({"body": "{", "version": 1}), json!({"body": 3, "version": 1})]
        {
            assert!(serde_json::from_value::<ConfigRecord>(bad).is_err());
        }
    }
}
