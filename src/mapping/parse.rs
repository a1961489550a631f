//! The `parameter_mappings` language (PROTOCOL.md §4.2–4.3) parsed into [`Mapping`].

use regex::Regex;
use serde_json::{Map, Value};

/// One mapping: how a param (or a template id) is computed from a resource.
#[derive(Debug, Clone)]
pub enum Mapping {
    /// `P<field>`, `{"field": f}`: a field of the current object, `null` when absent.
    Field(String),
    /// `C<literal>` (always a string), `{"constant": c}` (any JSON).
    Constant(Value),
    /// `Vauto_filled`, `{"version": "auto_filled"}`: the job version.
    Version,
    /// `F<type>+<fk>(:<type>+<fk>)*:<field>`: follow foreign keys, then read a field.
    ForeignField { hops: Vec<Hop>, field: String },
    /// `M<type>:<fk>:<output_key>`: an output of the referenced resource's stack.
    StackOutput { resource_type: String, fk: String, output_key: String },
    /// `O<object>:<field>`: a field of an object field.
    ObjectField { object: String, field: String },
    /// `A<m1>&<m2>…`: the parts' values as strings, joined.
    Concat(Vec<Mapping>),
    /// `{"field": f, "path": [...], "ignore_missing": b}`.
    PathField { path: Vec<Step>, field: String, ignore_missing: bool },
    /// `{"path": [...], "output_key": k}`.
    PathOutput { path: Vec<Step>, output_key: String, ignore_missing: bool },
    /// `{"for_field": F, "for_mapping": M}`.
    ForEach { over: ListSource, each: Box<Mapping> },
    /// `{"if_mapping": {OP: [a, b]}, "then_mapping": M1, "else_mapping": M2}`.
    If { condition: Condition, then: Box<Mapping>, otherwise: Box<Mapping> },
}

/// One `type+fk` hop of an `F` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub resource_type: String,
    pub fk: String,
}

/// One step of a `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A field whose target type comes from the relation map.
    Relation(String),
    /// `{"type": T, "id": k}`; `k == ""` means the current object is itself the id.
    Typed { resource_type: String, id_field: String },
}

/// Where a `for_field` list comes from.
#[derive(Debug, Clone)]
pub enum ListSource {
    Field(String),
    Mapping(Box<Mapping>),
}

#[derive(Debug, Clone)]
pub enum Condition {
    Equal(Box<Mapping>, Box<Mapping>),
    /// Python `re.match(pattern, subject)`: anchored at the start only.
    Regexp {
        subject: Box<Mapping>,
        pattern: Pattern,
    },
}

#[derive(Debug, Clone)]
pub enum Pattern {
    /// A constant pattern, compiled once at parse time.
    Compiled(Regex),
    Computed(Box<Mapping>),
}

/// Why a mapping could not be parsed. The caller adds which template and param it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// Compiles a Python `re.match` pattern: anchored at the start, free at the end.
pub fn compile_match_pattern(pattern: &str) -> Result<Regex, ParseError> {
    Regex::new(&format!("^(?:{pattern})")).map_err(|e| ParseError(format!("bad regexp `{pattern}`: {e}")))
}

impl Mapping {
    pub fn parse(value: &Value) -> Result<Mapping, ParseError> {
        match value {
            Value::String(text) => Mapping::parse_str(text),
            Value::Object(object) => Mapping::parse_object(object),
            other => err(format!("a mapping is a string or an object, found `{other}`")),
        }
    }

