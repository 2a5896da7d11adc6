//! Loading a spec: YAML text -> positioned tree -> `--set` overrides -> `${ENV}` ->
//! [`CrawlSpec`] -> semantic checks, with every error located.

use std::path::Path;

use serde::Deserialize;

use super::de::{Ctx, DeError, NodeDe};
use super::error::{SpecError, SpecErrors};
use super::model::CrawlSpec;
use super::tree::{self, Seg};
use super::{overrides, validate};

/// How many values that stop deserializing are reported before giving up.
const MAX_PASSES: usize = 32;

/// Reads the spec at `path`, applies the `--set KEY=VALUE` `overrides` in order, substitutes
/// `${ENV}` variables and checks everything.
///
/// Errors in the file are reported as `path:line:column`; an unreadable file is one error.
pub fn load_file(path: &Path, overrides: &[String]) -> Result<CrawlSpec, SpecErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(origin.clone(), format!("cannot read the spec: {e}"))
            .with_hint("check the path given to arachne")
    })?;
    load_str(&text, &origin, overrides)
}

/// Like [`load_file`], from YAML text; `origin` is printed as the file name in errors.
pub fn load_str(text: &str, origin: &str, overrides: &[String]) -> Result<CrawlSpec, SpecErrors> {
    load_with_env(text, origin, overrides, &|var| std::env::var(var).ok())
}

/// [`load_str`] with the environment given as a function (for tests).
pub(crate) fn load_with_env(
    text: &str,
    origin: &str,
    overrides: &[String],
    env: &dyn Fn(&str) -> Option<String>,
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

    // Deserialize; a value that stops serde (a bad duration, say) is recorded and removed
    // from the tree, and the rest is deserialized again, so that one run reports them all.
    let mut masked = Vec::new();
    let mut later = Vec::new();
    let mut spec = None;
    for _ in 0..MAX_PASSES {
        let ctx = Ctx::new(origin);
        let result = CrawlSpec::deserialize(NodeDe::root(&root, &ctx));
        for e in ctx.errors.take() {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        masked.append(&mut ctx.masked.borrow_mut());
        match result {
            Ok(mut s) => {
                later.extend(validate::check(&s, &root, origin));
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
    later.retain(|e| {
        !masked.iter().any(|m: &SpecError| m.origin == e.origin && m.line == e.line && m.column == e.column)
    });
    errors.append(&mut later);

    // An unset variable leaves `${VAR}` in place, which may fail again later at the same
    // spot: report only the variable.
    errors.retain(|e| {
        !env_errors.iter().any(|v| v.origin == e.origin && v.line == e.line && v.column == e.column)
    });
    errors.append(&mut env_errors);

    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(SpecErrors::sorted(errors)),
    }
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
        load_with_env(text, "t.yaml", &[], &|v| (v == "SECRET_UA").then(|| "hunter2".to_string()))
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec = load("name: x\nseeds: [\"https://example.com/\"]\n").unwrap();
        assert_eq!(spec.fetch.concurrency, 64);
        assert_eq!(spec.parse.follow, vec!["a[href]".to_string()]);
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
