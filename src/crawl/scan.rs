//! The fast link scanner: the links of a page's `follow` selectors without lol_html, when
//! those selectors are plain `tag` or `tag[attr]` (the defaults: `a[href]`, `iframe[src]`,
//! `frame[src]`).
//!
//! It reads the page as lol_html's tokenizer does (the same states for tags, attributes,
//! comments, doctypes, raw text, RCDATA and script data, the text type chosen by the start
//! tag's name as lol_html's tree-builder simulator does) but only looks at what the links
//! need, with `memchr` between tags. It gives up ([`Bail`]) wherever it would have to guess
//! or where lol_html could stop early: SVG and MathML (foreign content), a `<!--` inside a
//! script, a nested `<noscript>`, a tag closing right after `=`, a page whose open-element
//! stack could grow past lol_html's memory cap, a long unterminated token at the end. The
//! caller then runs lol_html: the links are always exactly lol_html's (a differential test
//! in `tests/extract.rs` checks it on generated and hostile pages).

use memchr::memchr;

/// How many non-void start tags a page (or a `<noscript>`'s content) may hold before the
/// scanner gives up: lol_html keeps every unclosed element on its stack, counted against
/// its memory cap, so a page with many unclosed elements may be cut short there. Without
/// pops counted, this bounds the stack's depth; it is well under the cap's depth.
pub(crate) const MAX_OPEN_TAGS: usize = 20_000;
/// The longest unterminated token (tag, comment) the scanner accepts at the end of a page:
/// lol_html buffers it, counted against its memory cap.
const MAX_TAIL: usize = 1024 * 1024;
/// At most this many `<noscript>` elements with markup are read by the scanner.
const MAX_NOSCRIPTS: usize = 64;
/// At most this many distinct attribute names in the `follow` selectors.
const MAX_ATTRS: usize = 4;

/// The scanner cannot tell what lol_html would do: run lol_html.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

/// The `follow` selectors in a form the scanner runs: each a tag name and maybe one attribute
/// that must be present.
#[derive(Debug, Clone)]
pub(crate) struct Simple {
    /// (lowercased tag name, index in `attrs` of the required attribute)
    selectors: Vec<(Box<[u8]>, Option<usize>)>,
    /// The attribute names looked up on a tag: `href`, `src`, then the selectors' own.
    attrs: Vec<Box<[u8]>>,
}

impl Simple {
    /// The scanner's form of `follow`, or `None` when one selector is more than `tag` or
    /// `tag[attr]`.
    pub(crate) fn new(follow: &[String]) -> Option<Self> {
        let mut attrs: Vec<Box<[u8]>> = vec![b"href"[..].into(), b"src"[..].into()];
        let mut selectors = Vec::with_capacity(follow.len());
        for css in follow {
            let css = css.trim();
            let (tag, attr) = match css.split_once('[') {
                None => (css, None),
                Some((tag, rest)) => (tag, Some(rest.strip_suffix(']')?)),
            };
            if !is_ident(tag) {
                return None;
            }
            let attr = match attr {
                None => None,
                Some(a) if is_ident(a) => {
                    let lower = a.to_ascii_lowercase().into_bytes().into_boxed_slice();
                    Some(match attrs.iter().position(|x| *x == lower) {
                        Some(i) => i,
                        None => {
                            attrs.push(lower);
                            attrs.len() - 1
                        }
                    })
                }
                Some(_) => return None,
            };
            selectors.push((tag.to_ascii_lowercase().into_bytes().into_boxed_slice(), attr));
        }
        (attrs.len() <= MAX_ATTRS).then_some(Self { selectors, attrs })
    }

    fn matches(&self, name: &[u8], found: &[Option<&[u8]>; MAX_ATTRS]) -> bool {
        self.selectors.iter().any(|(tag, attr)| {
            tag[..].eq_ignore_ascii_case(name)
                && attr.is_none_or(|a| found.get(a).is_some_and(Option::is_some))
        })
    }
}

