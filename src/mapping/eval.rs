//! Evaluation of a [`Mapping`] against the resource index (PROTOCOL.md §4.1–4.5).

use super::index::{Relations, ResourceIndex};
use super::parse::{Condition, ListSource, Mapping, Pattern, Step, compile_match_pattern};
use crate::protocol::{Body, OutputRef, Param, ParamValue, ResourceRef};
use serde_json::{Map, Value};
use std::cell::Cell;

/// What every evaluation reads besides the current object.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub index: &'a ResourceIndex,
    pub relations: &'a Relations,
    /// The job version.
    pub version: u64,
}

/// Which traversals a param's `resources` hold (PROTOCOL.md §4.5).
#[derive(Clone, Copy)]
pub enum Traversal<'a> {
    /// A `create` job: each reference once.
    Once,
    /// Every other job: the traversal of the previously processed body, then that of the new one.
    Twice { previous: &'a Body },
}

/// The value a mapping produced, before it becomes a param entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Produced {
    Value(Value),
    OutputKey(OutputRef),
    List(Vec<OutputRef>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub produced: Produced,
    pub resources: Vec<ResourceRef>,
}

impl Evaluated {
    fn value(value: Value) -> Self {
        Evaluated { produced: Produced::Value(value), resources: Vec::new() }
    }
}

/// Why a mapping could not be evaluated against this data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("field `{field}` of {owner} is {problem}")]
    BadReference { field: String, owner: String, problem: String },
    #[error("{resource_type} `{id}` is not in the config store")]
    MissingResource { resource_type: String, id: String },
    #[error("no relation `{field}` from type `{resource_type}` in the relation map")]
    NoRelation { resource_type: String, field: String },
    #[error("{0}")]
    Shape(String),
    #[error("`for_field` loops over more than {MAX_LOOP_ITEMS} items in all: the limit of one mapping")]
    TooManyItems,
}

/// The items all the `for_field` loops of one evaluation may visit together. The corpus's
/// longest list has a handful (a port's fixed IPs, a group's members); loops nest, and each item
/// may walk to other resources, so without a bound one resource's mapping could take the
/// planner's time for hours.
pub const MAX_LOOP_ITEMS: usize = 10_000;

/// Evaluates one `parameter_mappings` entry of a resource into its param entry.
pub fn evaluate_param(
    name: &str,
    mapping: &Mapping,
    scope: Scope<'_>,
    resource_type: &str,
    body: &Body,
    traversal: Traversal<'_>,
) -> Result<Param, EvalError> {
    let current = Value::Object(body.clone());
    let evaluated = evaluate(mapping, scope, &current, resource_type)?;
    let mut resources = match traversal {
        Traversal::Once => Vec::new(),
        // The old references may be gone from the store by now (a resource deleted since); the
        // dependency they would add is then moot, so the new traversal stands in for them.
        Traversal::Twice { previous } => evaluate(mapping, scope, &Value::Object(previous.clone()), resource_type)
            .map(|old| old.resources)
            .unwrap_or_else(|_| evaluated.resources.clone()),
    };
    resources.extend(evaluated.resources);
    let value = match evaluated.produced {
        Produced::Value(v) => ParamValue::Value(v),
        Produced::OutputKey(r) => ParamValue::OutputKey(r),
        Produced::List(items) => ParamValue::List(
            items
                .into_iter()
                .map(|r| Param { param: name.to_owned(), value: ParamValue::OutputKey(r), resources: Vec::new() })
                .collect(),
        ),
    };
    Ok(Param { param: name.to_owned(), value, resources })
}

/// Evaluates `mapping` with `current` as the current object, of type `current_type`.
pub fn evaluate(
    mapping: &Mapping,
    scope: Scope<'_>,
    current: &Value,
    current_type: &str,
) -> Result<Evaluated, EvalError> {
    eval(mapping, scope, current, current_type, &Cell::new(MAX_LOOP_ITEMS))
}

