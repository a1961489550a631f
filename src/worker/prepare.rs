//! Everything a job's Heat call needs, read and computed before Heat is called: the secrets to
//! mask, the tenant, the dependencies' outputs (`/esi-worker/heat_stacks`), the heat template
//! chosen by `template_mappings` and rendered, the Heat parameters and the timeout. What is to
//! be read is known from the job alone ([`needed_keys`]): the worker reads it in the transaction
//! that claims the job (`claim`) and prepares from those values ([`prepare_from`]); the
//! operator's dry run (`inspect::dry_run`), and a worker without them, read them first
//! ([`prepare`]). Preparing never writes.

use super::execute::{Outcome, StackJob};
use super::render::render;
use super::resolve::resolve;
use crate::mapping::{Produced, ResourceIndex, Scope, evaluate};
use crate::protocol::keys::UnknownType;
use crate::protocol::{Action, HeatStackRecord, Job, ParamValue, Record, ResourceRoot, keys::HEAT_TEMPLATES_PREFIX};
use crate::schema::Schema;
use crate::secrets::Secrets;
use crate::store::{KeyValue, Store, StoreError};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// A job ready for Heat, and the secrets to keep out of what it reports.
pub(crate) struct Prepared {
    pub stack: StackJob,
    pub secrets: Secrets,
}