/// A name as the selectors write it: ASCII letters, digits, `-` and `_`, starting with a letter.
fn is_ident(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the scanner reports, in document order.
pub(crate) trait Sink {
    /// The raw (undecoded) `href`, or `src`, of an element a `follow` selector matches.
    fn link(&mut self, raw: &str);
    /// The raw `href` of a `<base href>`.
    fn base(&mut self, raw: &str);
}

/// Scans `html` for the links of `follow` and the `<base href>`, reporting them to `sink`
/// in document order (`<noscript>` content read as markup where it stands, when `follow`
/// is not empty).
pub(crate) fn scan(follow: &Simple, html: &str, sink: &mut impl Sink) -> Result<(), Bail> {
    let mut noscripts = 0;
    Scanner { follow, html, open_tags: 0, in_noscript: false, noscripts: &mut noscripts }.run(sink)
}

struct Scanner<'a, 'n> {
    follow: &'a Simple,
    html: &'a str,
    /// Non-void start tags seen (an upper bound on lol_html's stack depth).
    open_tags: usize,
    /// This is a `<noscript>`'s content.
    in_noscript: bool,
    noscripts: &'n mut usize,
}

/// How a tag ended.
enum TagEnd {
    /// At its `>`; the index after it.
    Closed(usize),
    /// At a `>` right after `=` (lol_html then reads data, whatever the tag).
    AfterEquals(usize),
    /// The page ended inside it.
    Eof,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0C')
}

/// The text type a start tag switches lol_html's tokenizer to (its tree-builder simulator,
/// HTML namespace).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    Data,
    /// RAWTEXT or RCDATA: both end at the appropriate end tag only.
    Raw,
    Script,
    Plain,
    Noscript,
}

fn text_type(name: &[u8]) -> Text {
    const RAW: [&[u8]; 7] = [b"style", b"iframe", b"xmp", b"noembed", b"noframes", b"textarea", b"title"];
    if name.eq_ignore_ascii_case(b"script") {
        Text::Script
    } else if name.eq_ignore_ascii_case(b"noscript") {
        Text::Noscript
    } else if name.eq_ignore_ascii_case(b"plaintext") {
        Text::Plain
    } else if RAW.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        Text::Raw
    } else {
        Text::Data
    }
}

/// lol_html's void elements (never pushed on its stack).
fn is_void(name: &[u8]) -> bool {
    const VOID: [&[u8]; 17] = [
        b"area",
        b"base",
        b"basefont",
        b"bgsound",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"keygen",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
    ];
    name.len() <= 8 && VOID.iter().any(|v| name.eq_ignore_ascii_case(v))
}

