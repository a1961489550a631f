//! `heat-reconciler demo --json --kubernetes` runs the flagship flow on a local etcd and a local
//! standalone Heat, and the load balancer's version-2 records have the shapes of the corpus's
//! `UpdateLoadbalancerInterface_05` pages (ids, suffixes and values Heat produces aside); the
//! mirror shows it in `kubectl get loadbalancers` on a local kube-apiserver.

mod support;

use heat_reconciler::protocol::{JobId, Record};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;

const LB: &str = "b311c470-d878-4fea-8466-a4393938f2d4";

fn corpus_point(stage: &str, point: usize) -> (String, Value) {
    let page = support::corpus()
        .join(format!("scenarios/05_load_balancer/records/{stage}/UpdateLoadbalancerInterface_05.json"));
    let page: Value = serde_json::from_str(&std::fs::read_to_string(page).expect("flagship page")).unwrap();
    let point = &page["points"][point];
    (point["key"].as_str().unwrap().to_owned(), point["value"].clone())
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn output_keys(outputs: &Value) -> BTreeSet<String> {
    outputs.as_array().unwrap().iter().map(|o| o["output_key"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn the_demo_reaches_version_2_with_the_flagship_records() {
    let output = Command::new(env!("CARGO_BIN_EXE_heat-reconciler"))
        .args(["demo", "--json", "--kubernetes"])
        .output()
        .expect("demo runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();

    // The last line is `kubectl get loadbalancers -o wide`: the load balancer at version 2, Ready.
    let kubectl = lines.pop().expect("output");
    assert_eq!(kubectl["kubectl"], "get loadbalancers -o wide");
    let table: Vec<Vec<&str>> =
        kubectl["output"].as_str().unwrap().lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(table[0][..5], ["NAME", "VERSION", "STATE", "MONITORING", "READY"]);
    assert_eq!(table.len(), 2, "{table:?}");
    assert_eq!(table[1][..5], [LB, "2", "MODIFY_COMPLETED", "UP", "True"]);

    // Before it, the status table of the example's resources: all converged.
    let status = lines.pop().expect("output");
    let rows = status["status"].as_array().expect("a status line");
    let lb = rows.iter().find(|r| r["id"] == LB).expect("the load balancer's row");
    assert_eq!((lb["applied_version"].clone(), lb["worker_state"].clone()), (json!(2), json!("MODIFY_COMPLETED")));
    assert!(rows.iter().all(|r| r["converged"] == true), "{rows:?}");

    // The output is the story: the controller's logs went to a file, and shutdown was quiet.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("WARN") && !stderr.contains("ERROR"), "{stderr}");

    assert!(lines.iter().all(|l| keys(l) == BTreeSet::from(["key".to_owned(), "value".to_owned()])));
    let last_put =
        |key: &str| lines.iter().rev().find(|l| l["key"] == key && !l["value"].is_null()).map(|l| l["value"].clone());

    // (2) the job.
    let (_, corpus_job) = corpus_point("02_JobManager", 0);
    let job = lines
        .iter()
        .rev()
        .find(|l| {
            l["key"]
                .as_str()
                .is_some_and(|k| k.starts_with(&format!("/jobs/all/modify:heat_worker:load_balancer:{LB}:2:")))
        })
        .expect("the version-2 job was planned");
    let key = job["key"].as_str().unwrap();
    assert!(matches!(Record::decode(key, job["value"].clone()), Ok(Record::Job(_))));
    let (ours, theirs) = (&job["value"][1], &corpus_job[1]);
    assert_eq!(keys(ours), keys(theirs));
    for field in [
        "action",
        "handler",
        "resource_type",
        "resource_id",
        "version",
        "job_name",
        "is_first",
        "is_last",
        "on_failure",
        "resource_input",
    ] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    let by_name = |params: &Value| -> Vec<(String, Value)> {
        let mut list: Vec<(String, Value)> =
            params.as_array().unwrap().iter().map(|p| (p["param"].as_str().unwrap().to_owned(), p.clone())).collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    };
    assert_eq!(by_name(&ours["params"]), by_name(&theirs["params"]));
    assert_eq!(job["value"][0], "heat_worker");
    assert_eq!(job["value"][2], 0);
    assert!(ours["dependency"].as_array().unwrap().iter().all(|d| d.as_str().unwrap().parse::<JobId>().is_ok()));

    // (3) heat_stacks, (4) job_state, (5) state.
    let (stacks_key, corpus_stacks) = corpus_point("03_HeatWorker", 0);
    let stacks = last_put(&stacks_key).expect("heat_stacks written");
    assert_eq!(keys(&stacks), keys(&corpus_stacks));
    for field in ["id", "stack_id", "tenant_id", "stack_status"] {
        assert_eq!(stacks[field], corpus_stacks[field], "{field}");
    }
    assert_eq!(output_keys(&stacks["output"]), output_keys(&corpus_stacks["output"]));

    let (job_state_key, corpus_job_state) = corpus_point("03_HeatWorker", 1);
    let job_states: Vec<&Value> =
        lines.iter().filter(|l| l["key"] == job_state_key.as_str()).map(|l| &l["value"]).collect();
    let finished = job_states.iter().rev().find(|v| v.get("orchestration_state").is_some()).expect("job_state written");
    assert_eq!(keys(finished), keys(&corpus_job_state));
    assert_eq!(finished["orchestration_state"], corpus_job_state["orchestration_state"]);
    assert_eq!(output_keys(&finished["heat_outputs"]), output_keys(&corpus_job_state["heat_outputs"]));
    assert!(job_states.iter().any(|v| v.as_object().is_some_and(|o| o.is_empty())), "job_state {{}} at start");
    assert!(
        lines.iter().rev().any(|l| l["key"] == job_state_key.as_str() && l["value"].is_null()),
        "job_state removed"
    );

    let (state_key, corpus_state) = corpus_point("03_HeatWorker", 2);
    let state = last_put(&state_key).expect("state written");
    assert_eq!(keys(&state), keys(&corpus_state));
    assert_eq!(keys(&state["state"]), keys(&corpus_state["state"]));
    for field in ["worker_state", "orchestration_state"] {
        assert_eq!(state["state"][field], corpus_state["state"][field], "{field}");
    }
    assert_eq!((&state["version"], &state["error"]), (&corpus_state["version"], &corpus_state["error"]));
    let outputs: Value = serde_json::from_str(state["state"]["heat_outputs"].as_str().unwrap()).unwrap();
    assert_eq!(output_keys(&outputs), output_keys(&stacks["output"]));

    // (6) monitoring: exactly the corpus's value, from a target the stack registered.
    let (monitoring_key, corpus_monitoring) = corpus_point("04_CollectorAgent", 0);
    assert_eq!(last_put(&monitoring_key), Some(corpus_monitoring));
    let target_id = outputs.as_array().unwrap().iter().find(|o| o["output_key"] == "monitoring_target_id").unwrap();
    let link = outputs.as_array().unwrap().iter().find(|o| o["output_key"] == "monitoring_link").unwrap();
    assert!(
        link["output_value"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/targets/{}", target_id["output_value"].as_str().unwrap()))
    );
}