    fn parse_str(text: &str) -> Result<Mapping, ParseError> {
        let mut chars = text.chars();
        let Some(letter) = chars.next() else {
            return err("empty mapping string");
        };
        let arg = chars.as_str();
        let non_empty = |what: &str, s: &str| -> Result<String, ParseError> {
            if s.is_empty() { err(format!("`{text}`: empty {what}")) } else { Ok(s.to_owned()) }
        };
        match letter {
            'P' => Ok(Mapping::Field(non_empty("field name", arg)?)),
            'C' => Ok(Mapping::Constant(Value::String(arg.to_owned()))),
            'V' => Ok(Mapping::Version),
            'F' => {
                let mut parts: Vec<&str> = arg.split(':').collect();
                let field = non_empty("field name", parts.pop().unwrap_or_default())?;
                if parts.is_empty() {
                    return err(format!("`{text}`: F needs at least one `type+fk` hop before the field"));
                }
                let hops = parts
                    .into_iter()
                    .map(|hop| match hop.split_once('+') {
                        Some((t, fk)) if !t.is_empty() && !fk.is_empty() => {
                            Ok(Hop { resource_type: t.to_owned(), fk: fk.to_owned() })
                        }
                        _ => err(format!("`{text}`: hop `{hop}` is not `type+fk`")),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Mapping::ForeignField { hops, field })
            }
            'M' => match arg.split(':').collect::<Vec<_>>()[..] {
                [t, fk, key] if !t.is_empty() && !fk.is_empty() && !key.is_empty() => Ok(Mapping::StackOutput {
                    resource_type: t.to_owned(),
                    fk: fk.to_owned(),
                    output_key: key.to_owned(),
                }),
                _ => err(format!("`{text}`: M needs `type:fk:output_key`")),
            },
            'O' => match arg.split(':').collect::<Vec<_>>()[..] {
                [object, field] if !object.is_empty() && !field.is_empty() => {
                    Ok(Mapping::ObjectField { object: object.to_owned(), field: field.to_owned() })
                }
                _ => err(format!("`{text}`: O needs `object:field`")),
            },
            'A' => {
                let parts = arg
                    .split('&')
                    .map(|part| Mapping::parse_str(part).map_err(|e| ParseError(format!("`{text}`: part {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Mapping::Concat(parts))
            }
            other => err(format!("`{text}`: unknown mapping prefix `{other}` (expected one of P C V F M O A)")),
        }
    }

    fn parse_object(object: &Map<String, Value>) -> Result<Mapping, ParseError> {
        let has = |k: &str| object.contains_key(k);
        let form = if has("constant") {
            only(object, &["constant"])?;
            Mapping::Constant(object["constant"].clone())
        } else if has("version") {
            only(object, &["version"])?;
            Mapping::Version
        } else if has("for_field") || has("for_mapping") {
            only(object, &["for_field", "for_mapping"])?;
            let over = match object.get("for_field") {
                Some(Value::String(field)) => ListSource::Field(field.clone()),
                Some(mapping @ Value::Object(_)) => ListSource::Mapping(Box::new(Mapping::parse(mapping)?)),
                _ => return err("`for_field` must be a field name or a mapping object"),
            };
            let each =
                object.get("for_mapping").ok_or_else(|| ParseError("`for_field` without `for_mapping`".into()))?;
            Mapping::ForEach { over, each: Box::new(Mapping::parse(each)?) }
        } else if has("if_mapping") {
            only(object, &["if_mapping", "then_mapping", "else_mapping"])?;
            let condition = parse_condition(&object["if_mapping"])?;
            let branch = |k: &str| match object.get(k) {
                Some(m) => Mapping::parse(m).map(Box::new),
                None => Ok(Box::new(Mapping::Constant(Value::Null))),
            };
            Mapping::If { condition, then: branch("then_mapping")?, otherwise: branch("else_mapping")? }
        } else if has("output_key") {
            only(object, &["output_key", "path", "ignore_missing"])?;
            let output_key = string_field(object, "output_key")?;
            let path = parse_path(object.get("path").ok_or_else(|| ParseError("`output_key` without `path`".into()))?)?;
            if path.is_empty() {
                return err("`output_key` needs a non-empty `path`");
            }
            Mapping::PathOutput { path, output_key, ignore_missing: ignore_missing(object)? }
        } else if has("field") {
            only(object, &["field", "path", "ignore_missing"])?;
            let field = string_field(object, "field")?;
            match (object.get("path"), ignore_missing(object)?) {
                (None, false) => Mapping::Field(field),
                (path, ignore_missing) => Mapping::PathField {
                    path: path.map(parse_path).transpose()?.unwrap_or_default(),
                    field,
                    ignore_missing,
                },
            }
        } else {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            return err(format!("unknown mapping form with keys {keys:?}"));
        };
        Ok(form)
    }

    /// Whether this mapping yields a stack-output reference, known without evaluating it.
    /// `None` when it depends on the data (a condition whose branches differ).
    pub fn yields_output_key(&self) -> Option<bool> {
        match self {
            Mapping::StackOutput { .. } | Mapping::PathOutput { .. } => Some(true),
            Mapping::If { then, otherwise, .. } => match (then.yields_output_key(), otherwise.yields_output_key()) {
                (Some(a), Some(b)) if a == b => Some(a),
                _ => None,
            },
            _ => Some(false),
        }
    }
}

fn only(object: &Map<String, Value>, allowed: &[&str]) -> Result<(), ParseError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => err(format!("unexpected key `{extra}` in a mapping with {allowed:?}")),
        None => Ok(()),
    }
}

fn string_field(object: &Map<String, Value>, key: &str) -> Result<String, ParseError> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => err(format!("`{key}` must be a string")),
    }
}

fn ignore_missing(object: &Map<String, Value>) -> Result<bool, ParseError> {
    match object.get("ignore_missing") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => err(format!("`ignore_missing` must be a boolean, found `{other}`")),
    }
}

fn parse_path(value: &Value) -> Result<Vec<Step>, ParseError> {
    let Value::Array(steps) = value else {
        return err("`path` must be a list of steps");
    };
    steps
        .iter()
        .map(|step| match step {
            Value::String(field) if !field.is_empty() => Ok(Step::Relation(field.clone())),
            Value::Object(object) => {
                only(object, &["type", "id"])?;
                Ok(Step::Typed { resource_type: string_field(object, "type")?, id_field: string_field(object, "id")? })
            }
            other => err(format!("path step `{other}` is neither a field name nor {{\"type\", \"id\"}}")),
        })
        .collect()
}

