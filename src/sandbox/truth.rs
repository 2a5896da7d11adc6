//! What a correct crawler sees on the sandbox: a BFS over the site's own link graph.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use url::Url;

use super::site::{item_title, write_category_href, write_item_href, Layout, Route, Trap};
use super::traps;
use super::SandboxOptions;

/// The base URL the truth resolves links against (the port does not matter: every
/// same-site link is relative or spelled with the server's own base).
const TRUTH_BASE: &str = "http://127.0.0.1:9";

/// The error kinds of [`Truth::errors`].
pub const ERROR_KINDS: [&str; 4] = ["http_404", "timeout", "body_too_large", "redirect_loop"];

/// What a correct crawler with default settings sees on the sandbox site.
///
/// The crawler assumed: seed `/` (depth 0), `follow: ["a[href]"]`, robots.txt obeyed,
/// `retries: 3`, a fetch timeout of 1 s (shorter than [`super::SLOW_PAGE_DELAY`]) and
/// `max_body: 1MiB` (smaller than [`super::HUGE_PAGE_BYTES`]); it drops fragments, compares
/// scheme and host case-insensitively, resolves relative links against `<base href>`,
/// ignores `mailto:`/`javascript:` links, never fetches links whose path ends in a binary
/// extension (`.pdf`, `.jpg`, ...), and does not follow links deeper than `max_depth`
/// (a redirect hop keeps its depth). It follows a redirect to a URL not yet in the chain
/// and fails the request as `redirect_loop` when the next hop is already in it.
///
/// Every page's depth is the same by any path (see `sandbox/site.rs`), so this holds for
/// any crawl order, including concurrent ones.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Truth {
    /// Item pages of the site.
    pub pages: u32,
    /// Whether the traps are on.
    pub traps: bool,
    /// The crawl's `max_depth`.
    pub max_depth: u32,
    /// Requests that ended in a 2xx (HTML or not; after retries and redirects). `robots.txt`
    /// is not counted.
    pub pages_fetched: u64,
    /// URLs that finally failed (404, timeout, too large, redirect loop).
    pub pages_failed: u64,
    /// Fetched pages holding an item (normal items and items on trap pages).
    pub items: u64,
    /// Distinct discovered URLs disallowed by robots.txt (within `max_depth`).
    pub robots_blocked: u64,
    /// Redirect hops followed.
    pub redirects: u64,
    /// Final failures by kind: always the four keys of [`ERROR_KINDS`].
    pub errors: BTreeMap<String, u64>,
    /// The greatest depth of a fetched page.
    pub max_depth_reached: u32,
    /// Pages fetched at each depth (index = depth).
    pub pages_by_depth: Vec<u64>,
    /// Fetched pages of the endless calendar.
    pub calendar_pages: u64,
    /// Titles of all fetched items, sorted.
    pub item_titles: Vec<String>,
}

