//! Job actions and the job-id grammar of PROTOCOL.md §3.2:
//! `action:handler:resource_type:resource_id:version:suffix`.

use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a job does to the resource's Heat stack (PROTOCOL.md §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Modify,
    LogicalDelete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Modify => "modify",
            Action::LogicalDelete => "logical_delete",
        }
    }

    /// The upper-case word of `/state.worker_state` and `orchestration_state` on failure:
    /// `CREATE`, `MODIFY`, `DELETE`.
    pub fn state_word(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Modify => "MODIFY",
            Action::LogicalDelete => "DELETE",
        }
    }

    /// Jobs other than `create` carry every traversal twice (PROTOCOL.md §4.5).
    pub fn doubles_resources(self) -> bool {
        self != Action::Create
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = JobIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "create" => Ok(Action::Create),
            "modify" => Ok(Action::Modify),
            "logical_delete" => Ok(Action::LogicalDelete),
            other => Err(JobIdError::Action(other.to_owned())),
        }
    }
}

/// A parsed job id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId {
    pub action: Action,
    pub handler: String,
    pub resource_type: String,
    pub resource_id: String,
    pub version: u64,
    pub suffix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobIdError {
    #[error("job id must have 6 `:`-separated parts, found {0}")]
    Parts(usize),
    #[error("unknown job action `{0}`")]
    Action(String),
    #[error("bad {part} `{value}` in job id")]
    Part { part: &'static str, value: String },
}

pub const SUFFIX_LEN: usize = 5;
const SUFFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl JobId {
    /// A new id with a fresh random suffix, so that scheduling a version twice never collides.
    pub fn generate(action: Action, handler: &str, resource_type: &str, resource_id: &str, version: u64) -> Self {
        let mut rng = rand::rng();
        let suffix =
            (0..SUFFIX_LEN).map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char).collect();
        JobId {
            action,
            handler: handler.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
            version,
            suffix,
        }
    }

    /// `<resource_type>:<resource_id>:<version>`, the job's `job_name`.
    pub fn job_name(&self) -> String {
        format!("{}:{}:{}", self.resource_type, self.resource_id, self.version)
    }

    /// The id without its random suffix: what identifies "the same job" across runs.
    pub fn identity(&self) -> String {
        format!("{}:{}:{}", self.action, self.handler, self.job_name())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.identity(), self.suffix)
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

impl FromStr for JobId {
    type Err = JobIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [action, handler, resource_type, resource_id, version, suffix] = parts[..] else {
            return Err(JobIdError::Parts(parts.len()));
        };
        let bad = |part, value: &str| JobIdError::Part { part, value: value.to_owned() };
        if !is_word(handler) {
            return Err(bad("handler", handler));
        }
        if !is_word(resource_type) {
            return Err(bad("resource type", resource_type));
        }
        if resource_id.is_empty() || !resource_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("resource id", resource_id));
        }
        let version = match version.parse::<u64>() {
            Ok(v) if v >= 1 && version.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => return Err(bad("version", version)),
        };
        if suffix.len() != SUFFIX_LEN || !suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(bad("suffix", suffix));
        }
        Ok(JobId {
            action: action.parse()?,
            handler: handler.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
            version,
            suffix: suffix.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_corpus_ids() {
        let text = "logical_delete:heat_worker:port:160234ca-0a5b-4c3f-9f2e-1b2c3d4e5f60:4:rkrn6";
        let id: JobId = text.parse().unwrap();
        assert_eq!(id.action, Action::LogicalDelete);
        assert_eq!(id.resource_type, "port");
        assert_eq!(id.version, 4);
        assert_eq!(id.job_name(), "port:160234ca-0a5b-4c3f-9f2e-1b2c3d4e5f60:4");
        assert_eq!(id.to_string(), text);
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "create:heat_worker:port:p1:1",
            "delete:heat_worker:port:p1:1:abcde",
            "create:heat_worker:port:p1:0:abcde",
            "create:heat_worker:port:p1:1:ABCDE",
            "create:heat_worker:port:p1:1:abcd",
            "create:heat_worker:port:p_1:1:abcde",
            "create:Heat:port:p1:1:abcde",
        ] {
            assert!(bad.parse::<JobId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_parse_back() {
        let id = JobId::generate(Action::Modify, "heat_worker", "load_balancer", "b311c470-d878", 2);
        let again: JobId = id.to_string().parse().unwrap();
        assert_eq!(again, id);
        assert_ne!(JobId::generate(Action::Modify, "h", "t", "i", 1).suffix, "");
    }
}
