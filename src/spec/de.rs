//! A serde deserializer over the positioned YAML tree ([`super::tree`]).
//!
//! Every error it returns is located (file, line, column, key path). Unknown keys are not
//! fatal: they are collected (with a "did you mean" hint, using the struct's own field list
//! that serde passes to `deserialize_struct`) and skipped, so one run reports all of them.
//! A value of the wrong type stops deserializing, since serde cannot go on without it.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::error::SpecError;
use super::tree::{Entry, Kind, Node, Resolved, Src, Step};
use super::units::{DURATION_FORMS, RATE_FORMS, SIZE_FORMS};

/// What deserializing collects besides its result.
pub(crate) struct Ctx<'a> {
    /// Printed as the file name of errors located in the file.
    pub origin: &'a str,
    /// Non-fatal errors: unknown keys, and values of the wrong type that were replaced by a
    /// placeholder so that deserializing could go on.
    pub errors: RefCell<Vec<SpecError>>,
    /// Where placeholders were put: later errors at these places are consequences of the
    /// placeholder (e.g. "must be at least 1" after a `0` placeholder) and are dropped.
    pub masked: RefCell<Vec<SpecError>>,
}

impl<'a> Ctx<'a> {
    /// A context printing `origin` as the file name.
    pub(crate) fn new(origin: &'a str) -> Self {
        Self { origin, errors: RefCell::default(), masked: RefCell::default() }
    }
}

/// A deserializing error: located as soon as it passes through the node it concerns.
#[derive(Debug)]
pub(crate) enum DeError {
    /// Not yet given a place: raised by a `Deserialize` impl or a visitor.
    Pending(Pending, Option<String>),
    /// Complete, with the key path of the node it is about.
    Located(Box<SpecError>, Vec<Step>),
}

/// The message of a not yet located error.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A bad value: printed as `bad value for PATH: ...`.
    Value(String),
    /// A required key that is absent from the mapping.
    Missing(&'static str),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Pending(Pending::Value(m), _) => f.write_str(m),
            DeError::Pending(Pending::Missing(k), _) => write!(f, "missing required key '{k}'"),
            DeError::Located(e, _) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let msg = msg.to_string();
        // The units' parse errors end with "; use <the accepted forms>": make that the hint.
        for forms in [DURATION_FORMS, SIZE_FORMS, RATE_FORMS] {
            if let Some(head) = msg.strip_suffix(forms).and_then(|m| m.strip_suffix("; use ")) {
                return DeError::Pending(Pending::Value(head.to_string()), Some(format!("use {forms}")));
            }
        }
        if msg.starts_with("data did not match any variant of untagged enum Raw") {
            return DeError::Pending(Pending::Value("expected a number with a unit".into()), None);
        }
        DeError::Pending(Pending::Value(msg), None)
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::Pending(Pending::Value(format!("expected {exp}, found {unexp}")), None)
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::Pending(Pending::Value(format!("expected {exp}, found {unexp}")), None)
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::Pending(Pending::Missing(field), missing_hint(field))
    }
}

/// The keys a spec must have at its top level.
const REQUIRED_TOP_LEVEL: [&str; 2] = ["name", "seeds"];

/// One error for each required top-level key absent from `root` (serde stops at the first
/// one; this reports them all, with the same message and place).
pub(crate) fn missing_top_level(root: &Node, origin: &str) -> Vec<SpecError> {
    let Kind::Map(entries) = &root.kind else { return Vec::new() };
    REQUIRED_TOP_LEVEL
        .iter()
        .filter(|k| !entries.iter().any(|e| e.key == **k))
        .map(|k| root.src.error(origin, format!("missing required key '{k}'"), missing_hint(k)))
        .collect()
}

fn missing_hint(field: &str) -> Option<String> {
    Some(
        match field {
            "name" => "add `name: my-crawl`",
            "seeds" => "add `seeds: [\"https://example.com/\"]` (or `[\"{sandbox}/\"]` with `sandbox: {}`)",
            "match" => "add `match: \"/p/\"`, a URL regex (`\".\"` matches every page)",
            "fields" => "add `fields: { title: \"h1\" }`",
            _ => return None,
        }
        .to_string(),
    )
}

