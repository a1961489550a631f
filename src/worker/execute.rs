//! Running one job against Heat: create or update by the stack's existence, delete for a logical
//! delete, poll until the stack settles, and describe the outcome as the records to write.

use super::pace::{Pace, Polls};
use crate::heat::{HeatClient, HeatError, Stack, StackRef, StackRequest};
use crate::protocol::{Action, HeatOutput, HeatStackRecord, JobState, StateRecord};
use crate::secrets::Secrets;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::time::Instant;

/// What the stack is to become.
#[derive(Debug, Clone)]
pub struct StackJob {
    pub action: Action,
    pub resource_type: String,
    pub resource_id: String,
    pub version: u64,
    pub tenant_id: String,
    /// The rendered template (absent for a delete that needs none).
    pub template: String,
    pub parameters: Map<String, Value>,
    pub timeout_mins: Option<u64>,
}

impl StackJob {
    /// The Heat stack name `<type>_<id>`.
    pub fn stack_name(&self) -> String {
        format!("{}_{}", self.resource_type, self.resource_id)
    }

    /// What a create of the stack sends.
    pub fn create_request(&self) -> StackRequest {
        StackRequest {
            stack_name: Some(self.stack_name()),
            template: self.template.clone(),
            parameters: self.parameters.clone(),
            timeout_mins: self.timeout_mins,
            disable_rollback: true,
        }
    }

    /// What an update of the stack sends (a full replace: the create's request without the name).
    pub fn update_request(&self) -> StackRequest {
        StackRequest { stack_name: None, ..self.create_request() }
    }
}

/// How long to wait for Heat.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// First poll delay; it doubles up to `max_poll` (see `pace` for the polls near the time a
    /// stack usually takes).
    pub first_poll: Duration,
    pub max_poll: Duration,
    /// Used when the template maps no `heat_timeout`.
    pub default_timeout: Duration,
    /// Added to the stack timeout before the worker gives up on its own.
    pub margin: Duration,
    /// A cap on the whole wait, whatever the stack timeout (tests use it to provoke timeouts).
    pub max_wait: Option<Duration>,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            first_poll: Duration::from_millis(250),
            max_poll: Duration::from_secs(2),
            default_timeout: Duration::from_secs(60 * 60),
            margin: Duration::from_secs(120),
            max_wait: None,
        }
    }
}

/// The records a finished job writes, in the order they are written.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub heat_stack: Option<HeatStackRecord>,
    pub job_state: JobState,
    pub state: StateRecord,
    /// `None` on success, else the (masked) reason for the finished marker.
    pub failure: Option<String>,
}

impl Outcome {
    fn success(job: &StackJob, stack: &Stack, outputs: Vec<HeatOutput>, deleted: bool) -> Self {
        let record = HeatStackRecord {
            id: format!("{}:{}", job.resource_type, job.resource_id),
            stack_id: if deleted { String::new() } else { job.stack_name() },
            tenant_id: job.tenant_id.clone(),
            stack_status: stack.stack_status.clone(),
            status_reason: if deleted { String::new() } else { stack.stack_status_reason.clone() },
            output: outputs.clone(),
        };
        Outcome {
            heat_stack: Some(record),
            job_state: JobState::Finished {
                heat_outputs: outputs.clone(),
                orchestration_state: stack.stack_status.clone(),
            },
            state: StateRecord::completed(job.action, &stack.stack_status, outputs, job.version),
            failure: None,
        }
    }

    /// A failure: `heat_stacks` only if Heat gave the stack a status.
    pub fn failure(job: &StackJob, stack: Option<&Stack>, reason: String) -> Self {
        let heat_stack = stack.map(|stack| HeatStackRecord {
            id: format!("{}:{}", job.resource_type, job.resource_id),
            stack_id: job.stack_name(),
            tenant_id: job.tenant_id.clone(),
            stack_status: stack.stack_status.clone(),
            status_reason: stack.stack_status_reason.clone(),
            output: Vec::new(),
        });
        Outcome {
            heat_stack,
            job_state: JobState::Finished {
                heat_outputs: Vec::new(),
                orchestration_state: format!("{}_ERROR", job.action.state_word()),
            },
            state: StateRecord::failed(job.action, reason.clone(), job.version),
            failure: Some(reason),
        }
    }
}

