//! Every record of the data contract, chosen by its key (the table of PROTOCOL.md §2.0).

use super::config::{ConfigRecord, HeatTemplate, WorkerSnapshot};
use super::job::{JobRecord, WorkflowRequest};
use super::job_id::JobId;
use super::keys::{
    HEAT_TEMPLATES_PREFIX, JOB_MANAGER_ID_KEY, JobQueue, ResourceKey, ResourceRoot, WORKFLOW_REQUEST_KEY,
};
use super::monitoring::MonitoringRecord;
use super::results::{HeatStackRecord, JobState, StateRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which record a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    HeatTemplate,
    Config,
    Snapshot,
    HeatStack,
    JobState,
    State,
    Monitoring,
    /// `/jobs/all/<id>`.
    Job,
    /// `/jobs/waiting|ready/<id>`: the handler name.
    QueueEntry,
    /// `/jobs/working/<id>`: the reservation id of the worker that claimed the job.
    Reservation,
    /// `/jobs/finished/<id>`: the done marker.
    Finished,
    /// `/jobs/<queue>` itself, which the original created as an etcd v2 directory.
    QueueDirectory,
    WorkflowRequest,
    /// `/job_manager_id`: the planner leader's id.
    LeaderId,
    /// `/gohan/cluster/sync` and `/gohan/cluster/lock/…`: Gohan's own leases and locks.
    GohanLock,
    /// `/gohan/watch/index/…`: the last etcd index Gohan consumed.
    GohanWatchIndex,
}

impl RecordKind {
    /// `None` for keys outside the data contract.
    pub fn of_key(key: &str) -> Option<RecordKind> {
        if let Some(parsed) = ResourceKey::parse(key) {
            return Some(match parsed.root {
                ResourceRoot::Config if parsed.prefix == HEAT_TEMPLATES_PREFIX => RecordKind::HeatTemplate,
                ResourceRoot::Config => RecordKind::Config,
                ResourceRoot::Snapshot => RecordKind::Snapshot,
                ResourceRoot::HeatStacks => RecordKind::HeatStack,
                ResourceRoot::JobState => RecordKind::JobState,
                ResourceRoot::State => RecordKind::State,
                ResourceRoot::Monitoring => RecordKind::Monitoring,
            });
        }
        if let Some((queue, _)) = JobQueue::parse(key) {
            return Some(match queue {
                JobQueue::All => RecordKind::Job,
                JobQueue::Waiting | JobQueue::Ready => RecordKind::QueueEntry,
                JobQueue::Working => RecordKind::Reservation,
                JobQueue::Finished => RecordKind::Finished,
            });
        }
        if JobQueue::ALL.iter().any(|queue| queue.dir() == key) {
            return Some(RecordKind::QueueDirectory);
        }
        match key {
            WORKFLOW_REQUEST_KEY => Some(RecordKind::WorkflowRequest),
            JOB_MANAGER_ID_KEY => Some(RecordKind::LeaderId),
            "/gohan/cluster/sync" => Some(RecordKind::GohanLock),
            _ if key.starts_with("/gohan/cluster/lock/") => Some(RecordKind::GohanLock),
            _ if key.starts_with("/gohan/watch/index/") => Some(RecordKind::GohanWatchIndex),
            _ => None,
        }
    }

    /// Records whose etcd value is plain text rather than JSON.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            RecordKind::QueueEntry
                | RecordKind::Reservation
                | RecordKind::Finished
                | RecordKind::QueueDirectory
                | RecordKind::LeaderId
        )
    }
}

/// Gohan's `{"ProcessID": …, "Index": …}` lease and lock values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GohanLock {
    #[serde(rename = "ProcessID")]
    pub process_id: String,
    #[serde(rename = "Index")]
    pub index: u64,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    HeatTemplate(ConfigRecord, Box<HeatTemplate>),
    Config(ConfigRecord),
    Snapshot(WorkerSnapshot),
    HeatStack(HeatStackRecord),
    JobState(JobState),
    State(StateRecord),
    Monitoring(MonitoringRecord),
    Job(Box<JobRecord>),
    Text(RecordKind, String),
    WorkflowRequest(Box<WorkflowRequest>),
    GohanLock(GohanLock),
    GohanWatchIndex(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("key is outside the data contract")]
    UnknownKey,
    #[error("value is not UTF-8")]
    NotUtf8,
    #[error("value is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("expected a plain text value, found {0}")]
    NotText(String),
    #[error("{0}")]
    Shape(serde_json::Error),
    #[error("{0}")]
    Inconsistent(String),
    #[error("value is {bytes} bytes, more than the {MAX_CONFIG_BYTES} bytes a /config record may have")]
    TooLarge { bytes: usize },
}

/// The largest `/config` value read. The corpus's largest is 15 KB (a heat template); a
/// resource's job record and snapshot each carry its body again, and the planner writes both in
/// one transaction, which must fit etcd's default request limit of 1.5 MiB. Beyond that, a
/// record would cost every reader its decoding time and memory for nothing it could use.
pub const MAX_CONFIG_BYTES: usize = 512 * 1024;

