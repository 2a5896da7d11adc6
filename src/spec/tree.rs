//! A YAML document as a tree of nodes that remember where they were written.
//!
//! The spec is first read into this tree (with the event parser serde-saphyr is built on),
//! then `--set` overrides and `${ENV}` substitution edit the tree, then it is deserialized
//! into [`CrawlSpec`](super::CrawlSpec) by [`super::de`], and semantic checks look positions
//! up in it by key path. Keeping positions on every node is what lets every error, including
//! those found after deserializing, point at a line and column.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use super::error::SpecError;

/// Where a node came from: a place in the spec file, or a `--set` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Src {
    /// 1-based line and column in the spec file.
    File {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A `--set KEY=VALUE` override; the string is its display origin (`--set KEY=VALUE`).
    Set(String),
}

impl Src {
    fn from_span(span: &Span) -> Self {
        Src::File { line: span.start.line(), column: span.start.col() + 1 }
    }

    /// An error located here; `file` names the spec file for [`Src::File`].
    pub(crate) fn error(&self, file: &str, message: impl Into<String>, hint: Option<String>) -> SpecError {
        let (origin, line, column) = match self {
            Src::File { line, column } => (file.to_string(), Some(*line), Some(*column)),
            Src::Set(origin) => (origin.clone(), None, None),
        };
        SpecError { origin, line, column, message: message.into(), hint }
    }

    /// The line, for hints like "first defined at line N" (`None` for overrides).
    pub(crate) fn line(&self) -> Option<usize> {
        match self {
            Src::File { line, .. } => Some(*line),
            Src::Set(_) => None,
        }
    }
}

/// A node of the YAML tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// What the node holds.
    pub kind: Kind,
    /// Where it was written.
    pub src: Src,
    /// The scalar's text before `${ENV}` substitution, when substitution changed it: errors
    /// print this instead of the (possibly secret) value.
    pub raw: Option<String>,
}

/// The three kinds of YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar's text; `plain` is false for quoted and block scalars (always strings).
    Scalar {
        /// The text after YAML escape processing.
        text: String,
        /// Unquoted, so `8` is a number and `true` a bool.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; keys are unique.
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key's text.
    pub key: String,
    /// Where the key was written.
    pub key_src: Src,
    /// The value.
    pub value: Node,
}

/// One step of a key path: a mapping key or a sequence index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    /// A mapping key.
    K(&'a str),
    /// A sequence index.
    I(usize),
}

