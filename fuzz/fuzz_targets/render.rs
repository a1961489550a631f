//! Rendering a heat template's Jinja2 `template_file` into HOT YAML. The input is the context
//! (the job's `jinja_*` params) as one line of JSON, a newline, then the template source; a
//! first line that is not a JSON object stands for an empty context.
#![no_main]

use heat_reconciler::worker::render::{probe, render};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|text: &str| {
    let (first, rest) = text.split_once('\n').unwrap_or(("", text));
    let (context, source) = match serde_json::from_str::<Value>(first) {
        Ok(Value::Object(context)) => (context, rest),
        _ => (Map::new(), text),
    };
    let _ = render("fuzz", source, &context);
    // `probe` is what checks a template as it arrives in `/config`, before any resource uses it.
    let _ = probe("fuzz", source, &context);
});