/// What requesting a URL finally gives, for a crawler with the assumed settings.
enum Outcome {
    /// 2xx HTML, with its links (and the `<base href>` they resolve against) and item.
    Html { links: Vec<String>, base: Option<&'static str>, item: Option<String>, calendar: bool },
    /// 2xx, not HTML.
    Other,
    /// A redirect to `location`.
    Redirect(String),
    /// A final failure of this kind.
    Fail(&'static str),
}

fn normal_links(layout: &Layout, route: &Route, related: &mut Vec<u32>) -> Vec<String> {
    let mut links = Vec::with_capacity(32);
    let href = |f: &dyn Fn(&mut String)| {
        let mut s = String::with_capacity(24);
        f(&mut s);
        s
    };
    match *route {
        Route::Home => {
            links.push("/".to_string());
            for c in 0..layout.cats {
                links.push(href(&|s| write_category_href(s, c, 1)));
            }
            for n in 1..=layout.featured() {
                links.push(href(&|s| write_item_href(s, n)));
            }
            if layout.traps {
                links.push("/traps".to_string());
            }
        }
        Route::Category { c, k } => {
            nav_links(layout, c, &mut links);
            for j in layout.page_items(c, k) {
                links.push(href(&|s| write_item_href(s, layout.item_at(c, j))));
            }
            for p in layout.child_pages(c, k) {
                links.push(href(&|s| write_category_href(s, c, p)));
            }
        }
        Route::Item(n) => {
            nav_links(layout, layout.item_place(n).0, &mut links);
            layout.related(n, related);
            for &r in related.iter() {
                links.push(href(&|s| write_item_href(s, r)));
            }
        }
        _ => {}
    }
    links
}

fn nav_links(layout: &Layout, c: u32, links: &mut Vec<String>) {
    links.push("/".to_string());
    let mut s = String::new();
    write_category_href(&mut s, c, 1);
    links.push(s);
    let mut s = String::new();
    write_category_href(&mut s, layout.next_cat(c), 1);
    links.push(s);
}

/// The links of the page at `route`, in document order, as written in its HTML (with
/// `base` as the server's base URL), and its `<base href>`. Empty for non-HTML routes.
pub(crate) fn page_links(layout: &Layout, route: &Route, base: &str) -> (Vec<String>, Option<&'static str>) {
    let mut related = Vec::new();
    match route {
        Route::Home | Route::Category { .. } | Route::Item(_) => {
            (normal_links(layout, route, &mut related), None)
        }
        Route::Traps => (traps::traps_page_links(layout, base).into_iter().map(|(h, _)| h).collect(), None),
        Route::Trap(Trap::Base) => {
            (traps::trap_links(Trap::Base).unwrap_or_default(), Some(traps::BASE_HREF))
        }
        Route::Trap(t) => (traps::trap_links(*t).unwrap_or_default(), None),
        Route::Calendar { y, m } => (traps::calendar_links(*y, *m), None),
        Route::Private => (traps::private_links(), None),
        _ => (Vec::new(), None),
    }
}

fn outcome(layout: &Layout, route: &Route, related: &mut Vec<u32>) -> Outcome {
    let html = |links, item| Outcome::Html { links, base: None, item, calendar: false };
    match route {
        Route::Home | Route::Category { .. } => html(normal_links(layout, route, related), None),
        Route::Item(n) => html(normal_links(layout, route, related), Some(item_title(*n))),
        Route::Robots | Route::Image | Route::Pdf | Route::Download => Outcome::Other,
        Route::TruthJson | Route::StatsJson | Route::RequestsJson => Outcome::Other,
        Route::NotFound => Outcome::Fail("http_404"),
        Route::Traps | Route::Private => html(page_links(layout, route, TRUTH_BASE).0, None),
        Route::Calendar { .. } => Outcome::Html {
            links: page_links(layout, route, TRUTH_BASE).0,
            base: None,
            item: None,
            calendar: true,
        },
        Route::Trap(t) => match t {
            Trap::Redirect(1) => Outcome::Redirect("/trap/redirect/2".into()),
            Trap::Redirect(2) => Outcome::Redirect(format!("{TRUTH_BASE}/trap/redirect/3")),
            Trap::Redirect(_) => Outcome::Redirect("/trap/chain-end".into()),
            Trap::LoopA => Outcome::Redirect("/trap/loop/b".into()),
            Trap::LoopB => Outcome::Redirect("/trap/loop/a".into()),
            Trap::Slow => Outcome::Fail("timeout"),
            Trap::Huge => Outcome::Fail("body_too_large"),
            t => {
                let (links, base) = page_links(layout, route, TRUTH_BASE);
                Outcome::Html { links, base, item: traps::trap_item(*t).map(str::to_string), calendar: false }
            }
        },
    }
}

/// The path-and-query of `url` if it is on the sandbox (same scheme, host and port).
fn same_site_key(url: &Url) -> Option<String> {
    if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") || url.port() != Some(9) {
        return None;
    }
    let mut key = url.path().to_string();
    if let Some(q) = url.query() {
        key.push('?');
        key.push_str(q);
    }
    Some(key)
}

/// Resolves `href` (found on the page `page_key`, whose `<base href>` is `base`) to a
/// same-site path-and-query without fragment, or `None` (other scheme or site, unparsable).
pub(crate) fn resolve(page_key: &str, base: Option<&str>, href: &str) -> Option<String> {
    let simple = base.is_none()
        && href.starts_with('/')
        && !href.starts_with("//")
        && !href.contains(['#', '%', '\\', ' '])
        && !href.contains("/.");
    if simple {
        return Some(href.to_string());
    }
    let page = Url::parse(TRUTH_BASE).ok()?.join(page_key).ok()?;
    let against = match base {
        Some(b) => page.join(b).ok()?,
        None => page,
    };
    let mut url = against.join(href.trim()).ok()?;
    url.set_fragment(None);
    same_site_key(&url)
}

/// Whether a link with this path is a binary file a crawler does not fetch.
pub(crate) fn is_binary_path(key: &str) -> bool {
    const EXTS: [&str; 14] = [
        ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico", ".zip", ".gz", ".tar", ".mp3",
        ".mp4", ".woff2",
    ];
    let path = key.split('?').next().unwrap_or(key).to_ascii_lowercase();
    EXTS.iter().any(|e| path.ends_with(e))
}

fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (key, None),
    }
}

