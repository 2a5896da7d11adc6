//! Loading a spec: YAML text -> positioned tree -> `--set` overrides -> `${ENV}` ->
//! [`CrawlSpec`] -> semantic checks, with every error located.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::de::{Ctx, DeError, NodeDe};
use super::error::{SpecError, SpecErrors};
use super::model::CrawlSpec;
use super::tree::{self, Seg};
use super::{overrides, validate};

/// How many values that stop deserializing are reported before giving up.
const MAX_PASSES: usize = 32;
/// The largest spec file read, in bytes.
pub const MAX_SPEC_BYTES: u64 = 64 * 1024 * 1024;
/// At most this many errors are reported; a last line says how many more there were.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// No `--set` overrides: `load_file(path, NO_OVERRIDES)`.
pub const NO_OVERRIDES: [&str; 0] = [];

/// Reads the spec at `path`, applies the `--set KEY=VALUE` `overrides` in order (any
/// strings: `["fetch.concurrency=8"]`, a `Vec<String>`, [`NO_OVERRIDES`]), substitutes
/// `${ENV}` variables and checks everything.
///
/// Errors in the file are reported as `path:line:column`; an unreadable file is one error.
pub fn load_file(
    path: &Path,
    overrides: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<CrawlSpec, SpecErrors> {
    let overrides = owned(overrides);
    let origin = path.display().to_string();
    let text = read_spec(path).map_err(|e| match e {
        ReadError::Io(e) => SpecError::new(origin.clone(), format!("cannot read the spec: {e}"))
            .with_hint("check the path given to arachne"),
        ReadError::TooLarge => SpecError::new(
            origin.clone(),
            format!("the spec is larger than {} MiB", MAX_SPEC_BYTES / (1024 * 1024)),
        ),
        ReadError::NotUtf8(at) => SpecError::new(
            origin.clone(),
            format!("the spec is not UTF-8 text (invalid byte at offset {at})"),
        )
        .with_hint("save the file as UTF-8"),
    })?;
    load_with_env(&text, &origin, &overrides, &|var| std::env::var(var).ok(), Some(path))
}

fn owned(overrides: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    overrides.into_iter().map(|o| o.as_ref().to_string()).collect()
}

/// Why a spec file could not be read as text.
enum ReadError {
    Io(std::io::Error),
    TooLarge,
    /// The byte offset of the first invalid byte.
    NotUtf8(usize),
}

/// The file's text, at most [`MAX_SPEC_BYTES`] of it.
fn read_spec(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_BYTES + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// Like [`load_file`], from YAML text; `origin` is printed as the file name in errors.
///
/// ```
/// use arachne::spec::{load_str, NO_OVERRIDES};
///
/// let yaml = "name: demo\nseeds: [\"https://example.com/\"]\n";
/// let spec = load_str(yaml, "inline.yaml", NO_OVERRIDES)?;
/// assert_eq!(spec.fetch.concurrency, 64);
///
/// let spec = load_str(yaml, "inline.yaml", ["fetch.concurrency=8"])?;
/// assert_eq!(spec.fetch.concurrency, 8);
///
/// let errors = load_str("name: demo\nseeds: []\nfetch: { concurency: 8 }\n", "bad.yaml", NO_OVERRIDES)
///     .unwrap_err();
/// assert!(errors.to_string().contains("bad.yaml:3:10: unknown key 'concurency'"), "{errors}");
/// # Ok::<(), arachne::spec::SpecErrors>(())
/// ```
pub fn load_str(
    text: &str,
    origin: &str,
    overrides: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<CrawlSpec, SpecErrors> {
    load_with_env(text, origin, &owned(overrides), &|var| std::env::var(var).ok(), None)
}

/// [`load_str`] with the environment given as a function (for tests), and the spec file's
/// path when it came from one (an output may not overwrite it).
pub(crate) fn load_with_env(
    text: &str,
    origin: &str,
    overrides: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    spec_path: Option<&Path>,
) -> Result<CrawlSpec, SpecErrors> {
    let mut root = tree::parse(text, origin)?;
    let mut errors = Vec::new();

    for arg in overrides {
        if let Err(e) = overrides::parse(arg).and_then(|o| overrides::apply(&mut root, &o)) {
            errors.push(e);
        }
    }

    let mut env_errors = Vec::new();
    tree::substitute_env(&mut root, origin, env, &mut env_errors);
    errors.extend(super::de::missing_top_level(&root, origin));

    // Deserialize; a value that stops serde (a bad duration, say) is recorded and removed
    // from the tree, and the rest is deserialized again, so that one run reports them all.
    let mut masked = Vec::new();
    let mut later = Vec::new();
    let mut spec = None;
    for _ in 0..MAX_PASSES {
        let ctx = Ctx::new(origin);
        let result = CrawlSpec::deserialize(NodeDe::root(&root, &ctx));
        errors.extend(ctx.errors.take());
        masked.append(&mut ctx.masked.borrow_mut());
        match result {
            Ok(mut s) => {
                later.extend(validate::check(&s, &root, origin, spec_path));
                clamp_per_host(&mut s, &root);
                spec = Some(s);
                break;
            }
            Err(DeError::Located(e, steps)) => {
                later.push(*e);
                if !root.remove(&steps) {
                    break;
                }
            }
            Err(pending) => {
                later.push(root.src.error(origin, pending.to_string(), None));
                break;
            }
        }
    }
    // Errors where a bad value was replaced by a placeholder are consequences of it.
    let masked: HashSet<Place<'_>> = masked.iter().map(place).collect();
    later.retain(|e| !masked.contains(&place(e)));
    errors.append(&mut later);

    // An unset variable leaves `${VAR}` in place, which may fail again later at the same
    // spot: report only the variable.
    let unset: HashSet<Place<'_>> = env_errors.iter().map(place).collect();
    errors.retain(|e| !unset.contains(&place(e)));
    errors.append(&mut env_errors);

    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(capped(SpecErrors::sorted(errors))),
    }
}

/// Where an error points: its origin, line and column.
type Place<'e> = (&'e str, Option<usize>, Option<usize>);

fn place(e: &SpecError) -> Place<'_> {
    (e.origin.as_str(), e.line, e.column)
}

