//! Param re-evaluation: rebuild the config store of each moment of a scenario from its timeline,
//! re-evaluate every param of every recorded job with the `mapping` module, and compare with the
//! recorded param entries.

use super::layout::{Scenario, TimelineEvent};
use crate::mapping::{ResourceIndex, Scope, TemplateSet, Traversal, Workability, select_template};
use crate::protocol::{Action, Body, JobQueue, JobRecord, Param, Record, ResourceKey, ResourceRoot};
use crate::schema::Schema;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct ParamReport {
    /// Jobs of the timeline whose record was found and re-evaluated.
    pub jobs: usize,
    /// Jobs of the timeline with no recorded `/jobs/all` value (a watcher missed it).
    pub jobs_without_record: usize,
    pub params_checked: usize,
    pub params_matched: usize,
    pub mismatches: Vec<String>,
}

/// The config store of a moment of the run: resource bodies and heat templates.
#[derive(Default)]
pub struct ConfigState {
    pub index: ResourceIndex,
    pub templates: TemplateSet,
}

impl ConfigState {
    /// Applies one `/config` event; returns the `(type, id)` it touched.
    pub fn apply(
        &mut self,
        schema: &Schema,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> anyhow::Result<(String, String)> {
        let parsed = ResourceKey::parse(key).filter(|k| k.root == ResourceRoot::Config);
        let parsed = parsed.ok_or_else(|| anyhow::anyhow!("{key}: not a /config key"))?;
        let resource_type = schema
            .resource_types
            .resource_type(parsed.prefix)
            .ok_or_else(|| anyhow::anyhow!("{key}: unknown prefix {}", parsed.prefix))?
            .to_owned();
        let id = parsed.id.to_owned();
        match value {
            None => {
                self.index.remove(&resource_type, &id);
                self.templates.remove(&id);
            }
            Some(value) => match Record::decode(key, value.clone())? {
                Record::HeatTemplate(config, template) => {
                    self.index.insert(&resource_type, &id, config.shared_body().clone());
                    self.templates.insert(*template);
                }
                Record::Config(config) => self.index.insert(&resource_type, &id, config.shared_body().clone()),
                other => anyhow::bail!("{key}: unexpected record {other:?}"),
            },
        }
        Ok((resource_type, id))
    }
}

/// The recorded `/jobs/all` values of a scenario, by job id.
pub fn recorded_jobs(scenario: &Scenario) -> anyhow::Result<HashMap<String, JobRecord>> {
    let mut jobs = HashMap::new();
    for file in ["full", "jobs"] {
        for event in scenario.watch_file(file)? {
            if event.value.is_null() || !matches!(JobQueue::parse(&event.key), Some((JobQueue::All, _))) {
                continue;
            }
            if let Record::Job(record) = Record::decode(&event.key, event.value)? {
                jobs.insert(record.job.id.clone(), *record);
            }
        }
    }
    Ok(jobs)
}

/// Params are compared at the moment the original evaluated them: when its ResourceReader
/// processed the config event of the job's version, which may be some events before JobManager
/// wrote the job (the `job_created` line). A resource created in between is not yet visible.
pub fn recheck_params(scenario: &Scenario, schema: &Schema) -> anyhow::Result<ParamReport> {
    let recorded = recorded_jobs(scenario)?;
    let timeline = scenario.timeline()?;
    let mut pending: HashMap<(String, String, u64), String> = HashMap::new();
    for (_, event) in &timeline {
        if let TimelineEvent::JobCreated { job_id, resource_type, resource_id, version, .. } = event {
            pending.insert((resource_type.clone(), resource_id.clone(), *version), job_id.clone());
        }
    }
    let mut state = ConfigState::default();
    let mut snapshots: HashMap<(String, String), Body> = HashMap::new();
    let mut report = ParamReport::default();
    for (line, event) in timeline {
        let TimelineEvent::Config { key, value, .. } = event else {
            continue;
        };
        let (resource_type, resource_id) = state.apply(schema, &key, value.as_ref())?;
        let Some(version) = value.as_ref().and_then(|v| v.get("version")).and_then(|v| v.as_u64()) else {
            continue;
        };
        let Some(job_id) = pending.remove(&(resource_type.clone(), resource_id.clone(), version)) else {
            continue;
        };
        let Some(record) = recorded.get(&job_id) else {
            report.jobs_without_record += 1;
            continue;
        };
        report.jobs += 1;
        let job = &record.job.spec;
        let mut mismatch = |what: String| report.mismatches.push(format!("timeline.jsonl:{line} {job_id}: {what}"));
        let resource = (resource_type.clone(), resource_id.clone());
        let Some(body) = state.index.get(&resource_type, &resource_id).cloned() else {
            mismatch("resource not in the config store".into());
            continue;
        };
        if body != job.resource_input {
            mismatch("resource_input differs from the config body of that moment".into());
        }
        let traversal = match (job.action, snapshots.get(&resource)) {
            (Action::Create, _) => Traversal::Once,
            (_, Some(previous)) => Traversal::Twice { previous },
            (_, None) => {
                mismatch("non-create job without a previous snapshot".into());
                continue;
            }
        };
        let scope = Scope { index: &state.index, relations: &schema.relations, version };
        let template = match select_template(&schema.template_mappings, &state.templates, scope, &resource_type, &body)
        {
            Workability::Workable(template) => template,
            other => {
                mismatch(format!("resource is not workable here: {other:?}"));
                continue;
            }
        };
        match template.evaluate_params(scope, &resource_type, &body, traversal) {
            Ok(ours) => compare_params(
                &job.params,
                &ours,
                &mut report.params_checked,
                &mut report.params_matched,
                &mut mismatch,
            ),
            Err(e) => {
                mismatch(format!("evaluation failed: {e}"));
                report.params_checked += job.params.len();
            }
        }
        snapshots.insert(resource, body);
    }
    report.jobs_without_record += pending.values().filter(|id| !recorded.contains_key(*id)).count();
    for job_id in pending.values().filter(|id| recorded.contains_key(*id)) {
        report.mismatches.push(format!("{job_id}: no config event of its version precedes it"));
    }
    Ok(report)
}

fn compare_params(
    recorded: &[Param],
    ours: &[Param],
    checked: &mut usize,
    matched: &mut usize,
    mismatch: &mut impl FnMut(String),
) {
    let by_name: HashMap<&str, &Param> = ours.iter().map(|p| (p.param.as_str(), p)).collect();
    for expected in recorded {
        *checked += 1;
        match by_name.get(expected.param.as_str()) {
            Some(found) if *found == expected => *matched += 1,
            Some(found) => mismatch(format!(
                "param `{}`: expected {}, found {}",
                expected.param,
                serde_json::to_string(expected).unwrap_or_default(),
                serde_json::to_string(found).unwrap_or_default()
            )),
            None => mismatch(format!("param `{}` was not produced", expected.param)),
        }
    }
    if ours.len() != recorded.len() {
        mismatch(format!("produced {} params, the record has {}", ours.len(), recorded.len()));
    }
}
