//! What the operator's Gohan schemas tell the controller: which key prefix each resource type
//! lives under, which fields refer to which types (`_relations`) and which heat template each type
//! uses (`template_mappings`). All three are configuration files; the defaults shipped in
//! `config/` were derived from the corpus's schemas with `heat-reconciler import-schemas`.

use crate::mapping::{MappingError, Relations, TemplateMappings};
use crate::protocol::ResourceTypes;
use anyhow::Context as _;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const RESOURCE_TYPES_FILE: &str = "resource_types.json";
pub const RELATIONS_FILE: &str = "relations.json";
pub const TEMPLATE_MAPPINGS_FILE: &str = "template_mappings.json";

const DEFAULT_RESOURCE_TYPES: &str = include_str!("../config/resource_types.json");
const DEFAULT_RELATIONS: &str = include_str!("../config/relations.json");
const DEFAULT_TEMPLATE_MAPPINGS: &str = include_str!("../config/template_mappings.json");

/// The schema-derived configuration the planner needs.
#[derive(Debug, Clone)]
pub struct Schema {
    pub resource_types: ResourceTypes,
    pub relations: Relations,
    pub template_mappings: TemplateMappings,
}

impl Schema {
    /// The defaults shipped with the project.
    pub fn shipped() -> anyhow::Result<Self> {
        Schema::from_texts(DEFAULT_RESOURCE_TYPES, DEFAULT_RELATIONS, DEFAULT_TEMPLATE_MAPPINGS)
            .context("shipped schema configuration")
    }

    /// Reads the three files from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        Schema::from_texts(&read(RESOURCE_TYPES_FILE)?, &read(RELATIONS_FILE)?, &read(TEMPLATE_MAPPINGS_FILE)?)
            .with_context(|| format!("schema configuration in {}", dir.display()))
    }

    pub fn from_texts(resource_types: &str, relations: &str, template_mappings: &str) -> anyhow::Result<Self> {
        let template_mappings: Value = serde_json::from_str(template_mappings).context(TEMPLATE_MAPPINGS_FILE)?;
        Ok(Schema {
            resource_types: serde_json::from_str(resource_types).context(RESOURCE_TYPES_FILE)?,
            relations: serde_json::from_str(relations).context(RELATIONS_FILE)?,
            template_mappings: TemplateMappings::parse(&template_mappings)
                .map_err(|e: MappingError| anyhow::anyhow!(e))
                .context(TEMPLATE_MAPPINGS_FILE)?,
        })
    }
}

/// The three configuration documents, derived from a Gohan schema list
/// (`{"schemas": [...]}` as Gohan serves it, or a bare list).
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedSchema {
    pub resource_types: BTreeMap<String, String>,
    pub relations: BTreeMap<String, BTreeMap<String, String>>,
    /// `{"heat_worker": {type: metadata.template_path}}`.
    pub template_mappings: Value,
}

/// Derives the configuration as the original ResourceReader did at start-up: a type's prefix is
/// its schema `prefix`, its relations are the properties carrying `"relation"`, its template
/// mapping is `metadata.template_path`.
pub fn derive_from_gohan_schemas(schemas: &Value) -> anyhow::Result<DerivedSchema> {
    let list = match schemas {
        Value::Object(o) => o.get("schemas").and_then(Value::as_array),
        Value::Array(a) => Some(a),
        _ => None,
    }
    .context("expected {\"schemas\": [...]} or a list of schemas")?;
    let mut resource_types = BTreeMap::new();
    let mut relations = BTreeMap::new();
    let mut template_paths = Map::new();
    for schema in list {
        let id = schema.get("id").and_then(Value::as_str).context("a schema without a string `id`")?;
        if let Some(prefix) = schema.get("prefix").and_then(Value::as_str) {
            resource_types.insert(id.to_owned(), prefix.to_owned());
        }
        let properties = schema.pointer("/schema/properties").and_then(Value::as_object);
        let related = properties
            .into_iter()
            .flatten()
            .filter_map(|(field, property)| {
                let target = property.get("relation")?.as_str()?;
                Some((field.clone(), target.to_owned()))
            })
            .collect();
        relations.insert(id.to_owned(), related);
        if let Some(path) = schema.pointer("/metadata/template_path") {
            template_paths.insert(id.to_owned(), path.clone());
        }
    }
    let mut template_mappings = Map::new();
    template_mappings.insert("heat_worker".to_owned(), Value::Object(template_paths));
    Ok(DerivedSchema { resource_types, relations, template_mappings: Value::Object(template_mappings) })
}

impl DerivedSchema {
    /// Writes the three files into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, value: String| {
            let path = dir.join(name);
            std::fs::write(&path, value + "\n").with_context(|| format!("writing {}", path.display()))
        };
        write(RESOURCE_TYPES_FILE, serde_json::to_string_pretty(&self.resource_types)?)?;
        write(RELATIONS_FILE, serde_json::to_string_pretty(&self.relations)?)?;
        write(TEMPLATE_MAPPINGS_FILE, serde_json::to_string_pretty(&self.template_mappings)?)?;
        Ok(())
    }
}