/// An owned [`Seg`]: where a deserializing error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A plain scalar resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// A plain scalar node.
    pub(crate) fn plain(text: impl Into<String>, src: Src) -> Self {
        Node { kind: Kind::Scalar { text: text.into(), plain: true }, src, raw: None }
    }

    /// An empty mapping node.
    pub(crate) fn map(src: Src) -> Self {
        Node { kind: Kind::Map(Vec::new()), src, raw: None }
    }

    /// An empty sequence node.
    pub(crate) fn seq(src: Src) -> Self {
        Node { kind: Kind::Seq(Vec::new()), src, raw: None }
    }

    /// True for a plain `~`, `null` or empty scalar.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self.resolve(), Some(Resolved::Null))
    }

    /// A scalar resolved as YAML would: quoted scalars are strings, plain ones may be null,
    /// bool, int or float. `None` for sequences and mappings.
    pub(crate) fn resolve(&self) -> Option<Resolved<'_>> {
        match &self.kind {
            Kind::Scalar { text, plain: false } => Some(Resolved::Str(text)),
            Kind::Scalar { text, plain: true } => Some(resolve_plain(text)),
            _ => None,
        }
    }

    /// The node at `path`, if it exists.
    pub(crate) fn get(&self, path: &[Seg<'_>]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.kind) {
                (Seg::K(k), Kind::Map(entries)) => &entries.iter().find(|e| e.key == *k)?.value,
                (Seg::I(i), Kind::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Removes the node at `steps` (its mapping entry or list element); false if absent.
    pub(crate) fn remove(&mut self, steps: &[Step]) -> bool {
        let Some((last, parent)) = steps.split_last() else { return false };
        let mut node = self;
        for step in parent {
            node = match (step, &mut node.kind) {
                (Step::Key(k), Kind::Map(entries)) => match entries.iter_mut().find(|e| e.key == *k) {
                    Some(e) => &mut e.value,
                    None => return false,
                },
                (Step::Index(i), Kind::Seq(items)) if *i < items.len() => &mut items[*i],
                _ => return false,
            };
        }
        match (last, &mut node.kind) {
            (Step::Key(k), Kind::Map(entries)) => {
                let before = entries.len();
                entries.retain(|e| e.key != *k);
                entries.len() < before
            }
            (Step::Index(i), Kind::Seq(items)) if *i < items.len() => {
                items.remove(*i);
                true
            }
            _ => false,
        }
    }

    /// Where the value at `path` was written, or its nearest written ancestor.
    pub(crate) fn value_src(&self, path: &[Seg<'_>]) -> &Src {
        (0..=path.len()).rev().find_map(|n| self.get(&path[..n])).map_or(&self.src, |node| &node.src)
    }

    /// Where the key of `path`'s last step was written (the element itself for an index),
    /// or the nearest written ancestor.
    pub(crate) fn key_src(&self, path: &[Seg<'_>]) -> &Src {
        if let Some((Seg::K(k), parent)) = path.split_last() {
            if let Some(Node { kind: Kind::Map(entries), .. }) = self.get(parent) {
                if let Some(e) = entries.iter().find(|e| e.key == *k) {
                    return &e.key_src;
                }
            }
        }
        self.value_src(path)
    }

    /// Text for error messages: the scalar's text, or its pre-`${ENV}` form if substituted.
    pub(crate) fn shown(&self) -> String {
        match (&self.raw, &self.kind) {
            (Some(raw), _) => raw.clone(),
            (None, Kind::Scalar { text, .. }) => text.clone(),
            (None, Kind::Seq(_)) => "a list".into(),
            (None, Kind::Map(_)) => "a mapping".into(),
        }
    }

    /// Replaces the substituted (possibly secret) value with its `${VAR}` form in `text`.
    pub(crate) fn redact(&self, text: String) -> String {
        match (&self.raw, &self.kind) {
            (Some(raw), Kind::Scalar { text: value, .. }) if !value.is_empty() => {
                text.replace(value.as_str(), raw)
            }
            _ => text,
        }
    }
}

fn resolve_plain(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<u64>() {
            return Resolved::UInt(n);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Resolved::Int(n);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            return Resolved::UInt(n);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(n) = u64::from_str_radix(oct, 8) {
            return Resolved::UInt(n);
        }
    }
    if is_yaml_float(digits) {
        if let Ok(x) = text.parse::<f64>() {
            return Resolved::Float(x);
        }
    }
    Resolved::Str(text)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without its sign.
fn is_yaml_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int)
        && frac.is_none_or(all_digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exp_ok
}

/// The most that aliases (`*name`) may add to a spec, in [`weight`] units (a node or a byte
/// of text each): a 1 KB "billion laughs" would otherwise expand to gigabytes.
pub(crate) const MAX_ALIAS_EXPANSION: usize = 1_000_000;

/// A node's size for the alias budget: one per node, plus the bytes of its text and keys.
fn weight(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar { text, .. } => text.len(),
        Kind::Seq(items) => items.iter().map(weight).sum(),
        Kind::Map(entries) => entries.iter().map(|e| e.key.len() + weight(&e.value)).sum(),
    }
}

/// Reads `text` into a tree. An empty document is an empty mapping at 1:1.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Node, SpecError> {
    let mut reader =
        Reader { parser: Parser::new_from_str(text), anchors: HashMap::new(), origin, expanded: 0 };
    let mut root = None;
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart(..) if root.is_some() => {
                return Err(Src::from_span(&span).error(
                    origin,
                    "a spec holds one YAML document, found a second one",
                    Some("remove the second '---' and what follows it".into()),
                ));
            }
            Event::DocumentStart(..) => {
                let (event, span) = reader.next()?;
                if matches!(event, Event::DocumentEnd) {
                    continue;
                }
                root = Some(reader.node(event, span)?);
            }
            _ => {}
        }
    }
    let root = root.unwrap_or_else(|| Node::map(Src::File { line: 1, column: 1 }));
    if root.is_null() {
        return Ok(Node::map(root.src));
    }
    Ok(root)
}

