//! What the worker reports about a job: the Heat stack record, the in-flight job state and the
//! `/state` result for Gohan (PROTOCOL.md §2.7–2.9, §6.3).

use super::job_id::Action;
use super::json_style::python_json;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// One Heat stack output, as Heat returns it. Field order is the order esi-worker wrote them in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatOutput {
    pub output_value: Value,
    #[serde(default)]
    pub description: String,
    pub output_key: String,
    /// Anything else Heat attaches (for example `output_error`), kept as it came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `/esi-worker/heat_stacks<prefix>/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatStackRecord {
    /// `<type>:<resource_id>`.
    pub id: String,
    /// The Heat stack name `<type>_<resource_id>`; `""` after a delete.
    pub stack_id: String,
    pub tenant_id: String,
    pub stack_status: String,
    pub status_reason: String,
    pub output: Vec<HeatOutput>,
}

/// `/esi-worker/job_state<prefix>/<id>`: `{}` while the job runs, then its outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Started,
    Finished { heat_outputs: Vec<HeatOutput>, orchestration_state: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishedJobState {
    heat_outputs: Vec<HeatOutput>,
    orchestration_state: String,
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JobState::Started => Map::new().serialize(serializer),
            JobState::Finished { heat_outputs, orchestration_state } => FinishedJobState {
                heat_outputs: heat_outputs.clone(),
                orchestration_state: orchestration_state.clone(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        if map.is_empty() {
            return Ok(JobState::Started);
        }
        let finished: FinishedJobState = serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(JobState::Finished {
            heat_outputs: finished.heat_outputs,
            orchestration_state: finished.orchestration_state,
        })
    }
}

/// `state.worker_state` of a resource that has no job (PROTOCOL.md §5.1).
pub const READ_COMPLETE: &str = "READ_COMPLETE";

/// `/state<prefix>/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// `""` on success, else the reason, with secrets masked.
    pub error: String,
    pub state: WorkerStatus,
    /// The config version this result is for.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub worker_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration_state: Option<String>,
    /// Stored as a JSON string (Python `json.dumps`), unlike everywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "heat_outputs_text")]
    pub heat_outputs: Option<Vec<HeatOutput>>,
}

impl StateRecord {
    /// A non-workable resource acknowledged at `version`.
    pub fn read_complete(version: u64) -> Self {
        StateRecord {
            error: String::new(),
            state: WorkerStatus {
                worker_state: READ_COMPLETE.to_owned(),
                orchestration_state: None,
                heat_outputs: None,
            },
            version,
        }
    }

    /// A finished job: `<ACTION>_COMPLETED` with the stack's status and outputs.
    pub fn completed(action: Action, stack_status: &str, outputs: Vec<HeatOutput>, version: u64) -> Self {
        StateRecord {
            error: String::new(),
            state: WorkerStatus {
                worker_state: format!("{}_COMPLETED", action.state_word()),
                orchestration_state: Some(stack_status.to_owned()),
                heat_outputs: Some(outputs),
            },
            version,
        }
    }

    /// A failed or cancelled job: `<ACTION>_FAILED` / `<ACTION>_ERROR` with the reason
    /// (PROTOCOL.md §6.3; the `_FAILED` word is this project's decision, see DESIGN.md).
    pub fn failed(action: Action, error: String, version: u64) -> Self {
        StateRecord {
            error,
            state: WorkerStatus {
                worker_state: format!("{}_FAILED", action.state_word()),
                orchestration_state: Some(format!("{}_ERROR", action.state_word())),
                heat_outputs: Some(Vec::new()),
            },
            version,
        }
    }

    pub fn is_read_complete(&self) -> bool {
        self.state.worker_state == READ_COMPLETE
    }
}

mod heat_outputs_text {
    use super::*;

    pub fn serialize<S: Serializer>(outputs: &Option<Vec<HeatOutput>>, serializer: S) -> Result<S::Ok, S::Error> {
        match outputs {
            Some(outputs) => python_json(outputs).serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<HeatOutput>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("heat_outputs is not a JSON list of outputs: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_heat_outputs_is_python_json_text() {
        let output = HeatOutput {
            output_value: json!("8a03"),
            description: "Monitoring Target ID".into(),
            output_key: "monitoring_target_id".into(),
            extra: Map::new(),
        };
        let state = StateRecord::completed(Action::Create, "CREATE_COMPLETE", vec![output], 1);
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({"error": "", "version": 1, "state": {"worker_state": "CREATE_COMPLETED", "orchestration_state": "CREATE_COMPLETE",
                "heat_outputs": "[{\"output_value\": \"8a03\", \"description\": \"Monitoring Target ID\", \"output_key\": \"monitoring_target_id\"}]"}})
        );
        assert_eq!(
            serde_json::to_value(StateRecord::read_complete(3)).unwrap(),
            json!({"error": "", "state": {"worker_state": "READ_COMPLETE"}, "version": 3})
        );
        let failed = serde_json::to_value(StateRecord::failed(Action::LogicalDelete, "boom".into(), 4)).unwrap();
        assert_eq!(failed["state"]["worker_state"], "DELETE_FAILED");
        assert_eq!(failed["state"]["heat_outputs"], "[]");
    }

    #[test]
    fn job_state_started_and_finished() {
        assert_eq!(serde_json::from_value::<JobState>(json!({})).unwrap(), JobState::Started);
        let finished = json!({"heat_outputs": [], "orchestration_state": "DELETE_COMPLETE"});
        let state: JobState = serde_json::from_value(finished.clone()).unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap(), finished);
        assert!(serde_json::from_value::<JobState>(json!({"x": 1})).is_err());
    }
}
