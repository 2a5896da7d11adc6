//! `--set KEY=VALUE` overrides, applied to the YAML tree before it is deserialized, so an
//! overridden value goes through exactly the same checks as one written in the file.
//!
//! `KEY` is a dotted path (`fetch.concurrency`, `fetch.per_host.rate`); a number step
//! indexes a list (`seeds.0`), and the index just past the end appends. Missing mappings
//! and lists on the way are created. `VALUE` is a YAML plain scalar (`8` is a number,
//! `true` a bool, `30s` a string), or a YAML flow list when it starts with `[`.

use super::error::SpecError;
use super::tree::{self, Entry, Kind, Node, Src};

/// One parsed `--set`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Override {
    /// `--set KEY=VALUE`: the origin printed by the errors it causes.
    pub origin: String,
    /// The key path's steps.
    pub path: Vec<String>,
    /// The value, ready to be put in the tree.
    pub value: Node,
}

const SET_HINT: &str =
    "write --set KEY=VALUE with a dotted key, e.g. --set fetch.concurrency=8 or --set seeds.0=https://example.com/";

/// Parses one `--set` argument (`KEY=VALUE`).
pub(crate) fn parse(arg: &str) -> Result<Override, SpecError> {
    let origin = format!("--set {arg}");
    let Some((key, value)) = arg.split_once('=') else {
        return Err(SpecError::new(origin, format!("malformed override '{arg}': no '='")).with_hint(SET_HINT));
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
        return Err(
            SpecError::new(origin, format!("malformed override '{arg}': empty key step")).with_hint(SET_HINT)
        );
    }
    let path = key.split('.').map(|s| s.trim().to_string()).collect();
    let src = Src::Set(origin.clone());
    let value = if value.trim_start().starts_with('[') {
        let mut node = tree::parse(value, &origin).map_err(|e| {
            SpecError::new(origin.clone(), format!("bad list in override: {}", e.message))
                .with_hint("write a YAML flow list, e.g. [a, b]")
        })?;
        relocate(&mut node, &src);
        node
    } else {
        Node::plain(value.trim(), src)
    };
    Ok(Override { origin, path, value })
}

/// Gives every node of an override's value the override as its place.
fn relocate(node: &mut Node, src: &Src) {
    node.src = src.clone();
    match &mut node.kind {
        Kind::Scalar { .. } => {}
        Kind::Seq(items) => items.iter_mut().for_each(|n| relocate(n, src)),
        Kind::Map(entries) => entries.iter_mut().for_each(|e| {
            e.key_src = src.clone();
            relocate(&mut e.value, src);
        }),
    }
}

/// Puts the override's value at its path in `root`.
pub(crate) fn apply(root: &mut Node, o: &Override) -> Result<(), SpecError> {
    let src = Src::Set(o.origin.clone());
    let mut node = root;
    for (i, step) in o.path.iter().enumerate() {
        let next_is_index = o.path.get(i + 1).is_some_and(|s| s.parse::<usize>().is_ok());
        let fresh = || {
            if next_is_index {
                Node::seq(src.clone())
            } else {
                Node::map(src.clone())
            }
        };
        let here = o.path[..i].join(".");
        if node.is_null() {
            // `key:` with no value: becomes what the path needs.
            *node =
                if step.parse::<usize>().is_ok() { Node::seq(src.clone()) } else { Node::map(src.clone()) };
        }
        node = match &mut node.kind {
            Kind::Map(entries) => {
                let pos = match entries.iter().position(|e| e.key == *step) {
                    Some(pos) => pos,
                    None => {
                        entries.push(Entry { key: step.clone(), key_src: src.clone(), value: fresh() });
                        entries.len() - 1
                    }
                };
                &mut entries[pos].value
            }
            Kind::Seq(items) => {
                let Ok(index) = step.parse::<usize>() else {
                    return Err(SpecError::new(
                        o.origin.clone(),
                        format!("'{here}' is a list: '{step}' is not an index"),
                    )
                    .with_hint(format!("use a number, e.g. {here}.0")));
                };
                if index > items.len() {
                    return Err(SpecError::new(
                        o.origin.clone(),
                        format!("index {index} is past the end of '{here}' ({} entries)", items.len()),
                    )
                    .with_hint(format!("use {here}.{} to append", items.len())));
                }
                if index == items.len() {
                    items.push(fresh());
                }
                &mut items[index]
            }
            Kind::Scalar { .. } => {
                return Err(SpecError::new(
                    o.origin.clone(),
                    format!("'{here}' is a single value: it has no '{step}' inside"),
                ))
            }
        };
    }
    *node = o.value.clone();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tree::{Resolved, Seg};

    fn tree(yaml: &str) -> Node {
        tree::parse(yaml, "t").unwrap()
    }

    #[test]
    fn sets_existing_and_new_paths() {
        let mut root = tree("fetch:\n  concurrency: 4\nseeds: [a]\n");
        for arg in
            ["fetch.concurrency=8", "fetch.per_host.rate=2.5", "seeds.0=b", "seeds.1=c", "sandbox.pages=9"]
        {
            apply(&mut root, &parse(arg).unwrap()).unwrap();
        }
        let get = |p: &[Seg<'_>]| root.get(p).and_then(Node::resolve).map(|r| format!("{r:?}"));
        assert_eq!(get(&[Seg::K("fetch"), Seg::K("concurrency")]), Some("UInt(8)".into()));
        assert_eq!(get(&[Seg::K("fetch"), Seg::K("per_host"), Seg::K("rate")]), Some("Float(2.5)".into()));
        assert_eq!(root.get(&[Seg::K("seeds"), Seg::I(1)]).and_then(Node::resolve), Some(Resolved::Str("c")));
        assert_eq!(get(&[Seg::K("sandbox"), Seg::K("pages")]), Some("UInt(9)".into()));
        assert_eq!(
            root.get(&[Seg::K("seeds"), Seg::I(0)]).map(|n| n.src.clone()),
            Some(Src::Set("--set seeds.0=b".into()))
        );
    }

    #[test]
    fn lists_and_errors() {
        let mut root = tree("seeds: [a]\nname: x\n");
        apply(&mut root, &parse("seeds=[x, y]").unwrap()).unwrap();
        assert_eq!(root.get(&[Seg::K("seeds"), Seg::I(1)]).and_then(Node::resolve), Some(Resolved::Str("y")));
        assert!(parse("fetch.concurrency").unwrap_err().hint.is_some());
        assert!(parse("fetch..x=1").is_err());
        let e = apply(&mut root, &parse("seeds.5=z").unwrap()).unwrap_err();
        assert!(e.message.contains("past the end"), "{e}");
        let e = apply(&mut root, &parse("name.x=1").unwrap()).unwrap_err();
        assert!(e.message.contains("single value"), "{e}");
    }
}