/// [`evaluate`], with what is left of the evaluation's [`MAX_LOOP_ITEMS`].
fn eval(
    mapping: &Mapping,
    scope: Scope<'_>,
    current: &Value,
    current_type: &str,
    items_left: &Cell<usize>,
) -> Result<Evaluated, EvalError> {
    match mapping {
        Mapping::Field(field) => Ok(Evaluated::value(field_of(current, field, current_type)?)),
        Mapping::Constant(value) => Ok(Evaluated::value(value.clone())),
        Mapping::Version => Ok(Evaluated::value(Value::from(scope.version))),
        Mapping::ObjectField { object, field } => {
            let value = match field_of(current, object, current_type)? {
                Value::Null => Value::Null,
                inner @ Value::Object(_) => field_of(&inner, field, &format!("{current_type}.{object}"))?,
                other => {
                    return Err(bad_reference(object, current_type, format!("{}, not an object", kind_of(&other))));
                }
            };
            Ok(Evaluated::value(value))
        }
        Mapping::ForeignField { hops, field } => {
            let mut resources = Vec::with_capacity(hops.len());
            let mut cur = current.clone();
            let mut cur_type = current_type.to_owned();
            for hop in hops {
                let id = reference_id(&cur, &hop.fk, &cur_type)?
                    .ok_or_else(|| bad_reference(&hop.fk, &cur_type, "empty or absent".into()))?;
                cur = Value::Object(lookup(scope, &hop.resource_type, &id)?.clone());
                resources.push(ResourceRef::new(&hop.resource_type, id));
                cur_type.clone_from(&hop.resource_type);
            }
            Ok(Evaluated { produced: Produced::Value(field_of(&cur, field, &cur_type)?), resources })
        }
        Mapping::StackOutput { resource_type, fk, output_key } => {
            let id = reference_id(current, fk, current_type)?
                .ok_or_else(|| bad_reference(fk, current_type, "empty or absent".into()))?;
            Ok(output_ref(output_key, resource_type, id, Vec::new()))
        }
        Mapping::Concat(parts) => {
            let mut text = String::new();
            let mut resources = Vec::new();
            for part in parts {
                let evaluated = eval(part, scope, current, current_type, items_left)?;
                let Produced::Value(value) = evaluated.produced else {
                    return Err(EvalError::Shape("a stack output cannot be part of a concatenation".into()));
                };
                text.push_str(&python_str(&value));
                resources.extend(evaluated.resources);
            }
            Ok(Evaluated { produced: Produced::Value(Value::String(text)), resources })
        }
        Mapping::PathField { path, field, ignore_missing } => {
            match walk(scope, path, current, current_type, *ignore_missing, true)? {
                Walked::Missing => Ok(Evaluated::value(Value::String(String::new()))),
                Walked::Reached { resources, body, resource_type, .. } => {
                    let target = body.map(|b| Value::Object(b.clone())).unwrap_or_else(|| current.clone());
                    Ok(Evaluated { produced: Produced::Value(field_of(&target, field, &resource_type)?), resources })
                }
            }
        }
        Mapping::PathOutput { path, output_key, ignore_missing } => {
            match walk(scope, path, current, current_type, *ignore_missing, false)? {
                Walked::Missing => Ok(Evaluated::value(Value::String(String::new()))),
                Walked::Reached { resources, resource_type, id, .. } => {
                    Ok(output_ref(output_key, &resource_type, id, resources))
                }
            }
        }
        Mapping::ForEach { over, each } => for_each(scope, over, each, current, current_type, items_left),
        Mapping::If { condition, then, otherwise } => {
            let branch = if holds(condition, scope, current, current_type, items_left)? { then } else { otherwise };
            eval(branch, scope, current, current_type, items_left)
        }
    }
}

fn output_ref(output_key: &str, resource_type: &str, id: String, mut resources: Vec<ResourceRef>) -> Evaluated {
    if resources.is_empty() {
        resources.push(ResourceRef::new(resource_type, id.clone()));
    }
    Evaluated {
        produced: Produced::OutputKey(OutputRef {
            output_key: output_key.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: id,
        }),
        resources,
    }
}

