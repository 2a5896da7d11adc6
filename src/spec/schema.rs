//! The spec's JSON Schema (`arachne schema`), derived from the same types the loader reads.
//!
//! The derived schema is widened to accept what the loader accepts besides plain JSON types:
//! any YAML scalar where text is expected (`name: 2024`), numbers written as text
//! (`concurrency: "8"`), `${ENV}` references in any value (substituted before the spec is
//! read), and an empty value (`scope:`) for a section whose keys all have defaults. What the
//! schema cannot say (exactly one of `every`, `cron`, `solar`; a valid regex; a known time
//! zone) is left to `arachne run`'s checks, which point at the line.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::model::CrawlSpec;

/// A string holding a `${VAR}` reference: its value is only known when the spec is loaded.
const ENV_REFERENCE: &str = r"\$\{";
/// A whole number written as text, as the loader reads it.
const INTEGER_TEXT: &str = r"^\s*[+-]?[0-9]+\s*$";
/// A number written as text, as the loader reads it.
const NUMBER_TEXT: &str = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$";

/// The JSON Schema (draft 2020-12) of a crawl spec, as printed by `arachne schema`.
///
/// Every key carries its doc comment as `description` and its default as `default`, so an
/// editor with the YAML language server completes keys and explains them as one types.
///
/// ```
/// let schema = arachne::spec::json_schema();
/// assert_eq!(schema["title"], "CrawlSpec");
/// assert!(schema["properties"]["fetch"].is_object());
/// assert_eq!(schema["required"], serde_json::json!(["name", "seeds"]));
/// ```
pub fn json_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<CrawlSpec>().to_value();
    widen(&mut schema);
    schema
}

/// Applies [`widen_one`] to every subschema, innermost first (so that a schema it wraps is
/// never visited again).
fn widen(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match key.as_str() {
                    // Values, not schemas: defaults and examples are left as they are.
                    "default" | "examples" | "const" | "enum" => {}
                    // An enum's variants: their `${ENV}` alternative is added once, below.
                    "oneOf" => value.as_array_mut().into_iter().flatten().for_each(widen_variant),
                    _ => widen(value),
                }
            }
            widen_one(map);
        }
        Value::Array(items) => items.iter_mut().for_each(widen),
        _ => {}
    }
}

/// Widens one variant of an enum, but not a variant that is one word (its `${ENV}`
/// alternative belongs to the whole enum).
fn widen_variant(variant: &mut Value) {
    if !is_word(variant) {
        widen(variant);
    }
}

/// Whether a schema is a fixed word (`const`/`enum`): a unit variant of an enum.
fn is_word(schema: &Value) -> bool {
    schema.get("const").is_some() || schema.get("enum").is_some()
}

/// Widens one subschema to what the loader accepts (see the module docs).
fn widen_one(schema: &mut Map<String, Value>) {
    if let Some(variants) = schema.remove("oneOf") {
        return widen_enum(schema, variants);
    }
    if schema.contains_key("enum") || schema.contains_key("const") {
        return wrap_in_any_of(schema);
    }
    let Some(mut types) = type_list(schema) else { return };
    let has = |types: &[String], t: &str| types.iter().any(|x| x == t);
    // A schema with a `pattern` already says which text it takes (durations, sizes).
    if !schema.contains_key("pattern") {
        let text = if has(&types, "integer") {
            Some(format!("{INTEGER_TEXT}|{ENV_REFERENCE}"))
        } else if has(&types, "number") {
            Some(format!("{NUMBER_TEXT}|{ENV_REFERENCE}"))
        } else if has(&types, "boolean") {
            Some(ENV_REFERENCE.to_string())
        } else {
            None
        };
        if let Some(pattern) = text {
            // `pattern` only constrains strings: a number keeps its own bounds.
            types.push("string".into());
            schema.insert("pattern".into(), json!(pattern));
        } else if has(&types, "string") {
            // Any YAML scalar is read as its text.
            types.extend(["number".into(), "boolean".into()]);
        }
    }
    let no_required = schema.get("required").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if has(&types, "array") || (has(&types, "object") && no_required) {
        // An empty value is an empty list, or a section of defaults.
        types.push("null".into());
    }
    types.dedup();
    let value = match types.as_slice() {
        [one] => json!(one),
        _ => json!(types),
    };
    schema.insert("type".into(), value);
}