/// The first [`MAX_REPORTED_ERRORS`] errors, and one more saying how many were left out.
fn capped(mut errors: SpecErrors) -> SpecErrors {
    let total = errors.0.len();
    if total > MAX_REPORTED_ERRORS {
        let origin = errors.0[0].origin.clone();
        errors.0.truncate(MAX_REPORTED_ERRORS);
        errors.0.push(
            SpecError::new(origin, format!("... and {} more errors", total - MAX_REPORTED_ERRORS))
                .with_hint("fix the errors above and validate again"),
        );
    }
    errors
}

/// `fetch.per_host.concurrency` left at its default never exceeds `fetch.concurrency`
/// (set explicitly larger, it is an error).
fn clamp_per_host(spec: &mut CrawlSpec, root: &tree::Node) {
    let path = [Seg::K("fetch"), Seg::K("per_host"), Seg::K("concurrency")];
    let explicit = root.get(&path).is_some_and(|n| !n.is_null());
    let fetch = &mut spec.fetch;
    if !explicit && fetch.concurrency > 0 && fetch.per_host.concurrency > fetch.concurrency {
        fetch.per_host.concurrency = fetch.concurrency;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<CrawlSpec, SpecErrors> {
        load_with_env(text, "t.yaml", &[], &|v| (v == "SECRET_UA").then(|| "hunter2".to_string()), None)
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec = load("name: x\nseeds: [\"https://example.com/\"]\n").unwrap();
        assert_eq!(spec.fetch.concurrency, 64);
        assert_eq!(spec.parse.follow, ["a[href]", "iframe[src]", "frame[src]"]);
        assert_eq!(spec.output, vec![crate::spec::OutputSpec::Stdout]);
    }

    #[test]
    fn env_values_are_substituted_and_never_printed() {
        let spec =
            load("name: x\nseeds: [\"https://e.com/\"]\nfetch: {user_agent: \"${SECRET_UA}\"}\n").unwrap();
        assert_eq!(spec.fetch.user_agent, "hunter2");
        let e =
            load("name: x\nseeds: [\"https://e.com/\"]\nfetch: {timeout: \"${SECRET_UA}\"}\n").unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("${SECRET_UA}"), "{text}");
        let e =
            load("name: x\nseeds: [\"https://e.com/\"]\nfetch: {concurrency: \"${NOPE}\"}\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e}");
        assert!(e.0[0].message.contains("'NOPE' is not set"));
    }

    #[test]
    fn default_per_host_is_clamped() {
        let spec = load("name: x\nseeds: [\"https://e.com/\"]\nfetch: {concurrency: 2}\n").unwrap();
        assert_eq!(spec.fetch.per_host.concurrency, 2);
    }
}
