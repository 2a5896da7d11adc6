//! Links and items from one HTML page, in one streaming pass (lol_html, no DOM).
//!
//! A [`RuleParser`] is compiled once from the spec's `parse:` section and shared by every
//! parser actor (it is `Send + Sync` and cheap to clone). [`RuleParser::extract`] runs one
//! lol_html pass over a page and returns the page's links and the items of the rules whose
//! URL regex matches the page.
//!
//! # The fast link scanner
//! When every `follow` selector is a bare `tag` or `tag[attr]` (the defaults `a[href]`,
//! `iframe[src]`, `frame[src]` are), the links come from a memchr scanner that reads the
//! page as lol_html's tokenizer does (`crawl/scan.rs`), and lol_html runs only for the item
//! fields, and only when every field of the rules matching the page is a bare tag name
//! (`title`, `h1`, `a @href`); otherwise one lol_html pass does links and fields together,
//! as it is then cheaper. Wherever the scanner would have to guess (SVG or MathML, a `<!--`
//! inside a script, a nested `<noscript>`, more open tags than lol_html's memory cap could
//! hold, a long unterminated token at the end) or lol_html stops early, the page goes
//! through lol_html alone: the results are always lol_html's
//! ([`RuleParser::lol_html_only`] is the reference, checked in `tests/extract.rs`).
//! lol_html compiles its selector VM in every `HtmlRewriter::new` and has no way to keep a
//! compiled one across pages; the selectors themselves are parsed once.
//!
//! # Semantics (checked against html5ever in `tests/extract.rs`)
//! - **Links**: every element matched by a `follow` selector, in document order, gives its
//!   `href` attribute, or its `src` when it has no `href`. The value is entity-decoded as the
//!   HTML tokenizer decodes attributes, trimmed, resolved against the first `<base href>` of
//!   the page (wherever it stands: links are resolved after the pass) or else the page URL;
//!   only `http`/`https` results are kept, each is [`normalize`]d, and duplicates within the
//!   page are dropped (first occurrence kept).
//! - **`<noscript>`**: for links, the content of a `<noscript>` is read as markup, as a
//!   browser with scripting off reads it (mdBook links its table of contents only through
//!   `<noscript><iframe src="toc.html"></iframe></noscript>`). lol_html, like a browser with
//!   scripting on, sees that content as raw text, so it is parsed again in a second pass of
//!   the `follow` selectors (and `base[href]`); its links take their place in document order.
//!   Selectors are matched within the `<noscript>` content (`div > a` does not see a `<div>`
//!   around the `<noscript>`). Item fields see the page as a browser with scripting on does.
//! - **Items**: a rule runs only when its `match` regex matches the page URL (the selectors of
//!   other rules are not even registered). A field takes the FIRST element its selector
//!   matches: its text content (all descendant text, entities decoded, whitespace runs
//!   collapsed to one space, trimmed) or, for `css @attr`, that attribute (entity-decoded;
//!   `href` and `src` are resolved to absolute URLs). A field with no matching element, or
//!   whose first matching element lacks the attribute, is `null`. An item is emitted only
//!   when at least one of its fields is not `null`.
//!
//! # Where a streaming parser differs from a browser's tree builder
//! lol_html sees tokens, not a tree. It closes an element only at its own end tag (or an
//! ancestor's), so:
//! - an element whose end tag is implied (`<p>a<div>b</div>`, `<li>a<li>b`, `<td>a<td>b`)
//!   keeps collecting text until its end tag or an ancestor's: a text field on such an
//!   element may hold more text than html5ever's, and descendant selectors may match
//!   elements html5ever would have closed;
//! - html5ever's foster parenting (content misplaced inside a `<table>` is moved before the
//!   table) and the adoption agency (misnested formatting tags) are not replayed, so
//!   `table h1` matches an `<h1>` written inside a table, where html5ever moved it out.
//!
//! Well-formed pages (every non-void element closed) give the same links and fields as
//! html5ever.
//!
//! # Limits (a hostile page never panics, and never costs unbounded memory)
//! - lol_html's own buffers (open-element stack, partial tokens) are capped at
//!   [`LOL_HTML_MEMORY_LIMIT`]; past that, or on any lol_html error, extraction stops and the
//!   result holds what was found so far with [`Extracted::truncated`] set.
//! - at most [`MAX_LINKS`] distinct links are kept per page, counted after resolution,
//!   normalisation (fragments stripped) and deduplication: a page with 74,000 `#line`
//!   anchors to itself has one link. The distinct links past the cap are counted in
//!   [`Extracted::links_dropped`];
//! - at most [`MAX_NOSCRIPT_PASSES`] `<noscript>` elements holding markup are read per page,
//!   nested at most [`MAX_NOSCRIPT_DEPTH`] deep (then `truncated` is set);
//! - an href longer than [`MAX_URL_LEN`] bytes is dropped;
//! - a text field keeps at most [`MAX_FIELD_LEN`] bytes of raw text (then `truncated` is set).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use lol_html::errors::SelectorError;
use lol_html::html_content::{Element, EndTag, TextChunk, TextType};
use lol_html::{ElementContentHandlers, HandlerResult, HtmlRewriter, MemorySettings, Selector, Settings};
use regex::Regex;
use serde_json::{Map, Value};
use url::Url;

