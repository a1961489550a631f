//! `check-records`: every value of a scenario whose key belongs to the data contract decodes into
//! its typed record and re-encodes to an equal JSON value.

use super::json_diff::first_difference;
use super::layout::{Sample, Scenario};
use crate::mapping::ParsedTemplate;
use crate::protocol::{Record, RecordKind};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The key is outside the data contract.
    Skipped,
    Failed(String),
}

/// Decodes one value by its key, re-encodes it and compares.
pub fn check_sample(key: &str, value: &Value) -> Outcome {
    if RecordKind::of_key(key).is_none() {
        return Outcome::Skipped;
    }
    let record = match Record::decode(key, value.clone()) {
        Ok(record) => record,
        Err(e) => return Outcome::Failed(format!("does not decode: {e}")),
    };
    let encoded = match record.to_value() {
        Ok(encoded) => encoded,
        Err(e) => return Outcome::Failed(format!("does not encode: {e}")),
    };
    if let Some(difference) = first_difference(value, &encoded) {
        return Outcome::Failed(format!("re-encoded value differs at {difference}"));
    }
    // A template whose mappings do not parse would decode but could never be used.
    if let Record::HeatTemplate(_, template) = &record
        && let Err(e) = ParsedTemplate::parse((**template).clone())
    {
        return Outcome::Failed(format!("heat template does not parse: {e}"));
    }
    Outcome::Passed
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub passed: usize,
    /// `(origin, key, reason)`.
    pub failures: Vec<(String, String, String)>,
    /// Skipped keys, counted by their first two segments.
    pub skipped: BTreeMap<String, usize>,
}

impl CheckReport {
    pub fn add(&mut self, sample: &Sample) {
        match check_sample(&sample.key, &sample.value) {
            Outcome::Passed => self.passed += 1,
            Outcome::Skipped => {
                let group: String = sample.key.split('/').take(3).collect::<Vec<_>>().join("/");
                *self.skipped.entry(group).or_default() += 1;
            }
            Outcome::Failed(reason) => self.failures.push((sample.origin.clone(), sample.key.clone(), reason)),
        }
    }

    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    /// The report as printed: failures, skipped keys, then `N passed, M failed`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.failures.iter().map(|(origin, key, reason)| format!("FAIL {origin}: {key}: {reason}")).collect();
        if !self.skipped.is_empty() {
            let groups: Vec<String> = self.skipped.iter().map(|(g, n)| format!("{g} ({n})")).collect();
            lines.push(format!(
                "skipped {} values outside the data contract: {}",
                self.skipped_total(),
                groups.join(", ")
            ));
        }
        lines.push(format!("{} passed, {} failed", self.passed, self.failures.len()));
        lines
    }
}

/// Every value a scenario holds: record pages, watch events that carry a value, and the config
/// values of the timeline.
pub fn scenario_samples(scenario: &Scenario) -> anyhow::Result<Vec<Sample>> {
    let mut samples = scenario.record_samples()?;
    for (origin, event) in scenario.watch_events()? {
        if !event.value.is_null() {
            samples.push(Sample { origin, key: event.key, value: event.value });
        }
    }
    for (line, event) in scenario.timeline()? {
        if let super::TimelineEvent::Config { key, value: Some(value), .. } = event {
            samples.push(Sample { origin: format!("timeline.jsonl:{line}"), key, value });
        }
    }
    Ok(samples)
}

pub fn check_scenario(scenario: &Scenario) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    for sample in scenario_samples(scenario)? {
        report.add(&sample);
    }
    Ok(report)
}
