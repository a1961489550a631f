//! `status`: one row per resource — where it stands, its live job, its last error — and a count
//! of how many are converged, in progress and failed.

use super::snapshot::{ResourceId, Snapshot, duration_text};
use crate::planner::notes::unix_now;
use crate::standing::{Phase, standing};
use serde::Serialize;

/// Which resources to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this type (singular, as the schema names it).
    pub resource_type: Option<String>,
    /// Only those not converged.
    pub not_converged: bool,
}

/// One resource, as `status` shows it (`-o json` writes these fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub r#type: String,
    pub id: String,
    pub name: Option<String>,
    pub desired_version: Option<u64>,
    pub applied_version: Option<u64>,
    /// `/state`'s state at the desired version, else `<ACTION>_IN_PROGRESS`.
    pub state: Option<String>,
    pub worker_state: Option<String>,
    pub stack_status: Option<String>,
    pub monitoring: Option<String>,
    /// The live job's queue (`waiting`, `ready`, `working`, `finished`, `none` when it is in no
    /// queue), and how long ago it was planned.
    pub job: Option<String>,
    pub job_queue: Option<String>,
    pub job_age_seconds: Option<u64>,
    pub error: Option<String>,
    /// Nothing left to do: the desired version is applied and no job runs.
    pub converged: bool,
    pub failed: bool,
}

/// The rows of the resources `filter` selects, in type and id order.
pub fn rows(snapshot: &Snapshot, filter: &Filter) -> Vec<Row> {
    let now = unix_now();
    let jobs = snapshot.live_jobs_by_resource();
    snapshot
        .resources
        .iter()
        .filter(|((kind, _), _)| filter.resource_type.as_deref().is_none_or(|t| t == kind))
        .map(|(resource, observed)| {
            let standing = standing(observed);
            let job = jobs.get(resource);
            let queue = job.map(|j| snapshot.queues.get(&j.id).map_or("none", |q| q.name()).to_owned());
            let converged = standing.phase == Phase::Converged && job.is_none();
            let failed = standing.phase == Phase::Failed && job.is_none();
            Row {
                r#type: resource.0.clone(),
                id: resource.1.clone(),
                name: name_of(observed),
                desired_version: standing.desired_version,
                applied_version: standing.applied_version,
                state: standing.state.clone(),
                worker_state: standing.worker_state.clone(),
                stack_status: standing.stack_status.clone(),
                monitoring: standing.monitoring.clone(),
                job: job.map(|j| j.id.clone()),
                job_queue: queue,
                job_age_seconds: job.and_then(|j| snapshot.age_of(&j.id, now)),
                error: (!standing.errors.is_empty()).then(|| standing.errors.join("; ")),
                converged,
                failed,
            }
        })
        .filter(|row| !filter.not_converged || !row.converged)
        .collect()
}

fn name_of(observed: &crate::standing::Observed) -> Option<String> {
    let config = observed.config.as_ref()?.as_ref().ok()?;
    config.body().get("name").and_then(|n| n.as_str()).filter(|n| !n.is_empty()).map(str::to_owned)
}

/// The counts line: `N resources: C converged, P in progress, F failed`.
pub fn summary(rows: &[Row]) -> String {
    let converged = rows.iter().filter(|r| r.converged).count();
    let failed = rows.iter().filter(|r| r.failed).count();
    let in_progress = rows.len() - converged - failed;
    format!("{} resources: {converged} converged, {in_progress} in progress, {failed} failed", rows.len())
}

/// The table, its columns as wide as their widest cell, then the counts line.
pub fn table(rows: &[Row]) -> String {
    const HEADERS: [&str; 10] =
        ["TYPE", "ID", "NAME", "DESIRED", "APPLIED", "STATE", "STACK", "MONITORING", "JOB", "ERROR"];
    let dash = || "-".to_owned();
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let job = match (&r.job_queue, r.job_age_seconds) {
                (Some(queue), Some(age)) => format!("{queue} {}", duration_text(age)),
                (Some(queue), None) => queue.clone(),
                _ => dash(),
            };
            [
                r.r#type.clone(),
                r.id.clone(),
                r.name.clone().unwrap_or_else(dash),
                r.desired_version.map_or_else(dash, |v| v.to_string()),
                r.applied_version.map_or_else(dash, |v| v.to_string()),
                r.state.clone().unwrap_or_else(dash),
                r.stack_status.clone().unwrap_or_else(dash),
                r.monitoring.clone().unwrap_or_else(dash),
                job,
                r.error.as_deref().map_or_else(dash, |e| shorten(e, 60)),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(&HEADERS.map(str::to_owned));
    for row in &cells {
        out.push('\n');
        out.push_str(&line(row));
    }
    out.push('\n');
    out.push_str(&summary(rows));
    out.push('\n');
    out
}

/// `text` cut to `max` characters, with `…` where it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A resource's row, if it exists in the snapshot.
pub fn row_of(snapshot: &Snapshot, resource: &ResourceId) -> Option<Row> {
    let filter = Filter { resource_type: Some(resource.0.clone()), not_converged: false };
    rows(snapshot, &filter).into_iter().find(|r| r.id == resource.1)
}