use super::scan;
use super::urls::normalize;
use crate::spec::{FieldSelector, ParseSpec};

/// lol_html's memory cap per page (open-element stack and token buffers), in bytes.
pub const LOL_HTML_MEMORY_LIMIT: usize = 8 * 1024 * 1024;
/// At most this many distinct links (after normalisation and deduplication) are kept from
/// one page.
pub const MAX_LINKS: usize = 50_000;
/// At most this many `<noscript>` elements with markup inside are read again per page.
pub const MAX_NOSCRIPT_PASSES: usize = 1_000;
/// `<noscript>` inside `<noscript>` is read this many levels deep.
pub const MAX_NOSCRIPT_DEPTH: usize = 4;
/// Hrefs longer than this (in bytes, after entity decoding) are dropped.
pub const MAX_URL_LEN: usize = 8 * 1024;
/// A text field keeps at most this many bytes of text.
pub const MAX_FIELD_LEN: usize = 1024 * 1024;

/// The longest CSS selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 1024;
/// The deepest nesting of `(...)` and `[...]` in a CSS selector (`:not(:not(...))`).
pub const MAX_SELECTOR_NESTING: usize = 8;
/// The most combinator steps in a CSS selector (`div > div > ...`, descendants included).
pub const MAX_SELECTOR_STEPS: usize = 32;

/// Why a CSS selector is refused.
#[derive(Debug, thiserror::Error)]
pub enum BadSelector {
    /// Longer than [`MAX_SELECTOR_LEN`].
    #[error("longer than {MAX_SELECTOR_LEN} bytes")]
    TooLong,
    /// Parentheses or brackets nested deeper than [`MAX_SELECTOR_NESTING`].
    #[error("parentheses and brackets nested more than {MAX_SELECTOR_NESTING} deep")]
    TooDeep,
    /// More than [`MAX_SELECTOR_STEPS`] combinator steps.
    #[error("more than {MAX_SELECTOR_STEPS} combinator steps")]
    TooManySteps,
    /// lol_html cannot parse it, or does not support it.
    #[error("{0}")]
    Syntax(#[from] SelectorError),
}

/// Parses a CSS selector as the extractor runs it, within the bounds above (lol_html's
/// parser and matcher recurse, so a deeply nested or very long selector would exhaust the
/// stack). `arachne validate` checks selectors with this same function.
pub fn parse_selector(css: &str) -> Result<Selector, BadSelector> {
    if css.len() > MAX_SELECTOR_LEN {
        return Err(BadSelector::TooLong);
    }
    let (nesting, steps) = selector_shape(css);
    if nesting > MAX_SELECTOR_NESTING {
        return Err(BadSelector::TooDeep);
    }
    if steps > MAX_SELECTOR_STEPS {
        return Err(BadSelector::TooManySteps);
    }
    Ok(css.parse::<Selector>()?)
}

/// The deepest `(`/`[` nesting of a selector and its number of combinator steps (a `>`,
/// `+`, `~` or a run of whitespace between two compound selectors), outside quotes.
fn selector_shape(css: &str) -> (usize, usize) {
    let (mut depth, mut deepest, mut steps) = (0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut after_compound = false;
    let mut pending = false;
    for c in css.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' => {
                after_compound = false;
                pending = false;
                continue;
            }
            '>' | '+' | '~' if depth == 0 => {
                pending |= after_compound;
                continue;
            }
            c if c.is_whitespace() => {
                pending |= after_compound && depth == 0;
                continue;
            }
            _ => {}
        }
        if pending {
            steps += 1;
            pending = false;
        }
        after_compound = true;
    }
    (deepest, steps)
}

/// A `parse:` section that cannot be compiled, naming the bad selector or regex.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A `follow` selector that lol_html cannot parse or does not support.
    #[error("parse.follow[{index}]: bad CSS selector '{selector}': {source}")]
    FollowSelector {
        /// Position in `parse.follow`.
        index: usize,
        /// The selector as written.
        selector: String,
        /// Why it was refused.
        source: BadSelector,
    },
    /// An item rule's `match` regex that does not compile.
    #[error("parse.items '{rule}': bad match regex '{regex}': {source}")]
    MatchRegex {
        /// The rule's name.
        rule: String,
        /// The regex as written.
        regex: String,
        /// Why it was refused.
        source: Box<regex::Error>,
    },
    /// A field whose `"css @attr"` form is malformed.
    #[error("parse.items '{rule}' field '{field}': bad selector '{selector}': {message}")]
    FieldSyntax {
        /// The rule's name.
        rule: String,
        /// The field's name.
        field: String,
        /// The field's selector as written.
        selector: String,
        /// What is wrong.
        message: String,
    },
    /// A field's CSS selector that lol_html cannot parse or does not support.
    #[error("parse.items '{rule}' field '{field}': bad CSS selector '{selector}': {source}")]
    FieldSelector {
        /// The rule's name.
        rule: String,
        /// The field's name.
        field: String,
        /// The CSS part of the field's selector.
        selector: String,
        /// Why it was refused.
        source: BadSelector,
    },
}