struct Reader<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    /// Anchored nodes and their [`weight`].
    anchors: HashMap<usize, (Node, usize)>,
    origin: &'a str,
    /// What aliases have added so far, in [`weight`] units.
    expanded: usize,
}

impl<'a> Reader<'a> {
    /// The next event that matters (comments and anchor metadata are skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), SpecError> {
        loop {
            match self.parser.next_event() {
                None => return Ok((Event::StreamEnd, Span::default())),
                Some(Err(e)) => return Err(self.scan_error(&e)),
                Some(Ok((event, span))) => {
                    if matches!(
                        event,
                        Event::Scalar(..)
                            | Event::SequenceStart(..)
                            | Event::SequenceEnd
                            | Event::MappingStart(..)
                            | Event::MappingEnd
                            | Event::Alias(_)
                            | Event::StreamStart
                            | Event::StreamEnd
                            | Event::DocumentStart(..)
                            | Event::DocumentEnd
                            | Event::UnresolvedAlias(_)
                    ) {
                        return Ok((event, span));
                    }
                }
            }
        }
    }

    fn scan_error(&self, e: &ScanError) -> SpecError {
        let mark = e.marker();
        let src = Src::File { line: mark.line(), column: mark.col() + 1 };
        let info = e.info();
        let message = if info.is_empty() { "YAML syntax error".to_string() } else { info };
        src.error(self.origin, format!("YAML syntax error: {message}"), None)
    }

    /// Builds the node that starts with `event` (the parser limits the nesting).
    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, SpecError> {
        let src = Src::from_span(&span);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag.as_ref().is_some_and(|t| t.core_suffix() == Some("str"));
                let plain = style == ScalarStyle::Plain && !forced_str;
                (Node { kind: Kind::Scalar { text: text.into_owned(), plain }, src, raw: None }, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                (Node { kind: Kind::Seq(items), src, raw: None }, anchor)
            }
            Event::MappingStart(_, anchor, _) => {
                let mut entries: Vec<Entry> = Vec::new();
                let mut keys: HashMap<String, usize> = HashMap::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(event, span)?;
                    let key_src = key.src.clone();
                    let key = match key.kind {
                        Kind::Scalar { text, .. } => text,
                        _ => {
                            return Err(key_src.error(
                                self.origin,
                                "a key must be a plain word, not a list or a mapping",
                                None,
                            ))
                        }
                    };
                    if let Some(&first) = keys.get(&key) {
                        let hint = entries[first].key_src.line().map(|l| format!("first given at line {l}"));
                        return Err(key_src.error(self.origin, format!("duplicate key '{key}'"), hint));
                    }
                    keys.insert(key.clone(), entries.len());
                    let (event, span) = self.next()?;
                    let value = self.node(event, span)?;
                    entries.push(Entry { key, key_src, value });
                }
                (Node { kind: Kind::Map(entries), src, raw: None }, anchor)
            }
            Event::Alias(id) => return self.alias(id, &src),
            Event::UnresolvedAlias(name) => {
                return Err(src.error(
                    self.origin,
                    format!("alias '*{name}' has no anchor '&{name}' before it"),
                    None,
                ))
            }
            _ => return Err(src.error(self.origin, "YAML syntax error: unexpected token", None)),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), weight(&node)));
        }
        Ok(node)
    }

    /// A copy of the anchored node `id`, within [`MAX_ALIAS_EXPANSION`].
    fn alias(&mut self, id: usize, src: &Src) -> Result<Node, SpecError> {
        let (node, size) = self
            .anchors
            .get(&id)
            .ok_or_else(|| src.error(self.origin, "alias to an unknown anchor", None))?;
        self.expanded = self.expanded.saturating_add(*size);
        if self.expanded > MAX_ALIAS_EXPANSION {
            return Err(src.error(
                self.origin,
                format!("aliases expand the spec past {MAX_ALIAS_EXPANSION} nodes and bytes"),
                Some("write the values out, or use fewer aliases to large anchors".into()),
            ));
        }
        Ok(node.clone())
    }
}

