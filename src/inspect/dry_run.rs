//! `plan TYPE/ID`: what applying a resource's current config would do, and nothing done.
//!
//! The store is read as the planner reads it (one list of `/` at one revision, fed to the
//! planner's `View`), the job is the one the planner has queued for the config's version, or
//! the one it would plan now (`reactions::reconcile`), or — for a resource already converged —
//! the one re-applying its config would be (a `modify`, a `create` when its snapshot says the
//! stack was deleted, a `logical_delete` when it is marked for deletion). That job is prepared by
//! the worker's own `prepare` (secrets, tenant, dependency outputs, template selection and
//! render, parameters, timeout); then Heat is asked: the stack `<type>_<id>` absent means a
//! create; present, its current template and parameters are diffed against the rendered ones and
//! Heat previews the very update request the worker would send (`PUT …/preview`). A logical
//! delete lists what would go.
//!
//! Nothing is written: etcd is only read, and Heat only sees `GET`s and the preview. Every string
//! of the report is masked with the secrets of the job's params and body, the previous body and
//! the stack's current parameters.

use crate::heat::{HeatClient, HeatError, PreviewChanges, PreviewResource, Stack};
use crate::planner::reactions::{self, Gone, Plan, Reconcile};
use crate::planner::view::{ResourceId, View};
use crate::protocol::keys::HEAT_TEMPLATE_TYPE;
use crate::protocol::{Action, Body, Job, JobQueue, ResourceRoot, StateRecord};
use crate::schema::Schema;
use crate::secrets::{MASK, Secrets, is_secret_key};
use crate::store::Store;
use crate::worker::execute::StackJob;
use crate::worker::prepare::{prepare, secret_documents};
use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// How Heat shows a `hidden` parameter's value.
const HEAT_HIDDEN: &str = "******";

/// What applying a resource's config would do: a pure report (see [`DryRun::render_text`]).
/// Every string in it is masked.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub resource_type: String,
    pub resource_id: String,
    /// The etcd revision the store was read at.
    pub revision: i64,
    /// Where the job comes from.
    pub source: Source,
    /// The job the worker would run (`None` when there is none to run: the resource cannot be
    /// planned, or has no template).
    pub job: Option<JobSummary>,
    /// What running it would do.
    pub verdict: Verdict,
}

/// Where the dry run's job comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The planner has queued a job for the config's version: exactly what a worker will run.
    Pending { job_id: String, queue: String },
    /// The config has a change the planner has not planned yet: the job it would plan.
    Planned,
    /// The resource is converged at its config's version: what applying it again would do.
    Reapply,
    /// The last job failed at the config's version: the job the planner's retry plans.
    Retry,
    /// The config is gone without `marked_for_deletion`: the planner de-provisions the resource
    /// (a logical delete of its last processed body).
    Deprovision,
}

/// The job, as the worker would prepare it.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// The queued job's id, or the id the planner would give it.
    pub id: String,
    pub action: Action,
    pub version: u64,
    /// Live jobs it waits for (their outputs may not be there yet).
    pub waits_for: Vec<String>,
    pub tenant_id: String,
    pub stack_name: String,
    /// The Heat parameters it sends (masked).
    pub parameters: Map<String, Value>,
    pub timeout_mins: Option<u64>,
}

/// What the job would come to.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// No heat template applies to it: the planner marks it `READ_COMPLETE`, no stack.
    NonWorkable { version: u64 },
    /// It fails before Heat is called: the `/state` that is written (by the planner when it
    /// cannot plan it, by the worker when it cannot prepare it).
    Fails { by: Stage, state: StateRecord },
    /// The stack is absent: the worker creates it (also for a modify whose stack is gone).
    Create { template: String, resources: Vec<TemplateResource> },
    /// The stack exists: the worker updates it with the rendered template and parameters.
    Update {
        stack: StackSummary,
        /// Unified diff of the stack's current parameters, timeout and template against the
        /// job's, both as YAML with sorted keys; empty when they are the same.
        diff: String,
        preview: Preview,
    },
    /// A logical delete of an existing stack.
    Delete { stack: StackSummary, resources: Vec<TemplateResource> },
    /// A logical delete whose stack is already gone: it completes at once.
    AlreadyDeleted { stack_name: String },
}

