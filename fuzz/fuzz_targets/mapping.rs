//! The `parameter_mappings` / `template_mappings` language: parse, then evaluate against a
//! small world. The input is one JSON object:
//! `{"mapping": …, "type": "…", "current": {…}, "previous": {…}, "index": {type: {id: body}},
//!   "relations": {type: {field: type}}, "version": n}`; all but `mapping` optional.
#![no_main]

use heat_reconciler::mapping::{Mapping, Relations, ResourceIndex, Scope, TemplateMappings, Traversal, evaluate_param};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) else { return };
    let Some(mapping_value) = input.get("mapping") else { return };
    // A `template_mappings` document is the same language one level down.
    let _ = TemplateMappings::parse(mapping_value);
    let Ok(mapping) = Mapping::parse(mapping_value) else { return };
    let _ = mapping.yields_output_key();

    let object = |name: &str| match input.get(name) {
        Some(Value::Object(map)) => Some(map.clone()),
        _ => None,
    };
    let mut index = ResourceIndex::default();
    for (resource_type, bodies) in object("index").unwrap_or_default() {
        let Value::Object(bodies) = bodies else { continue };
        for (id, body) in bodies {
            if let Value::Object(body) = body {
                index.insert(&resource_type, &id, body);
            }
        }
    }
    let relations: Relations =
        input.get("relations").and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default();
    let version = input.get("version").and_then(Value::as_u64).unwrap_or(1);
    let resource_type = input.get("type").and_then(Value::as_str).unwrap_or("resource");
    let current: Map<String, Value> = object("current").unwrap_or_default();
    let previous = object("previous");
    let traversal = match &previous {
        Some(previous) => Traversal::Twice { previous },
        None => Traversal::Once,
    };
    let scope = Scope { index: &index, relations: &relations, version };
    let _ = evaluate_param("param", &mapping, scope, resource_type, &current, traversal);
});
