//! The pure core against the shared conformance corpus: every record round-trips, every recorded
//! param is reproduced by re-evaluation, and the shipped schema configuration is the corpus's.

mod support;

use heat_reconciler::conformance::{Sample, Scenario, check, params};
use heat_reconciler::schema::{self, Schema};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::corpus;

fn scenarios() -> Vec<Scenario> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus().join("scenarios"))
        .expect("scenarios dir lists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no scenarios in the corpus");
    dirs.into_iter().map(Scenario::new).collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("file reads")).expect("file is JSON")
}

#[test]
fn every_corpus_record_round_trips() {
    let mut total = check::CheckReport::default();
    for scenario in scenarios() {
        let report = check::check_scenario(&scenario).expect("scenario reads");
        println!(
            "{}: {} passed, {} failed, {} skipped",
            scenario.name(),
            report.passed,
            report.failures.len(),
            report.skipped_total()
        );
        total.passed += report.passed;
        total.failures.extend(report.failures);
        for (group, n) in report.skipped {
            *total.skipped.entry(group).or_default() += n;
        }
    }
    // The template set of the corpus, one /config/v2.0/heat_templates record per file.
    let mut templates = std::fs::read_dir(corpus().join("heat_templates")).expect("heat_templates lists").count();
    for entry in std::fs::read_dir(corpus().join("heat_templates")).expect("heat_templates lists") {
        let path = entry.expect("dir entry").path();
        let page = read_json(&path);
        let key = page["key"].as_str().expect("template page has a key").to_owned();
        total.add(&Sample { origin: path.display().to_string(), key, value: page["value"].clone() });
        templates -= 1;
    }
    assert_eq!(templates, 0);
    for line in total.lines() {
        println!("{line}");
    }
    assert!(total.failures.is_empty(), "{} records failed the round trip", total.failures.len());
    assert!(total.passed > 1000, "only {} records checked", total.passed);
    assert_eq!(total.skipped_total(), 0, "the corpus holds only data-contract keys");
}

#[test]
fn every_recorded_param_is_reproduced_by_re_evaluation() {
    let schema = Schema::shipped().expect("shipped schema loads");
    let (mut jobs, mut checked, mut matched) = (0, 0, 0);
    for scenario in scenarios() {
        let report = params::recheck_params(&scenario, &schema).expect("scenario reads");
        println!(
            "{}: {} jobs, {} params checked, {} matched, {} jobs without a recorded value",
            scenario.name(),
            report.jobs,
            report.params_checked,
            report.params_matched,
            report.jobs_without_record
        );
        for mismatch in &report.mismatches {
            println!("  {mismatch}");
        }
        assert!(report.mismatches.is_empty(), "{}: {} mismatches", scenario.name(), report.mismatches.len());
        assert!(report.jobs > 0, "{}: no job re-evaluated", scenario.name());
        jobs += report.jobs;
        checked += report.params_checked;
        matched += report.params_matched;
    }
    println!("all scenarios: {jobs} jobs, {checked} params checked, {matched} matched");
    assert_eq!(checked, matched);
}

#[test]
fn shipped_schema_configuration_is_derived_from_the_corpus_schemas() {
    let memo = corpus().join("memo");
    let derived = schema::derive_from_gohan_schemas(&read_json(&memo.join("schemas.json"))).expect("schemas derive");
    assert_eq!(serde_json::to_value(&derived.relations).unwrap(), read_json(&memo.join("relations.json")));
    assert_eq!(derived.template_mappings, read_json(&memo.join("template_mappings.json")));

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    assert_eq!(
        serde_json::to_value(&derived.resource_types).unwrap(),
        read_json(&shipped.join(schema::RESOURCE_TYPES_FILE))
    );
    assert_eq!(serde_json::to_value(&derived.relations).unwrap(), read_json(&shipped.join(schema::RELATIONS_FILE)));
    assert_eq!(derived.template_mappings, read_json(&shipped.join(schema::TEMPLATE_MAPPINGS_FILE)));
    Schema::load(&shipped).expect("shipped files load");
}

fn heat_reconciler(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_heat-reconciler")).args(args).output().expect("binary runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn check_records_command_reports_each_failure_and_a_summary() {
    let scenario = corpus().join("scenarios/05_load_balancer");
    let (code, out) = heat_reconciler(&["check-records", scenario.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");

    let dir = tempfile_dir("check-records");
    std::fs::create_dir_all(dir.join("records/02_JobManager")).unwrap();
    std::fs::create_dir_all(dir.join("watch")).unwrap();
    std::fs::write(
        dir.join("records/02_JobManager/Bad_01.json"),
        r#"{"points": [{"key": "/state/v2.0/ports/p1", "value": {"error": "", "state": {"worker_state": "READ_COMPLETE"}, "version": "one"}},
                       {"key": "/state/v2.0/ports/p2", "value": {"error": "", "state": {"worker_state": "READ_COMPLETE"}, "version": 1}}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("watch/jobs.jsonl"),
        "{\"action\": \"set\", \"key\": \"/jobs/ready/x\", \"value\": 3}\n{\"action\": \"set\", \"key\": \"/other/key\", \"value\": 1}\n",
    )
    .unwrap();
    let (code, out) = heat_reconciler(&["check-records", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.iter().any(|l| l.contains("Bad_01.json: /state/v2.0/ports/p1")), "{out}");
    assert!(lines.iter().any(|l| l.contains("jobs.jsonl:1: /jobs/ready/x")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("skipped 1 ")), "{out}");
    assert_eq!(lines.last(), Some(&"1 passed, 2 failed"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn import_schemas_command_writes_the_three_files() {
    let dir = tempfile_dir("import-schemas");
    let schemas = corpus().join("memo/schemas.json");
    let (code, out) = heat_reconciler(&["import-schemas", schemas.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    Schema::load(&dir).expect("written files load");
    assert_eq!(read_json(&dir.join(schema::RELATIONS_FILE)), read_json(&corpus().join("memo/relations.json")));
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heat-reconciler-test-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