/// Replaces `${VAR}` in every scalar value (not keys) by the environment variable `VAR`;
/// `$${` stands for a literal `${`. Returns one error per unset variable.
pub(crate) fn substitute_env(
    node: &mut Node,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<SpecError>,
) {
    match &mut node.kind {
        Kind::Scalar { text, .. } => {
            if !text.contains("${") {
                return;
            }
            match expand(text, env) {
                Ok(expanded) => {
                    if expanded != *text {
                        node.raw = Some(std::mem::replace(text, expanded));
                    }
                }
                Err(var) => errors.push(node.src.error(
                    origin,
                    format!("environment variable '{var}' is not set"),
                    Some(format!(
                        "set {var} before running, or write $${{{var}}} for a literal '${{{var}}}'"
                    )),
                )),
            }
        }
        Kind::Seq(items) => {
            for item in items {
                substitute_env(item, origin, env, errors);
            }
        }
        Kind::Map(entries) => {
            for e in entries {
                substitute_env(&mut e.value, origin, env, errors);
            }
        }
    }
}

/// Expands `${VAR}`; `Err` names the first unset variable.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            match tail.find('}') {
                Some(end) if is_var_name(&tail[..end]) => {
                    let var = &tail[..end];
                    out.push_str(&env(var).ok_or_else(|| var.to_string())?);
                    rest = &tail[end + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &Node) -> (usize, usize) {
        match node.src {
            Src::File { line, column } => (line, column),
            Src::Set(_) => panic!("not from the file"),
        }
    }

    #[test]
    fn positions_of_keys_and_values() {
        let root = parse("name: x\nfetch:\n  concurrency: 8\nseeds:\n  - a\n  - \"b\"\n", "f").unwrap();
        let v = root.get(&[Seg::K("fetch"), Seg::K("concurrency")]).unwrap();
        assert_eq!(at(v), (3, 16));
        assert_eq!(v.resolve(), Some(Resolved::UInt(8)));
        assert_eq!(
            root.key_src(&[Seg::K("fetch"), Seg::K("concurrency")]),
            &Src::File { line: 3, column: 3 }
        );
        let b = root.get(&[Seg::K("seeds"), Seg::I(1)]).unwrap();
        assert_eq!(at(b), (6, 5));
        assert_eq!(b.resolve(), Some(Resolved::Str("b")));
    }

    #[test]
    fn plain_scalars_resolve() {
        assert_eq!(resolve_plain("~"), Resolved::Null);
        assert_eq!(resolve_plain("-3"), Resolved::Int(-3));
        assert_eq!(resolve_plain("2.5"), Resolved::Float(2.5));
        assert_eq!(resolve_plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve_plain("30s"), Resolved::Str("30s"));
        assert_eq!(resolve_plain("."), Resolved::Str("."));
        assert_eq!(resolve_plain("True"), Resolved::Bool(true));
        assert!(matches!(resolve_plain(".nan"), Resolved::Float(x) if x.is_nan()));
    }

    #[test]
    fn duplicate_keys_and_syntax_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n", "f").unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(1)));
        assert!(e.message.contains("duplicate key 'a'"));
        let e = parse("a: [1, 2\nb: 3\n", "f").unwrap_err();
        assert!(e.message.starts_with("YAML syntax error"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn anchors_and_empty_documents() {
        let root = parse("a: &x {k: 1}\nb: *x\n", "f").unwrap();
        assert_eq!(root.get(&[Seg::K("b"), Seg::K("k")]).and_then(Node::resolve), Some(Resolved::UInt(1)));
        assert_eq!(parse("", "f").unwrap().kind, Kind::Map(Vec::new()));
        assert_eq!(parse("# only a comment\n", "f").unwrap().kind, Kind::Map(Vec::new()));
    }

    #[test]
    fn env_expansion() {
        let env = |v: &str| (v == "HOME_X").then(|| "/h".to_string());
        assert_eq!(expand("a${HOME_X}b", &env).unwrap(), "a/hb");
        assert_eq!(expand("$${HOME_X} $5 ${ x}", &env).unwrap(), "${HOME_X} $5 ${ x}");
        assert_eq!(expand("${NOPE}", &env).unwrap_err(), "NOPE");
    }
}
