//! When a probed status is written to `/monitoring` (PROTOCOL.md §8): only when it differs from
//! what is there ("Remote value matched to payload" → skip), at once for a positive status, and
//! for any other only once it has held for the target's hold time ("Hold time not passed").

use super::target::HoldOptions;
use crate::protocol::monitoring::MonitoringRecord;
use std::time::{Duration, Instant};

/// A non-positive status seen and not yet written: what it is and since when it holds.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    since: Option<(MonitoringRecord, Instant)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Write(MonitoringRecord),
    /// Not yet: the status must hold this much longer.
    Hold(Duration),
    /// `/monitoring` already says this.
    Unchanged,
}

/// Decides about one probe's `observed` record, given what `/monitoring` holds (`written`).
pub fn decide(
    written: Option<&MonitoringRecord>,
    observed: MonitoringRecord,
    hold: Option<&HoldOptions>,
    pending: &mut Pending,
    now: Instant,
) -> Verdict {
    if written == Some(&observed) {
        pending.since = None;
        return Verdict::Unchanged;
    }
    let Some(hold) = hold.filter(|hold| !hold.positive.contains(&observed.status)) else {
        pending.since = None;
        return Verdict::Write(observed);
    };
    let since = match &pending.since {
        Some((record, since)) if *record == observed => *since,
        _ => {
            pending.since = Some((observed.clone(), now));
            now
        }
    };
    let held = now.saturating_duration_since(since);
    if held >= hold.time {
        pending.since = None;
        Verdict::Write(observed)
    } else {
        Verdict::Hold(hold.time - held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::monitoring::MonitoringStatus;

    fn record(status: &str, version: u64) -> MonitoringRecord {
        MonitoringRecord { status_key: "vmi".into(), status: MonitoringStatus::Single(status.into()), version }
    }

    fn port_hold() -> HoldOptions {
        HoldOptions {
            positive: vec![MonitoringStatus::Single("UP".into()), MonitoringStatus::Single("DOWN".into())],
            time: Duration::from_secs(210),
        }
    }

    #[test]
    fn without_hold_options_every_change_is_written_once() {
        let mut pending = Pending::default();
        let now = Instant::now();
        assert_eq!(decide(None, record("UP", 1), None, &mut pending, now), Verdict::Write(record("UP", 1)));
        assert_eq!(decide(Some(&record("UP", 1)), record("UP", 1), None, &mut pending, now), Verdict::Unchanged);
        assert_eq!(
            decide(Some(&record("UP", 1)), record("FAIL", 1), None, &mut pending, now),
            Verdict::Write(record("FAIL", 1))
        );
        // A new stack version is a new record even with the same status.
        assert_eq!(
            decide(Some(&record("UP", 1)), record("UP", 2), None, &mut pending, now),
            Verdict::Write(record("UP", 2))
        );
    }

    #[test]
    fn positive_statuses_pass_others_wait_for_the_hold_time() {
        let hold = port_hold();
        let mut pending = Pending::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        assert_eq!(decide(None, record("UP", 3), Some(&hold), &mut pending, at(0)), Verdict::Write(record("UP", 3)));
        let written = record("UP", 3);
        assert_eq!(
            decide(Some(&written), record("FAIL", 3), Some(&hold), &mut pending, at(60)),
            Verdict::Hold(Duration::from_secs(210))
        );
        assert_eq!(
            decide(Some(&written), record("FAIL", 3), Some(&hold), &mut pending, at(200)),
            Verdict::Hold(Duration::from_secs(70))
        );
        assert_eq!(
            decide(Some(&written), record("FAIL", 3), Some(&hold), &mut pending, at(270)),
            Verdict::Write(record("FAIL", 3))
        );
    }

    #[test]
    fn a_recovery_inside_the_hold_time_restarts_the_clock() {
        let hold = port_hold();
        let mut pending = Pending::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let written = record("UP", 1);
        assert!(matches!(
            decide(Some(&written), record("FAIL", 1), Some(&hold), &mut pending, at(0)),
            Verdict::Hold(_)
        ));
        assert_eq!(decide(Some(&written), record("UP", 1), Some(&hold), &mut pending, at(100)), Verdict::Unchanged);
        assert_eq!(
            decide(Some(&written), record("FAIL", 1), Some(&hold), &mut pending, at(250)),
            Verdict::Hold(Duration::from_secs(210))
        );
    }

    #[test]
    fn pool_statuses_compare_as_maps() {
        let pool = |primary: &str, secondary: &str| MonitoringRecord {
            status_key: "status".into(),
            status: MonitoringStatus::Pool(
                [("primary".into(), primary.into()), ("secondary".into(), secondary.into())].into(),
            ),
            version: 1,
        };
        let hold = HoldOptions { positive: vec![pool("MASTER", "BACKUP").status], time: Duration::from_secs(360) };
        let mut pending = Pending::default();
        let now = Instant::now();
        assert_eq!(
            decide(None, pool("MASTER", "BACKUP"), Some(&hold), &mut pending, now),
            Verdict::Write(pool("MASTER", "BACKUP"))
        );
        assert!(matches!(decide(None, pool("UP", "FAIL"), Some(&hold), &mut pending, now), Verdict::Hold(_)));
    }
}