fn parse_condition(value: &Value) -> Result<Condition, ParseError> {
    let Some((op, operands)) = value.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return err("`if_mapping` must be an object with one operator");
    };
    let [a, b] = operands.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return err(format!("`{op}` needs a list of two mappings"));
    };
    let (a, b) = (Box::new(Mapping::parse(a)?), Mapping::parse(b)?);
    match op.as_str() {
        "equal" => Ok(Condition::Equal(a, Box::new(b))),
        "regexp" => {
            let pattern = match &b {
                Mapping::Constant(Value::String(p)) => Pattern::Compiled(compile_match_pattern(p)?),
                _ => Pattern::Computed(Box::new(b)),
            };
            Ok(Condition::Regexp { subject: a, pattern })
        }
        other => err(format!("unknown condition operator `{other}` (expected equal or regexp)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Mapping, ParseError> {
        Mapping::parse(&v)
    }

    #[test]
    fn string_forms() {
        assert!(matches!(parse(json!("Pid")).unwrap(), Mapping::Field(f) if f == "id"));
        assert!(matches!(parse(json!("C60")).unwrap(), Mapping::Constant(Value::String(s)) if s == "60"));
        assert!(matches!(parse(json!("C")).unwrap(), Mapping::Constant(Value::String(s)) if s.is_empty()));
        assert!(matches!(parse(json!("Vauto_filled")).unwrap(), Mapping::Version));
        let Mapping::ForeignField { hops, field } = parse(json!("Fa+a_id:b+b_id:ip")).unwrap() else { panic!() };
        assert_eq!((hops.len(), field.as_str()), (2, "ip"));
        assert!(matches!(parse(json!("Mnetwork:network_id:id")).unwrap(), Mapping::StackOutput { .. }));
        assert!(matches!(parse(json!("Oprimary:bgp_peer_ip")).unwrap(), Mapping::ObjectField { .. }));
        let Mapping::Concat(parts) = parse(json!("ACgw_interface_&Pservice_type")).unwrap() else { panic!() };
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn malformed_strings_are_explained() {
        for (bad, needle) in [
            ("", "empty"),
            ("Xfoo", "unknown mapping prefix `X`"),
            ("P", "empty field"),
            ("Fip", "at least one"),
            ("Fa_id:ip", "not `type+fk`"),
            ("Mnetwork:id", "type:fk:output_key"),
            ("Oprimary", "object:field"),
            ("ACx&Q", "part"),
        ] {
            let e = parse(json!(bad)).unwrap_err();
            assert!(e.0.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn object_forms() {
        assert!(matches!(parse(json!({"constant": 3})).unwrap(), Mapping::Constant(v) if v == json!(3)));
        assert!(matches!(parse(json!({"field": "x"})).unwrap(), Mapping::Field(_)));
        let m = parse(
            json!({"field": "id", "path": [{"type": "public_ip", "id": "public_ip_id"}], "ignore_missing": true}),
        )
        .unwrap();
        assert!(matches!(m, Mapping::PathField { ignore_missing: true, .. }));
        let m = parse(json!({"path": ["vnf_instance_id"], "output_key": "server_id"})).unwrap();
        assert_eq!(m.yields_output_key(), Some(true));
        let m = parse(json!({"for_field": "fixed_ips", "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}], "output_key": "id"}})).unwrap();
        assert!(matches!(m, Mapping::ForEach { over: ListSource::Field(_), .. }));
        let m = parse(
            json!({"if_mapping": {"regexp": [{"field": "device_owner"}, {"constant": "network:dhcp|network:empty"}]},
            "then_mapping": {"constant": null}, "else_mapping": {"constant": "port"}}),
        )
        .unwrap();
        assert!(matches!(m, Mapping::If { condition: Condition::Regexp { pattern: Pattern::Compiled(_), .. }, .. }));
    }

    #[test]
    fn malformed_objects_are_explained() {
        for (bad, needle) in [
            (json!({"fields": "x"}), "unknown mapping form"),
            (json!({"field": "x", "extra": 1}), "unexpected key `extra`"),
            (json!({"field": 3}), "`field` must be a string"),
            (json!({"output_key": "id"}), "without `path`"),
            (json!({"field": "x", "path": "y"}), "list of steps"),
            (json!({"field": "x", "path": [3]}), "path step"),
            (json!({"for_field": "x"}), "without `for_mapping`"),
            (json!({"if_mapping": {"less": [{"constant": 1}, {"constant": 2}]}}), "unknown condition operator"),
            (json!({"if_mapping": {"equal": [{"constant": 1}]}}), "two mappings"),
            (json!({"if_mapping": {"regexp": [{"field": "a"}, {"constant": "("}]}}), "bad regexp"),
            (json!(3), "string or an object"),
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert!(e.0.contains(needle), "{bad}: {e}");
        }
    }
}
