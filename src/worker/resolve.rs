//! Turning a job's params into what the Heat call needs (PROTOCOL.md §4.6, §4.8): `output_key`
//! and `list` params resolved from the dependencies' `/esi-worker/heat_stacks` records, then split
//! into the stack timeout, the Jinja2 context (`jinja_*`) and the Heat parameters (the rest).

use crate::protocol::{HeatStackRecord, OutputRef, Param, ParamValue};
use serde_json::{Map, Value};

pub const HEAT_TIMEOUT: &str = "heat_timeout";
pub const JINJA_PREFIX: &str = "jinja_";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    /// `heat_timeout` in minutes, if the template maps one.
    pub timeout_mins: Option<u64>,
    /// The only variables the template render sees.
    pub jinja: Map<String, Value>,
    /// Heat stack parameters.
    pub parameters: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("param `{param}`: {resource_type} `{resource_id}` has no heat_stacks record (its job has not run)")]
    MissingStack { param: String, resource_type: String, resource_id: String },
    #[error("param `{param}`: the stack of {resource_type} `{resource_id}` has no output `{output_key}`")]
    MissingOutput { param: String, resource_type: String, resource_id: String, output_key: String },
    #[error("`heat_timeout` must be a whole number of minutes, found {0}")]
    BadTimeout(String),
}

/// Resolves every param; `stack_of(type, id)` reads a dependency's heat_stacks record.
pub fn resolve<'a>(
    params: &[Param],
    stack_of: impl Fn(&str, &str) -> Option<&'a HeatStackRecord>,
) -> Result<Resolved, ResolveError> {
    let output = |param: &str, reference: &OutputRef| -> Result<Value, ResolveError> {
        let record =
            stack_of(&reference.resource_type, &reference.resource_id).ok_or_else(|| ResolveError::MissingStack {
                param: param.to_owned(),
                resource_type: reference.resource_type.clone(),
                resource_id: reference.resource_id.clone(),
            })?;
        record.output.iter().find(|o| o.output_key == reference.output_key).map(|o| o.output_value.clone()).ok_or_else(
            || ResolveError::MissingOutput {
                param: param.to_owned(),
                resource_type: reference.resource_type.clone(),
                resource_id: reference.resource_id.clone(),
                output_key: reference.output_key.clone(),
            },
        )
    };
    let mut resolved = Resolved::default();
    for param in params {
        let value = match &param.value {
            ParamValue::Value(v) => v.clone(),
            ParamValue::OutputKey(reference) => output(&param.param, reference)?,
            ParamValue::List(items) => Value::Array(
                items
                    .iter()
                    .map(|item| match &item.value {
                        ParamValue::OutputKey(reference) => output(&param.param, reference),
                        ParamValue::Value(v) => Ok(v.clone()),
                        ParamValue::List(_) => Ok(Value::Null),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        if param.param == HEAT_TIMEOUT {
            resolved.timeout_mins = Some(timeout_minutes(&value)?);
        } else if param.param.starts_with(JINJA_PREFIX) {
            resolved.jinja.insert(param.param.clone(), value);
        } else {
            resolved.parameters.insert(param.param.clone(), value);
        }
    }
    Ok(resolved)
}

/// `"13"` (from `C13`) or `3` (from `{"constant": 3}`).
fn timeout_minutes(value: &Value) -> Result<u64, ResolveError> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|m| *m > 0)
    .ok_or_else(|| ResolveError::BadTimeout(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HeatOutput, ResourceRef};
    use serde_json::json;

    fn param(name: &str, value: ParamValue) -> Param {
        Param { param: name.into(), value, resources: vec![ResourceRef::new("x", "y")] }
    }

    fn reference(key: &str, id: &str) -> OutputRef {
        OutputRef { output_key: key.into(), resource_type: "subnet".into(), resource_id: id.into() }
    }

    #[test]
    fn splits_and_resolves() {
        let stack = HeatStackRecord {
            id: "subnet:s1".into(),
            stack_id: "subnet_s1".into(),
            tenant_id: "t".into(),
            stack_status: "CREATE_COMPLETE".into(),
            status_reason: String::new(),
            output: vec![HeatOutput {
                output_value: json!("a6c0"),
                description: String::new(),
                output_key: "id".into(),
                extra: Map::new(),
            }],
        };
        let params = vec![
            param("heat_timeout", ParamValue::Value(json!("13"))),
            param("name", ParamValue::Value(json!("p1"))),
            param("subnet", ParamValue::OutputKey(reference("id", "s1"))),
            param(
                "jinja_subnets",
                ParamValue::List(vec![param("jinja_subnets", ParamValue::OutputKey(reference("id", "s1")))]),
            ),
        ];
        let resolved = resolve(&params, |t, id| (t == "subnet" && id == "s1").then_some(&stack)).unwrap();
        assert_eq!(resolved.timeout_mins, Some(13));
        assert_eq!(Value::Object(resolved.jinja), json!({"jinja_subnets": ["a6c0"]}));
        assert_eq!(Value::Object(resolved.parameters), json!({"name": "p1", "subnet": "a6c0"}));

        let missing = resolve(&[param("s", ParamValue::OutputKey(reference("id", "s2")))], |_, _| None).unwrap_err();
        assert!(missing.to_string().contains("subnet `s2` has no heat_stacks record"), "{missing}");
        let no_key =
            resolve(&[param("s", ParamValue::OutputKey(reference("cidr", "s1")))], |_, _| Some(&stack)).unwrap_err();
        assert!(matches!(no_key, ResolveError::MissingOutput { .. }));
        assert_eq!(
            resolve(&[param("heat_timeout", ParamValue::Value(json!(3)))], |_, _| None).unwrap().timeout_mins,
            Some(3)
        );
        assert!(resolve(&[param("heat_timeout", ParamValue::Value(json!("soon")))], |_, _| None).is_err());
    }
}