/// The schema's `type`, as a list, when it has one.
fn type_list(schema: &Map<String, Value>) -> Option<Vec<String>> {
    let mut types: Vec<String> = match schema.get("type")? {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => return None,
    };
    let known = ["null", "boolean", "integer", "number", "string", "array", "object"];
    types.retain(|t| known.contains(&t.as_str()));
    (!types.is_empty()).then_some(types)
}

/// A serde enum (`oneOf` its variants): its unit variants may also be written as a
/// mapping with an empty value (`- stdout:` beside `- jsonl: FILE`), and the whole takes a
/// `${ENV}` reference. The variants are disjoint, so `anyOf` takes the same values as
/// `oneOf`, and lets the `${ENV}` alternative overlap them.
fn widen_enum(schema: &mut Map<String, Value>, variants: Value) {
    let mut variants = match variants {
        Value::Array(variants) => variants,
        other => vec![other],
    };
    let words: Vec<Value> = variants
        .iter()
        .filter_map(|v| v.get("const").cloned().or_else(|| v.get("enum").cloned()))
        .flat_map(|w| match w {
            Value::Array(ws) => ws,
            w => vec![w],
        })
        .collect();
    let has_mappings = variants.iter().any(|v| !is_word(v));
    if has_mappings {
        for word in words.iter().filter_map(Value::as_str) {
            variants.push(json!({
                "type": "object",
                "properties": { word: { "type": "null" } },
                "required": [word],
                "additionalProperties": false,
            }));
        }
    }
    if !words.is_empty() {
        variants.push(json!({ "type": "string", "pattern": ENV_REFERENCE }));
    }
    schema.insert("anyOf".into(), Value::Array(variants));
}

/// `enum`/`const` schemas also take a `${ENV}` reference; the description stays outside.
fn wrap_in_any_of(schema: &mut Map<String, Value>) {
    let mut inner = Map::new();
    for key in ["type", "enum", "const"] {
        if let Some(value) = schema.remove(key) {
            inner.insert(key.into(), value);
        }
    }
    let env = json!({ "type": "string", "pattern": ENV_REFERENCE });
    schema.insert("anyOf".into(), json!([Value::Object(inner), env]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widened(mut schema: Value) -> Value {
        widen(&mut schema);
        schema
    }

    #[test]
    fn integers_take_text_and_env() {
        let s = widened(json!({ "type": "integer", "minimum": 0 }));
        assert_eq!(s["type"], json!(["integer", "string"]));
        assert_eq!(s["minimum"], 0);
        assert!(s["pattern"].as_str().unwrap().contains(ENV_REFERENCE));
    }

    #[test]
    fn sections_take_null_only_without_required_keys() {
        assert_eq!(widened(json!({ "type": "object" }))["type"], json!(["object", "null"]));
        let s = widened(json!({ "type": "object", "required": ["name"] }));
        assert_eq!(s["type"], "object");
    }

    #[test]
    fn enums_take_env_once() {
        let s = widened(json!({ "description": "d", "type": "string", "enum": ["a", "b"] }));
        assert_eq!(s["description"], "d");
        assert_eq!(s["anyOf"][0], json!({ "type": "string", "enum": ["a", "b"] }));
        assert_eq!(s["anyOf"][1]["pattern"], ENV_REFERENCE);
    }

    #[test]
    fn enum_variants_take_env_once_and_unit_variants_take_an_empty_mapping() {
        let s = widened(json!({ "oneOf": [
            { "type": "string", "const": "stdout" },
            { "type": "object", "properties": { "jsonl": { "type": "string" } }, "required": ["jsonl"] },
        ] }));
        let variants = s["anyOf"].as_array().unwrap();
        assert_eq!(variants[0], json!({ "type": "string", "const": "stdout" }));
        assert_eq!(variants[2]["properties"]["stdout"]["type"], "null");
        assert_eq!(variants[3]["pattern"], ENV_REFERENCE);
        assert_eq!(variants.len(), 4);
    }

    #[test]
    fn defaults_are_left_alone() {
        let s = widened(json!({ "type": "object", "default": { "type": "quorum" } }));
        assert_eq!(s["default"], json!({ "type": "quorum" }));
    }
}