impl<'a> Scanner<'a, '_> {
    fn run(&mut self, sink: &mut impl Sink) -> Result<(), Bail> {
        let b = self.html.as_bytes();
        let mut i = 0;
        while let Some(off) = b.get(i..).and_then(|rest| memchr(b'<', rest)) {
            let lt = i + off;
            let Some(&next) = b.get(lt + 1) else { return Ok(()) };
            i = if next.is_ascii_alphabetic() {
                match self.start_tag(lt, sink)? {
                    Some(after) => after,
                    None => return Ok(()),
                }
            } else if next == b'/' {
                match b.get(lt + 2) {
                    None => return Ok(()),
                    Some(c) if c.is_ascii_alphabetic() => match self.tag(lt + 2, &mut [None; MAX_ATTRS]).1 {
                        TagEnd::Closed(after) | TagEnd::AfterEquals(after) => after,
                        TagEnd::Eof => return self.tail(lt),
                    },
                    Some(b'>') => lt + 3,
                    Some(_) => self.until_gt(lt, lt + 2)?,
                }
            } else if next == b'!' {
                let rest = &b[lt + 2..];
                if rest.starts_with(b"--") {
                    match comment_end(&rest[2..]) {
                        Some(end) => lt + 4 + end,
                        None => return self.tail(lt),
                    }
                } else {
                    // A doctype (it ends at its first `>`, quoted or not) or a bogus comment.
                    self.until_gt(lt, lt + 2)?
                }
            } else if next == b'?' {
                self.until_gt(lt, lt + 2)?
            } else {
                lt + 1
            };
            if i == usize::MAX {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The index after the first `>` from `from` (a bogus comment or a doctype), or
    /// `usize::MAX` when the page ends first.
    fn until_gt(&self, start: usize, from: usize) -> Result<usize, Bail> {
        let b = self.html.as_bytes();
        match b.get(from..).and_then(|rest| memchr(b'>', rest)) {
            Some(off) => Ok(from + off + 1),
            None => self.tail(start).map(|()| usize::MAX),
        }
    }

    /// The page ends inside a token starting at `start`: lol_html buffers it.
    fn tail(&self, start: usize) -> Result<(), Bail> {
        if self.html.len() - start > MAX_TAIL {
            Err(Bail)
        } else {
            Ok(())
        }
    }

    /// A start tag at `lt`: reports it, skips the text it opens. The index to go on from, or
    /// `None` when the page ends.
    fn start_tag(&mut self, lt: usize, sink: &mut impl Sink) -> Result<Option<usize>, Bail> {
        let mut found = [None; MAX_ATTRS];
        let (name, end) = self.tag(lt + 1, &mut found);
        let after = match end {
            TagEnd::Eof => return self.tail(lt).map(|()| None),
            TagEnd::Closed(after) => after,
            TagEnd::AfterEquals(after) => {
                if text_type(name) != Text::Data || name.eq_ignore_ascii_case(b"svg") {
                    return Err(Bail);
                }
                after
            }
        };
        if name.eq_ignore_ascii_case(b"svg") || name.eq_ignore_ascii_case(b"math") {
            return Err(Bail);
        }
        if !is_void(name) {
            self.open_tags += 1;
            if self.open_tags > MAX_OPEN_TAGS {
                return Err(Bail);
            }
        }
        let attr = |k: usize| found[k].map(String::from_utf8_lossy);
        if self.follow.matches(name, &found) {
            if let Some(v) = attr(0).or_else(|| attr(1)) {
                sink.link(&v);
            }
        }
        if name.eq_ignore_ascii_case(b"base") {
            if let Some(v) = attr(0) {
                sink.base(&v);
            }
        }
        let text = text_type(name);
        if text == Text::Data {
            return Ok(Some(after));
        }
        if text == Text::Plain {
            return Ok(None);
        }
        let b = self.html.as_bytes();
        let Some(end_tag) = raw_end(b, after, name) else {
            // No end tag: the rest of the page is this element's text.
            if text == Text::Script && memchr::memmem::find(&b[after..], b"<!--").is_some() {
                return Err(Bail);
            }
            if text == Text::Noscript {
                self.noscript(&self.html[after..], sink)?;
            }
            return Ok(None);
        };
        let content = &self.html[after..end_tag];
        if text == Text::Script && memchr::memmem::find(content.as_bytes(), b"<!--").is_some() {
            return Err(Bail);
        }
        if text == Text::Noscript {
            self.noscript(content, sink)?;
        }
        // The end tag itself, with whatever attributes it has.
        match self.tag(end_tag + 2, &mut [None; MAX_ATTRS]).1 {
            TagEnd::Closed(after) | TagEnd::AfterEquals(after) => Ok(Some(after)),
            TagEnd::Eof => self.tail(end_tag).map(|()| None),
        }
    }

    /// A `<noscript>`'s content, read as markup for links when there are `follow` selectors.
    fn noscript(&mut self, content: &'a str, sink: &mut impl Sink) -> Result<(), Bail> {
        if self.follow.selectors.is_empty() || !content.contains('<') {
            return Ok(());
        }
        if self.in_noscript {
            return Err(Bail);
        }
        *self.noscripts += 1;
        if *self.noscripts > MAX_NOSCRIPTS {
            return Err(Bail);
        }
        Scanner {
            follow: self.follow,
            html: content,
            open_tags: 0,
            in_noscript: true,
            noscripts: self.noscripts,
        }
        .run(sink)
    }

    /// A tag from its name at `at` (the byte after `<` or `</`) to its end; the attributes
    /// the selectors look at are put in `found` (first occurrence of each name).
    fn tag(&self, at: usize, found: &mut [Option<&'a [u8]>; MAX_ATTRS]) -> (&'a [u8], TagEnd) {
        let b: &'a [u8] = self.html.as_bytes();
        let len = b.len();
        let mut j = at;
        while j < len && !is_ws(b[j]) && b[j] != b'/' && b[j] != b'>' {
            j += 1;
        }
        let name = &b[at..j];
        // before_attribute_name
        loop {
            while j < len && is_ws(b[j]) {
                j += 1;
            }
            let Some(&c) = b.get(j) else { return (name, TagEnd::Eof) };
            match c {
                b'>' => return (name, TagEnd::Closed(j + 1)),
                b'/' => {
                    // self_closing_start_tag: `>` ends, anything else is read again as an
                    // attribute name's start.
                    j += 1;
                    match b.get(j) {
                        None => return (name, TagEnd::Eof),
                        Some(b'>') => return (name, TagEnd::Closed(j + 1)),
                        Some(_) => continue,
                    }
                }
                _ => {}
            }
            // attribute_name: its first character is taken whatever it is (even `=`).
            let name_start = j;
            j += 1;
            while j < len && !is_ws(b[j]) && !matches!(b[j], b'=' | b'/' | b'>') {
                j += 1;
            }
            let attr_name = &b[name_start..j];
            // after_attribute_name
            while j < len && is_ws(b[j]) {
                j += 1;
            }
            if b.get(j) != Some(&b'=') {
                // No value: an empty one, as far as lookups go.
                self.keep(found, attr_name, &[]);
                continue;
            }
            j += 1;
            // before_attribute_value
            while j < len && is_ws(b[j]) {
                j += 1;
            }
            let Some(&q) = b.get(j) else { return (name, TagEnd::Eof) };
            match q {
                b'"' | b'\'' => {
                    let Some(off) = memchr(q, &b[j + 1..]) else { return (name, TagEnd::Eof) };
                    self.keep(found, attr_name, &b[j + 1..j + 1 + off]);
                    j += off + 2;
                }
                b'>' => {
                    self.keep(found, attr_name, &[]);
                    return (name, TagEnd::AfterEquals(j + 1));
                }
                _ => {
                    let start = j;
                    while j < len && !is_ws(b[j]) && b[j] != b'>' {
                        j += 1;
                    }
                    if j == len {
                        return (name, TagEnd::Eof);
                    }
                    self.keep(found, attr_name, &b[start..j]);
                }
            }
        }
    }

    fn keep(&self, found: &mut [Option<&'a [u8]>; MAX_ATTRS], name: &[u8], value: &'a [u8]) {
        for (slot, want) in found.iter_mut().zip(&self.follow.attrs) {
            if slot.is_none() && want[..].eq_ignore_ascii_case(name) {
                *slot = Some(value);
            }
        }
    }
}

/// The end of a comment whose text starts at `text` (just after `<!--`): the index just
/// after its closing `>` within `text`, or `None` when the page ends first. lol_html's
/// comment states end a comment at the first `-->` or `--!>`, or at once on `>` or `->`.
fn comment_end(text: &[u8]) -> Option<usize> {
    match text {
        [b'>', ..] => return Some(1),
        [b'-', b'>', ..] => return Some(2),
        _ => {}
    }
    let mut i = 0;
    while let Some(off) = text.get(i..).and_then(|rest| memchr(b'>', rest)) {
        let gt = i + off;
        let before = &text[..gt];
        if before.ends_with(b"--") || before.ends_with(b"--!") {
            return Some(gt + 1);
        }
        i = gt + 1;
    }
    None
}

/// Where the text of a raw-text element named `name` ends (the `<` of its end tag), from
/// `from`: the first `</name` followed by whitespace, `/`
/// or `>` (names compared without case).
fn raw_end(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(off) = b.get(i..).and_then(|rest| memchr(b'<', rest)) {
        let lt = i + off;
        let n = lt + 2;
        if b.get(lt + 1) == Some(&b'/')
            && b.get(n..n + name.len()).is_some_and(|s| s.eq_ignore_ascii_case(name))
            && b.get(n + name.len()).is_some_and(|&c| is_ws(c) || c == b'/' || c == b'>')
        {
            return Some(lt);
        }
        i = lt + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        links: Vec<String>,
        base: Vec<String>,
    }

    impl Sink for Collect {
        fn link(&mut self, raw: &str) {
            self.links.push(raw.to_string());
        }
        fn base(&mut self, raw: &str) {
            self.base.push(raw.to_string());
        }
    }

    fn links(html: &str) -> Result<Vec<String>, Bail> {
        let follow =
            Simple::new(&["a[href]".into(), "iframe[src]".into(), "frame[src]".into()]).expect("simple");
        let mut c = Collect::default();
        scan(&follow, html, &mut c).map(|()| c.links)
    }

    #[test]
    fn simple_selectors() {
        assert!(Simple::new(&["a[href]".into(), "area".into()]).is_some());
        assert!(Simple::new(&["a.x".into()]).is_none());
        assert!(Simple::new(&["div a".into()]).is_none());
        assert!(Simple::new(&["a[href=x]".into()]).is_none());
        assert!(Simple::new(&["a[a]".into(), "b[b]".into(), "c[c]".into()]).is_none());
    }

    #[test]
    fn tokenizer_cases() {
        assert_eq!(
            links(r#"<a href="/x">x</a><A HREF='/y'><a href=/z>"#),
            Ok(vec!["/x".into(), "/y".into(), "/z".into()])
        );
        assert_eq!(links(r#"<a title=">" href=/x>"#), Ok(vec!["/x".into()]));
        assert_eq!(links(r#"<!-- <a href=/no> --><a href=/yes>"#), Ok(vec!["/yes".into()]));
        assert_eq!(links(r#"<!--><a href=/yes>"#), Ok(vec!["/yes".into()]));
        assert_eq!(links(r#"<script>"<a href=/no>"</script ><a href=/yes>"#), Ok(vec!["/yes".into()]));
        assert_eq!(
            links(r#"<iframe src=/f><a href=/no></iframe><a href=/yes>"#),
            Ok(vec!["/f".into(), "/yes".into()])
        );
        assert_eq!(
            links(r#"<noscript><a href=/ns></noscript><a href=/yes>"#),
            Ok(vec!["/ns".into(), "/yes".into()])
        );
        assert_eq!(links(r#"<a href"#), Ok(vec![]));
        assert_eq!(links(r#"<a href>"#), Ok(vec![String::new()]));
        assert_eq!(links(r#"<svg><a href=/x></svg>"#), Err(Bail));
        assert_eq!(links(r#"<script><!--</script>"#), Err(Bail));
        assert_eq!(links(r#"<noscript><noscript><a href=x></noscript>"#), Err(Bail));
    }

    /// The pages the crawler sees most take the fast path (the scanner never gives up on
    /// them); `tests/extract.rs` checks that its links are lol_html's on them.
    #[cfg(feature = "sandbox")]
    #[test]
    fn sandbox_pages_are_scanned() {
        use crate::sandbox::site::Layout;
        use crate::sandbox::{render, traps, SandboxOptions};
        let layout = Layout::new(&SandboxOptions { pages: 200, traps: true });
        let mut pages = vec![
            render::home(&layout),
            render::category(&layout, 0, 1),
            traps::traps_page(&layout, "http://127.0.0.1:1"),
            traps::malformed_page(),
            traps::base_page(),
        ];
        for n in 1..=50 {
            let mut related = Vec::new();
            layout.related(n, &mut related);
            pages.push(render::item(&layout, n, &related));
        }
        for html in &pages {
            let found = links(html).expect("scanned");
            assert!(!found.is_empty());
        }
        // mdBook's table of contents, inside <noscript>.
        let book = r#"<!DOCTYPE HTML><html><head><script>var x = "<a href=no>";</script></head>
            <body><noscript><iframe class="sidebar-iframe-outer" src="toc.html"></iframe></noscript>
            <!-- a comment --><a href="ch01.html">1</a></body></html>"#;
        assert_eq!(links(book), Ok(vec!["toc.html".into(), "ch01.html".into()]));
    }
}