fn for_each(
    scope: Scope<'_>,
    over: &ListSource,
    each: &Mapping,
    current: &Value,
    current_type: &str,
    items_left: &Cell<usize>,
) -> Result<Evaluated, EvalError> {
    let (list, mut resources) = match over {
        ListSource::Field(field) => (field_of(current, field, current_type)?, Vec::new()),
        ListSource::Mapping(mapping) => match eval(mapping, scope, current, current_type, items_left)? {
            Evaluated { produced: Produced::Value(v), resources } => (v, resources),
            _ => return Err(EvalError::Shape("`for_field` mapping must produce a list, not a stack output".into())),
        },
    };
    let items = match list {
        Value::Array(items) => items,
        // An absent list is an empty one: nothing to iterate.
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        other => return Err(EvalError::Shape(format!("`for_field` must produce a list, found {}", kind_of(&other)))),
    };
    // Counted before the first item is visited: a list too long costs nothing but its length.
    items_left.set(items_left.get().checked_sub(items.len()).ok_or(EvalError::TooManyItems)?);
    let mut values = Vec::new();
    let mut outputs = Vec::new();
    for item in &items {
        let evaluated = eval(each, scope, item, current_type, items_left)?;
        resources.extend(evaluated.resources);
        match evaluated.produced {
            Produced::Value(v) => values.push(v),
            Produced::OutputKey(r) => outputs.push(r),
            Produced::List(_) => return Err(EvalError::Shape("nested `for_mapping` lists are not supported".into())),
        }
    }
    let produced = match (values.is_empty(), outputs.is_empty()) {
        (true, true) if each.yields_output_key() == Some(true) => Produced::List(Vec::new()),
        (_, true) => Produced::Value(Value::Array(values)),
        (true, false) => Produced::List(outputs),
        (false, false) => return Err(EvalError::Shape("`for_mapping` mixes values and stack outputs".into())),
    };
    Ok(Evaluated { produced, resources })
}

fn holds(
    condition: &Condition,
    scope: Scope<'_>,
    current: &Value,
    current_type: &str,
    items_left: &Cell<usize>,
) -> Result<bool, EvalError> {
    let plain = |m: &Mapping| -> Result<Value, EvalError> {
        match eval(m, scope, current, current_type, items_left)?.produced {
            Produced::Value(v) => Ok(v),
            _ => Err(EvalError::Shape("a condition operand cannot be a stack output".into())),
        }
    };
    match condition {
        Condition::Equal(a, b) => Ok(plain(a)? == plain(b)?),
        Condition::Regexp { subject, pattern } => {
            let subject = plain(subject)?;
            let compiled;
            let regex = match pattern {
                Pattern::Compiled(regex) => regex,
                Pattern::Computed(m) => {
                    let Value::String(p) = plain(m)? else {
                        return Err(EvalError::Shape("a regexp pattern must be a string".into()));
                    };
                    compiled = compile_match_pattern(&p).map_err(|e| EvalError::Shape(e.0))?;
                    &compiled
                }
            };
            // A missing subject matches nothing.
            Ok(subject.as_str().is_some_and(|s| regex.is_match(s)))
        }
    }
}

enum Walked<'s> {
    /// `ignore_missing` and a step led nowhere.
    Missing,
    Reached {
        resources: Vec<ResourceRef>,
        body: Option<&'s Body>,
        resource_type: String,
        id: String,
    },
}

/// Follows a `path`. The last resource's body is needed only to read a field from it
/// (`need_last_body`); a stack-output reference names the resource without reading it.
fn walk<'s>(
    scope: Scope<'s>,
    path: &[Step],
    current: &Value,
    current_type: &str,
    ignore_missing: bool,
    need_last_body: bool,
) -> Result<Walked<'s>, EvalError> {
    let mut resources = Vec::with_capacity(path.len());
    let mut cur: Option<&Body> = None;
    let mut cur_type = current_type.to_owned();
    let mut last_id = String::new();
    for (n, step) in path.iter().enumerate() {
        let here = cur.map(|b| Value::Object(b.clone()));
        let here = here.as_ref().unwrap_or(current);
        let (target_type, id) = match step {
            Step::Relation(field) => {
                let target = scope
                    .relations
                    .target(&cur_type, field)
                    .ok_or_else(|| EvalError::NoRelation { resource_type: cur_type.clone(), field: field.clone() })?;
                (target.to_owned(), reference_id(here, field, &cur_type)?)
            }
            Step::Typed { resource_type, id_field } if id_field.is_empty() => match here {
                Value::String(id) if !id.is_empty() => (resource_type.clone(), Some(id.clone())),
                Value::String(_) | Value::Null => (resource_type.clone(), None),
                other => {
                    return Err(EvalError::Shape(format!(
                        "path step with `id: \"\"` needs an id, found {}",
                        kind_of(other)
                    )));
                }
            },
            Step::Typed { resource_type, id_field } => {
                (resource_type.clone(), reference_id(here, id_field, &cur_type)?)
            }
        };
        let Some(id) = id else {
            if ignore_missing {
                return Ok(Walked::Missing);
            }
            let field = match step {
                Step::Relation(f) => f.clone(),
                Step::Typed { id_field, .. } => id_field.clone(),
            };
            return Err(bad_reference(&field, &cur_type, "empty or absent".into()));
        };
        let is_last = n + 1 == path.len();
        cur = match scope.index.get(&target_type, &id) {
            Some(body) => Some(body),
            None if is_last && !need_last_body => None,
            None if ignore_missing => return Ok(Walked::Missing),
            None => return Err(EvalError::MissingResource { resource_type: target_type, id }),
        };
        resources.push(ResourceRef::new(&target_type, id.clone()));
        cur_type = target_type;
        last_id = id;
    }
    Ok(Walked::Reached { resources, body: cur, resource_type: cur_type, id: last_id })
}