/// Computes the [`Truth`] for `opts` and a crawl limited to `max_depth`.
pub fn truth(opts: &SandboxOptions, max_depth: u32) -> Truth {
    let layout = Layout::new(opts);
    let mut t = Truth {
        pages: opts.pages,
        traps: opts.traps,
        max_depth,
        pages_fetched: 0,
        pages_failed: 0,
        items: 0,
        robots_blocked: 0,
        redirects: 0,
        errors: ERROR_KINDS.iter().map(|k| (k.to_string(), 0)).collect(),
        max_depth_reached: 0,
        pages_by_depth: Vec::new(),
        calendar_pages: 0,
        item_titles: Vec::new(),
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(String, u32)> = VecDeque::new();
    seen.insert("/".to_string());
    queue.push_back(("/".to_string(), 0));
    let mut related = Vec::new();
    while let Some((start, depth)) = queue.pop_front() {
        let mut key = start;
        let mut chain = vec![key.clone()];
        let result = loop {
            let (path, query) = split_key(&key);
            match outcome(&layout, &layout.route(path, query), &mut related) {
                Outcome::Redirect(location) => match resolve(&key, None, &location) {
                    Some(next) if chain.contains(&next) => break Outcome::Fail("redirect_loop"),
                    Some(next) => {
                        t.redirects += 1;
                        seen.insert(next.clone());
                        chain.push(next.clone());
                        key = next;
                    }
                    None => break Outcome::Other,
                },
                other => break other,
            }
        };
        match result {
            Outcome::Fail(kind) => {
                t.pages_failed += 1;
                *t.errors.entry(kind.to_string()).or_insert(0) += 1;
            }
            Outcome::Redirect(_) => {}
            Outcome::Other => count_fetched(&mut t, depth),
            Outcome::Html { links, base, item, calendar } => {
                count_fetched(&mut t, depth);
                if let Some(title) = item {
                    t.items += 1;
                    t.item_titles.push(title);
                }
                if calendar {
                    t.calendar_pages += 1;
                }
                if depth >= max_depth {
                    continue;
                }
                for href in &links {
                    let Some(next) = resolve(&key, base, href) else { continue };
                    if is_binary_path(&next) || seen.contains(&next) {
                        continue;
                    }
                    seen.insert(next.clone());
                    if traps::disallowed(layout.traps, &next) {
                        t.robots_blocked += 1;
                        continue;
                    }
                    queue.push_back((next, depth + 1));
                }
            }
        }
    }
    t.item_titles.sort();
    t
}

fn count_fetched(t: &mut Truth, depth: u32) {
    t.pages_fetched += 1;
    t.max_depth_reached = t.max_depth_reached.max(depth);
    let d = depth as usize;
    if t.pages_by_depth.len() <= d {
        t.pages_by_depth.resize(d + 1, 0);
    }
    t.pages_by_depth[d] += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::site::Route;

    fn opts(pages: u32, traps: bool) -> SandboxOptions {
        SandboxOptions { pages, traps }
    }

    #[test]
    fn resolves_like_a_browser() {
        assert_eq!(resolve("/traps", None, "/item/3#reviews").as_deref(), Some("/item/3"));
        assert_eq!(resolve("/traps", None, "HTTP://127.0.0.1:9/item/3").as_deref(), Some("/item/3"));
        assert_eq!(resolve("/traps", None, "http://127.0.0.1:10/item/3"), None);
        assert_eq!(resolve("/traps", None, "mailto:shop@example.com"), None);
        assert_eq!(resolve("/traps", None, "javascript:void(0)"), None);
        assert_eq!(
            resolve("/trap/base", Some("/trap/based/"), "alpha").as_deref(),
            Some("/trap/based/alpha")
        );
        assert_eq!(
            resolve("/trap/base", Some("/trap/based/"), "beta?ref=base").as_deref(),
            Some("/trap/based/beta?ref=base")
        );
        assert_eq!(resolve("/trap/base", None, "alpha").as_deref(), Some("/trap/alpha"));
        assert!(is_binary_path("/files/catalog.pdf"));
        assert!(is_binary_path("/img/1.JPG"));
        assert!(!is_binary_path("/files/download?id=7"));
    }

    /// A 25-item site by hand: 2 categories (13 and 12 items, one page each), 12 featured.
    /// Home (depth 0) -> 2 category pages + 12 featured items (depth 1) -> the other 13
    /// items (depth 2). Every link of the items goes to depth <= 1.
    #[test]
    fn small_site_by_hand() {
        let t = truth(&opts(25, false), 20);
        assert_eq!(t.pages_fetched, 1 + 2 + 25);
        assert_eq!(t.pages_by_depth, vec![1, 2 + 12, 13]);
        assert_eq!(t.items, 25);
        assert_eq!(t.pages_failed, 0);
        assert_eq!(t.redirects, 0);
        assert_eq!(t.robots_blocked, 0);
        assert_eq!(t.max_depth_reached, 2);
        assert_eq!(t.calendar_pages, 0);
        assert_eq!(t.errors.len(), 4);
        assert!(t.errors.values().all(|v| *v == 0));
        let mut titles: Vec<String> = (1..=25).map(item_title).collect();
        titles.sort();
        assert_eq!(t.item_titles, titles);
        // max_depth 1: home and its 14 links only.
        let t1 = truth(&opts(25, false), 1);
        assert_eq!(t1.pages_fetched, 15);
        assert_eq!(t1.items, 12);
        let t0 = truth(&opts(25, false), 0);
        assert_eq!(t0.pages_fetched, 1);
    }

    /// The same site with traps, counted by hand from the traps page's list.
    #[test]
    fn small_site_with_traps_by_hand() {
        let t = truth(&opts(25, true), 20);
        // Normal: 28 pages. Traps page: 1. Trap pages fetched at depth 2: chain end, flaky,
        // busy, malformed, latin1, sjis, base, the download (not HTML) = 8; the calendar's
        // 2026/11 (depth 2) and 18 months each way (depths 3..=20) = 37; at depth 3 the two
        // pages reached through <base href> = 2.
        assert_eq!(t.pages_fetched, 28 + 1 + 8 + 37 + 2);
        assert_eq!(t.calendar_pages, 37);
        assert_eq!(t.items, 25 + 8);
        // 404: /item/26, /no-such-page, /ITEM/3; timeout: /trap/slow; too large:
        // /trap/huge; loop: /trap/loop/a.
        assert_eq!(t.pages_failed, 6);
        assert_eq!(t.errors["http_404"], 3);
        assert_eq!(t.errors["timeout"], 1);
        assert_eq!(t.errors["body_too_large"], 1);
        assert_eq!(t.errors["redirect_loop"], 1);
        // 3 hops of the chain, 1 of the loop (a -> b; b -> a is the loop).
        assert_eq!(t.redirects, 4);
        assert_eq!(t.robots_blocked, 3);
        assert_eq!(t.max_depth_reached, 20);
        for title in ["Café crème", "抹茶ラテ", "Redirected Compass Rose", "Base Camp Stove"] {
            assert!(t.item_titles.iter().any(|x| x == title), "{title}");
        }
        // max_depth 2: the calendar has one page, the base-reached items are out.
        let t2 = truth(&opts(25, true), 2);
        assert_eq!(t2.calendar_pages, 1);
        assert_eq!(t2.pages_fetched, 28 + 1 + 8 + 1);
        // max_depth 1: the traps page's links are not followed, nor robots-checked.
        let t1 = truth(&opts(25, true), 1);
        assert_eq!(t1.robots_blocked, 0);
        assert_eq!(t1.pages_fetched, 16);
    }

    /// Every normal page's depth is the same by any path, and at most 5 up to 117,000
    /// items: each link goes to a page of depth <= 1 (known once home is parsed) or of
    /// depth exactly one more than its page's.
    #[test]
    fn depth_is_path_independent_and_bounded() {
        for (pages, bound) in [(1, 1), (25, 2), (500, 3), (2_000, 4), (20_000, 5), (117_000, 5)] {
            let layout = Layout::new(&opts(pages, false));
            let t = truth(&opts(pages, false), 100);
            assert_eq!(
                t.pages_fetched,
                1 + u64::from(pages) + (0..layout.cats).map(|c| u64::from(layout.cat_pages(c))).sum::<u64>()
            );
            assert_eq!(t.max_depth_reached, bound, "pages={pages}");
            // BFS depths, then every edge.
            let mut depth = std::collections::HashMap::new();
            let mut queue = VecDeque::from([("/".to_string(), 0u32)]);
            depth.insert("/".to_string(), 0u32);
            let mut related = Vec::new();
            while let Some((key, d)) = queue.pop_front() {
                let (path, query) = split_key(&key);
                let route = layout.route(path, query);
                assert_ne!(route, Route::NotFound, "{key}");
                for next in normal_links(&layout, &route, &mut related) {
                    if !depth.contains_key(&next) {
                        depth.insert(next.clone(), d + 1);
                        queue.push_back((next, d + 1));
                    }
                }
            }
            for (from, df) in &depth {
                let (path, query) = split_key(from);
                for to in normal_links(&layout, &layout.route(path, query), &mut related) {
                    let dt = depth[&to];
                    assert!(dt <= 1 || dt == df + 1, "pages={pages}: {from} ({df}) -> {to} ({dt})");
                }
            }
        }
        assert_eq!(truth(&opts(117_001, false), 100).max_depth_reached, 6);
    }
}
