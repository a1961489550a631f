//! Which heat template a resource uses (`template_mappings`, PROTOCOL.md §5.1) and the params its
//! job carries (`parameter_mappings`, §4).

use super::eval::{EvalError, Evaluated, Produced, Scope, Traversal, evaluate, evaluate_param};
use super::parse::{Mapping, ParseError};
use crate::protocol::{Body, HeatTemplate, Param};
use serde_json::Value;
use std::collections::BTreeMap;

/// A mapping that failed to parse, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`, param `{param}`: {reason}")]
pub struct MappingError {
    pub template: String,
    pub param: String,
    pub reason: ParseError,
}

/// A param that failed to evaluate, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`, param `{param}`: {reason}")]
pub struct ParamError {
    pub template: String,
    pub param: String,
    pub reason: EvalError,
}

/// `{handler: {resource_type: mapping}}`, parsed. The shipped default is
/// `config/template_mappings.json`.
#[derive(Debug, Clone, Default)]
pub struct TemplateMappings {
    by_type: BTreeMap<String, (String, Mapping)>,
}

impl TemplateMappings {
    pub fn parse(value: &Value) -> Result<Self, MappingError> {
        let located = |handler: &str, param: &str, reason: String| MappingError {
            template: format!("template_mappings.{handler}"),
            param: param.to_owned(),
            reason: ParseError(reason),
        };
        let Value::Object(handlers) = value else {
            return Err(located("", "", "must be an object {handler: {resource_type: mapping}}".into()));
        };
        let mut by_type = BTreeMap::new();
        for (handler, types) in handlers {
            let Value::Object(types) = types else {
                return Err(located(handler, "", "must be an object {resource_type: mapping}".into()));
            };
            for (resource_type, mapping) in types {
                let mapping = Mapping::parse(mapping).map_err(|e| located(handler, resource_type, e.0))?;
                if by_type.insert(resource_type.clone(), (handler.clone(), mapping)).is_some() {
                    return Err(located(handler, resource_type, "type is mapped by two handlers".into()));
                }
            }
        }
        Ok(TemplateMappings { by_type })
    }

    /// The handler and mapping of a resource type, if it has one.
    pub fn get(&self, resource_type: &str) -> Option<(&str, &Mapping)> {
        self.by_type.get(resource_type).map(|(h, m)| (h.as_str(), m))
    }
}

/// A heat template with its `parameter_mappings` parsed.
#[derive(Debug, Clone)]
pub struct ParsedTemplate {
    pub template: HeatTemplate,
    pub params: Vec<(String, Mapping)>,
}

impl ParsedTemplate {
    pub fn parse(template: HeatTemplate) -> Result<Self, MappingError> {
        let params = template
            .parameter_mappings
            .iter()
            .map(|(name, mapping)| {
                Mapping::parse(mapping).map(|m| (name.clone(), m)).map_err(|reason| MappingError {
                    template: template.id.clone(),
                    param: name.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ParsedTemplate { template, params })
    }

    /// Evaluates every param of this template for one resource (one entry per mapping key).
    pub fn evaluate_params(
        &self,
        scope: Scope<'_>,
        resource_type: &str,
        body: &Body,
        traversal: Traversal<'_>,
    ) -> Result<Vec<Param>, ParamError> {
        self.params
            .iter()
            .map(|(name, mapping)| {
                evaluate_param(name, mapping, scope, resource_type, body, traversal).map_err(|reason| ParamError {
                    template: self.template.id.clone(),
                    param: name.clone(),
                    reason,
                })
            })
            .collect()
    }
}

/// The heat templates known from `/config/v2.0/heat_templates`, by id. A template whose
/// mappings do not parse is kept with its error, so resources using it can be told why.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    templates: BTreeMap<String, Result<ParsedTemplate, MappingError>>,
}

impl TemplateSet {
    pub fn insert(&mut self, template: HeatTemplate) {
        self.templates.insert(template.id.clone(), ParsedTemplate::parse(template));
    }

    pub fn remove(&mut self, id: &str) {
        self.templates.remove(id);
    }

    pub fn get(&self, id: &str) -> Option<&Result<ParsedTemplate, MappingError>> {
        self.templates.get(id)
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

/// Whether a resource gets jobs (PROTOCOL.md §5.1).
#[derive(Debug)]
pub enum Workability<'t> {
    /// It has a template: jobs run it with the template's handler.
    Workable(&'t ParsedTemplate),
    /// Acknowledged with `/state` READ_COMPLETE; never a job.
    NonWorkable(NonWorkable),
    /// Its template exists but cannot be used: an error for the resource's `/state`.
    Broken(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonWorkable {
    /// The type has no entry in `template_mappings`.
    Unmapped,
    /// The mapping yielded `null` (for example a DHCP port).
    NullTemplate,
    /// The mapping named a template that `/config/v2.0/heat_templates` does not hold.
    TemplateMissing(String),
}

/// Decides a resource's template.
pub fn select_template<'t>(
    mappings: &TemplateMappings,
    templates: &'t TemplateSet,
    scope: Scope<'_>,
    resource_type: &str,
    body: &Body,
) -> Workability<'t> {
    let Some((handler, mapping)) = mappings.get(resource_type) else {
        return Workability::NonWorkable(NonWorkable::Unmapped);
    };
    let id = match evaluate(mapping, scope, &Value::Object(body.clone()), resource_type) {
        Ok(Evaluated { produced: Produced::Value(Value::String(id)), .. }) => id,
        Ok(Evaluated { produced: Produced::Value(Value::Null), .. }) => {
            return Workability::NonWorkable(NonWorkable::NullTemplate);
        }
        Ok(other) => {
            return Workability::Broken(format!(
                "template mapping of `{resource_type}` produced {:?}, not a template id",
                other.produced
            ));
        }
        Err(e) => return Workability::Broken(format!("template mapping of `{resource_type}`: {e}")),
    };
    match templates.get(&id) {
        None => Workability::NonWorkable(NonWorkable::TemplateMissing(id)),
        Some(Err(e)) => Workability::Broken(e.to_string()),
        Some(Ok(template)) if template.template.handler != handler => Workability::Broken(format!(
            "template `{id}` has handler `{}` but template_mappings lists it under `{handler}`",
            template.template.handler
        )),
        Some(Ok(template)) => Workability::Workable(template),
    }
}
