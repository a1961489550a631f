//! `why TYPE/ID`: why a resource is not converged (or that it is), as a tree: where it stands, its
//! live job and queue, each job that job waits for, down to the root cause — a failed provider, a
//! missing template, a mapping error, a Heat failure (with the failing resource's reason from
//! Heat's events), a retry waiting for its time, a job whose worker is gone. Every line names the
//! record or the Heat call it read.

use super::snapshot::{ResourceId, Snapshot, duration_text};
use crate::heat::HeatClient;
use crate::mapping::{NonWorkable, Scope, Workability, select_template};
use crate::planner::notes::{retry_key, unix_now};
use crate::planner::view::View;
use crate::protocol::keys::HEAT_TEMPLATES_PREFIX;
use crate::protocol::{Job, JobId, JobQueue, ResourceRoot};
use crate::schema::Schema;
use crate::standing::{Phase, standing};
use futures::future::BoxFuture;
use std::collections::HashSet;

/// One line of the explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub depth: usize,
    pub text: String,
    /// The records (keys) and Heat calls the line was read from.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub lines: Vec<Line>,
    /// The resource has nothing left to do.
    pub converged: bool,
}

impl Explanation {
    /// The tree, each line followed by what it was read from.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let indent =
                if line.depth == 0 { String::new() } else { format!("{}└─ ", "   ".repeat(line.depth - 1)) };
            out.push_str(&indent);
            out.push_str(&line.text);
            if !line.sources.is_empty() {
                out.push_str(&format!("   [{}]", line.sources.join(", ")));
            }
            out.push('\n');
        }
        out
    }
}

/// Explains `resource` from `snapshot`; with `heat`, a Heat failure is followed into the stack's
/// events (read only: GETs).
pub async fn why(
    snapshot: &Snapshot,
    schema: &Schema,
    heat: Option<&HeatClient>,
    resource: &ResourceId,
) -> anyhow::Result<Explanation> {
    anyhow::ensure!(
        snapshot.resources.contains_key(resource) || snapshot.live_job_of(resource).is_some(),
        "no records of {}/{} in this store",
        resource.0,
        resource.1
    );
    let view = View::listed(schema, snapshot.items.clone());
    let mut explainer = Explainer { snapshot, schema, heat, view, lines: Vec::new(), seen: HashSet::new() };
    explainer.resource(resource.clone(), 0).await;
    let observed = snapshot.resources.get(resource).cloned().unwrap_or_default();
    let converged = standing(&observed).phase == Phase::Converged && snapshot.live_job_of(resource).is_none();
    Ok(Explanation { lines: explainer.lines, converged })
}

struct Explainer<'a> {
    snapshot: &'a Snapshot,
    schema: &'a Schema,
    heat: Option<&'a HeatClient>,
    view: View,
    lines: Vec<Line>,
    /// Resources and jobs explained already (the tree shows each once).
    seen: HashSet<String>,
}

impl<'a> Explainer<'a> {
    fn say(&mut self, depth: usize, text: impl Into<String>, sources: &[String]) {
        self.lines.push(Line { depth, text: text.into(), sources: sources.to_vec() });
    }

    fn key(&self, root: ResourceRoot, resource: &ResourceId) -> String {
        self.schema.resource_types.key(root, &resource.0, &resource.1).unwrap_or_default()
    }