/// What one page gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Absolute, normalised http(s) links, in document order, without duplicates.
    pub links: Vec<Url>,
    /// Items of the rules that matched the page URL.
    pub items: Vec<ExtractedItem>,
    /// Extraction stopped early (a memory cap, a lol_html error, too many `<noscript>`):
    /// `links` and `items` hold what was found before that point.
    pub truncated: bool,
    /// Distinct links past [`MAX_LINKS`], not kept.
    pub links_dropped: usize,
}

/// One item taken from a page by one rule: its fields, before the parser adds the page's
/// URL and fetch time to make it a [`crate::crawl::Item`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractedItem {
    /// The rule's name.
    pub rule: String,
    /// Field name -> string value, or `null` when not found; in the rule's field order.
    pub fields: Map<String, Value>,
}

/// The spec's `parse:` rules, compiled once; [`RuleParser::extract`] applies them to a page.
///
/// Cheap to clone (an `Arc`), `Send + Sync`.
#[derive(Clone, Debug)]
pub struct RuleParser {
    inner: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    follow: Vec<Selector>,
    /// `follow` for the fast link scanner, when its selectors are plain enough.
    fast: Option<scan::Simple>,
    base: Selector,
    noscript: Selector,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    matches: Regex,
    fields: Vec<Field>,
    /// Every field's CSS is a bare tag name (`title`, `h1`, `a @href`): a lol_html pass of
    /// these alone is cheap (no attributes to read on other elements), so the scanner is
    /// worth it before it. Class or attribute selectors make lol_html read every tag's
    /// attributes, and then one pass for links and fields together is faster (measured:
    /// `benches/extract.rs`).
    tag_fields: bool,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    selector: Selector,
    /// `None` takes the text content.
    attr: Option<String>,
    /// The attribute holds a URL: resolve it against the page's base.
    attr_is_url: bool,
}

