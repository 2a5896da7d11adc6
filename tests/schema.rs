//! `arachne schema`: the JSON Schema an editor checks specs with. Every spec the project
//! ships (crawl.yaml, examples/, the docs' YAML blocks) validates against it; broken specs
//! do not; and on a set of edge cases the schema and the loader agree both ways.

use std::path::PathBuf;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The validator of whole specs, and one of fragments (a docs block showing one section:
/// the same schema without the required top-level keys).
fn validators() -> (jsonschema::Validator, jsonschema::Validator) {
    let schema = arachne::spec::json_schema();
    let whole = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let mut fragment = schema;
    fragment.as_object_mut().expect("an object schema").remove("required");
    (whole, jsonschema::validator_for(&fragment).expect("a valid fragment schema"))
}

fn yaml_to_json(text: &str, origin: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{origin}: not YAML: {e}"))
}

/// Every error of `value` against `validator`, one a line.
fn errors(validator: &jsonschema::Validator, value: &Value) -> String {
    validator.iter_errors(value).map(|e| format!("  {}: {e}\n", e.instance_path())).collect()
}

fn assert_valid(validator: &jsonschema::Validator, text: &str, origin: &str) {
    let value = yaml_to_json(text, origin);
    let errors = errors(validator, &value);
    assert!(errors.is_empty(), "{origin} does not validate against `arachne schema`:\n{errors}");
}

/// The ```yaml blocks of a Markdown file, with the line each starts at. A YAML block that
/// is not a crawl spec names its file after the language (```yaml prometheus.yml).
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut open, line.trim_end()) {
            (None, "```yaml") => open = Some((n + 1, String::new())),
            (Some(_), "```") => blocks.extend(open.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(open.is_none(), "an unclosed ```yaml block");
    blocks
}

#[test]
fn the_shipped_specs_validate() {
    let (whole, _) = validators();
    let mut specs = vec![root().join("crawl.yaml")];
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            specs.push(path);
        }
    }
    assert!(specs.len() >= 2, "crawl.yaml and at least one example spec: {specs:?}");
    for path in specs {
        let text = std::fs::read_to_string(&path).expect("readable spec");
        assert_valid(&whole, &text, &path.display().to_string());
    }
}

#[test]
fn every_yaml_block_of_the_docs_validates() {
    let (whole, fragment) = validators();
    let mut checked = 0;
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.push(root().join("README.md"));
    for doc in docs {
        let markdown = std::fs::read_to_string(&doc).expect("readable doc");
        for (line, text) in yaml_blocks(&markdown) {
            let origin = format!("{}:{line}", doc.display());
            // A block with a name is a whole spec; any other shows some sections of one.
            let is_whole = yaml_to_json(&text, &origin).get("name").is_some();
            assert_valid(if is_whole { &whole } else { &fragment }, &text, &origin);
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} YAML blocks found in docs/");
}

#[test]
fn the_loaders_test_specs_validate_when_the_loader_takes_them() {
    let (whole, _) = validators();
    let path = root().join("tests/fixtures/specs/design.yaml");
    arachne::spec::load_file(&path, arachne::spec::NO_OVERRIDES).expect("the design spec loads");
    assert_valid(&whole, &std::fs::read_to_string(&path).expect("readable"), "design.yaml");
}

const BASE: &str = "name: t\nseeds: [\"https://example.com/\"]\n";

/// Specs the loader takes in forms beyond plain JSON types: the schema must take them too.
const ACCEPTED: &[&str] = &[
    "scope:\n",
    "fetch: { concurrency: \"8\", timeout: 5, max_body: 64kib }\n",
    "fetch: { timeout: 1.5s, per_host: { rate: \"0.5\" } }\n",
    "fetch: { timeout: 500ms, max_body: 10MiB, robots_txt: ignore }\n",
    "sandbox: {}\nfetch: { user_agent: 2024 }\n",
    "output: [stdout, { jsonl: out.jsonl }]\n",
    "output:\n  - stdout\n  - jsonl: items.jsonl\n",
    "output:\n  - stdout:\n",
    "parse: { items: [{ name: a, match: \"/p/\", fields: { t: h1, l: \"a @href\" } }] }\n",
    "schedules: [{ name: s, every: 6h, action: reseed }]\n",
    "supervision: { strategy: rest_for_one, within: 1m }\n",
];

/// Broken specs: the loader refuses each, and so must the schema.
const REFUSED: &[(&str, &str)] = &[
    ("fetchh: {}\n", "an unknown top-level key"),
    ("fetch: { concurency: 8 }\n", "a misspelt nested key"),
    ("fetch: { concurrency: many }\n", "text where a number is expected"),
    ("fetch: { timeout: 30 parsecs }\n", "a duration without a known unit"),
    ("fetch: { max_body: 10 MiBs }\n", "a size without a known unit"),
    ("fetch: { robots_txt: maybe }\n", "an unknown enum value"),
    ("output: [{ stdout: now }]\n", "a value given to a word"),
    ("output: [{ csv: out.csv }]\n", "an unknown output kind"),
    ("sandbox: { port: 70000 }\n", "a port out of range"),
    ("scope: { ports: [\"https\"] }\n", "text in a list of numbers"),
    ("parse: { items: [{ name: a }] }\n", "an item rule without match and fields"),
    ("scope: { allow_private: maybe }\n", "text where a boolean is expected"),
];

#[test]
fn the_schema_and_the_loader_agree_on_edge_cases() {
    let (whole, _) = validators();
    for extra in ACCEPTED {
        let text = format!("{BASE}{extra}");
        if let Err(e) = arachne::spec::load_str(&text, "case.yaml", arachne::spec::NO_OVERRIDES) {
            panic!("the loader refuses an accepted case:\n{text}\n{e}");
        }
        assert_valid(&whole, &text, &format!("the accepted case {extra:?}"));
    }
    for (extra, why) in REFUSED {
        let text = format!("{BASE}{extra}");
        assert!(
            arachne::spec::load_str(&text, "case.yaml", arachne::spec::NO_OVERRIDES).is_err(),
            "the loader takes {why}"
        );
        let value = yaml_to_json(&text, why);
        assert!(!whole.is_valid(&value), "the schema takes {why}:\n{text}");
    }
}

#[test]
fn a_spec_without_its_required_keys_is_refused() {
    let (whole, _) = validators();
    for text in ["name: t\n", "seeds: []\n", "{}\n"] {
        assert!(!whole.is_valid(&yaml_to_json(text, text)), "the schema takes {text:?}");
    }
}

#[test]
fn env_references_are_taken_where_the_loader_substitutes_them() {
    let (whole, _) = validators();
    let text = format!(
        "{BASE}fetch: {{ concurrency: \"${{CONC}}\", timeout: \"${{T}}\", robots_txt: \"${{R}}\" }}\n\
         scope: {{ allow_private: \"${{P}}\" }}\n"
    );
    assert_valid(&whole, &text, "a spec with ${ENV} references");
}

#[test]
fn the_binary_prints_the_schema() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arachne"))
        .arg("schema")
        .output()
        .expect("runs arachne schema");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed, arachne::spec::json_schema());
}