    fn resource(&mut self, resource: ResourceId, depth: usize) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let label = format!("{}/{}", resource.0, resource.1);
            if !self.seen.insert(label.clone()) {
                self.say(depth, format!("{label}: explained above"), &[]);
                return;
            }
            let observed = self.snapshot.resources.get(&resource).cloned().unwrap_or_default();
            let standing = standing(&observed);
            let (config_key, state_key) =
                (self.key(ResourceRoot::Config, &resource), self.key(ResourceRoot::State, &resource));
            let desired = standing.desired_version.map_or_else(|| "none".to_owned(), |v| v.to_string());
            let applied = standing.applied_version.map_or_else(|| "none".to_owned(), |v| v.to_string());
            let state = standing.state.clone().unwrap_or_else(|| "no /state".to_owned());
            let verdict = match (standing.desired_version, standing.phase) {
                (None, _) => "no /config: nothing to do".to_owned(),
                (Some(_), Phase::Converged) => format!("converged: version {desired} applied ({state})"),
                (Some(_), Phase::Failed) => format!("failed: version {desired}, {state}"),
                (Some(_), Phase::InProgress) => {
                    format!("not converged: version {desired} wanted, {applied} applied ({state})")
                }
            };
            self.say(depth, format!("{label}: {verdict}"), &[config_key.clone(), state_key.clone()]);
            for error in &standing.errors {
                self.say(depth + 1, format!("error: {error}"), std::slice::from_ref(&state_key));
            }
            let job = self.snapshot.live_job_of(&resource).cloned();
            if let Some(job) = job {
                self.job(&job, depth + 1).await;
                return;
            }
            match standing.phase {
                Phase::Converged => self.non_workable(&resource, depth + 1, standing.worker_state.as_deref()),
                Phase::Failed => {
                    self.retry(&resource, depth + 1);
                    self.cause(&resource, &standing.errors, depth + 1).await;
                }
                Phase::InProgress => self.not_planned(depth + 1, &desired),
            }
        })
    }

    fn job<'b>(&'b mut self, job: &'b Job, depth: usize) -> BoxFuture<'b, ()> {
        Box::pin(async move {
            let queue = self.snapshot.queues.get(&job.id).copied();
            let age = self
                .snapshot
                .age_of(&job.id, unix_now())
                .map(|a| format!(" for {}", duration_text(a)))
                .unwrap_or_default();
            let mut sources = vec![JobQueue::All.key(&job.id)];
            if let Some(queue) = queue {
                sources.push(queue.key(&job.id));
            }
            let what = format!("job {} ({} v{})", job.id, job.spec.action.as_str(), job.spec.version);
            let resource = (job.spec.resource_type.clone(), job.spec.resource_id.clone());
            if !self.seen.insert(job.id.clone()) {
                self.say(depth, format!("{what}: explained above"), &[]);
                return;
            }
            match queue {
                Some(JobQueue::Waiting) => {
                    self.say(depth, format!("{what} waiting{age}, for {} job(s)", job.dependency.len()), &sources);
                    for dependency in &job.dependency {
                        match self.snapshot.jobs.get(dependency).cloned() {
                            Some(provider) => {
                                let of = format!("{}/{}", provider.spec.resource_type, provider.spec.resource_id);
                                self.say(depth + 1, format!("waits for {of}"), &[JobQueue::All.key(dependency)]);
                                self.job(&provider, depth + 2).await;
                            }
                            None => self.say(
                                depth + 1,
                                format!("waited for job {dependency}, which is gone: the planner releases this one at its next pass"),
                                &[JobQueue::All.key(dependency)],
                            ),
                        }
                    }
                }
                Some(JobQueue::Ready) => self.say(
                    depth,
                    format!("{what} ready{age}: no worker has claimed it yet (is a worker running? `run --roles worker`)"),
                    &sources,
                ),
                Some(JobQueue::Working) => {
                    self.say(depth, format!("{what} claimed by a worker{age}: Heat is running it"), &sources);
                    self.heat_stack(&resource, depth + 1, false).await;
                }
                Some(JobQueue::Finished) => {
                    let reason = self.snapshot.finished.get(&job.id).cloned().unwrap_or_default();
                    let outcome = if reason.is_empty() { "succeeded".to_owned() } else { format!("failed: {reason}") };
                    self.say(depth, format!("{what} finished, {outcome}: the planner is removing it"), &sources);
                    if !reason.is_empty() {
                        self.heat_stack(&resource, depth + 1, true).await;
                    }
                }
                Some(JobQueue::All) | None => self.say(
                    depth,
                    format!(
                        "{what} in no queue{age}: the worker that claimed it is gone (its lease expired with {}); the planner queues it again",
                        JobQueue::Working.key(&job.id)
                    ),
                    &sources,
                ),
            }
        })
    }

    /// Why a converged resource has no stack: READ_COMPLETE and what its template mapping says.
    fn non_workable(&mut self, resource: &ResourceId, depth: usize, worker_state: Option<&str>) {
        if worker_state != Some(crate::protocol::results::READ_COMPLETE) {
            return;
        }
        let Some((Ok(config), _)) = self.view.configs.get(resource) else { return };
        let scope = Scope { index: &self.view.index, relations: &self.schema.relations, version: config.version };
        let selected =
            select_template(&self.schema.template_mappings, &self.view.templates, scope, &resource.0, config.body());
        let (text, source) = match selected {
            Workability::NonWorkable(NonWorkable::TemplateMissing(id)) => (
                format!("nothing orchestrated: its template `{id}` is missing from the heat templates"),
                ResourceRoot::Config.key(HEAT_TEMPLATES_PREFIX, &id),
            ),
            Workability::NonWorkable(NonWorkable::Unmapped) => (
                format!("nothing orchestrated: type `{}` has no template mapping", resource.0),
                "template_mappings".into(),
            ),
            Workability::NonWorkable(NonWorkable::NullTemplate) => (
                "nothing orchestrated: its template mapping gives no template for this body".into(),
                "template_mappings".into(),
            ),
            _ => return,
        };
        self.say(depth, text, &[source]);
    }

    /// When the planner tries a failed resource again.
    fn retry(&mut self, resource: &ResourceId, depth: usize) {
        let key = retry_key(resource);
        match self.snapshot.retries.get(resource) {
            Some(note) => {
                let now = unix_now();
                let when = if note.next_at > now {
                    format!("in {}", duration_text(note.next_at - now))
                } else {
                    "now (due: the leading planner runs it within seconds)".to_owned()
                };
                let text = format!("retry {} ({} again) {when}", note.attempts, note.action.as_str());
                self.say(depth, text, &[key]);
            }
            None => self.say(depth, "no retry noted: the leading planner schedules one at its next resync", &[key]),
        }
    }

    /// The root cause of a failure: a provider whose failure cancelled this job, or what Heat
    /// says went wrong in the stack.
    async fn cause(&mut self, resource: &ResourceId, errors: &[String], depth: usize) {
        let cancelled_by = errors.iter().find_map(|e| {
            let rest = e.split("cancelled: job ").nth(1)?;
            rest.split_whitespace().next()?.parse::<JobId>().ok()
        });
        if let Some(job) = cancelled_by {
            let provider = (job.resource_type.clone(), job.resource_id.clone());
            let label = format!("{}/{}", provider.0, provider.1);
            self.say(
                depth,
                format!("cancelled because job {job} of {label} failed"),
                &[self.key(ResourceRoot::State, resource)],
            );
            self.resource(provider, depth + 1).await;
            return;
        }
        self.heat_stack(resource, depth, true).await;
    }

    /// What Heat shows of the resource's stack; `failures`: also its latest failed events.
    async fn heat_stack(&mut self, resource: &ResourceId, depth: usize, failures: bool) {
        let Some(heat) = self.heat else {
            if failures {
                self.say(depth, "(give --heat-url or Keystone credentials to read Heat's events)", &[]);
            }
            return;
        };
        let Some(tenant) = self.tenant(resource) else { return };
        let name = format!("{}_{}", resource.0, resource.1);
        let call = format!("GET /v1/{tenant}/stacks/{name}");
        let stack = match heat.find(&tenant, &name).await {
            Ok(Some(stack)) => stack,
            Ok(None) => {
                self.say(depth, format!("Heat has no stack {name}"), &[call]);
                return;
            }
            Err(e) => {
                self.say(depth, format!("Heat cannot be asked: {e}"), &[call]);
                return;
            }
        };
        match heat.show(&tenant, &stack, false).await {
            Ok(shown) => {
                let reason = if shown.stack_status_reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", shown.stack_status_reason)
                };
                let text = format!("Heat: stack {name} {}{reason}", shown.stack_status);
                self.say(depth, text, &[format!("GET /v1/{tenant}/stacks/{name}/{}", stack.id)]);
            }
            Err(e) => self.say(depth, format!("Heat cannot show {name}: {e}"), std::slice::from_ref(&call)),
        }
        if !failures {
            return;
        }
        let events_call = format!("GET /v1/{tenant}/stacks/{name}/{}/events", stack.id);
        match heat.failed_events(&tenant, &stack, 3).await {
            Ok(events) if events.is_empty() => self.say(depth, "Heat's events show no failed resource", &[events_call]),
            Ok(events) => {
                for event in events {
                    let text = format!(
                        "Heat: resource {} {}: {}",
                        event.resource_name, event.resource_status, event.resource_status_reason
                    );
                    self.say(depth, text, std::slice::from_ref(&events_call));
                }
            }
            Err(e) => self.say(depth, format!("Heat's events cannot be read: {e}"), &[events_call]),
        }
    }

    fn tenant(&self, resource: &ResourceId) -> Option<String> {
        let observed = self.snapshot.resources.get(resource)?;
        let config = observed.config.as_ref()?.as_ref().ok()?;
        config.body().get("tenant_id")?.as_str().map(str::to_owned)
    }

    /// A desired version without a job.
    fn not_planned(&mut self, depth: usize, desired: &str) {
        let key = crate::protocol::keys::JOB_MANAGER_ID_KEY.to_owned();
        let text = match &self.snapshot.planner {
            Some(id) => format!("no job for version {desired} yet: planner {id} leads and will plan it"),
            None => format!("no job for version {desired}: no planner leads (start one: `run --roles planner`)"),
        };
        self.say(depth, text, &[key]);
    }
}
