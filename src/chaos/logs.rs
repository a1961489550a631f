//! Reading the controllers' logs.

use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub(super) struct LogFigures {
    /// Heat calls started, per stack name.
    pub(super) heat_calls: HashMap<String, usize>,
    pub(super) elections: usize,
    pub(super) requeued: usize,
    /// Operations sent again to a Heat that came back with their stacks still in progress.
    pub(super) resent: usize,
    pub(super) lost_claims: usize,
    pub(super) errors: usize,
}

pub(super) fn read_logs(paths: &[PathBuf]) -> LogFigures {
    let mut figures = LogFigures::default();
    for path in paths {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            for word in ["CREATE STARTED", "MODIFY STARTED", "DELETE STARTED"] {
                if let Some(rest) = line.split(word).nth(1)
                    && let Some(stack) = rest.split("stack=").nth(1)
                {
                    let stack = stack.split_whitespace().next().unwrap_or_default().to_owned();
                    *figures.heat_calls.entry(stack).or_default() += 1;
                }
            }
            // The planner's elections: drift repair is elected in the same processes.
            figures.elections += usize::from(
                line.contains("elected leader") && line.contains(crate::protocol::keys::JOB_MANAGER_ID_KEY),
            );
            figures.requeued += usize::from(line.contains("job lost its worker; queued again"));
            figures.resent += usize::from(line.contains("RESENT:"));
            figures.lost_claims += usize::from(line.contains("lost the claim"));
            figures.errors += usize::from(line.contains(" ERROR ") || line.contains("panicked"));
        }
    }
    figures
}
