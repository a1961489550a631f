//! The etcd data contract of PROTOCOL.md as Rust types: key layout, job ids and every record.
//! Pure: no I/O. Every record decodes from what Gohan or the original worker wrote and encodes to
//! an equal JSON value.

pub mod config;
pub mod job;
pub mod job_id;
pub(crate) mod json_style;
pub mod keys;
pub mod monitoring;
pub mod record;
pub mod results;

pub use config::{Body, BodyEncoding, ConfigRecord, HeatTemplate, SharedBody, WorkerSnapshot};
pub use job::{Job, JobRecord, JobSpec, OutputRef, Param, ParamValue, ResourceRef, WorkflowRequest};
pub use job_id::{Action, JobId};
pub use keys::{JobQueue, ResourceKey, ResourceRoot, ResourceTypes};
pub use monitoring::{MonitoringRecord, MonitoringStatus};
pub use record::{DecodeError, Record, RecordKind};
pub use results::{HeatOutput, HeatStackRecord, JobState, StateRecord, WorkerStatus};
