//! When to look at a stack again. Heat has no way to say that a stack has settled, so the
//! worker polls; polling too rarely adds latency to every job, polling all along loads Heat.
//! The worker learns how long Heat usually takes for each resource type and action, and polls
//! often only around that time: before it on the usual widening schedule (so a stack that
//! settles much sooner is still seen within `max_poll`), close together near it, then widening
//! again for a stack that takes longer than usual.

use super::execute::Patience;
use crate::protocol::Action;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The weight of the latest settle time in the running estimate.
const WEIGHT: f64 = 0.25;
/// Polls near the expected time are this fraction of it apart...
const NEAR_FRACTION: u32 = 20;
/// ...but no closer than this.
const NEAR_MIN: Duration = Duration::from_millis(25);

/// How long Heat took to settle recent stacks, per resource type and action.
#[derive(Debug, Default)]
pub struct Pace {
    learned: Mutex<HashMap<(String, Action), Duration>>,
}

impl Pace {
    /// How long a stack of `resource_type` usually takes to settle after `action` was sent.
    pub fn expected(&self, resource_type: &str, action: Action) -> Option<Duration> {
        let learned = self.learned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        learned.get(&(resource_type.to_owned(), action)).copied()
    }

    /// Takes in how long one stack took, from its operation's acceptance to the poll that saw it
    /// settled (a little more than Heat's own time; the estimate is where polls start to come
    /// close together, so it converges on Heat's time).
    pub fn learn(&self, resource_type: &str, action: Action, took: Duration) {
        let mut learned = self.learned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        learned
            .entry((resource_type.to_owned(), action))
            .and_modify(|estimate| *estimate = estimate.mul_f64(1.0 - WEIGHT) + took.mul_f64(WEIGHT))
            .or_insert(took);
    }
}

/// The polls of one stack.
pub(crate) struct Polls {
    began: Instant,
    expected: Option<Duration>,
    /// The next delay of the widening schedule.
    delay: Duration,
    patience: Patience,
    resent: bool,
}

impl Polls {
    /// Polls of a stack whose operation Heat accepted just now.
    pub fn new(expected: Option<Duration>, patience: Patience) -> Self {
        Polls { began: Instant::now(), expected, delay: patience.first_poll, patience, resent: false }
    }

    pub fn patience(&self) -> Patience {
        self.patience
    }

    /// The operation was sent again (see `execute::settle`): start over without an estimate.
    /// Such a stack's time says nothing of Heat's usual time, so it is not learnt.
    pub fn restart(&mut self) {
        *self = Polls { resent: true, ..Polls::new(None, self.patience) };
    }

    /// The time to learn from a stack that has just settled: `None` if it was sent again.
    pub fn settled_in(&self) -> Option<Duration> {
        (!self.resent).then(|| self.began.elapsed())
    }

    /// How long to wait before the next look.
    pub fn next(&mut self) -> Duration {
        self.next_after(self.began.elapsed())
    }

    /// How long to wait before the next look, `elapsed` after the operation was accepted.
    fn next_after(&mut self, elapsed: Duration) -> Duration {
        if let Some(expected) = self.expected {
            let near_start = expected.mul_f64(0.8);
            let near_end = expected.mul_f64(1.5);
            if elapsed >= near_start && elapsed < near_end {
                return (expected / NEAR_FRACTION).max(NEAR_MIN).min(self.patience.first_poll);
            }
            if elapsed < near_start {
                // The widening schedule, but never past the start of the near window.
                return self.widen().min(near_start - elapsed);
            }
        }
        self.widen()
    }

    fn widen(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(self.patience.max_poll);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patience() -> Patience {
        Patience { first_poll: Duration::from_millis(250), max_poll: Duration::from_secs(2), ..Default::default() }
    }

    #[test]
    fn learns_a_running_estimate_per_type_and_action() {
        let pace = Pace::default();
        assert_eq!(pace.expected("network", Action::Create), None);
        pace.learn("network", Action::Create, Duration::from_secs(4));
        assert_eq!(pace.expected("network", Action::Create), Some(Duration::from_secs(4)));
        pace.learn("network", Action::Create, Duration::from_secs(8));
        assert_eq!(pace.expected("network", Action::Create), Some(Duration::from_secs(5)));
        assert_eq!(pace.expected("network", Action::Modify), None);
    }

    #[test]
    fn polls_close_together_only_near_the_expected_time() {
        let mut polls = Polls::new(Some(Duration::from_secs(3)), patience());
        let (mut at, mut elapsed) = (Vec::new(), Duration::ZERO);
        while elapsed < Duration::from_secs(6) {
            elapsed += polls.next_after(elapsed);
            at.push(elapsed.as_millis());
        }
        // The widening schedule up to 2.4 s, then every 150 ms until 4.5 s, then widening again.
        assert_eq!(&at[..4], [250, 750, 1750, 2400]);
        assert_eq!(at[4] - at[3], 150);
        let near = at.iter().filter(|&&t| (2400..4500).contains(&t)).count();
        assert_eq!(near, 14);
        assert!(at.windows(2).all(|w| w[1] - w[0] <= 2000), "never more than max_poll apart: {at:?}");
    }

    #[test]
    fn without_an_estimate_the_schedule_widens_to_max_poll() {
        let mut polls = Polls::new(None, patience());
        let mut elapsed = Duration::ZERO;
        let delays: Vec<u128> = (0..6)
            .map(|_| {
                let delay = polls.next_after(elapsed);
                elapsed += delay;
                delay.as_millis()
            })
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
    }
}
