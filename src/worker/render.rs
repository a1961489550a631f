//! Rendering a heat template's Jinja2 `template_file` into HOT YAML, with only the job's
//! `jinja_*` params in the context (PROTOCOL.md §4.6, §4.8).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// Why a template could not be rendered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("template `{template}` does not render: {reason}")]
    Jinja { template: String, reason: String },
    #[error("template `{template}` does not render to YAML: {reason}")]
    Yaml { template: String, reason: String },
    #[error(
        "template `{template}` renders to {bytes} bytes, more than the {MAX_RENDERED} bytes a rendered template may have"
    )]
    TooLarge { template: String, bytes: usize },
}

/// The work one render may do, in minijinja's fuel: about one unit per instruction and per 64
/// bytes of data made. The corpus's largest template takes 1,580; this bound stops a loop that
/// would run for hours (`range` caps one loop, not nested ones) or fill memory, within
/// milliseconds and a few megabytes, and leaves a template sixty times the corpus's largest room.
pub const FUEL: u64 = 100_000;

/// The largest rendered template passed on to Heat: the corpus's largest renders to 25 KB, and
/// Heat itself refuses templates above its `max_template_size` (512 KiB by default).
pub const MAX_RENDERED: usize = 1024 * 1024;

/// A Jinja2-compatible environment for the constructs the corpus uses: `for` (with `loop`),
/// `if`, `set`, `|string`, Python string methods such as `.split('/')`, list indexing and
/// attribute access on dicts. Undefined names render empty, as in Jinja2.
fn environment(undefined: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(undefined);
    env.set_fuel(Some(FUEL));
    env.set_unknown_method_callback(|state, value, method, args| {
        if value.is_undefined() && state.undefined_behavior() == UndefinedBehavior::Chainable {
            return Ok(minijinja::Value::UNDEFINED);
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
    env
}

/// Renders `source` with `context` (the `jinja_*` params) and checks the result parses as YAML.
pub fn render(template: &str, source: &str, context: &Map<String, Value>) -> Result<String, RenderError> {
    render_with(environment(UndefinedBehavior::Lenient), template, source, context)
}

/// Renders with every missing value (and anything done with it) standing in as empty: checks
/// that a template is well-formed Jinja2 before any resource uses it.
pub fn probe(template: &str, source: &str, context: &Map<String, Value>) -> Result<String, RenderError> {
    render_with(environment(UndefinedBehavior::Chainable), template, source, context)
}

fn render_with(
    env: Environment<'static>,
    template: &str,
    source: &str,
    context: &Map<String, Value>,
) -> Result<String, RenderError> {
    let rendered = env
        .render_named_str(template, source, minijinja::Value::from(minijinja::value::Serde(context)))
        .map_err(|e| RenderError::Jinja { template: template.to_owned(), reason: describe(&e) })?;
    if rendered.len() > MAX_RENDERED {
        return Err(RenderError::TooLarge { template: template.to_owned(), bytes: rendered.len() });
    }
    // Heat parses with PyYAML, which lets a later duplicate key win; so does a map built here.
    yaml_serde::from_str::<serde_json::Value>(&rendered)
        .map_err(|e| RenderError::Yaml { template: template.to_owned(), reason: e.to_string() })?;
    Ok(rendered)
}

/// The error with its line first (the operator opens the template there) and its causes.
fn describe(error: &minijinja::Error) -> String {
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!(
            "it does more work than a template may ({FUEL} steps, or about {} MB of output and values): a loop that runs too long or an output too large",
            FUEL * 64 / 1_000_000
        );
    }
    let mut text = match error.line() {
        Some(line) => format!("line {line}: {error}"),
        None => error.to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn renders_the_corpus_constructs() {
        let source = "a: {{ jinja_cidr.split('/')[1] }}\n\
            {% for device in [\"primary\",\"secondary\"] %}{{ device }}_{{ loop.index0 }}: {{ jinja_vrids[loop.index0]|string }}\n{% endfor %}\
            {% set n = jinja_ips|length %}{% if n > 1 %}many: {{ jinja_ips[0].ip_address }}{% else %}one: x{% endif %}\n\
            missing: '{{ jinja_nope }}'\n";
        let out = render(
            "t",
            source,
            &context(json!({"jinja_cidr": "10.0.0.0/24", "jinja_vrids": [41, 42], "jinja_ips": [{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.6"}]})),
        )
        .unwrap();
        assert_eq!(out, "a: 24\nprimary_0: 41\nsecondary_1: 42\nmany: 10.0.0.5\nmissing: ''");
    }

    #[test]
    fn a_runaway_loop_ends_with_an_error_at_once() {
        // Each `range` is capped, but nested they would render for hours without fuel.
        let started = std::time::Instant::now();
        let source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        for outcome in [render("loops", source, &Map::new()), probe("loops", source, &Map::new())] {
            let e = outcome.unwrap_err().to_string();
            assert!(e.starts_with("template `loops` does not render: it does more work than a template may"), "{e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_template_that_renders_to_megabytes_is_refused() {
        // Cheap to write and to run (one filter call), 10 MB to hold: refused on its size.
        let e = render("big", "a: '{{ 'x' * 10000000 }}'", &Map::new()).unwrap_err().to_string();
        assert!(e.contains("does more work than a template may"), "{e}");
        // Within the fuel, over the size a rendered template may have.
        let e = render("big", "a: '{{ 'x' * 2000000 }}'", &Map::new()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "template `big` renders to 2000005 bytes, more than the {MAX_RENDERED} bytes a rendered template may have"
            )
        );
    }

    #[test]
    fn duplicate_keys_are_accepted_like_pyyaml() {
        assert!(render("t", "a: 1\na: 2\n", &Map::new()).is_ok());
    }

    #[test]
    fn errors_name_the_template() {
        let e = render("port", "{% for x in %}", &Map::new()).unwrap_err();
        assert!(e.to_string().starts_with("template `port` does not render"), "{e}");
        let e = render("port", "a: 1\nb: {{ 1 +* 2 }}\n", &Map::new()).unwrap_err();
        assert!(e.to_string().contains("line 2:") && e.to_string().contains("port:2"), "{e}");
        let e = render("port", "a: [unclosed", &Map::new()).unwrap_err();
        assert!(e.to_string().contains("does not render to YAML"), "{e}");
    }
}
