//! The `parameter_mappings` / `template_mappings` language (PROTOCOL.md §4–5): parse a mapping
//! into [`Mapping`], evaluate it against the [`ResourceIndex`], the [`Relations`] and the job
//! version, and decide which template a resource uses. Pure: no I/O.

pub(crate) mod eval;
pub(crate) mod index;
pub(crate) mod parse;
pub(crate) mod template;

pub use eval::{EvalError, Evaluated, Produced, Scope, Traversal, evaluate, evaluate_param};
pub use index::{Relations, ResourceIndex};
pub use parse::{Mapping, ParseError};
pub use template::{
    MappingError, NonWorkable, ParamError, ParsedTemplate, TemplateMappings, TemplateSet, Workability, select_template,
};
