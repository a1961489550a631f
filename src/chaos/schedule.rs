//! What the chaos phase does, when.

use super::*;
use rand::RngExt;
use rand::rngs::StdRng;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// Writes version 1 of these resources (indexes into the scenario).
    Create(Vec<usize>),
    /// Writes version 2 of these.
    Modify(Vec<usize>),
    /// Marks these for deletion.
    Delete(Vec<usize>),
    /// Fixes the network template, so the flaky networks can succeed.
    FixTemplate,
    Kill,
    EtcdStop,
    EtcdStart,
    HeatKill,
    HeatStart,
}

/// The chaos phase's steps at their offsets from its start: creates in eight waves over the first
/// 40%, the template fix at 25%, the etcd restart at 35%, modifies at 50% and 60%, the Heat
/// outage from 2 s after the first modifies (while their updates run), deletes at 70%, and a
/// kill every 2–6 s throughout.
pub(super) fn schedule(resources: &[Resource], options: &ChaosOptions, rng: &mut StdRng) -> Vec<(Duration, Step)> {
    let at = |fraction: f64| options.duration.mul_f64(fraction);
    let mut steps = Vec::new();
    let waves = 8;
    let per_wave = resources.len().div_ceil(waves).max(1);
    let order: Vec<usize> = (0..resources.len()).collect();
    for (wave, chunk) in order.chunks(per_wave).enumerate() {
        steps.push((at(0.4 * wave as f64 / waves as f64), Step::Create(chunk.to_vec())));
    }
    let modified: Vec<usize> = (0..resources.len()).filter(|&i| resources[i].modified).collect();
    let (first, second) = modified.split_at(modified.len() / 2);
    steps.push((at(0.5), Step::Modify(first.to_vec())));
    steps.push((at(0.6), Step::Modify(second.to_vec())));
    steps.push((at(0.7), Step::Delete((0..resources.len()).filter(|&i| resources[i].deleted).collect())));
    steps.push((at(0.25), Step::FixTemplate));
    steps.push((at(0.35), Step::EtcdStop));
    steps.push((at(0.35) + Duration::from_millis(2500), Step::EtcdStart));
    let heat_kill = at(0.5) + Duration::from_secs(2);
    steps.push((heat_kill, Step::HeatKill));
    steps.push((heat_kill + options.heat_outage, Step::HeatStart));
    let mut t = Duration::from_secs(2);
    while t < options.duration {
        steps.push((t, Step::Kill));
        t += Duration::from_millis(rng.random_range(2000..=6000));
    }
    // Stable: at equal times, the order above (writes before faults before kills).
    steps.sort_by_key(|(t, _)| *t);
    steps
}
