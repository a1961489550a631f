//! Running one job against Heat: create or update by the stack's existence, delete for a logical
//! delete, poll until the stack settles, and describe the outcome as the records to write.

use super::secrets::Secrets;
use crate::heat::{HeatClient, HeatError, Stack, StackRef, StackRequest};
use crate::protocol::{Action, HeatOutput, HeatStackRecord, JobState, StateRecord};
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
}

/// How long to wait for Heat.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// First poll delay; it doubles up to `max_poll`.
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
pub async fn execute(heat: &HeatClient, job: &StackJob, patience: Patience, secrets: &Secrets) -> Outcome {
    let timeout = job.timeout_mins.map(|m| Duration::from_secs(m * 60)).unwrap_or(patience.default_timeout);
    let wait = (timeout + patience.margin).min(patience.max_wait.unwrap_or(Duration::MAX));
    let deadline = Instant::now() + wait;
    let result = match job.action {
        Action::Create | Action::Modify => apply(heat, job, patience, deadline).await,
        Action::LogicalDelete => delete(heat, job, patience, deadline).await,
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
async fn persist<T, F, Fut>(deadline: Instant, patience: Patience, mut call: F) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, HeatError>>,
{
    let mut delay = patience.first_poll;
    loop {
        match call().await {
            Err(e) if e.is_transient() && Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "Heat unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(patience.max_poll * 4);
            }
            other => return other.map_err(Failed::Heat),
        }
    }
}

/// Create when the stack is missing, else update it (a create that meets an existing stack
/// continues as an update; an update whose stack is gone creates it).
async fn apply(
    heat: &HeatClient,
    job: &StackJob,
    patience: Patience,
    deadline: Instant,
) -> Result<(Stack, Vec<HeatOutput>), Failed> {
    let tenant = job.tenant_id.as_str();
    let name = job.stack_name();
    let request = StackRequest {
        stack_name: Some(name.clone()),
        template: job.template.clone(),
        parameters: job.parameters.clone(),
        timeout_mins: job.timeout_mins,
        disable_rollback: true,
    };
    let existing = persist(deadline, patience, || heat.find(tenant, &name)).await?;
    let stack = match existing {
        None => {
            tracing::info!(stack = %name, "CREATE STARTED");
            match persist(deadline, patience, || heat.create(tenant, &request)).await {
                // A create whose answer was lost on the way and was sent again: it is there.
                Err(Failed::Heat(HeatError::Status { status: 409, .. })) => {
                    persist(deadline, patience, || heat.find(tenant, &name)).await?.ok_or_else(|| {
                        Failed::Heat(HeatError::Protocol(format!("Heat says {name} exists but does not find it")))
                    })?
                }
                other => other?,
            }
        }
        Some(stack) => {
            tracing::info!(stack = %name, "MODIFY STARTED");
            let update = StackRequest { stack_name: None, ..request.clone() };
            persist(deadline, patience, || heat.update(tenant, &stack, &update)).await?;
            stack
        }
    };
    let settled = settle(heat, tenant, &stack, patience, deadline, false).await?;
    if !settled.stack_status.ends_with("_COMPLETE") {
        return Err(Failed::Stack(Box::new(settled)));
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
) -> Result<(Stack, Vec<HeatOutput>), Failed> {
    let tenant = job.tenant_id.as_str();
    let name = job.stack_name();
    let gone = || Stack {
        id: String::new(),
        stack_name: name.clone(),
        stack_status: "DELETE_COMPLETE".into(),
        stack_status_reason: String::new(),
        outputs: Vec::new(),
    };
    tracing::info!(stack = %name, "DELETE STARTED");
    let Some(stack) = persist(deadline, patience, || heat.find(tenant, &name)).await? else {
        // Already gone: the delete is complete.
        return Ok((gone(), Vec::new()));
    };
    persist(deadline, patience, || heat.delete(tenant, &stack)).await?;
    let settled = settle(heat, tenant, &stack, patience, deadline, true).await?;
    match settled.stack_status.as_str() {
        "DELETE_COMPLETE" => Ok((settled, Vec::new())),
        _ => Err(Failed::Stack(Box::new(settled))),
    }
}

/// Consecutive failed reads of a stack tolerated while polling.
const MAX_MISREADS: u32 = 5;

/// Polls the stack until its status is no longer `*_IN_PROGRESS`. While `deleting`, a stack
/// that no longer shows at all is deleted.
async fn settle(
    heat: &HeatClient,
    tenant: &str,
    stack: &StackRef,
    patience: Patience,
    deadline: Instant,
    deleting: bool,
) -> Result<Stack, Failed> {
    let mut delay = patience.first_poll;
    let mut last = None;
    let mut misreads = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(Failed::TimedOut(last.map(Box::new)));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(patience.max_poll);
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
        last = Some(shown);
    }
}

fn placeholder(stack: &StackRef) -> Stack {
    Stack {
        id: stack.id.clone(),
        stack_name: stack.name.clone(),
        stack_status: String::new(),
        stack_status_reason: String::new(),
        outputs: Vec::new(),
    }
}
