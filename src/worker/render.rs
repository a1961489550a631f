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
}

/// A Jinja2-compatible environment for the constructs the corpus uses: `for` (with `loop`),
/// `if`, `set`, `|string`, Python string methods such as `.split('/')`, list indexing and
/// attribute access on dicts. Undefined names render empty, as in Jinja2.
fn environment(undefined: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(undefined);
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
    // Heat parses with PyYAML, which lets a later duplicate key win; so does a map built here.
    yaml_serde::from_str::<serde_json::Value>(&rendered)
        .map_err(|e| RenderError::Yaml { template: template.to_owned(), reason: e.to_string() })?;
    Ok(rendered)
}

/// The error with its line first (the operator opens the template there) and its causes.
fn describe(error: &minijinja::Error) -> String {
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
