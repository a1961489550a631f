//! Every heat template of the corpus renders and parses as YAML; every recorded job's template,
//! rendered with its resolved `jinja_*` params, parses too — and equals the template Heat showed
//! for that stack wherever the corpus has it.

mod support;

use heat_reconciler::conformance::Scenario;
use heat_reconciler::conformance::params::recorded_jobs;
use heat_reconciler::mapping::{Produced, ResourceIndex, Scope, evaluate};
use heat_reconciler::protocol::{HeatStackRecord, HeatTemplate, Record};
use heat_reconciler::schema::Schema;
use heat_reconciler::worker::render::{probe, render};
use heat_reconciler::worker::resolve::resolve;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use support::corpus;

fn scenarios() -> Vec<Scenario> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus().join("scenarios"))
        .expect("scenarios list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter().map(Scenario::new).collect()
}

fn template_of(key: &str, value: Value) -> Option<HeatTemplate> {
    match Record::decode(key, value) {
        Ok(Record::HeatTemplate(_, template)) => Some(*template),
        _ => None,
    }
}

/// The heat templates of a scenario's config stream, by id (the last version of each).
fn stream_templates(scenario: &Scenario) -> HashMap<String, HeatTemplate> {
    scenario
        .watch_file("config")
        .expect("config stream")
        .into_iter()
        .filter_map(|e| template_of(&e.key, e.value))
        .map(|t| (t.id.clone(), t))
        .collect()
}

#[test]
fn every_corpus_template_renders_to_yaml() {
    let mut templates: Vec<HeatTemplate> = std::fs::read_dir(corpus().join("heat_templates"))
        .expect("heat_templates list")
        .map(|e| {
            let page: Value =
                serde_json::from_str(&std::fs::read_to_string(e.expect("entry").path()).unwrap()).unwrap();
            template_of(page["key"].as_str().unwrap(), page["value"].clone()).expect("template page decodes")
        })
        .collect();
    for scenario in scenarios() {
        templates.extend(stream_templates(&scenario).into_values());
    }
    assert!(templates.len() > 100, "{} templates", templates.len());
    let mut failures = Vec::new();
    for template in &templates {
        match probe_until_rendered(template) {
            Ok(rendered) => assert!(rendered.contains("heat_template_version"), "{}", template.id),
            Err(e) => failures.push(e.to_string()),
        }
    }
    failures.sort();
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{} templates rendered with stand-in params", templates.len());
}

/// Renders a template no job of the corpus used, with stand-in values for its `jinja_*` params:
/// each starts as an address-like string and becomes a number or a list when the render says
/// that is how it is used.
fn probe_until_rendered(template: &HeatTemplate) -> Result<String, heat_reconciler::worker::render::RenderError> {
    let stand_ins = [json!("10.0.0.1/24"), json!(1), json!([])];
    let mut context: Map<String, Value> = template
        .parameter_mappings
        .keys()
        .filter(|k| k.starts_with("jinja_"))
        .map(|k| (k.clone(), stand_ins[0].clone()))
        .collect();
    let mut tried: HashMap<String, usize> = HashMap::new();
    loop {
        let error = match probe(&template.id, &template.template_file, &context) {
            Ok(rendered) => return Ok(rendered),
            Err(e) => e,
        };
        let text = error.to_string();
        // The variable the error names, else one used on the line it points at.
        // `template `x` does not render: line N: ...` (worker::render names the line first).
        let line = text
            .split_once("line ")
            .and_then(|(_, rest)| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| template.template_file.lines().nth(n - 1))
            .unwrap_or_default();
        let culprit = context
            .keys()
            .find(|k| text.contains(&format!("`{k}`")))
            .or_else(|| {
                context
                    .keys()
                    .find(|k| line.contains(k.as_str()) && tried.get(*k).copied().unwrap_or(0) + 1 < stand_ins.len())
            })
            .cloned();
        let Some(name) = culprit else { return Err(error) };
        let attempt = tried.entry(name.clone()).or_default();
        *attempt += 1;
        let Some(next) = stand_ins.get(*attempt) else { return Err(error) };
        context.insert(name, next.clone());
    }
}

/// Heat stack records in watch order: `(key, record)`, with the timestamp.
fn stack_records(scenario: &Scenario) -> Vec<(String, String, HeatStackRecord)> {
    let mut records = Vec::new();
    for file in ["heat_stacks", "full"] {
        let path = scenario.dir.join("watch").join(format!("{file}.jsonl"));
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for line in text.lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            let key = event["key"].as_str().unwrap_or_default().to_owned();
            if let Ok(Record::HeatStack(record)) = Record::decode(&key, event["value"].clone()) {
                records.push((event["ts"].as_str().unwrap_or_default().to_owned(), key, record));
            }
        }
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records
}