fn lookup<'s>(scope: Scope<'s>, resource_type: &str, id: &str) -> Result<&'s Body, EvalError> {
    scope
        .index
        .get(resource_type, id)
        .ok_or_else(|| EvalError::MissingResource { resource_type: resource_type.to_owned(), id: id.to_owned() })
}

/// What a value is, for an error: never the value itself, which may be a password (any field can
/// be mapped) or megabytes long, and goes to `/state` and the logs.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `cur[field]`, `null` when absent.
fn field_of(current: &Value, field: &str, owner: &str) -> Result<Value, EvalError> {
    match current {
        Value::Object(object) => Ok(object.get(field).cloned().unwrap_or(Value::Null)),
        other => Err(EvalError::Shape(format!("cannot read field `{field}` of {owner}: it is {}", kind_of(other)))),
    }
}

/// The id a reference field holds: `None` when absent, null or empty.
fn reference_id(current: &Value, field: &str, owner: &str) -> Result<Option<String>, EvalError> {
    match field_of(current, field, owner)? {
        Value::String(id) if id.is_empty() => Ok(None),
        Value::String(id) => Ok(Some(id)),
        Value::Null => Ok(None),
        other => Err(bad_reference(field, owner, format!("{}, not an id", kind_of(&other)))),
    }
}

fn bad_reference(field: &str, owner: &str, problem: String) -> EvalError {
    EvalError::BadReference { field: field.to_owned(), owner: owner.to_owned(), problem }
}

/// Python's `str()` of a decoded JSON value, as the original concatenated parts with it.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!("{{{}}}", repr_entries(map)),
    }
}

fn repr_entries(map: &Map<String, Value>) -> String {
    map.iter()
        .map(|(k, v)| format!("{}: {}", python_repr(&Value::String(k.clone())), python_repr(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn evaluated(mapping: Value, current: Value) -> Result<Evaluated, EvalError> {
        let (index, relations) = (ResourceIndex::default(), Relations::default());
        let scope = Scope { index: &index, relations: &relations, version: 1 };
        evaluate(&Mapping::parse(&mapping).unwrap(), scope, &current, "port")
    }

    #[test]
    fn loops_are_bounded_in_all_not_one_by_one() {
        let each_name = json!({"for_field": "items", "for_mapping": {"field": "name"}});
        let items = |n: usize| json!({"items": vec![json!({"name": "x"}); n]});
        let at_limit = evaluated(each_name.clone(), items(MAX_LOOP_ITEMS)).unwrap();
        assert!(matches!(at_limit.produced, Produced::Value(Value::Array(v)) if v.len() == MAX_LOOP_ITEMS));
        // Refused on the list's length, before any item is visited.
        assert_eq!(evaluated(each_name, items(100_000)), Err(EvalError::TooManyItems));
        // 200 lists of 100: each loop is short, all of them together are not.
        let nested =
            json!({"for_field": "rows", "for_mapping": {"for_field": "items", "for_mapping": {"field": "name"}}});
        let rows = json!({"rows": vec![items(100); 200]});
        assert_eq!(evaluated(nested, rows), Err(EvalError::TooManyItems));
    }
}
