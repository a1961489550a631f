//! The job record `/jobs/all/<id>` = `[handler, job, 0]` and its params (PROTOCOL.md §2.4, §2.5,
//! §3.1, §4.4).

use super::config::Body;
use super::job_id::Action;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One resource visited while evaluating a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    pub resource_type: String,
    pub resource_id: String,
}

impl ResourceRef {
    pub fn new(resource_type: impl Into<String>, resource_id: impl Into<String>) -> Self {
        ResourceRef { resource_type: resource_type.into(), resource_id: resource_id.into() }
    }
}

/// A reference to an output of another resource's Heat stack, resolved when the job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    pub output_key: String,
    pub resource_type: String,
    pub resource_id: String,
}

/// What a param carries: its `type` with the matching `value`.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// `"type": "value"`: any JSON value, used as is.
    Value(Value),
    /// `"type": "output_key"`.
    OutputKey(OutputRef),
    /// `"type": "list"`: element entries, each an `output_key` param with no resources.
    List(Vec<Param>),
}

impl ParamValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Value(_) => "value",
            ParamValue::OutputKey(_) => "output_key",
            ParamValue::List(_) => "list",
        }
    }
}

/// One entry of a job's `params`: `{"param", "type", "value", "resources"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawParam")]
pub struct Param {
    pub param: String,
    pub value: ParamValue,
    /// Every resource visited, in visit order, repeats included (PROTOCOL.md §4.5).
    pub resources: Vec<ResourceRef>,
}

#[derive(Deserialize)]
struct RawParam {
    param: String,
    #[serde(rename = "type")]
    kind: String,
    value: Value,
    resources: Vec<ResourceRef>,
}

/// What a param serializes to: the fields of [`RawParam`], its value written straight from the
/// typed one (no intermediate `Value` that could fail to build).
#[derive(Serialize)]
struct RawParamRef<'a> {
    param: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    value: ValueRef<'a>,
    resources: &'a [ResourceRef],
}

#[derive(Serialize)]
#[serde(untagged)]
enum ValueRef<'a> {
    Value(&'a Value),
    OutputKey(&'a OutputRef),
    List(&'a [Param]),
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match &self.value {
            ParamValue::Value(v) => ValueRef::Value(v),
            ParamValue::OutputKey(r) => ValueRef::OutputKey(r),
            ParamValue::List(items) => ValueRef::List(items),
        };
        RawParamRef { param: &self.param, kind: self.value.type_name(), value, resources: &self.resources }
            .serialize(serializer)
    }
}

impl TryFrom<RawParam> for Param {
    type Error = String;

    fn try_from(raw: RawParam) -> Result<Self, Self::Error> {
        let value = match raw.kind.as_str() {
            "value" => ParamValue::Value(raw.value),
            "output_key" => ParamValue::OutputKey(
                serde_json::from_value(raw.value)
                    .map_err(|e| format!("param `{}`: bad output_key value: {e}", raw.param))?,
            ),
            "list" => ParamValue::List(
                serde_json::from_value(raw.value).map_err(|e| format!("param `{}`: bad list value: {e}", raw.param))?,
            ),
            other => return Err(format!("param `{}`: unknown type `{other}`", raw.param)),
        };
        Ok(Param { param: raw.param, value, resources: raw.resources })
    }
}

/// A job as the planner describes it, before JobManager gives it an id and dependencies: the
/// element of a workflow request's `jobs` (PROTOCOL.md §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub action: Action,
    pub handler: String,
    pub resource_type: String,
    pub resource_id: String,
    pub version: u64,
    pub job_name: String,
    pub is_first: bool,
    pub is_last: bool,
    pub on_failure: String,
    pub params: Vec<Param>,
    /// Exactly the decoded `/config` body of this version.
    pub resource_input: Body,
}

/// The job object of `/jobs/all/<id>` (PROTOCOL.md §3.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// Ids of the live jobs this one waits for; unordered and unique.
    pub dependency: Vec<String>,
    #[serde(flatten)]
    pub spec: JobSpec,
}

/// `/jobs/all/<id>`: `[handler, job, N]`. N is always 0 in the corpus and its meaning unknown
/// (PROTOCOL.md §2.5): written as 0, any integer accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job: Job,
    pub n: i64,
}

impl Serialize for JobRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.job.spec.handler, &self.job, self.n).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JobRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handler, job, n): (String, Job, i64) = Deserialize::deserialize(deserializer)?;
        if handler != job.spec.handler {
            return Err(D::Error::custom(format!(
                "record handler `{handler}` differs from the job's `{}`",
                job.spec.handler
            )));
        }
        Ok(JobRecord { job, n })
    }
}

/// `/worker-workflow-jobs`: the original's reactor queue item. We never write it; it is typed so
/// that a store holding one (an original deployment being replaced) decodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRequest {
    pub action: Action,
    pub jobs: Vec<JobSpec>,
    pub dependencies: Vec<Job>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn param_types_round_trip() {
        let list = json!({"param": "jinja_subnets", "type": "list", "resources": [{"resource_type": "subnet", "resource_id": "s1"}],
            "value": [{"param": "jinja_subnets", "type": "output_key", "resources": [],
                       "value": {"output_key": "id", "resource_type": "subnet", "resource_id": "s1"}}]});
        let param: Param = serde_json::from_value(list.clone()).unwrap();
        assert!(matches!(&param.value, ParamValue::List(items) if items.len() == 1));
        assert_eq!(serde_json::to_value(&param).unwrap(), list);

        let bad = json!({"param": "x", "type": "output_key", "value": "nope", "resources": []});
        assert!(serde_json::from_value::<Param>(bad).is_err());
        let unknown = json!({"param": "x", "type": "other", "value": 1, "resources": []});
        assert!(serde_json::from_value::<Param>(unknown).is_err());
    }
}