/// Who writes the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Planner,
    Worker,
}

/// Heat's answer to the update preview.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Preview {
    Changes(Changes),
    /// Heat refuses the update (as it would refuse the worker's): the `/state` the job writes.
    Refused {
        state: StateRecord,
    },
}

/// Heat's preview, resource by resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub added: Vec<TemplateResource>,
    pub updated: Vec<TemplateResource>,
    pub replaced: Vec<TemplateResource>,
    pub deleted: Vec<TemplateResource>,
    pub unchanged: usize,
}

/// A resource of a template: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateResource {
    pub name: String,
    pub resource_type: String,
}

/// The stack as Heat shows it now.
#[derive(Debug, Clone, Serialize)]
pub struct StackSummary {
    pub name: String,
    pub id: String,
    pub status: String,
    pub status_reason: String,
    pub updated_time: Option<String>,
}

impl DryRun {
    /// Whether applying the config would fail (before Heat, or refused by Heat's preview).
    pub fn would_fail(&self) -> bool {
        matches!(self.verdict, Verdict::Fails { .. } | Verdict::Update { preview: Preview::Refused { .. }, .. })
    }

    /// The report for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "plan {}/{} (etcd revision {})", self.resource_type, self.resource_id, self.revision);
        let origin = match &self.source {
            Source::Pending { job_id, queue } => format!("the queued job {job_id} ({queue})"),
            Source::Planned => "the job the planner would plan for the config's change".to_owned(),
            Source::Reapply => "already converged; the job re-applying its config".to_owned(),
            Source::Retry => "its last job failed at this version; the job the planner's retry plans".to_owned(),
            Source::Deprovision => {
                "config deleted without marked_for_deletion; the planner deletes the stack".to_owned()
            }
        };
        let _ = writeln!(out, "job: {origin}");
        if let Some(job) = &self.job {
            let _ = writeln!(out, "  action {} at version {}, id {}", job.action.as_str(), job.version, job.id);
            if !job.waits_for.is_empty() {
                let _ = writeln!(out, "  waits for {} (their outputs may change)", job.waits_for.join(", "));
            }
            let _ = writeln!(out, "  stack {} in tenant {}", job.stack_name, job.tenant_id);
            if job.action != Action::LogicalDelete {
                let timeout = job.timeout_mins.map(|m| format!("{m} min")).unwrap_or_else(|| "Heat's default".into());
                let _ = writeln!(out, "  timeout {timeout}");
                let _ = writeln!(out, "  parameters:");
                if job.parameters.is_empty() {
                    let _ = writeln!(out, "    (none)");
                }
                for (name, value) in &job.parameters {
                    let _ = writeln!(out, "    {name}: {}", compact(value));
                }
            }
        }
        let _ = writeln!(out);
        match &self.verdict {
            Verdict::NonWorkable { version } => {
                let _ = writeln!(
                    out,
                    "no heat template applies: the planner marks version {version} READ_COMPLETE; no stack"
                );
            }
            Verdict::Fails { by, state } => {
                let who = match by {
                    Stage::Planner => "the planner cannot plan it",
                    Stage::Worker => "the worker fails before calling Heat",
                };
                let _ = writeln!(out, "would fail: {who}; /state would say:");
                let _ = writeln!(out, "  {} at version {}: {}", state.state.worker_state, state.version, state.error);
            }
            Verdict::Create { template, resources } => {
                let stack = self.job.as_ref().map(|j| j.stack_name.as_str()).unwrap_or_default();
                let _ = writeln!(out, "would create stack {stack} with {}:", count(resources.len(), "resource"));
                list_resources(&mut out, resources);
                let _ = writeln!(out, "rendered template:");
                for line in template.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
            Verdict::Update { stack, diff, preview } => {
                let _ = writeln!(out, "would update stack {} ({})", stack.name, describe(stack));
                if stack.status.ends_with("_IN_PROGRESS") {
                    let _ = writeln!(out, "  an operation is in progress: the preview may not reflect its result");
                }
                if diff.is_empty() {
                    let _ = writeln!(out, "no change to its parameters, timeout or template");
                } else {
                    let _ = writeln!(out, "changes to its parameters, timeout and template:");
                    out.push_str(diff);
                    if !diff.ends_with('\n') {
                        out.push('\n');
                    }
                }
                match preview {
                    Preview::Changes(changes) => {
                        let _ = writeln!(out, "Heat's preview of the update:");
                        for (word, resources) in [
                            ("added", &changes.added),
                            ("updated", &changes.updated),
                            ("replaced", &changes.replaced),
                            ("deleted", &changes.deleted),
                        ] {
                            let names: Vec<String> =
                                resources.iter().map(|r| format!("{} ({})", r.name, r.resource_type)).collect();
                            let names = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
                            let _ = writeln!(out, "  {word}: {names}");
                        }
                        let _ = writeln!(out, "  unchanged: {}", changes.unchanged);
                    }
                    Preview::Refused { state } => {
                        let _ = writeln!(out, "would fail: Heat refuses the update; /state would say:");
                        let _ = writeln!(
                            out,
                            "  {} at version {}: {}",
                            state.state.worker_state, state.version, state.error
                        );
                    }
                }
            }
            Verdict::Delete { stack, resources } => {
                let _ = writeln!(
                    out,
                    "would delete stack {} ({}) and its {}:",
                    stack.name,
                    describe(stack),
                    count(resources.len(), "resource")
                );
                list_resources(&mut out, resources);
            }
            Verdict::AlreadyDeleted { stack_name } => {
                let _ =
                    writeln!(out, "would delete stack {stack_name}: it is already gone, the delete completes at once");
            }
        }
        out
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn list_resources(out: &mut String, resources: &[TemplateResource]) {
    for resource in resources {
        let _ = writeln!(out, "  {} ({})", resource.name, resource.resource_type);
    }
}

fn describe(stack: &StackSummary) -> String {
    let mut text = stack.status.clone();
    if let Some(time) = &stack.updated_time {
        let _ = write!(text, " since {time}");
    }
    if !stack.status_reason.is_empty() {
        let _ = write!(text, ": {}", stack.status_reason);
    }
    text
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What the dry run found before asking Heat.
enum Decision {
    /// A job to prepare.
    Job {
        job: Box<Job>,
        source: Source,
    },
    NonWorkable {
        version: u64,
        source: Source,
    },
    /// The planner reports it instead of planning it.
    Blocked {
        action: Action,
        version: u64,
        error: String,
        source: Source,
    },
}

/// Shows what applying the config of `resource_type`/`id` would do, reading the store and Heat
/// and writing nothing. Errors: an unknown type or resource, a config that cannot even be
/// versioned, etcd or Heat unreachable. A resource that would fail is a report, not an error.
pub async fn dry_run(
    store: &Store,
    schema: &Schema,
    heat: &HeatClient,
    resource_type: &str,
    id: &str,
) -> anyhow::Result<DryRun> {
    anyhow::ensure!(
        resource_type != HEAT_TEMPLATE_TYPE,
        "a heat template is not applied by itself: plan a resource that uses it"
    );
    let config_key = schema.resource_types.key(ResourceRoot::Config, resource_type, id)?;
    let (items, revision) = store.list("/").await.context("reading etcd")?;
    let mut view = View::listed(schema, items);
    let resource: ResourceId = (resource_type.to_owned(), id.to_owned());

    // Secrets of what the planner knows: the config's body and the last processed one.
    let mut documents: Vec<(&str, Value)> = Vec::new();
    if let Some((Ok(config), _)) = view.configs.get(&resource) {
        documents.push(("resource_input", Value::Object(config.body().clone())));
    }
    if let Some((snapshot, _)) = view.snapshots.get(&resource) {
        documents.push(("resource_input", Value::Object(Body::clone(&snapshot.body))));
    }

    let decision = decide(&mut view, schema, &resource, &config_key)?;
    let mut report = DryRun {
        resource_type: resource_type.to_owned(),
        resource_id: id.to_owned(),
        revision,
        source: Source::Planned,
        job: None,
        verdict: Verdict::NonWorkable { version: 0 },
    };
    let (job, source) = match decision {
        Decision::NonWorkable { version, source } => {
            report.source = source;
            report.verdict = Verdict::NonWorkable { version };
            return Ok(report);
        }
        Decision::Blocked { action, version, error, source } => {
            let secrets = Secrets::collect(documents.iter().map(|(k, v)| (*k, v)));
            report.source = source;
            report.verdict = Verdict::Fails {
                by: Stage::Planner,
                state: StateRecord::failed(action, secrets.mask(&error), version),
            };
            return Ok(report);
        }
        Decision::Job { job, source } => (job, source),
    };
    report.source = source;
    documents.extend(secret_documents(&job));
    let prepared = prepare(store, schema, &job).await;
    let stack_job = match &prepared {
        Ok(prepared) => Some(&prepared.stack),
        Err(_) => None,
    };
    let tenant_id = job.spec.resource_input.get("tenant_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let stack_name = format!("{}_{}", job.spec.resource_type, job.spec.resource_id);
    let summary = JobSummary {
        id: job.id.clone(),
        action: job.spec.action,
        version: job.spec.version,
        waits_for: job.dependency.clone(),
        tenant_id: tenant_id.clone(),
        stack_name: stack_name.clone(),
        parameters: stack_job.map(|s| s.parameters.clone()).unwrap_or_default(),
        timeout_mins: stack_job.and_then(|s| s.timeout_mins),
    };
    let stack_job = match prepared {
        Ok(prepared) => prepared.stack,
        Err(failure) => {
            // `prepare` masked the reason with the job's secrets already.
            let secrets = Secrets::collect(documents.iter().map(|(k, v)| (*k, v)));
            let mut state = failure.state;
            state.error = secrets.mask(&state.error);
            report.job = Some(mask_summary(summary, &secrets));
            report.verdict = Verdict::Fails { by: Stage::Worker, state };
            return Ok(report);
        }
    };

    let found = heat
        .find(&tenant_id, &stack_name)
        .await
        .with_context(|| format!("looking for stack {stack_name} in tenant {tenant_id}"))?;
    let current = match found {
        Some(found) => {
            let stack =
                heat.show(&tenant_id, &found, false).await.with_context(|| format!("showing stack {stack_name}"))?;
            let template = heat
                .template(&tenant_id, &found)
                .await
                .with_context(|| format!("reading the template of stack {stack_name}"))?;
            // Its parameters hold the stack's secrets, which the new body may no longer have.
            documents.push(("parameters", Value::Object(stack.parameters.clone())));
            Some((found, stack, template))
        }
        None => None,
    };
    let secrets = Secrets::collect(documents.iter().map(|(k, v)| (*k, v)));
    let verdict = match (stack_job.action, current) {
        (Action::LogicalDelete, None) => Verdict::AlreadyDeleted { stack_name },
        (Action::LogicalDelete, Some((_, stack, template))) => {
            Verdict::Delete { stack: stack_summary(&stack), resources: template_resources(&template) }
        }
        (_, None) => {
            let resources = parse_template(&stack_job.template).as_ref().map(template_resources).unwrap_or_default();
            Verdict::Create { template: stack_job.template.clone(), resources }
        }
        (_, Some((found, stack, template))) => {
            let diff = diff(&stack, &template, &stack_job, &secrets);
            let preview = match heat.preview_update(&tenant_id, &found, &stack_job.update_request()).await {
                Ok(changes) => Preview::Changes(summarise(changes)),
                // Heat refuses the request itself (as it would refuse the worker's update).
                Err(e @ HeatError::Status { status, .. }) if status != 404 && !e.is_transient() => {
                    Preview::Refused { state: StateRecord::failed(stack_job.action, e.to_string(), stack_job.version) }
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(secrets.mask(&e.to_string())))
                        .with_context(|| format!("asking Heat to preview the update of stack {stack_name}"));
                }
            };
            Verdict::Update { stack: stack_summary(&stack), diff, preview }
        }
    };
    report.job = Some(mask_summary(summary, &secrets));
    report.verdict = mask_verdict(verdict, &secrets);
    Ok(report)
}

/// The job to show, as the planner decides it (see the module's doc).
fn decide(view: &mut View, schema: &Schema, resource: &ResourceId, config_key: &str) -> anyhow::Result<Decision> {
    // A job the planner queued for the config's version (not yet finished) is what will run.
    if let Some((Ok(config), _)) = view.configs.get(resource) {
        let pending = view
            .live
            .values()
            .filter(|job| job.spec.resource_type == resource.0 && job.spec.resource_id == resource.1)
            .find(|job| job.spec.version == config.version && !view.finished.contains_key(&job.id));
        if let Some(job) = pending {
            let queue = [
                (JobQueue::Working, &view.working),
                (JobQueue::Ready, &view.ready),
                (JobQueue::Waiting, &view.waiting),
            ]
            .into_iter()
            .find(|(_, ids)| ids.contains(&job.id))
            .map(|(queue, _)| queue_description(queue))
            .unwrap_or("in no queue: the planner puts it back to ready");
            let source = Source::Pending { job_id: job.id.clone(), queue: queue.to_owned() };
            return Ok(Decision::Job { job: Box::new(job.clone()), source });
        }
    }
    let (plan, source) = match reactions::reconcile(view, schema, resource)? {
        Reconcile::Plan(plan) => (plan, Source::Planned),
        Reconcile::Unreadable(error) => anyhow::bail!("{config_key}: {error} (the planner only logs it)"),
        Reconcile::Gone(Gone::Deprovision { config, snapshot_revision }) => {
            // As the planner does: the body must be in the index for its params to evaluate.
            let body = config.shared_body().clone();
            view.index.insert(&resource.0, &resource.1, body.clone());
            let plan = reactions::plan(
                view,
                schema,
                resource,
                &config,
                Action::LogicalDelete,
                Some(&body),
                snapshot_revision,
            )?;
            (plan, Source::Deprovision)
        }
        Reconcile::Gone(Gone::Wait) => {
            anyhow::bail!("{config_key} is gone and its last job still runs; the planner cleans up after it")
        }
        Reconcile::Gone(_) => anyhow::bail!("no resource {}/{}: {config_key} is absent", resource.0, resource.1),
        Reconcile::UpToDate => {
            let Some((Ok(config), _)) = view.configs.get(resource) else {
                anyhow::bail!("no readable config at {config_key}");
            };
            let snapshot = view.snapshots.get(resource);
            // A job that failed at this version is planned again with its action (the planner's
            // retry); else re-applying is a modify of the stack the snapshot stands for.
            let failed = view.failed.get(resource).filter(|(_, version)| *version == config.version);
            let (action, source) = match (failed, snapshot) {
                _ if config.marked_for_deletion => {
                    (Action::LogicalDelete, if failed.is_some() { Source::Retry } else { Source::Reapply })
                }
                (Some((action, _)), _) => (*action, Source::Retry),
                (None, Some((snapshot, _))) if !snapshot.deleted => (Action::Modify, Source::Reapply),
                (None, _) => (Action::Create, Source::Reapply),
            };
            let previous = snapshot.map(|(s, _)| &*s.body);
            let revision = snapshot.map_or(0, |(_, revision)| *revision);
            (reactions::plan(view, schema, resource, config, action, previous, revision)?, source)
        }
    };
    Ok(match plan {
        Plan::Write { job: Some(job), .. } => Decision::Job { job, source },
        Plan::Write { job: None, .. } => {
            let version = match view.configs.get(resource) {
                Some((Ok(config), _)) => config.version,
                _ => view.snapshots.get(resource).map(|(s, _)| s.version + 1).unwrap_or_default(),
            };
            Decision::NonWorkable { version, source }
        }
        Plan::Blocked { action, version, error } => Decision::Blocked { action, version, error, source },
        Plan::Nothing => anyhow::bail!("resource type `{}` has no key prefix", resource.0),
    })
}

fn queue_description(queue: JobQueue) -> &'static str {
    match queue {
        JobQueue::Working => "running on a worker",
        JobQueue::Ready => "ready, waiting for a worker",
        JobQueue::Waiting => "waiting for the jobs it depends on",
        _ => "queued",
    }
}

fn stack_summary(stack: &Stack) -> StackSummary {
    StackSummary {
        name: stack.stack_name.clone(),
        id: stack.id.clone(),
        status: stack.stack_status.clone(),
        status_reason: stack.stack_status_reason.clone(),
        updated_time: stack.updated_time.clone(),
    }
}

fn summarise(changes: PreviewChanges) -> Changes {
    let named = |resources: Vec<PreviewResource>| {
        resources
            .into_iter()
            .map(|r| TemplateResource { name: r.resource_name, resource_type: r.resource_type })
            .collect()
    };
    Changes {
        added: named(changes.added),
        updated: named(changes.updated),
        replaced: named(changes.replaced),
        deleted: named(changes.deleted),
        unchanged: changes.unchanged.len(),
    }
}

/// The rendered template as a document (it parsed when it was rendered).
fn parse_template(text: &str) -> Option<Value> {
    yaml_serde::from_str(text).ok()
}

/// A template's resources, in its order.
fn template_resources(template: &Value) -> Vec<TemplateResource> {
    let Some(resources) = template.get("resources").and_then(Value::as_object) else { return Vec::new() };
    resources
        .iter()
        .map(|(name, resource)| TemplateResource {
            name: name.clone(),
            resource_type: resource.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
        })
        .collect()
}

/// The unified diff of what the stack holds against what the job sends: parameters (as Heat
/// shows them), timeout and template, each side one YAML document with sorted keys, masked.
fn diff(stack: &Stack, current_template: &Value, job: &StackJob, secrets: &Secrets) -> String {
    let rendered = parse_template(&job.template).unwrap_or_else(|| Value::String(job.template.clone()));
    let (current_parameters, new_parameters) = parameter_sides(&stack.parameters, &rendered, &job.parameters);
    let current = json!({
        "parameters": current_parameters,
        "timeout_mins": stack.timeout_mins,
        "template": current_template,
    });
    let new = json!({
        "parameters": new_parameters,
        "timeout_mins": job.timeout_mins,
        "template": rendered,
    });
    let (old_text, new_text) = (secrets.mask(&normalised_yaml(&current)), secrets.mask(&normalised_yaml(&new)));
    if old_text == new_text {
        return String::new();
    }
    let old_name = format!("stack {} (Heat's current)", stack.stack_name);
    let new_name = format!("rendered (config version {})", job.version);
    similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &new_name)
        .to_string()
}

/// The stack's parameters as Heat shows them now (without Heat's own `OS::stack_id`, …) and as
/// it would show them after the update, secret ones masked on both sides: the new one reads
/// `*** (changed)` when the secret differs from the stack's, so a changed password shows as a
/// change without showing either value.
fn parameter_sides(
    current: &Map<String, Value>,
    template: &Value,
    sent: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut current: Map<String, Value> =
        current.iter().filter(|(name, _)| !name.starts_with("OS::")).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut new = heat_parameters(template, sent);
    for (name, value) in new.iter_mut() {
        if !is_secret_key(name) {
            continue;
        }
        let changed = match current.get(name) {
            Some(before) => before != value && before != HEAT_HIDDEN && value != HEAT_HIDDEN,
            None => false,
        };
        let masked = mask_by_name(name, value.clone());
        *value = match masked {
            Value::String(mask) if changed => Value::String(format!("{mask} (changed)")),
            other => other,
        };
    }
    for (name, value) in current.iter_mut() {
        *value = mask_by_name(name, value.clone());
    }
    (current, new)
}

/// The parameters Heat would hold after the update, as it shows them: the template's defaults
/// for those not sent, every value in Heat's string form, `hidden` ones hidden.
fn heat_parameters(template: &Value, sent: &Map<String, Value>) -> Map<String, Value> {
    let declared = template.get("parameters").and_then(Value::as_object);
    let declaration = |name: &str| declared.and_then(|d| d.get(name));
    let mut parameters = Map::new();
    for (name, declaration) in declared.into_iter().flatten() {
        if let Some(default) = declaration.get("default") {
            parameters.insert(name.clone(), default.clone());
        }
    }
    for (name, value) in sent {
        parameters.insert(name.clone(), value.clone());
    }
    parameters
        .into_iter()
        .map(|(name, value)| {
            let declaration = declaration(&name);
            let kind = declaration.and_then(|d| d.get("type")).and_then(Value::as_str).unwrap_or("string");
            let hidden = declaration.and_then(|d| d.get("hidden")).and_then(Value::as_bool).unwrap_or(false);
            let text = if hidden { HEAT_HIDDEN.to_owned() } else { heat_text(kind, &value) };
            (name, Value::String(text))
        })
        .collect()
}

/// `***` for the non-empty value of a secret key.
fn mask_by_name(name: &str, value: Value) -> Value {
    if is_secret_key(name) && value.as_str().is_none_or(|s| !s.is_empty()) { Value::String(MASK.into()) } else { value }
}

/// A parameter value as Heat shows it (Python's `str()` of the parsed parameter): numbers and
/// booleans as Python prints them, `comma_delimited_list` joined with commas, `json` as
/// `json.dumps`.
fn heat_text(kind: &str, value: &Value) -> String {
    let plain = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        Value::Number(n) => n.to_string(),
        other => crate::protocol::json_style::python_json(other),
    };
    match (kind, value) {
        ("boolean", Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => "True".to_owned(),
            "false" | "f" | "no" | "n" | "off" | "0" => "False".to_owned(),
            _ => s.clone(),
        },
        ("number", Value::String(s)) => match (s.trim().parse::<i64>(), s.trim().parse::<f64>()) {
            (Ok(n), _) => n.to_string(),
            (_, Ok(f)) => format!("{f:?}"),
            _ => s.clone(),
        },
        ("comma_delimited_list", Value::Array(items)) => items.iter().map(plain).collect::<Vec<_>>().join(","),
        ("json", Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(parsed) => crate::protocol::json_style::python_json(&parsed),
            Err(_) => s.clone(),
        },
        _ => plain(value),
    }
}