/// Why a job did not complete.
enum Failed {
    Heat(HeatError),
    /// The stack ended in a `*_FAILED` status.
    Stack(Box<Stack>),
    TimedOut(Option<Box<Stack>>),
}

/// Runs the job and returns its outcome; never fails itself (a failure is an outcome).
pub async fn execute(heat: &HeatClient, job: &StackJob, patience: Patience, secrets: &Secrets, pace: &Pace) -> Outcome {
    let timeout = job.timeout_mins.map(|m| Duration::from_secs(m * 60)).unwrap_or(patience.default_timeout);
    let wait = (timeout + patience.margin).min(patience.max_wait.unwrap_or(Duration::MAX));
    let deadline = Instant::now() + wait;
    let result = match job.action {
        Action::Create | Action::Modify => apply(heat, job, patience, deadline, pace).await,
        Action::LogicalDelete => delete(heat, job, patience, deadline, pace).await,
    };
    match result {
        Ok((stack, outputs)) => Outcome::success(job, &stack, outputs, job.action == Action::LogicalDelete),
        Err(Failed::Heat(e)) => Outcome::failure(job, None, secrets.mask(&e.to_string())),
        Err(Failed::Stack(stack)) => {
            let reason = format!("Stack {} {}: {}", job.stack_name(), stack.stack_status, stack.stack_status_reason);
            Outcome::failure(job, Some(&stack), secrets.mask(&reason))
        }
        Err(Failed::TimedOut(stack)) => {
            let reason = format!(
                "Stack {} did not settle within {} s{}",
                job.stack_name(),
                wait.as_secs(),
                stack.as_ref().map(|s| format!(" (last status {})", s.stack_status)).unwrap_or_default()
            );
            Outcome::failure(job, stack.as_deref(), secrets.mask(&reason))
        }
    }
}

/// Retries a Heat call while Heat is unreachable, until the deadline.
async fn persist<T, F, Fut>(deadline: Instant, patience: Patience, call: F) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, HeatError>>,
{
    persist_noting(deadline, patience, &mut false, call).await
}

