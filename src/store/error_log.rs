//! The one way a running loop logs the etcd errors it retries: in the operator's terms (the
//! causes the start-up check names, e.g. ``etcd user `heat-reconciler` may not read /jobs/:
//! permission denied``, rather than a gRPC status dump), and once per change of cause. A loop
//! retries every few seconds for as long as etcd refuses; one line each time would bury the
//! line that matters, what changed. Repeats go to debug, and the first success after failures
//! is logged, so that the log shows when it healed.

use super::Store;

/// What one loop last logged about etcd.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    /// The cause last logged, while the loop fails; `None` while it works.
    failing: Option<String>,
}

impl ErrorLog {
    /// The cause of `error`, met while trying to `what` (see [`Store::describe`]), and whether
    /// it is new to this loop (to be logged as a warning; a repeat is logged at debug).
    pub(crate) fn failed(
        &mut self,
        store: &Store,
        error: &(dyn std::error::Error + 'static),
        what: &str,
    ) -> (String, bool) {
        let cause = store.describe(error, what);
        let new = self.failing.as_deref() != Some(cause.as_str());
        if new {
            self.failing = Some(cause.clone());
        }
        (cause, new)
    }

    /// The loop got through to etcd: after failures, says so once (with the last cause).
    pub(crate) fn succeeded(&mut self, what: &str) {
        if let Some(cause) = self.failing.take() {
            tracing::info!(what, after = %cause, "etcd answers again");
        }
    }
}

/// Logs an etcd error a loop retries, through its [`ErrorLog`]: a warning the first time a
/// cause is met, debug while it repeats. `retried!(log, store, error, what, fields..., message)`
/// with the fields and message of a `tracing` event; the cause goes in the field `error`.
macro_rules! retried {
    ($log:expr, $store:expr, $error:expr, $what:expr, $($event:tt)+) => {{
        let (cause, new) = $log.failed($store, $error, $what);
        if new {
            tracing::warn!(error = %cause, $($event)+);
        } else {
            tracing::debug!(error = %cause, $($event)+);
        }
    }};
}
pub(crate) use retried;

/// An error and what it says it was caused by, each told once.
pub(crate) fn with_sources(error: &(dyn std::error::Error + 'static)) -> String {
    told_with(error.to_string(), error.source())
}

/// `told`, then each error of the chain from `source` that it does not say already.
pub(crate) fn told_with(told: String, source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut parts = vec![told];
    let mut next = source;
    while let Some(current) = next {
        let text = current.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}
