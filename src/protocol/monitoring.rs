//! `/monitoring/v2.0/<plural>/<id>` (PROTOCOL.md §8): `{"<status key>": <status>, "version": N}`.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The status under the target's `etcd.status.key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MonitoringStatus {
    /// `"UP"`, `"FAIL"`, …
    Single(String),
    /// A pool of members: `{"primary": "MASTER", "secondary": "BACKUP"}`.
    Pool(BTreeMap<String, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringRecord {
    /// The target's `etcd.status.key`, for example `load_balancer`, `vmi` or `status`.
    pub status_key: String,
    pub status: MonitoringStatus,
    /// The config version of the stack that registered the target.
    pub version: u64,
}

impl Serialize for MonitoringRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(&self.status_key, &self.status)?;
        map.serialize_entry("version", &self.version)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for MonitoringRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let version = map
            .remove("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| D::Error::custom("monitoring record needs an integer `version`"))?;
        let mut entries = map.into_iter();
        let (Some((status_key, status)), None) = (entries.next(), entries.next()) else {
            return Err(D::Error::custom("monitoring record needs exactly one status key besides `version`"));
        };
        let status = serde_json::from_value(status)
            .map_err(|_| D::Error::custom(format!("status `{status_key}` must be a string or an object of strings")))?;
        Ok(MonitoringRecord { status_key, status, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_and_pool_statuses() {
        for raw in [
            json!({"load_balancer": "UP", "version": 2}),
            json!({"status": {"primary": "MASTER", "secondary": "BACKUP"}, "version": 1}),
        ] {
            let record: MonitoringRecord = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(serde_json::to_value(&record).unwrap(), raw);
        }
        assert!(serde_json::from_value::<MonitoringRecord>(json!({"a": "UP", "b": "UP", "version": 1})).is_err());
        assert!(serde_json::from_value::<MonitoringRecord>(json!({"a": "UP"})).is_err());
    }
}