/// Why the job's heat template could not be had (the job fails with this reason).
#[derive(Debug, thiserror::Error)]
enum TemplateError {
    #[error("no template mapping for `{0}`")]
    NoMapping(String),
    #[error(transparent)]
    Mapping(#[from] crate::mapping::EvalError),
    #[error("template mapping of `{resource_type}` gave {produced}")]
    NotAName { resource_type: String, produced: String },
    #[error("template `{0}` is missing")]
    Missing(String),
    #[error("{0} is not a heat template")]
    NotATemplate(String),
    #[error("template `{id}` does not decode: {error}")]
    Undecodable { id: String, error: crate::protocol::DecodeError },
}

/// The documents whose secret values the job's reports mask: every plain param value, under its
/// param's name, and the resource's body as `resource_input`.
pub(crate) fn secret_documents(job: &Job) -> Vec<(&str, Value)> {
    let spec = &job.spec;
    spec.params
        .iter()
        .filter_map(|p| match &p.value {
            ParamValue::Value(v) => Some((p.param.as_str(), v.clone())),
            _ => None,
        })
        .chain([("resource_input", Value::Object(spec.resource_input.clone()))])
        .collect()
}

/// The keys whose values [`prepare_from`] needs: the `/esi-worker/heat_stacks` of every resource
/// whose outputs the params reference, and the heat template the job's body maps to (when it
/// maps to one; otherwise `prepare_from` reports why).
pub(crate) fn needed_keys(schema: &Schema, job: &Job) -> Vec<String> {
    let mut keys: Vec<String> = referenced(job)
        .into_iter()
        .filter_map(|(resource_type, id)| schema.resource_types.key(ResourceRoot::HeatStacks, &resource_type, &id).ok())
        .collect();
    if job.spec.action != Action::LogicalDelete
        && let Ok(id) = template_id(schema, job)
    {
        keys.push(ResourceRoot::Config.key(HEAT_TEMPLATES_PREFIX, &id));
    }
    keys
}

/// Everything the Heat call needs, read from the store; a failure outcome (what the job
/// reports) when something is missing or broken.
pub(crate) async fn prepare(store: &Store, schema: &Schema, job: &Job) -> Result<Prepared, Box<Outcome>> {
    let mut read = HashMap::new();
    for key in needed_keys(schema, job) {
        match store.get(&key).await {
            Ok(Some(kv)) => {
                read.insert(key, kv);
            }
            Ok(None) => {}
            Err(e) => return Err(Box::new(store_failure(job, e))),
        }
    }
    prepare_from(schema, job, &read)
}

/// A job that could not read what it needs.
fn store_failure(job: &Job, error: StoreError) -> Outcome {
    Outcome::failure(&stack_job(job), None, job_secrets(job).mask(&error.to_string()))
}

/// The secrets a job's reports mask.
fn job_secrets(job: &Job) -> Secrets {
    Secrets::collect(secret_documents(job).iter().map(|(k, v)| (*k, v)))
}

/// The job's stack before anything is read or rendered.
fn stack_job(job: &Job) -> StackJob {
    let spec = &job.spec;
    StackJob {
        action: spec.action,
        resource_type: spec.resource_type.clone(),
        resource_id: spec.resource_id.clone(),
        version: spec.version,
        tenant_id: spec.resource_input.get("tenant_id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        template: String::new(),
        parameters: Default::default(),
        timeout_mins: None,
    }
}

/// Everything the Heat call needs, from the values of [`needed_keys`] already read (`read`, by
/// key; a key absent from it does not exist); a failure outcome when something is missing or
/// broken. It reads nothing itself.
pub(crate) fn prepare_from(
    schema: &Schema,
    job: &Job,
    read: &HashMap<String, KeyValue>,
) -> Result<Prepared, Box<Outcome>> {
    let spec = &job.spec;
    let secrets = job_secrets(job);
    let mut stack = stack_job(job);
    let fail = |stack: &StackJob, reason: String| Box::new(Outcome::failure(stack, None, secrets.mask(&reason)));
    if stack.tenant_id.is_empty() {
        return Err(fail(&stack, "the resource has no tenant_id".into()));
    }
    let stacks = dependency_stacks(schema, job, read).map_err(|e| fail(&stack, e.to_string()))?;
    let resolved = match resolve(&spec.params, |t, id| stacks.get(&(t.to_owned(), id.to_owned()))) {
        Ok(resolved) => resolved,
        // A delete needs no template or parameters; an unresolvable reference does not stop it.
        Err(_) if spec.action == Action::LogicalDelete => Default::default(),
        Err(e) => return Err(fail(&stack, e.to_string())),
    };
    stack.timeout_mins = resolved.timeout_mins;
    stack.parameters = resolved.parameters;
    if spec.action != Action::LogicalDelete {
        let (template_id, source) = template(schema, job, read).map_err(|e| fail(&stack, e.to_string()))?;
        stack.template = render(&template_id, &source, &resolved.jinja).map_err(|e| fail(&stack, e.to_string()))?;
    }
    Ok(Prepared { stack, secrets })
}

/// Every resource whose outputs the params reference.
fn referenced(job: &Job) -> BTreeSet<(String, String)> {
    let mut wanted = BTreeSet::new();
    for param in &job.spec.params {
        match &param.value {
            ParamValue::OutputKey(r) => {
                wanted.insert((r.resource_type.clone(), r.resource_id.clone()));
            }
            ParamValue::List(items) => {
                for item in items {
                    if let ParamValue::OutputKey(r) = &item.value {
                        wanted.insert((r.resource_type.clone(), r.resource_id.clone()));
                    }
                }
            }
            ParamValue::Value(_) => {}
        }
    }
    wanted
}

/// The heat_stacks records of every resource whose outputs the params reference.
fn dependency_stacks(
    schema: &Schema,
    job: &Job,
    read: &HashMap<String, KeyValue>,
) -> Result<HashMap<(String, String), HeatStackRecord>, UnknownType> {
    let mut stacks = HashMap::new();
    for (resource_type, id) in referenced(job) {
        let key = schema.resource_types.key(ResourceRoot::HeatStacks, &resource_type, &id)?;
        if let Some(kv) = read.get(&key)
            && let Ok(Record::HeatStack(record)) = Record::from_etcd(&kv.key, &kv.value)
        {
            stacks.insert((resource_type, id), record);
        }
    }
    Ok(stacks)
}

/// The id of the heat template `template_mappings` choose for the job's body.
fn template_id(schema: &Schema, job: &Job) -> Result<String, TemplateError> {
    let spec = &job.spec;
    let (_, mapping) = schema
        .template_mappings
        .get(&spec.resource_type)
        .ok_or_else(|| TemplateError::NoMapping(spec.resource_type.clone()))?;
    let index = ResourceIndex::default();
    let scope = Scope { index: &index, relations: &schema.relations, version: spec.version };
    let body = Value::Object(spec.resource_input.clone());
    match evaluate(mapping, scope, &body, &spec.resource_type)?.produced {
        Produced::Value(Value::String(id)) => Ok(id),
        other => {
            let (resource_type, produced) = (spec.resource_type.clone(), format!("{other:?}"));
            Err(TemplateError::NotAName { resource_type, produced })
        }
    }
}

/// The job's heat template: chosen by `template_mappings` from the job's body, read from
/// `/config/v2.0/heat_templates`.
fn template(schema: &Schema, job: &Job, read: &HashMap<String, KeyValue>) -> Result<(String, String), TemplateError> {
    let id = template_id(schema, job)?;
    let key = ResourceRoot::Config.key(HEAT_TEMPLATES_PREFIX, &id);
    let kv = read.get(&key).ok_or_else(|| TemplateError::Missing(id.clone()))?;
    match Record::from_etcd(&kv.key, &kv.value) {
        Ok(Record::HeatTemplate(_, template)) => Ok((id, template.template_file)),
        Ok(_) => Err(TemplateError::NotATemplate(key)),
        Err(error) => Err(TemplateError::Undecodable { id, error }),
    }
}
