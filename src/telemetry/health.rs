//! Whether the process's loops are alive and ready, for `/healthz` and `/readyz`.
//!
//! Each role's main loop owns a [`Heartbeat`]: it beats from a branch of the loop's `select!`, so
//! a loop stuck inside one of its steps stops beating and `/healthz` fails (Kubernetes then
//! restarts the pod). A standby waiting for leadership is not expected to beat. Readiness is the
//! loop's own word (a leader that has listed etcd, a standby, a worker watching its queue) plus
//! the checks of its dependencies that `/readyz` makes when asked.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often a loop beats.
const BEAT: Duration = Duration::from_secs(5);
/// A loop that has not beaten for this long is stuck.
const STALE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Loop {
    last_beat: Instant,
    /// Waiting for leadership: alive whatever the beats say.
    standby: bool,
    ready: bool,
    /// Why it is not ready.
    reason: String,
}

/// The loops of this process, by name.
#[derive(Default)]
pub struct Health {
    loops: Mutex<BTreeMap<String, Loop>>,
}

static HEALTH: LazyLock<Arc<Health>> = LazyLock::new(Arc::default);

/// The process's health registry.
pub fn health() -> &'static Health {
    &HEALTH
}

impl Health {
    /// Registers a loop (not ready until it says so) and returns its heartbeat.
    pub fn register(&self, name: &str) -> Heartbeat {
        let state = Loop { last_beat: Instant::now(), standby: false, ready: false, reason: "starting".into() };
        self.with(|loops| loops.insert(name.to_owned(), state));
        let mut interval = tokio::time::interval(BEAT);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Heartbeat { name: name.to_owned(), interval }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Loop>) -> T) -> T {
        // A panic while holding the lock leaves the map as it was: still usable.
        let mut loops = self.loops.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut loops)
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut Loop)) {
        self.with(|loops| {
            if let Some(state) = loops.get_mut(name) {
                f(state)
            }
        });
    }

    /// The loops that stopped beating (empty: alive).
    pub fn stuck(&self) -> Vec<String> {
        let now = Instant::now();
        self.with(|loops| {
            loops
                .iter()
                .filter(|(_, l)| !l.standby && now.duration_since(l.last_beat) > STALE)
                .map(|(name, l)| {
                    format!("{name}: no heartbeat for {:.0} s", now.duration_since(l.last_beat).as_secs_f64())
                })
                .collect()
        })
    }

    /// The loops that are not ready, with why (empty: ready).
    pub fn not_ready(&self) -> Vec<String> {
        self.with(|loops| {
            loops.iter().filter(|(_, l)| !l.ready).map(|(name, l)| format!("{name}: {}", l.reason)).collect()
        })
    }
}

/// A beat given from inside one of a loop's long steps, as it makes progress: a planner's
/// start-up over 100,000 unplanned resources takes minutes without returning to its `select!`,
/// and is not stuck.
#[derive(Debug, Clone)]
pub struct Pulse {
    name: String,
}

impl Pulse {
    pub fn beat(&self) {
        health().update(&self.name, |l| l.last_beat = Instant::now());
    }
}

/// A loop's handle on its health.
pub struct Heartbeat {
    name: String,
    interval: tokio::time::Interval,
}

impl Heartbeat {
    /// Waits for the next beat and records it; a `select!` branch of the loop.
    pub async fn tick(&mut self) {
        self.interval.tick().await;
        self.beat();
    }

    pub fn beat(&self) {
        health().update(&self.name, |l| l.last_beat = Instant::now());
    }

    /// What the loop's long steps beat with.
    pub fn pulse(&self) -> Pulse {
        Pulse { name: self.name.clone() }
    }

    /// Waiting for leadership: alive, and ready to take over.
    pub fn standby(&self) {
        health().update(&self.name, |l| {
            l.standby = true;
            l.ready = true;
            l.reason.clear();
        });
    }

    /// Leading (or working): beats are expected again; not ready until [`Heartbeat::ready`].
    pub fn active(&self, reason: &str) {
        health().update(&self.name, |l| {
            l.standby = false;
            l.last_beat = Instant::now();
            l.ready = false;
            l.reason = reason.to_owned();
        });
    }

    pub fn ready(&self) {
        health().update(&self.name, |l| {
            l.ready = true;
            l.reason.clear();
        });
    }

    pub fn not_ready(&self, reason: &str) {
        health().update(&self.name, |l| {
            l.ready = false;
            l.reason = reason.to_owned();
        });
    }
}

impl Drop for Heartbeat {
    /// A loop that ended is neither stuck nor waited for.
    fn drop(&mut self) {
        health().with(|loops| loops.remove(&self.name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pulse_from_a_long_step_keeps_its_loop_alive() {
        let heartbeat = health().register("pulse-test");
        heartbeat.active("working");
        let name = "pulse-test".to_owned();
        let stuck = || health().stuck().iter().any(|s| s.starts_with("pulse-test:"));
        health().update(&name, |l| l.last_beat = Instant::now() - STALE - Duration::from_secs(1));
        assert!(stuck(), "no beat for longer than {STALE:?}");
        heartbeat.pulse().beat();
        assert!(!stuck());
    }
}