impl Record {
    /// Decodes the raw etcd value of `key`.
    pub fn from_etcd(key: &str, bytes: &[u8]) -> Result<Record, DecodeError> {
        let kind = RecordKind::of_key(key).ok_or(DecodeError::UnknownKey)?;
        if matches!(kind, RecordKind::Config | RecordKind::HeatTemplate) && bytes.len() > MAX_CONFIG_BYTES {
            return Err(DecodeError::TooLarge { bytes: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
        let value = if kind.is_text() {
            Value::String(text.to_owned())
        } else {
            serde_json::from_str(text).map_err(DecodeError::NotJson)?
        };
        Record::decode(key, value)
    }

    /// The raw etcd value: JSON, or plain text for the text records.
    pub fn to_etcd(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Record::Text(_, text) => Ok(text.clone().into_bytes()),
            other => Ok(other.to_value()?.to_string().into_bytes()),
        }
    }

    /// Decodes a record given as a JSON value (a text record is a JSON string).
    pub fn decode(key: &str, value: Value) -> Result<Record, DecodeError> {
        let kind = RecordKind::of_key(key).ok_or(DecodeError::UnknownKey)?;
        fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
            serde_json::from_value(value).map_err(DecodeError::Shape)
        }
        let last_segment = key.rsplit('/').next().unwrap_or_default();
        Ok(match kind {
            RecordKind::HeatTemplate => {
                let config: ConfigRecord = typed(value)?;
                let template = HeatTemplate::from_body(config.body()).map_err(DecodeError::Shape)?;
                if template.id != last_segment {
                    return Err(DecodeError::Inconsistent(format!(
                        "template id `{}` differs from its key",
                        template.id
                    )));
                }
                Record::HeatTemplate(config, Box::new(template))
            }
            RecordKind::Config => Record::Config(typed(value)?),
            RecordKind::Snapshot => Record::Snapshot(typed(value)?),
            RecordKind::HeatStack => Record::HeatStack(typed(value)?),
            RecordKind::JobState => Record::JobState(typed(value)?),
            RecordKind::State => Record::State(typed(value)?),
            RecordKind::Monitoring => Record::Monitoring(typed(value)?),
            RecordKind::Job => {
                let record: JobRecord = typed(value)?;
                if record.job.id != last_segment {
                    return Err(DecodeError::Inconsistent(format!("job id `{}` differs from its key", record.job.id)));
                }
                let id: JobId = record.job.id.parse().map_err(|e| DecodeError::Inconsistent(format!("{e}")))?;
                let spec = &record.job.spec;
                if (id.action, id.version) != (spec.action, spec.version)
                    || id.resource_type != spec.resource_type
                    || id.resource_id != spec.resource_id
                    || id.job_name() != spec.job_name
                {
                    return Err(DecodeError::Inconsistent(format!(
                        "job `{}` disagrees with its own fields",
                        record.job.id
                    )));
                }
                Record::Job(Box::new(record))
            }
            RecordKind::WorkflowRequest => Record::WorkflowRequest(Box::new(typed(value)?)),
            RecordKind::GohanLock => Record::GohanLock(typed(value)?),
            RecordKind::GohanWatchIndex => Record::GohanWatchIndex(typed(value)?),
            text_kind => match value {
                Value::String(text) => Record::Text(text_kind, text),
                other => return Err(DecodeError::NotText(other.to_string())),
            },
        })
    }

    /// The record as a JSON value (a text record as a JSON string).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Record::HeatTemplate(config, _) | Record::Config(config) => serde_json::to_value(config),
            Record::Snapshot(r) => serde_json::to_value(r),
            Record::HeatStack(r) => serde_json::to_value(r),
            Record::JobState(r) => serde_json::to_value(r),
            Record::State(r) => serde_json::to_value(r),
            Record::Monitoring(r) => serde_json::to_value(r),
            Record::Job(r) => serde_json::to_value(r),
            Record::Text(_, text) => Ok(Value::String(text.clone())),
            Record::WorkflowRequest(r) => serde_json::to_value(r),
            Record::GohanLock(r) => serde_json::to_value(r),
            Record::GohanWatchIndex(r) => serde_json::to_value(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_by_key() {
        assert_eq!(RecordKind::of_key("/config/v2.0/heat_templates/port"), Some(RecordKind::HeatTemplate));
        assert_eq!(RecordKind::of_key("/config/v2.0/ports/p"), Some(RecordKind::Config));
        assert_eq!(RecordKind::of_key("/jobs/ready/x"), Some(RecordKind::QueueEntry));
        assert_eq!(RecordKind::of_key("/jobs/working"), Some(RecordKind::QueueDirectory));
        assert_eq!(RecordKind::of_key("/gohan/cluster/lock/state/v2.0/ports/p"), Some(RecordKind::GohanLock));
        assert_eq!(RecordKind::of_key("/elsewhere"), None);
    }

    #[test]
    fn text_records_are_raw_in_etcd() {
        let record = Record::from_etcd("/jobs/ready/x", b"heat_worker").unwrap();
        assert_eq!(record, Record::Text(RecordKind::QueueEntry, "heat_worker".into()));
        assert_eq!(record.to_etcd().unwrap(), b"heat_worker");
        assert!(Record::decode("/jobs/ready/x", json!(1)).is_err());
        assert!(matches!(Record::from_etcd("/elsewhere", b"{}"), Err(DecodeError::UnknownKey)));
    }
}