/// Deserializes the node at `path` (`""` for the root).
#[derive(Clone)]
pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    ctx: &'a Ctx<'a>,
    path: String,
    steps: Vec<Step>,
}

impl<'a> NodeDe<'a> {
    /// A deserializer for the whole tree.
    pub(crate) fn root(node: &'a Node, ctx: &'a Ctx<'a>) -> Self {
        Self { node, ctx, path: String::new(), steps: Vec::new() }
    }

    fn child(&self, node: &'a Node, key: &str) -> Self {
        let path = if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) };
        let mut steps = self.steps.clone();
        steps.push(Step::Key(key.to_string()));
        Self { node, ctx: self.ctx, path, steps }
    }

    fn item(&self, node: &'a Node, index: usize) -> Self {
        let mut steps = self.steps.clone();
        steps.push(Step::Index(index));
        Self { node, ctx: self.ctx, path: format!("{}[{index}]", self.path), steps }
    }

    fn where_(&self) -> String {
        if self.path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {}", self.path)
        }
    }

    fn what(&self) -> &str {
        if self.path.is_empty() {
            "the spec"
        } else {
            &self.path
        }
    }

    /// Gives a pending error this node's place.
    fn locate(&self, e: DeError) -> DeError {
        let (pending, hint) = match e {
            DeError::Located(..) => return e,
            DeError::Pending(p, h) => (p, h),
        };
        let message = match pending {
            Pending::Value(m) => format!("bad value for {}: {m}", self.what()),
            Pending::Missing(k) if self.path.is_empty() => format!("missing required key '{k}'"),
            Pending::Missing(k) => format!("missing required key '{k}' in {}", self.path),
        };
        let message = self.node.redact(message);
        let hint = hint.map(|h| self.node.redact(h));
        self.located(self.node.src.error(self.ctx.origin, message, hint))
    }

    fn located(&self, e: SpecError) -> DeError {
        DeError::Located(Box::new(e), self.steps.clone())
    }

    fn wrap<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| self.locate(e))
    }

    fn found(&self) -> String {
        match &self.node.kind {
            Kind::Scalar { .. } if self.node.is_null() => "nothing".to_string(),
            Kind::Scalar { .. } => format!("'{}'", self.node.shown()),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
        }
    }

    fn type_err(&self, expected: &str) -> DeError {
        let hint = match (&self.node.kind, expected) {
            (Kind::Scalar { .. }, "a list") if !self.node.is_null() => {
                Some(format!("write a list: [\"{}\"]", self.node.shown()))
            }
            _ => None,
        };
        self.locate(DeError::Pending(
            Pending::Value(format!("expected {expected}, found {}", self.found())),
            hint,
        ))
    }

    /// Records a type error and lets the caller go on with a placeholder value.
    fn recover(&self, expected: &str) {
        self.soft(self.type_err(expected));
    }

    /// Records an error at this node, which is about to get a placeholder value.
    fn soft(&self, e: DeError) {
        let e = match self.locate(e) {
            DeError::Located(e, _) => *e,
            DeError::Pending(..) => return,
        };
        self.ctx.masked.borrow_mut().push(self.node.src.error(self.ctx.origin, "", None));
        self.ctx.errors.borrow_mut().push(e);
    }

    fn scalar_text(&self) -> Option<&'a str> {
        match &self.node.kind {
            Kind::Scalar { text, .. } if !self.node.is_null() => Some(text),
            _ => None,
        }
    }

    fn unknown(&self, word: &str, src: &Src, choices: &[&str], what: &str) -> DeError {
        let list = choices.join(", ");
        let hint = match nearest(word, choices) {
            Some(near) => format!("did you mean '{near}'? (one of: {list})"),
            None => format!("use one of: {list}"),
        };
        let message = format!("unknown {what} '{word}' for {}", self.what());
        self.located(src.error(self.ctx.origin, self.node.redact(message), Some(hint)))
    }
}

/// The known word nearest to `word`, if it is near enough to be a typo.
pub(crate) fn nearest<'c>(word: &str, known: &[&'c str]) -> Option<&'c str> {
    // The edit distance costs length × length: a huge word is no typo of a known one.
    let longest = known.iter().map(|k| k.len()).max().unwrap_or(0);
    if word.len() > 2 * longest + 8 {
        return None;
    }
    let w = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (*k, strsim::jaro_winkler(&w, k), strsim::damerau_levenshtein(&w, k)))
        .filter(|(k, jw, d)| *jw >= 0.85 || *d <= (k.len() / 3).max(1))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _, _)| k)
}

