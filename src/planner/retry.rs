//! Per-resource exponential backoff for resources whose job failed: the delay doubles with each
//! failure up to a cap, and a success forgets it.

use super::view::ResourceId;
use crate::protocol::Action;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
struct Entry {
    attempts: u32,
    due: Option<Instant>,
    action: Action,
}

#[derive(Debug)]
pub struct Retries {
    base: Duration,
    cap: Duration,
    entries: HashMap<ResourceId, Entry>,
}

impl Retries {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Retries { base, cap, entries: HashMap::new() }
    }

    /// Records a failure; returns the delay before the resource is tried again.
    pub fn schedule(&mut self, resource: ResourceId, action: Action) -> Duration {
        let entry = self.entries.entry(resource).or_insert(Entry { attempts: 0, due: None, action });
        let delay = self.base.saturating_mul(1 << entry.attempts.min(16)).min(self.cap);
        entry.attempts = entry.attempts.saturating_add(1);
        entry.due = Some(Instant::now() + delay);
        entry.action = action;
        delay
    }

    /// The resources due now, with the action of their failed job; each is handed out once per
    /// failure.
    pub fn due(&mut self) -> Vec<(ResourceId, Action)> {
        let now = Instant::now();
        let mut due: Vec<(ResourceId, Action)> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.due.is_some_and(|d| d <= now))
            .map(|(r, e)| {
                e.due = None;
                (r.clone(), e.action)
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        due
    }

    /// Whether a retry of the resource is scheduled and not yet handed out.
    pub fn is_scheduled(&self, resource: &ResourceId) -> bool {
        self.entries.get(resource).is_some_and(|e| e.due.is_some())
    }

    pub fn attempts(&self, resource: &ResourceId) -> u32 {
        self.entries.get(resource).map_or(0, |e| e.attempts)
    }

    /// The resource converged: start from the base delay next time.
    pub fn forget(&mut self, resource: &ResourceId) {
        self.entries.remove(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delays_double_up_to_the_cap_and_reset_on_success() {
        let mut retries = Retries::new(Duration::from_millis(5), Duration::from_millis(30));
        let r: ResourceId = ("network".into(), "n1".into());
        let delays: Vec<u128> = (0..5).map(|_| retries.schedule(r.clone(), Action::Create).as_millis()).collect();
        assert_eq!(delays, vec![5, 10, 20, 30, 30]);
        assert!(retries.due().is_empty());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(retries.due(), vec![(r.clone(), Action::Create)]);
        assert!(retries.due().is_empty(), "handed out once");
        assert_eq!(retries.attempts(&r), 5);
        retries.forget(&r);
        assert_eq!(retries.schedule(r, Action::Modify).as_millis(), 5);
    }
}