/// YAML with every mapping's keys sorted, so a diff shows changes, not reorderings.
fn normalised_yaml(value: &Value) -> String {
    yaml_serde::to_string(&sorted(value)).unwrap_or_else(|_| value.to_string())
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn mask_value(value: Value, secrets: &Secrets) -> Value {
    match value {
        Value::String(s) => Value::String(secrets.mask(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| mask_value(v, secrets)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k.clone(), mask_value(mask_by_name(&k, v), secrets))).collect())
        }
        other => other,
    }
}

fn mask_summary(summary: JobSummary, secrets: &Secrets) -> JobSummary {
    let parameters = match mask_value(Value::Object(summary.parameters), secrets) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    JobSummary { parameters, tenant_id: secrets.mask(&summary.tenant_id), ..summary }
}

fn mask_resources(resources: Vec<TemplateResource>, secrets: &Secrets) -> Vec<TemplateResource> {
    resources
        .into_iter()
        .map(|r| TemplateResource { name: secrets.mask(&r.name), resource_type: secrets.mask(&r.resource_type) })
        .collect()
}

fn mask_stack(stack: StackSummary, secrets: &Secrets) -> StackSummary {
    StackSummary { status_reason: secrets.mask(&stack.status_reason), ..stack }
}

fn mask_state(mut state: StateRecord, secrets: &Secrets) -> StateRecord {
    state.error = secrets.mask(&state.error);
    state
}