#[test]
fn recorded_jobs_render_like_the_stacks_heat_showed() {
    let schema = Schema::shipped().unwrap();
    let (mut rendered_jobs, mut compared, mut pages_total, mut truncated) = (0, 0, 0, 0);
    for scenario in scenarios() {
        let templates = stream_templates(&scenario);
        let stacks = stack_records(&scenario);
        let created: HashMap<String, String> = scenario
            .watch_file("jobs")
            .unwrap()
            .into_iter()
            .chain(scenario.watch_file("full").unwrap())
            .filter(|e| e.key.starts_with("/jobs/all/") && !e.value.is_null())
            .filter_map(|e| Some((e.key.rsplit('/').next()?.to_owned(), String::new())))
            .collect();
        let pages: Vec<Value> = std::fs::read_dir(scenario.dir.join("heat_stacks"))
            .map(|d| {
                d.map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap()).collect()
            })
            .unwrap_or_default();
        pages_total += pages.len();
        let index = ResourceIndex::default();
        for (job_id, record) in recorded_jobs(&scenario).unwrap() {
            assert!(created.contains_key(&job_id));
            let spec = &record.job.spec;
            let scope = Scope { index: &index, relations: &schema.relations, version: spec.version };
            let (_, mapping) = schema.template_mappings.get(&spec.resource_type).expect("workable type");
            let current = Value::Object(spec.resource_input.clone());
            let template_id = match evaluate(mapping, scope, &current, &spec.resource_type).unwrap().produced {
                Produced::Value(Value::String(id)) => id,
                other => panic!("{job_id}: template mapping gave {other:?}"),
            };
            let template = &templates[&template_id];
            // Each dependency's record as it stood before this job wrote its own.
            let own_key_suffix = format!("/{}", spec.resource_id);
            let own_write = stacks.iter().position(|(_, key, r)| {
                key.ends_with(&own_key_suffix)
                    && r.stack_status.starts_with(match spec.action {
                        heat_reconciler::protocol::Action::Create => "CREATE",
                        heat_reconciler::protocol::Action::Modify => "UPDATE",
                        heat_reconciler::protocol::Action::LogicalDelete => "DELETE",
                    })
            });
            let before = &stacks[..own_write.unwrap_or(stacks.len())];
            let resolved = resolve(&spec.params, |t, id| {
                before.iter().rev().find(|(_, _, r)| r.id == format!("{t}:{id}")).map(|(_, _, r)| r)
            })
            .unwrap_or_else(|e| panic!("{job_id}: {e}"));
            let text = render(&template.id, &template.template_file, &resolved.jinja)
                .unwrap_or_else(|e| panic!("{job_id}: {e}"));
            rendered_jobs += 1;
            let page = pages.iter().find(|p| {
                p["stack_name"] == format!("{}_{}", spec.resource_type, spec.resource_id)
                    && p["parameters"]["version"].as_str() == Some(&spec.version.to_string())
            });
            if let Some(page) = page {
                let ours: Value = yaml_serde::from_str(&text).unwrap();
                let differences = differences(&ours, &page["template"]);
                // The corpus pages were transcribed by hand; a few strings were cut short there.
                let real: Vec<&String> =
                    differences.iter().filter(|d| !d.contains("(truncated in the corpus)")).collect();
                assert!(real.is_empty(), "{job_id}: rendered template differs from the one Heat showed: {real:?}");
                truncated += differences.len();
                compared += 1;
            }
        }
    }
    println!(
        "{rendered_jobs} recorded jobs rendered; {compared} of {pages_total} heat-stack pages compared equal \
         ({truncated} strings truncated in the corpus pages)"
    );
    assert!(rendered_jobs > 50 && compared > 10, "{rendered_jobs} rendered, {compared} compared");
}

/// Every leaf where `ours` and `theirs` differ, as `path: ours / theirs`.
fn differences(ours: &Value, theirs: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(String::new(), ours, theirs, &mut found);
    found
}

fn walk(path: String, ours: &Value, theirs: &Value, found: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                walk(
                    format!("{path}/{key}"),
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    found,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (n, (x, y)) in a.iter().zip(b).enumerate() {
                walk(format!("{path}/{n}"), x, y, found);
            }
        }
        (Value::String(a), Value::String(b)) if a != b && !b.is_empty() && a.starts_with(b.as_str()) => {
            found.push(format!("{path}: {a:?} / {b:?} (truncated in the corpus)"));
        }
        _ if ours != theirs => found.push(format!("{path}: {ours} / {theirs}")),
        _ => {}
    }
}