impl RuleParser {
    /// Compiles the `follow` selectors, the rules' regexes and their field selectors.
    pub fn new(spec: &ParseSpec) -> Result<Self, ExtractError> {
        let follow = spec
            .follow
            .iter()
            .enumerate()
            .map(|(index, s)| {
                parse_selector(s).map_err(|source| ExtractError::FollowSelector {
                    index,
                    selector: s.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::with_capacity(spec.items.len());
        for rule in &spec.items {
            let matches = Regex::new(&rule.matches).map_err(|e| ExtractError::MatchRegex {
                rule: rule.name.clone(),
                regex: rule.matches.clone(),
                source: Box::new(e),
            })?;
            let mut fields = Vec::with_capacity(rule.fields.len());
            for (name, raw) in &rule.fields {
                let fs: FieldSelector = raw.parse().map_err(|message| ExtractError::FieldSyntax {
                    rule: rule.name.clone(),
                    field: name.clone(),
                    selector: raw.clone(),
                    message,
                })?;
                let selector = parse_selector(&fs.css).map_err(|source| ExtractError::FieldSelector {
                    rule: rule.name.clone(),
                    field: name.clone(),
                    selector: fs.css.clone(),
                    source,
                })?;
                let attr_is_url = matches!(fs.attr.as_deref(), Some("href" | "src"));
                fields.push(Field { name: name.clone(), selector, attr: fs.attr, attr_is_url });
            }
            let tag_fields = rule.fields.values().all(|raw| {
                raw.parse::<FieldSelector>().is_ok_and(|fs| {
                    scan::Simple::new(std::slice::from_ref(&fs.css)).is_some() && !fs.css.contains('[')
                })
            });
            rules.push(Rule { name: rule.name.clone(), matches, fields, tag_fields });
        }
        let builtin = |css: &str| {
            parse_selector(css).map_err(|source| ExtractError::FollowSelector {
                index: usize::MAX,
                selector: css.into(),
                source,
            })
        };
        let (base, noscript) = (builtin("base[href]")?, builtin("noscript")?);
        let fast = scan::Simple::new(&spec.follow);
        Ok(Self { inner: Arc::new(Compiled { follow, fast, base, noscript, rules }) })
    }

    /// The same rules without the fast link scanner: every page goes through lol_html alone
    /// (the reference the scanner is checked against, in tests and benchmarks).
    pub fn lol_html_only(&self) -> Self {
        let c = &*self.inner;
        let compiled = Compiled {
            follow: c.follow.clone(),
            fast: None,
            base: c.base.clone(),
            noscript: c.noscript.clone(),
            rules: c.rules.clone(),
        };
        Self { inner: Arc::new(compiled) }
    }

    /// Whether pages go through the fast link scanner first (the `follow` selectors are all
    /// `tag` or `tag[attr]`).
    pub fn scans_links(&self) -> bool {
        self.inner.fast.is_some()
    }

    /// Whether some item rule applies to `page_url` (its `match` regex matches).
    pub fn has_items_for(&self, page_url: &Url) -> bool {
        self.inner.rules.iter().any(|r| r.matches.is_match(page_url.as_str()))
    }

    /// Links and items of one page, in one streaming pass over `html`.
    ///
    /// Never panics, whatever the page; see the module docs for the exact semantics and the
    /// limits.
    pub fn extract(&self, page_url: &Url, html: &str) -> Extracted {
        let c = &*self.inner;
        // (rule index, index of its first field in `PageState::fields`)
        let mut active: Vec<(usize, usize)> = Vec::new();
        let mut n_fields = 0;
        for (ri, rule) in c.rules.iter().enumerate() {
            if !rule.fields.is_empty() && rule.matches.is_match(page_url.as_str()) {
                active.push((ri, n_fields));
                n_fields += rule.fields.len();
            }
        }
        let fields_cheap = active.iter().all(|&(ri, _)| c.rules.get(ri).is_some_and(|r| r.tag_fields));
        if let (Some(fast), true) = (&c.fast, fields_cheap) {
            if let Some(out) = scan_then_items(c, fast, &active, n_fields, page_url, html) {
                return out;
            }
        }
        let state = Rc::new(RefCell::new(PageState::new(n_fields)));
        let ok = run_pass(c, true, &active, &state, html);
        let mut st = into_state(state);
        st.truncated |= !ok;
        st.read_noscripts(c, 0);
        st.finish(page_url, c, &active)
    }
}

/// The fast path: the links by the scanner, then, when a rule applies to the page, a lol_html
/// pass with the rules' field selectors alone. `None` when the scanner gives up or lol_html
/// stops early: the caller then runs the whole page through lol_html, so the links and the
/// `truncated` flag are always lol_html's.
fn scan_then_items(
    c: &Compiled,
    fast: &scan::Simple,
    active: &[(usize, usize)],
    n_fields: usize,
    page_url: &Url,
    html: &str,
) -> Option<Extracted> {
    let mut st = PageState::new(n_fields);
    scan::scan(fast, html, &mut st).ok()?;
    if !active.is_empty() {
        let shared = Rc::new(RefCell::new(st));
        if !run_pass(c, false, active, &shared, html) {
            return None;
        }
        st = into_state(shared);
    }
    Some(st.finish(page_url, c, active))
}

impl scan::Sink for PageState {
    fn link(&mut self, raw: &str) {
        self.push_link(raw);
    }

    fn base(&mut self, raw: &str) {
        self.set_base(raw);
    }
}

/// Per-page scratch state shared by the handlers of one pass.
#[derive(Default)]
struct PageState {
    /// Decoded `href` of the first `<base href>`.
    base: Option<String>,
    /// How many `<noscript>` elements came before that `<base>` (one inside an earlier
    /// `<noscript>` comes first in document order).
    base_rank: usize,
    /// Decoded hrefs, back to back; `link_spans` cuts them.
    link_buf: String,
    link_spans: Vec<(usize, usize)>,
    /// The raw content of each `<noscript>`, read again for links after the pass.
    noscripts: Vec<Noscript>,
    /// Past [`MAX_NOSCRIPT_PASSES`]: the current `<noscript>`'s content is not kept.
    noscript_skipped: bool,
    fields: Vec<FieldState>,
    truncated: bool,
}

/// One `<noscript>`'s content, and where its links go among the page's.
struct Noscript {
    /// The number of links found before it.
    at: usize,
    /// Its raw content (lol_html hands it out as raw text).
    html: String,
}

impl Noscript {
    /// Whether it may hold an element (no `<`, no tag).
    fn has_markup(&self) -> bool {
        self.html.contains('<')
    }
}

#[derive(Default)]
struct FieldState {
    status: Status,
    /// Decoded text so far, or the decoded attribute value.
    value: String,
    /// Raw text of the current text node (decoded when the node ends: an entity may be split
    /// across chunks).
    pending: String,
    /// Found (the value is not `null`).
    found: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Status {
    #[default]
    Waiting,
    Capturing,
    Done,
}

impl PageState {
    fn new(n_fields: usize) -> Self {
        let mut fields = Vec::with_capacity(n_fields);
        fields.resize_with(n_fields, FieldState::default);
        Self { fields, ..Self::default() }
    }

    /// Keeps the decoded, trimmed href. The cap on links is applied in [`Self::finish`],
    /// on distinct URLs; what is kept here is bounded by the page's size.
    fn push_link(&mut self, raw: &str) {
        let start = self.link_buf.len();
        decode_into(raw, true, &mut self.link_buf);
        let trimmed = trim_html_ws(&self.link_buf[start..]);
        if trimmed.len() > MAX_URL_LEN {
            self.link_buf.truncate(start);
            return;
        }
        // Trim in place: shift the kept part to `start`.
        let lead = trimmed.as_ptr() as usize - self.link_buf[start..].as_ptr() as usize;
        let len = trimmed.len();
        if lead > 0 {
            self.link_buf.replace_range(start..start + lead, "");
        }
        self.link_buf.truncate(start + len);
        self.link_spans.push((start, start + len));
    }

    fn set_base(&mut self, raw: &str) {
        if self.base.is_none() {
            let mut d = String::with_capacity(raw.len());
            decode_into(raw, true, &mut d);
            self.base = Some(d);
            // The `<noscript>` elements with markup before it (the last entry is reused by
            // the next `<noscript>` when it holds none).
            let reusable = self.noscripts.last().is_some_and(|n| !n.has_markup());
            self.base_rank = self.noscripts.len() - usize::from(reusable);
        }
    }

    /// A `<noscript>` starts: its content is collected for a second pass. An entry that
    /// holds no markup is reused, so thousands of empty ones cost nothing.
    fn open_noscript(&mut self) {
        let at = self.link_spans.len();
        self.noscript_skipped = false;
        let full = self.noscripts.len() >= MAX_NOSCRIPT_PASSES;
        match self.noscripts.last_mut() {
            Some(last) if !last.has_markup() => {
                last.at = at;
                last.html.clear();
            }
            _ if full => self.noscript_skipped = true,
            _ => self.noscripts.push(Noscript { at, html: String::new() }),
        }
    }

    fn noscript_text(&mut self, text: &str) {
        if self.noscript_skipped {
            self.truncated |= text.contains('<');
        } else if let Some(last) = self.noscripts.last_mut() {
            last.html.push_str(text);
        }
    }

    /// Reads each `<noscript>`'s content for links (and a `<base href>`) and puts its links
    /// where the `<noscript>` stood.
    fn read_noscripts(&mut self, c: &Compiled, depth: usize) {
        let noscripts = std::mem::take(&mut self.noscripts);
        if noscripts.iter().all(|n| !n.has_markup()) {
            return;
        }
        if depth >= MAX_NOSCRIPT_DEPTH {
            self.truncated = true;
            return;
        }
        let mut spans = Vec::with_capacity(self.link_spans.len());
        let mut next = 0;
        for (rank, ns) in noscripts.iter().enumerate().filter(|(_, n)| n.has_markup()) {
            let mut inner = PageState::default();
            inner.truncated = !run_links_pass(c, &mut inner, &ns.html);
            inner.read_noscripts(c, depth + 1);
            self.truncated |= inner.truncated;
            if let Some(b) = inner.base {
                if self.base.is_none() || rank < self.base_rank {
                    self.base = Some(b);
                    self.base_rank = rank;
                }
            }
            let at = ns.at.min(self.link_spans.len());
            spans.extend_from_slice(&self.link_spans[next..at]);
            next = at;
            let offset = self.link_buf.len();
            self.link_buf.push_str(&inner.link_buf);
            spans.extend(inner.link_spans.iter().map(|&(s, e)| (s + offset, e + offset)));
        }
        spans.extend_from_slice(&self.link_spans[next..]);
        self.link_spans = spans;
    }

    /// The page's links: resolved, http(s) only, normalised, first occurrence kept, at most
    /// [`MAX_LINKS`] (the rest counted).
    fn links(&self, base: &Url) -> (Vec<Url>, usize) {
        // Few links: a linear scan beats hashing.
        let few = self.link_spans.len() <= 16;
        // Hrefs that differ only in their fragment are one URL: resolve each once (a page
        // with 74,000 `#line` anchors to itself resolves one).
        let mut raw_seen: HashSet<&str> = HashSet::new();
        let mut resolved = Vec::with_capacity(self.link_spans.len().min(MAX_LINKS));
        for &(s, e) in &self.link_spans {
            let Some(raw) = self.link_buf.get(s..e) else { continue };
            let defragmented = raw.split_once('#').map_or(raw, |(r, _)| r);
            if !few && !raw_seen.insert(defragmented) {
                continue;
            }
            let Ok(mut u) = base.join(raw) else { continue };
            if !matches!(u.scheme(), "http" | "https") {
                continue;
            }
            normalize(&mut u);
            resolved.push(u);
        }
        drop(raw_seen);
        let keep: Vec<bool> = if few {
            (0..resolved.len())
                .map(|i| !resolved[..i].iter().any(|l: &Url| l.as_str() == resolved[i].as_str()))
                .collect()
        } else {
            let mut seen: HashSet<&str> = HashSet::with_capacity(resolved.len());
            resolved.iter().map(|u| seen.insert(u.as_str())).collect()
        };
        let mut links = Vec::with_capacity(resolved.len().min(MAX_LINKS));
        let mut dropped = 0;
        for (u, _) in resolved.into_iter().zip(keep).filter(|(_, k)| *k) {
            if links.len() < MAX_LINKS {
                links.push(u);
            } else {
                dropped += 1;
            }
        }
        (links, dropped)
    }

    fn finish(mut self, page_url: &Url, c: &Compiled, active: &[(usize, usize)]) -> Extracted {
        let base = self
            .base
            .as_deref()
            .and_then(|b| page_url.join(trim_html_ws(b)).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        let base = base.as_ref().unwrap_or(page_url);
        let (links, links_dropped) = self.links(base);

        let mut items = Vec::with_capacity(active.len());
        for &(ri, first) in active {
            let Some(rule) = c.rules.get(ri) else { continue };
            let mut fields = Map::new();
            let mut any = false;
            for (fi, field) in rule.fields.iter().enumerate() {
                let Some(fs) = self.fields.get_mut(first + fi) else { continue };
                if fs.status == Status::Capturing {
                    flush_pending(fs);
                }
                let value = if !fs.found {
                    Value::Null
                } else if field.attr.is_none() {
                    Value::String(collapse_ws(&fs.value))
                } else if field.attr_is_url {
                    let raw = trim_html_ws(&fs.value);
                    match base.join(raw) {
                        Ok(u) => Value::String(u.into()),
                        Err(_) => Value::String(raw.to_string()),
                    }
                } else {
                    Value::String(std::mem::take(&mut fs.value))
                };
                any |= fs.found;
                fields.insert(field.name.clone(), value);
            }
            if any {
                items.push(ExtractedItem { rule: rule.name.clone(), fields });
            }
        }
        Extracted { links, items, truncated: self.truncated, links_dropped }
    }
}

fn flush_pending(fs: &mut FieldState) {
    if !fs.pending.is_empty() {
        decode_into(&fs.pending, false, &mut fs.value);
        fs.pending.clear();
    }
}

/// The state back from the handlers that shared it.
fn into_state(state: Rc<RefCell<PageState>>) -> PageState {
    match Rc::try_unwrap(state) {
        Ok(cell) => cell.into_inner(),
        // Unreachable in practice: the rewriter (and every handler holding a clone) was
        // dropped by `run_pass`. Take the state out anyway rather than panic.
        Err(rc) => std::mem::take(&mut *rc.borrow_mut()),
    }
}

/// A pass of the `follow` selectors (and `base[href]`) alone over `html` (a `<noscript>`'s
/// content) into `state`. Returns false when lol_html stopped with an error.
fn run_links_pass(c: &Compiled, state: &mut PageState, html: &str) -> bool {
    let shared = Rc::new(RefCell::new(std::mem::take(state)));
    let ok = run_pass(c, true, &[], &shared, html);
    *state = into_state(shared);
    ok
}

/// One lol_html pass: the `follow` selectors, `base[href]` and `<noscript>` when `links`,
/// and the fields of the `active` rules. Returns false when lol_html stopped with an error.
fn run_pass(
    c: &Compiled,
    links: bool,
    active: &[(usize, usize)],
    state: &Rc<RefCell<PageState>>,
    html: &str,
) -> bool {
    let n_handlers = c.follow.len() + 2 + active.len() * 4;
    let mut handlers: Vec<(Cow<'_, Selector>, ElementContentHandlers<'_>)> = Vec::with_capacity(n_handlers);
    let follow: &[Selector] = if links { &c.follow } else { &[] };

    for sel in follow {
        let st = state;
        handlers.push((
            Cow::Borrowed(sel),
            ElementContentHandlers::default().element(move |el: &mut Element<'_, '_>| {
                let Ok(mut s) = st.try_borrow_mut() else { return Ok(()) };
                let v = el.get_attribute("href").or_else(|| el.get_attribute("src"));
                if let Some(v) = v {
                    s.push_link(&v);
                }
                Ok(())
            }),
        ));
    }

    if links {
        let st = state;
        handlers.push((
            Cow::Borrowed(&c.base),
            ElementContentHandlers::default().element(move |el: &mut Element<'_, '_>| {
                let Ok(mut s) = st.try_borrow_mut() else { return Ok(()) };
                if let Some(v) = el.get_attribute("href") {
                    s.set_base(&v);
                }
                Ok(())
            }),
        ));
    }

    if !follow.is_empty() {
        let st = state;
        handlers.push((
            Cow::Borrowed(&c.noscript),
            ElementContentHandlers::default()
                .element(move |_: &mut Element<'_, '_>| {
                    if let Ok(mut s) = st.try_borrow_mut() {
                        s.open_noscript();
                    }
                    Ok(())
                })
                .text(move |t: &mut TextChunk<'_>| {
                    if let Ok(mut s) = st.try_borrow_mut() {
                        s.noscript_text(t.as_str());
                    }
                    Ok(())
                }),
        ));
    }

    for &(ri, first) in active {
        let Some(rule) = c.rules.get(ri) else { continue };
        for (fi, field) in rule.fields.iter().enumerate() {
            let idx = first + fi;
            let st = state;
            let mut h = ElementContentHandlers::default()
                .element(move |el: &mut Element<'_, '_>| field_element(st, idx, field, el));
            if field.attr.is_none() {
                h = h.text(move |t: &mut TextChunk<'_>| field_text(st, idx, t));
            }
            handlers.push((Cow::Borrowed(&field.selector), h));
        }
    }

    let mut settings = Settings::new()
        .with_strict(false)
        .with_memory_settings(MemorySettings::new().with_max_allowed_memory_usage(LOL_HTML_MEMORY_LIMIT));
    for h in handlers {
        settings = settings.append_element_content_handler(h);
    }
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // A failed `write` poisons the rewriter: `end` must not be called then.
    match rewriter.write(html.as_bytes()) {
        Ok(()) => rewriter.end().is_ok(),
        Err(_) => false,
    }
}

fn field_element(
    st: &Rc<RefCell<PageState>>,
    idx: usize,
    field: &Field,
    el: &mut Element<'_, '_>,
) -> HandlerResult {
    let Ok(mut s) = st.try_borrow_mut() else { return Ok(()) };
    let Some(fs) = s.fields.get_mut(idx) else { return Ok(()) };
    if fs.status != Status::Waiting {
        return Ok(());
    }
    match &field.attr {
        Some(attr) => {
            fs.status = Status::Done;
            if let Some(v) = el.get_attribute(attr) {
                decode_into(&v, true, &mut fs.value);
                if fs.value.contains('\r') {
                    fs.value = fs.value.replace("\r\n", "\n").replace('\r', "\n");
                }
                fs.found = true;
            }
        }
        None => {
            fs.found = true;
            if !el.can_have_content() {
                fs.status = Status::Done;
                return Ok(());
            }
            fs.status = Status::Capturing;
            drop(s);
            let st2 = Rc::clone(st);
            let registered = el.on_end_tag(Box::new(move |_: &mut EndTag<'_>| {
                if let Ok(mut s) = st2.try_borrow_mut() {
                    if let Some(fs) = s.fields.get_mut(idx) {
                        flush_pending(fs);
                        fs.status = Status::Done;
                    }
                }
                Ok(())
            }));
            if registered.is_err() {
                if let Ok(mut s) = st.try_borrow_mut() {
                    if let Some(fs) = s.fields.get_mut(idx) {
                        fs.status = Status::Done;
                    }
                }
            }
        }
    }
    Ok(())
}

fn field_text(st: &RefCell<PageState>, idx: usize, t: &mut TextChunk<'_>) -> HandlerResult {
    let Ok(mut s) = st.try_borrow_mut() else { return Ok(()) };
    let s = &mut *s;
    let Some(fs) = s.fields.get_mut(idx) else { return Ok(()) };
    if fs.status != Status::Capturing {
        return Ok(());
    }
    let mut text = t.as_str();
    let room = MAX_FIELD_LEN.saturating_sub(fs.value.len() + fs.pending.len());
    let over = text.len() > room;
    if over {
        // Keep what fits, cut at a character boundary, and stop capturing.
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text = &text[..cut];
    }
    match t.text_type() {
        TextType::Data | TextType::RCData => {
            fs.pending.push_str(text);
            if over || t.last_in_text_node() {
                flush_pending(fs);
            }
        }
        _ => {
            flush_pending(fs);
            fs.value.push_str(text);
        }
    }
    if over {
        fs.status = Status::Done;
        s.truncated = true;
    }
    Ok(())
}

/// HTML's ASCII whitespace: space, tab, LF, FF, CR.
fn trim_html_ws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// Whitespace runs (HTML's ASCII whitespace) to one space, trimmed.
fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Appends `raw` to `out` with character references decoded as the HTML tokenizer decodes
/// them in text (`in_attribute == false`) or in an attribute value (`true`: a named
/// reference without `;` followed by `=` or an alphanumeric stays literal, so
/// `?a=1&copy=2` keeps its `&copy`).
pub(crate) fn decode_into(raw: &str, in_attribute: bool, out: &mut String) {
    let bytes = raw.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while let Some(off) = bytes.get(i..).and_then(|b| b.iter().position(|&c| c == b'&')) {
        let amp = i + off;
        let rest = &raw[amp + 1..];
        out.push_str(&raw[last..amp]);
        match decode_ref(rest, in_attribute, out) {
            Some(consumed) => {
                last = amp + 1 + consumed;
                i = last;
            }
            None => {
                // Not a reference: the '&' is literal; keep scanning after it.
                out.push('&');
                last = amp + 1;
                i = amp + 1;
            }
        }
    }
    out.push_str(&raw[last..]);
}

/// Decodes the reference at the start of `rest` (just after a `&`), pushing its characters
/// to `out`; returns the bytes consumed, or `None` (and pushes nothing) when there is none.
fn decode_ref(rest: &str, in_attribute: bool, out: &mut String) -> Option<usize> {
    let b = rest.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, start) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut j = start;
        let mut value: u32 = 0;
        while let Some(&d) = b.get(j) {
            let digit = match (hex, d) {
                (_, b'0'..=b'9') => u32::from(d - b'0'),
                (true, b'a'..=b'f') => u32::from(d - b'a' + 10),
                (true, b'A'..=b'F') => u32::from(d - b'A' + 10),
                _ => break,
            };
            value = value.saturating_mul(if hex { 16 } else { 10 }).saturating_add(digit);
            j += 1;
        }
        if j == start {
            return None;
        }
        if b.get(j) == Some(&b';') {
            j += 1;
        }
        out.push(numeric_char(value));
        return Some(j);
    }
    // Named: the longest name in the table that prefixes `rest` (the table holds every
    // prefix of every name, with (0, 0) for prefixes that are not names themselves).
    let mut best: Option<(usize, u32, u32)> = None;
    let mut j = 0;
    while j < b.len() && j < 40 {
        let c = b[j];
        if !(c.is_ascii_alphanumeric() || c == b';') {
            break;
        }
        match web_atoms::NAMED_ENTITIES.get(&rest[..j + 1]) {
            Some(&(c1, c2)) => {
                if c1 != 0 {
                    best = Some((j + 1, c1, c2));
                }
                if c == b';' {
                    break;
                }
            }
            None => break,
        }
        j += 1;
    }
    let (len, c1, c2) = best?;
    if in_attribute && b[len - 1] != b';' {
        if let Some(&next) = b.get(len) {
            if next == b'=' || next.is_ascii_alphanumeric() {
                return None;
            }
        }
    }
    out.push(char::from_u32(c1).unwrap_or('\u{FFFD}'));
    if c2 != 0 {
        out.push(char::from_u32(c2).unwrap_or('\u{FFFD}'));
    }
    Some(len)
}

/// The character of a numeric reference, with the HTML tokenizer's replacements.
fn numeric_char(n: u32) -> char {
    let mapped = match n {
        0x80 => 0x20AC,
        0x82 => 0x201A,
        0x83 => 0x0192,
        0x84 => 0x201E,
        0x85 => 0x2026,
        0x86 => 0x2020,
        0x87 => 0x2021,
        0x88 => 0x02C6,
        0x89 => 0x2030,
        0x8A => 0x0160,
        0x8B => 0x2039,
        0x8C => 0x0152,
        0x8E => 0x017D,
        0x91 => 0x2018,
        0x92 => 0x2019,
        0x93 => 0x201C,
        0x94 => 0x201D,
        0x95 => 0x2022,
        0x96 => 0x2013,
        0x97 => 0x2014,
        0x98 => 0x02DC,
        0x99 => 0x2122,
        0x9A => 0x0161,
        0x9B => 0x203A,
        0x9C => 0x0153,
        0x9E => 0x017E,
        0x9F => 0x0178,
        0 => 0xFFFD,
        n => n,
    };
    // Surrogates and values past U+10FFFF give None.
    char::from_u32(mapped).unwrap_or('\u{FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ItemRule;
    use indexmap::IndexMap;

    fn dec(s: &str, attr: bool) -> String {
        let mut out = String::new();
        decode_into(s, attr, &mut out);
        out
    }

    #[test]
    fn entities() {
        assert_eq!(dec("a&amp;b", true), "a&b");
        assert_eq!(dec("a&ampb", false), "a&b");
        assert_eq!(dec("?a=1&copy=2", true), "?a=1&copy=2");
        assert_eq!(dec("?a=1&copy=2", false), "?a=1©=2");
        assert_eq!(dec("&notit;", false), "¬it;");
        assert_eq!(dec("&notin;", false), "∉");
        assert_eq!(dec("&#x41;&#65;&#X42", false), "AAB");
        assert_eq!(dec("&#0;&#x110000;&#xD800;&#x80;", false), "\u{FFFD}\u{FFFD}\u{FFFD}€");
        assert_eq!(dec("&#99999999999999999999;", false), "\u{FFFD}");
        assert_eq!(dec("& &# &#x &bogus; &", false), "& &# &#x &bogus; &");
        assert_eq!(dec("&NotNestedGreaterGreater;", false), "\u{2AA2}\u{338}");
        assert_eq!(dec("é&lt;€", false), "é<€");
    }

    fn spec(follow: &[&str], items: Vec<ItemRule>) -> ParseSpec {
        ParseSpec { follow: follow.iter().map(|s| s.to_string()).collect(), items }
    }

    fn rule(name: &str, m: &str, fields: &[(&str, &str)]) -> ItemRule {
        ItemRule {
            name: name.into(),
            matches: m.into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<IndexMap<_, _>>(),
        }
    }

    #[test]
    fn bad_rules_are_named() {
        let e = RuleParser::new(&spec(&["a:hover"], vec![])).expect_err("bad selector");
        assert!(e.to_string().contains("a:hover"), "{e}");
        let e = RuleParser::new(&spec(&["a"], vec![rule("r", "(", &[])])).expect_err("regex");
        assert!(e.to_string().contains("'r'"), "{e}");
        let e = RuleParser::new(&spec(&["a"], vec![rule("r", ".", &[("t", "h1 + p")])]))
            .expect_err("unsupported combinator");
        assert!(e.to_string().contains("h1 + p"), "{e}");
        let e = RuleParser::new(&spec(&["a"], vec![rule("r", ".", &[("t", " @href")])])).expect_err("syntax");
        assert!(e.to_string().contains("field 't'"), "{e}");
    }

    #[test]
    fn links_and_fields() {
        let p = RuleParser::new(&spec(
            &["a[href]", "img"],
            vec![
                rule("book", "/p/", &[("title", "h1"), ("more", "a.more @href"), ("x", ".nope")]),
                rule("other", "/q/", &[("title", "h1")]),
            ],
        ))
        .expect("compiles");
        let html = r#"<html><head><title>T</title></head><body>
            <h1> Hello <b>big</b>&amp;
               wide  world </h1>
            <a href="/a?x=1&amp;y=2#frag">a</a>
            <a href=" ../b ">b</a>
            <a href="mailto:x@y">m</a>
            <a href="/a?x=1&y=2">dup</a>
            <a class=more href="more.html">more</a>
            <img src="//cdn.example/i.png">
            <base href="https://other.example/base/">
            </body></html>"#;
        let page = Url::parse("http://example.com/p/1").expect("url");
        let out = p.extract(&page, html);
        let links: Vec<&str> = out.links.iter().map(|u| u.as_str()).collect();
        assert_eq!(
            links,
            [
                "https://other.example/a?x=1&y=2",
                "https://other.example/b",
                "https://other.example/base/more.html",
                "https://cdn.example/i.png",
            ]
        );
        assert!(!out.truncated);
        assert_eq!(out.items.len(), 1);
        let it = &out.items[0];
        assert_eq!(it.rule, "book");
        assert_eq!(it.fields["title"], "Hello big& wide world");
        assert_eq!(it.fields["more"], "https://other.example/base/more.html");
        assert_eq!(it.fields["x"], Value::Null);
        let keys: Vec<&String> = it.fields.keys().collect();
        assert_eq!(keys, ["title", "more", "x"]);
    }

    #[test]
    fn parser_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<RuleParser>();
    }
}