fn mask_verdict(verdict: Verdict, secrets: &Secrets) -> Verdict {
    match verdict {
        Verdict::Fails { by, state } => Verdict::Fails { by, state: mask_state(state, secrets) },
        Verdict::Create { template, resources } => {
            Verdict::Create { template: secrets.mask(&template), resources: mask_resources(resources, secrets) }
        }
        Verdict::Update { stack, diff, preview } => Verdict::Update {
            stack: mask_stack(stack, secrets),
            diff: secrets.mask(&diff),
            preview: match preview {
                Preview::Changes(changes) => Preview::Changes(Changes {
                    added: mask_resources(changes.added, secrets),
                    updated: mask_resources(changes.updated, secrets),
                    replaced: mask_resources(changes.replaced, secrets),
                    deleted: mask_resources(changes.deleted, secrets),
                    unchanged: changes.unchanged,
                }),
                Preview::Refused { state } => Preview::Refused { state: mask_state(state, secrets) },
            },
        },
        Verdict::Delete { stack, resources } => {
            Verdict::Delete { stack: mask_stack(stack, secrets), resources: mask_resources(resources, secrets) }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_as_heat_shows_them() {
        // What Heat 27 showed for these values: {"s": "x", "n": "3", "f": "1.5", "b": "True",
        // "j": "{\"a\": [1, 2]}", "l": "p,q", "d": "dflt", "h": "******"}.
        let template = json!({"parameters": {
            "s": {"type": "string"}, "n": {"type": "number"}, "f": {"type": "number"}, "b": {"type": "boolean"},
            "j": {"type": "json"}, "l": {"type": "comma_delimited_list"}, "d": {"type": "string", "default": "dflt"},
            "h": {"type": "string", "hidden": true}, "admin_password": {"type": "string"}}});
        let sent = json!({"s": "x", "n": 3, "f": 1.5, "b": true, "j": {"a": [1, 2]}, "l": ["p", "q"], "h": "hid",
                          "admin_password": "pw-secret-1"});
        let shown = heat_parameters(&template, sent.as_object().unwrap());
        assert_eq!(
            Value::Object(shown),
            json!({"d": "dflt", "s": "x", "n": "3", "f": "1.5", "b": "True", "j": "{\"a\": [1, 2]}", "l": "p,q",
                   "h": "******", "admin_password": "pw-secret-1"})
        );
        assert_eq!(heat_text("number", &json!("7")), "7");
        assert_eq!(heat_text("boolean", &json!("false")), "False");

        let current = json!({"OS::stack_id": "x", "name": "blue", "admin_password": "old", "user_password": "same"});
        let template = json!({"parameters": {"name": {"type": "string"}, "admin_password": {"type": "string"},
                                             "user_password": {"type": "string"}}});
        let sent = json!({"name": "green", "admin_password": "new", "user_password": "same"});
        let (before, after) = parameter_sides(current.as_object().unwrap(), &template, sent.as_object().unwrap());
        assert_eq!(Value::Object(before), json!({"name": "blue", "admin_password": "***", "user_password": "***"}));
        assert_eq!(
            Value::Object(after),
            json!({"name": "green", "admin_password": "*** (changed)", "user_password": "***"})
        );
    }

    #[test]
    fn the_diff_shows_changes_not_key_order() {
        let stack = Stack {
            id: "1".into(),
            stack_name: "network_n1".into(),
            stack_status: "CREATE_COMPLETE".into(),
            stack_status_reason: String::new(),
            updated_time: None,
            outputs: Vec::new(),
            parameters: json!({"OS::stack_id": "1", "name": "blue"}).as_object().unwrap().clone(),
            timeout_mins: Some(1),
        };
        // Heat answers JSON in its own key order; the worker renders YAML.
        let current = json!({"resources": {"label": {"properties": {"value": {"get_param": "name"}}, "type": "OS::Heat::Value"}},
                             "parameters": {"name": {"type": "string"}}, "heat_template_version": "2013-05-23"});
        let job = StackJob {
            action: Action::Modify,
            resource_type: "network".into(),
            resource_id: "n1".into(),
            version: 2,
            tenant_id: "t".into(),
            template: "heat_template_version: 2013-05-23\nparameters:\n  name: {type: string}\nresources:\n  label:\n    type: OS::Heat::Value\n    properties:\n      value: {get_param: name}\n".into(),
            parameters: json!({"name": "blue"}).as_object().unwrap().clone(),
            timeout_mins: Some(1),
        };
        assert_eq!(diff(&stack, &current, &job, &Secrets::default()), "", "the same stack in another order");
        let job = StackJob { parameters: json!({"name": "green"}).as_object().unwrap().clone(), ..job };
        let text = diff(&stack, &current, &job, &Secrets::default());
        assert!(text.starts_with("--- stack network_n1 (Heat's current)\n+++ rendered (config version 2)\n"), "{text}");
        assert!(text.contains("\n-  name: blue\n+  name: green\n"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with(['-', '+'])).count(), 4, "{text}");
    }
}