/// [`persist`], setting `unreachable` when Heat could not be reached at least once.
async fn persist_noting<T, F, Fut>(
    deadline: Instant,
    patience: Patience,
    unreachable: &mut bool,
    mut call: F,
) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, HeatError>>,
{
    let mut delay = patience.first_poll;
    loop {
        match call().await {
            Err(e) if e.is_transient() && Instant::now() + delay < deadline => {
                *unreachable = true;
                tracing::warn!(error = %e, "Heat unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(patience.max_poll * 4);
            }
            other => return other.map_err(Failed::Heat),
        }
    }
}

/// Create when the stack is missing, else update it (a create that meets an existing stack
/// continues as an update; an update whose stack is gone creates it). A create job sends its
/// create straight away: the stack is almost always missing, and Heat's 409 says when it is not.
async fn apply(
    heat: &HeatClient,
    job: &StackJob,
    patience: Patience,
    deadline: Instant,
    pace: &Pace,
) -> Result<(Stack, Vec<HeatOutput>), Failed> {
    let tenant = job.tenant_id.as_str();
    let name = job.stack_name();
    let request = job.create_request();
    let update = job.update_request();
    let existing = match job.action {
        Action::Create => None,
        _ => persist(deadline, patience, || heat.find(tenant, &name)).await?,
    };
    // Whether Heat may have lost the operation we sent: see `settle`.
    let mut interrupted = false;
    let stack = match existing {
        None => {
            tracing::info!(stack = %name, "CREATE STARTED");
            let mut unreachable = false;
            match persist_noting(deadline, patience, &mut unreachable, || heat.create(tenant, &request)).await {
                Err(Failed::Heat(HeatError::Status { status: 409, .. })) => {
                    let found = persist(deadline, patience, || heat.find(tenant, &name)).await?.ok_or_else(|| {
                        Failed::Heat(HeatError::Protocol(format!("Heat says {name} exists but does not find it")))
                    })?;
                    if unreachable {
                        // Our own create, whose answer was lost on the way and which was sent
                        // again: it is there, started by a Heat that then went away.
                        interrupted = true;
                    } else {
                        // It was there before: a create run again after a crash, or a stack
                        // made outside the controller. Either way it becomes what the job says.
                        tracing::info!(stack = %name, "MODIFY STARTED (the stack exists)");
                        persist(deadline, patience, || heat.update(tenant, &found, &update)).await?;
                    }
                    found
                }
                other => other?,
            }
        }
        Some(stack) => {
            tracing::info!(stack = %name, "MODIFY STARTED");
            persist(deadline, patience, || heat.update(tenant, &stack, &update)).await?;
            stack
        }
    };
    let operation = Operation::Update(&update);
    let mut polls = Polls::new(pace.expected(&job.resource_type, job.action), patience);
    let settled = settle(heat, tenant, &stack, &mut polls, deadline, operation, interrupted).await?;
    if !settled.stack_status.ends_with("_COMPLETE") {
        return Err(Failed::Stack(Box::new(settled)));
    }
    if let Some(took) = polls.settled_in() {
        pace.learn(&job.resource_type, job.action, took);
    }
    let outputs = persist(deadline, patience, || heat.outputs(tenant, &stack)).await?;
    let outputs = outputs.into_iter().filter_map(|o| serde_json::from_value(Value::Object(o)).ok()).collect();
    Ok((settled, outputs))
}

async fn delete(
    heat: &HeatClient,
    job: &StackJob,
    patience: Patience,
    deadline: Instant,
    pace: &Pace,
) -> Result<(Stack, Vec<HeatOutput>), Failed> {
    let tenant = job.tenant_id.as_str();
    let name = job.stack_name();
    let gone = || Stack {
        id: String::new(),
        stack_name: name.clone(),
        stack_status: "DELETE_COMPLETE".into(),
        stack_status_reason: String::new(),
        updated_time: None,
        outputs: Vec::new(),
        parameters: Map::new(),
        timeout_mins: None,
    };
    tracing::info!(stack = %name, "DELETE STARTED");
    let Some(stack) = persist(deadline, patience, || heat.find(tenant, &name)).await? else {
        // Already gone: the delete is complete.
        return Ok((gone(), Vec::new()));
    };
    persist(deadline, patience, || heat.delete(tenant, &stack)).await?;
    let mut polls = Polls::new(pace.expected(&job.resource_type, job.action), patience);
    let settled = settle(heat, tenant, &stack, &mut polls, deadline, Operation::Delete, false).await?;
    match settled.stack_status.as_str() {
        "DELETE_COMPLETE" => {
            if let Some(took) = polls.settled_in() {
                pace.learn(&job.resource_type, job.action, took);
            }
            Ok((settled, Vec::new()))
        }
        _ => Err(Failed::Stack(Box::new(settled))),
    }
}

/// Consecutive failed reads of a stack tolerated while polling.
const MAX_MISREADS: u32 = 5;

/// The operation a job sent to Heat, as it is sent again (a create is sent again as an update
/// of the stack it started).
#[derive(Clone, Copy)]
enum Operation<'a> {
    Update(&'a StackRequest),
    Delete,
}

/// Polls the stack until its status is no longer `*_IN_PROGRESS`. While deleting, a stack that
/// no longer shows at all is deleted.
///
/// A Heat stopped mid-operation leaves the stack `*_IN_PROGRESS` for good: the engine died with
/// the operation, and nothing resumes it (Heat's start-up resets only legacy-engine stacks; a
/// convergence stack waits for a new traversal). So when Heat could not be reached since the
/// operation was sent (`interrupted`, or a failed poll) and then shows the stack still in
/// progress with no newer operation begun (the same `updated_time` as before the outage), the
/// operation is sent once more, once per outage: the new traversal takes the dead engine's
/// resource locks (after Heat's two-second liveness check) and runs to the end. Identical
/// operations converge to one stack; if the engine was alive after all, the second operation
/// supersedes the first and ends when it would have, and a legacy engine refuses it (409) while
/// a live engine holds the stack, so we go on polling.
async fn settle(
    heat: &HeatClient,
    tenant: &str,
    stack: &StackRef,
    polls: &mut Polls,
    deadline: Instant,
    operation: Operation<'_>,
    mut interrupted: bool,
) -> Result<Stack, Failed> {
    let deleting = matches!(operation, Operation::Delete);
    let patience = polls.patience();
    let mut last: Option<Stack> = None;
    let mut misreads = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(Failed::TimedOut(last.map(Box::new)));
        }
        tokio::time::sleep(polls.next()).await;
        let shown = match heat.show(tenant, stack, false).await {
            Ok(shown) => shown,
            // A deleted stack may vanish from `show` entirely.
            Err(HeatError::Status { status: 404, .. }) if deleting => {
                return Ok(Stack {
                    stack_status: "DELETE_COMPLETE".into(),
                    ..last.unwrap_or_else(|| placeholder(stack))
                });
            }
            Err(e) if e.is_transient() => {
                interrupted = true;
                tracing::warn!(stack = %stack.name, error = %e, "Heat unavailable while polling; retrying");
                continue;
            }
            // Heat's own reads can race its engine mid-update ("ResourcePropertiesData with id
            // … not found"); only an error that persists is the stack's.
            Err(e) if misreads < MAX_MISREADS => {
                misreads += 1;
                tracing::warn!(stack = %stack.name, error = %e, misreads, "stack show failed; polling again");
                continue;
            }
            Err(e) => return Err(Failed::Heat(e)),
        };
        misreads = 0;
        tracing::debug!(stack = %stack.name, status = %shown.stack_status, "polled");
        if !shown.stack_status.ends_with("_IN_PROGRESS") {
            return Ok(shown);
        }
        if std::mem::take(&mut interrupted) {
            let newer = last.as_ref().is_some_and(|before| before.updated_time != shown.updated_time);
            if !newer {
                tracing::info!(stack = %stack.name, status = %shown.stack_status,
                    "RESENT: Heat was unreachable and the stack is still in progress; its engine may be gone");
                resend(heat, tenant, stack, operation, patience, deadline).await?;
                polls.restart();
            }
        }
        last = Some(shown);
    }
}

/// Sends the operation again (see [`settle`]).
async fn resend(
    heat: &HeatClient,
    tenant: &str,
    stack: &StackRef,
    operation: Operation<'_>,
    patience: Patience,
    deadline: Instant,
) -> Result<(), Failed> {
    let sent = match operation {
        Operation::Update(request) => persist(deadline, patience, || heat.update(tenant, stack, request)).await,
        Operation::Delete => persist(deadline, patience, || heat.delete(tenant, stack)).await,
    };
    match sent {
        // A live engine still holds the stack (legacy engine): it finishes the operation.
        Err(Failed::Heat(HeatError::Status { status: 409, .. })) => Ok(()),
        other => other,
    }
}

fn placeholder(stack: &StackRef) -> Stack {
    Stack {
        id: stack.id.clone(),
        stack_name: stack.name.clone(),
        stack_status: String::new(),
        stack_status_reason: String::new(),
        updated_time: None,
        outputs: Vec::new(),
        parameters: Map::new(),
        timeout_mins: None,
    }
}