fn int_expectation(min: i128, max: i128) -> String {
    if min == 0 && max >= i128::from(u32::MAX) {
        "a whole number (0 or more)".to_string()
    } else {
        format!("a whole number from {min} to {max}")
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $t:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: Option<$t> = match self.node.resolve() {
                Some(Resolved::UInt(n)) => <$t>::try_from(n).ok(),
                Some(Resolved::Int(n)) => <$t>::try_from(n).ok(),
                Some(Resolved::Str(s)) => s.trim().parse().ok(),
                _ => None,
            };
            let n = n.unwrap_or_else(|| {
                self.recover(&int_expectation(<$t>::MIN as i128, <$t>::MAX as i128));
                0
            });
            self.wrap(visitor.$visit(n))
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.node.resolve() {
            Some(Resolved::Null) => visitor.visit_unit(),
            Some(Resolved::Bool(b)) => visitor.visit_bool(b),
            Some(Resolved::Int(n)) => visitor.visit_i64(n),
            Some(Resolved::UInt(n)) => visitor.visit_u64(n),
            Some(Resolved::Float(x)) => visitor.visit_f64(x),
            Some(Resolved::Str(s)) => visitor.visit_str(s),
            None => match &self.node.kind {
                Kind::Seq(items) => visitor.visit_seq(Seq { de: &self, items, next: 0 }),
                Kind::Map(entries) => {
                    visitor.visit_map(Map { de: &self, entries, next: 0, fields: None, value: None })
                }
                Kind::Scalar { .. } => unreachable!("scalars always resolve"),
            },
        };
        self.wrap(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.resolve() {
            Some(Resolved::Bool(b)) => self.wrap(visitor.visit_bool(b)),
            _ => {
                self.recover("true or false");
                self.wrap(visitor.visit_bool(false))
            }
        }
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let x = match self.node.resolve() {
            Some(Resolved::Float(x)) => Some(x),
            Some(Resolved::UInt(n)) => Some(n as f64),
            Some(Resolved::Int(n)) => Some(n as f64),
            Some(Resolved::Str(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let x = x.unwrap_or_else(|| {
            self.recover("a number");
            0.0
        });
        self.wrap(visitor.visit_f64(x))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar_text() {
            Some(text) => self.wrap(visitor.visit_str(text)),
            None => {
                self.recover("a string");
                self.wrap(visitor.visit_str(""))
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.wrap(visitor.visit_none())
        } else {
            let me = self.clone();
            me.wrap(visitor.visit_some(self))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            self.wrap(visitor.visit_unit())
        } else {
            Err(self.type_err("nothing"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let me = self.clone();
        me.wrap(visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Seq(items) => visitor.visit_seq(Seq { de: &self, items, next: 0 }),
            _ => {
                if !self.node.is_null() {
                    self.recover("a list");
                }
                visitor.visit_seq(Seq { de: &self, items: &[], next: 0 })
            }
        };
        self.wrap(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map(Some(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (variant, value) = match &self.node.kind {
            Kind::Scalar { text, .. } if !self.node.is_null() => {
                match variants.first() {
                    Some(first) if !variants.contains(&text.as_str()) => {
                        // Go on with a placeholder to find more errors.
                        self.soft(self.unknown(text, &self.node.src, variants, "value"));
                        (*first, None)
                    }
                    _ => (text.as_str(), None),
                }
            }
            Kind::Map(entries) if entries.len() == 1 => {
                let e = &entries[0];
                if !variants.contains(&e.key.as_str()) {
                    return Err(self.unknown(&e.key, &e.key_src, variants, "kind"));
                }
                (e.key.as_str(), Some(&e.value))
            }
            _ => match variants.first() {
                Some(first) => {
                    self.recover(&format!("one of: {}", variants.join(", ")));
                    (*first, None)
                }
                None => return Err(self.type_err("nothing")),
            },
        };
        let r = visitor.visit_enum(Enum { de: &self, variant, value });
        self.wrap(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl NodeDe<'_> {
    fn map<'de, V: Visitor<'de>>(
        &self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(Map { de: self, entries, next: 0, fields, value: None }),
            _ => {
                if !self.node.is_null() {
                    self.recover("a mapping (key: value)");
                }
                visitor.visit_map(Map { de: self, entries: &[], next: 0, fields, value: None })
            }
        };
        self.wrap(r)
    }

    fn unknown_key(&self, e: &Entry, fields: &[&str]) {
        let hint = match nearest(&e.key, fields) {
            Some(near) => format!("did you mean '{near}'?"),
            None => format!("the keys allowed here are: {}", fields.join(", ")),
        };
        let message = format!("unknown key '{}' {}", e.key, self.where_());
        self.ctx.errors.borrow_mut().push(e.key_src.error(self.ctx.origin, message, Some(hint)));
    }
}

struct Seq<'s, 'a> {
    de: &'s NodeDe<'a>,
    items: &'a [Node],
    next: usize,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.next) else { return Ok(None) };
        let child = self.de.item(node, self.next);
        self.next += 1;
        let me = child.clone();
        me.wrap(seed.deserialize(child)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

struct Map<'s, 'a> {
    de: &'s NodeDe<'a>,
    entries: &'a [Entry],
    next: usize,
    fields: Option<&'static [&'static str]>,
    value: Option<&'a Entry>,
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        loop {
            let Some(e) = self.entries.get(self.next) else { return Ok(None) };
            self.next += 1;
            if let Some(fields) = self.fields {
                if !fields.contains(&e.key.as_str()) {
                    self.de.unknown_key(e, fields);
                    continue;
                }
            }
            self.value = Some(e);
            let key: de::value::StrDeserializer<'_, DeError> = e.key.as_str().into_deserializer();
            let child = self.de.child(&e.value, &e.key);
            return seed.deserialize(key).map(Some).map_err(|err| match err {
                DeError::Pending(Pending::Value(m), h) => child.located(e.key_src.error(
                    self.de.ctx.origin,
                    format!("bad key '{}' {}: {m}", e.key, self.de.where_()),
                    h,
                )),
                other => child.locate(other),
            });
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let e = self.value.take().ok_or_else(|| de::Error::custom("value before key"))?;
        let child = self.de.child(&e.value, &e.key);
        let me = child.clone();
        me.wrap(seed.deserialize(child))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

struct Enum<'s, 'a> {
    de: &'s NodeDe<'a>,
    variant: &'a str,
    value: Option<&'a Node>,
}

impl<'de, 's, 'a> EnumAccess<'de> for Enum<'s, 'a> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self), DeError> {
        let key: de::value::StrDeserializer<'_, DeError> = self.variant.into_deserializer();
        let v = self.de.wrap(seed.deserialize(key))?;
        Ok((v, self))
    }
}

impl Enum<'_, '_> {
    fn needs_value(&self) -> DeError {
        self.de.locate(DeError::Pending(
            Pending::Value(format!("'{}' needs a value", self.variant)),
            Some(format!("write it as `{}: VALUE`", self.variant)),
        ))
    }
}

impl<'de> VariantAccess<'de> for Enum<'_, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Some(node) if !node.is_null() => Err(self.de.child(node, self.variant).locate(DeError::Pending(
                Pending::Value(format!("'{}' takes no value", self.variant)),
                Some(format!("write just `{}`", self.variant)),
            ))),
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let node = self.value.ok_or_else(|| self.needs_value())?;
        let child = self.de.child(node, self.variant);
        let me = child.clone();
        me.wrap(seed.deserialize(child))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let node = self.value.ok_or_else(|| self.needs_value())?;
        de::Deserializer::deserialize_seq(self.de.child(node, self.variant), visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.value.ok_or_else(|| self.needs_value())?;
        self.de.child(node, self.variant).map(Some(fields), visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_words() {
        let keys = ["concurrency", "per_host", "timeout", "retries", "robots_txt", "user_agent", "max_body"];
        assert_eq!(nearest("concurency", &keys), Some("concurrency"));
        assert_eq!(nearest("retry", &keys), Some("retries"));
        assert_eq!(nearest("useragent", &keys), Some("user_agent"));
        assert_eq!(nearest("zzz", &keys), None);
        assert_eq!(nearest("maybe", &["obey", "ignore"]), None);
    }
}
