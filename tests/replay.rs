//! Replays of every shared scenario at planner level on a real etcd match the corpus in every
//! category (jobs, params, dependencies, READ_COMPLETE states, snapshots).

mod support;

use heat_reconciler::conformance::Scenario;
use heat_reconciler::heat::{Endpoint, HeatClient};
use heat_reconciler::replay::{ReplayOptions, replay};
use heat_reconciler::schema::Schema;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn scenario_dirs() -> Vec<PathBuf> {
    let root = support::corpus().join("scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("conformance scenarios at {}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("timeline.jsonl").exists())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    dirs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_scenario_replays_without_a_mismatch() {
    let schema = Schema::shipped().expect("shipped schema");
    for dir in scenario_dirs() {
        let scenario = Scenario::new(&dir);
        let report = replay(&scenario, &schema, ReplayOptions::default()).await.expect("replay runs");
        println!("{}:", scenario.name());
        for line in report.summary() {
            println!("  {line}");
        }
        assert_eq!(report.failed(), 0, "{}: {:?}", scenario.name(), report.mismatches);
        for tally in [&report.jobs, &report.params, &report.dependencies, &report.states, &report.snapshots] {
            assert!(tally.expected > 0 && tally.matched == tally.expected, "{}: {tally:?}", scenario.name());
        }
    }
}

#[test]
fn replay_command_writes_the_report() {
    let dir = &scenario_dirs()[0];
    let report = std::env::temp_dir().join(format!("heat-reconciler-replay-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
        .args(["replay", "--scenario"])
        .arg(dir)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().last().unwrap_or_default().ends_with(" passed, 0 failed"), "{stdout}");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report written")).unwrap();
    for category in ["jobs", "params", "dependencies", "states", "snapshots"] {
        assert!(written[category]["expected"].as_u64().unwrap() > 0, "{category}: {written}");
        assert_eq!(written[category]["expected"], written[category]["matched"]);
    }
    assert_eq!(written["mismatches"], Value::Array(vec![]));
    std::fs::remove_file(report).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_balancer_scenario_converges_on_a_real_heat() {
    let dir =
        scenario_dirs().into_iter().find(|d| d.ends_with("05_load_balancer")).expect("05_load_balancer is shared");
    let heat = HeatClient::new(Endpoint::NoAuth { base: support::heat_url() }).expect("heat client");
    let options = ReplayOptions { heat: Some(heat), ..Default::default() };
    let report = replay(&Scenario::new(&dir), &Schema::shipped().unwrap(), options).await.expect("replay runs");
    for line in report.summary() {
        println!("  {line}");
    }
    let converged = report.converged.clone().expect("a worker replay reports convergence");
    assert!(converged.expected > 20 && converged.matched == converged.expected, "{converged:?}");
    assert_eq!(report.failed(), 0, "{:?}", report.mismatches);
}
