//! The sandbox site's layout: categories, pagination, items, featured items and the link
//! graph between them, as plain arithmetic on page numbers (no state, no RNG).
//!
//! Both the HTML renderer and the truth's BFS take their links from here, so the two cannot
//! disagree.

use std::fmt::Write as _;
use std::ops::Range;

use super::SandboxOptions;

/// Items listed on one category page.
pub(crate) const ITEMS_PER_PAGE: u32 = 20;
/// Child pages a category page links to (its pagination is a tree of this fan-out).
pub(crate) const PAGE_FANOUT: u32 = 8;
/// At most this many categories.
pub(crate) const MAX_CATEGORIES: u32 = 10;
/// Items linked from the home page.
pub(crate) const FEATURED: u32 = 12;
/// Related-item links on an item page.
pub(crate) const RELATED: usize = 8;

/// Category slugs (URL part) and display names.
pub(crate) const CATEGORIES: [(&str, &str); MAX_CATEGORIES as usize] = [
    ("books", "Books"),
    ("music", "Music"),
    ("garden", "Garden"),
    ("kitchen", "Kitchen"),
    ("toys", "Toys"),
    ("outdoor", "Outdoor"),
    ("office", "Office"),
    ("lighting", "Lighting"),
    ("textiles", "Textiles"),
    ("tools", "Tools"),
];

/// A small integer hash (the splitmix64 finaliser): deterministic, no state.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a number under a salt, so different uses of one page number differ.
pub(crate) fn h(n: u64, salt: u64) -> u64 {
    mix(n ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Hash of a string (FNV-1a then mixed).
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut x: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.bytes() {
        x ^= u64::from(b);
        x = x.wrapping_mul(0x0100_0000_01B3);
    }
    mix(x)
}

const ADJECTIVES: [&str; 32] = [
    "Amber", "Brass", "Cedar", "Copper", "Crimson", "Dusky", "Elder", "Fern", "Golden", "Granite", "Harbor",
    "Indigo", "Juniper", "Linen", "Maple", "Meadow", "Nordic", "Oak", "Olive", "Pebble", "Quartz", "Rustic",
    "Saffron", "Silver", "Slate", "Tidal", "Umber", "Velvet", "Walnut", "Willow", "Woven", "Zephyr",
];
const NOUNS: [&str; 32] = [
    "Lantern",
    "Kettle",
    "Notebook",
    "Teapot",
    "Blanket",
    "Compass",
    "Planter",
    "Satchel",
    "Clock",
    "Mug",
    "Candle",
    "Basket",
    "Chair",
    "Journal",
    "Vase",
    "Lamp",
    "Trowel",
    "Scarf",
    "Whistle",
    "Spoon",
    "Easel",
    "Telescope",
    "Ukulele",
    "Puzzle",
    "Kite",
    "Hammock",
    "Skillet",
    "Thermos",
    "Binder",
    "Quilt",
    "Chisel",
    "Radio",
];

/// The title of normal item `n`: unique (it ends with the number) and deterministic.
pub(crate) fn item_title(n: u32) -> String {
    let mut s = String::with_capacity(32);
    write_item_title(&mut s, n);
    s
}

/// Writes [`item_title`] into `out`.
pub(crate) fn write_item_title(out: &mut String, n: u32) {
    let x = h(u64::from(n), 1);
    out.push_str(ADJECTIVES[(x % 32) as usize]);
    out.push(' ');
    out.push_str(NOUNS[((x >> 8) % 32) as usize]);
    let _ = write!(out, " No. {n}");
}

/// Price of item `n` in pence (100..=9999).
pub(crate) fn item_price_pence(n: u32) -> u64 {
    100 + h(u64::from(n), 2) % 9900
}

/// Rating of item `n` (1..=5).
pub(crate) fn item_rating(n: u32) -> u64 {
    1 + h(u64::from(n), 3) % 5
}

/// Writes `/item/<n>`.
pub(crate) fn write_item_href(out: &mut String, n: u32) {
    let _ = write!(out, "/item/{n}");
}

/// Writes a category page's URL: `/category/<slug>` for page 1, `?page=<k>` after.
pub(crate) fn write_category_href(out: &mut String, c: u32, k: u32) {
    out.push_str("/category/");
    out.push_str(CATEGORIES[c as usize].0);
    if k > 1 {
        let _ = write!(out, "?page={k}");
    }
}

/// Pagination level of category page `k` (page 1 is level 0): the depth of `k` in the
/// `PAGE_FANOUT`-ary tree whose children of page `k` are `8(k-1)+2 ..= 8k+1`.
pub(crate) fn page_level(mut k: u32) -> u32 {
    let mut level = 0;
    while k > 1 {
        k = (k - 2) / PAGE_FANOUT + 1;
        level += 1;
    }
    level
}

/// First page number at pagination level `level` (saturating).
pub(crate) fn level_first(level: u32) -> u64 {
    let mut f: u64 = 1;
    for _ in 0..level {
        f = (u64::from(PAGE_FANOUT) * (f - 1) + 2).min(u64::from(u32::MAX));
    }
    f
}

/// The site's shape for one set of options.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Number of items (at least 1).
    pub n: u32,
    /// Trap pages on.
    pub traps: bool,
    /// Number of categories.
    pub cats: u32,
}

impl Layout {
    /// The layout of `opts` (`pages` is clamped to at least 1).
    pub fn new(opts: &SandboxOptions) -> Layout {
        let n = opts.pages.max(1);
        let cats = n.div_ceil(ITEMS_PER_PAGE).clamp(1, MAX_CATEGORIES);
        Layout { n, traps: opts.traps, cats }
    }

    /// Items in category `c`: those `n` with `(n - 1) % cats == c`.
    pub fn cat_items(&self, c: u32) -> u32 {
        if c >= self.n {
            0
        } else {
            (self.n - c).div_ceil(self.cats)
        }
    }

    /// Pages of category `c` (at least 1).
    pub fn cat_pages(&self, c: u32) -> u32 {
        self.cat_items(c).div_ceil(ITEMS_PER_PAGE).max(1)
    }

    /// Category and index within it of item `n`.
    pub fn item_place(&self, n: u32) -> (u32, u32) {
        ((n - 1) % self.cats, (n - 1) / self.cats)
    }

    /// Item number of index `j` in category `c`.
    pub fn item_at(&self, c: u32, j: u32) -> u32 {
        j * self.cats + c + 1
    }

    /// Category page that lists item `n`.
    #[cfg(test)]
    pub fn item_page(&self, n: u32) -> u32 {
        self.item_place(n).1 / ITEMS_PER_PAGE + 1
    }

    /// Number of featured items (linked from home): items `1..=featured()`.
    pub fn featured(&self) -> u32 {
        FEATURED.min(self.n)
    }

    /// Whether item `n` is featured.
    pub fn is_featured(&self, n: u32) -> bool {
        n <= self.featured()
    }

    /// The category after `c` (wrapping), linked from every page's nav.
    pub fn next_cat(&self, c: u32) -> u32 {
        (c + 1) % self.cats
    }

    /// Child pages of category page `k` of category `c`.
    pub fn child_pages(&self, c: u32, k: u32) -> Range<u32> {
        let pages = u64::from(self.cat_pages(c));
        let lo = u64::from(PAGE_FANOUT) * u64::from(k - 1) + 2;
        let hi = (u64::from(PAGE_FANOUT) * u64::from(k) + 1).min(pages);
        if lo > hi {
            0..0
        } else {
            lo as u32..hi as u32 + 1
        }
    }

    /// Items listed on category page `k` of category `c`, as indexes within the category.
    pub fn page_items(&self, c: u32, k: u32) -> Range<u32> {
        let s = self.cat_items(c);
        let lo = ((k - 1) * ITEMS_PER_PAGE).min(s);
        let hi = (k * ITEMS_PER_PAGE).min(s);
        lo..hi
    }

    /// The related items of item `n`, at most [`RELATED`].
    ///
    /// A non-featured item on a page of pagination level `l` links to items listed on pages
    /// of level `l + 1` of its category (their depth is exactly one more than its own);
    /// where there are fewer than [`RELATED`] of those, and for featured items, the rest
    /// are featured items (depth 1, already known from home). So no link ever leads to a
    /// page whose depth could depend on the crawl order.
    pub fn related(&self, n: u32, out: &mut Vec<u32>) {
        out.clear();
        let (c, j) = self.item_place(n);
        if !self.is_featured(n) {
            let level = page_level(j / ITEMS_PER_PAGE + 1);
            let pages = u64::from(self.cat_pages(c));
            let first = level_first(level + 1);
            if first <= pages {
                let last = (level_first(level + 2) - 1).min(pages);
                let s = u64::from(self.cat_items(c));
                let lo = (first - 1) * u64::from(ITEMS_PER_PAGE);
                let hi = (last * u64::from(ITEMS_PER_PAGE)).min(s);
                if hi > lo {
                    let m = hi - lo;
                    let x = h(u64::from(n), 4);
                    if m >= RELATED as u64 {
                        let start = x % m;
                        let stride = m / RELATED as u64;
                        for i in 0..RELATED as u64 {
                            let idx = lo + (start + i * stride) % m;
                            out.push(self.item_at(c, idx as u32));
                        }
                    } else {
                        for idx in lo..hi {
                            out.push(self.item_at(c, idx as u32));
                        }
                    }
                }
            }
        }
        let f = self.featured();
        if out.len() < RELATED && f > 0 {
            let start = (h(u64::from(n), 5) % u64::from(f)) as u32;
            for i in 0..f {
                if out.len() >= RELATED {
                    break;
                }
                let cand = (start + i) % f + 1;
                if cand != n {
                    out.push(cand);
                }
            }
        }
    }

    /// The item whose links the traps page duplicates (by fragment and scheme case).
    pub fn dup_item(&self) -> u32 {
        3.min(self.n)
    }
}

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`
    Home,
    /// `/robots.txt`
    Robots,
    /// `/category/<slug>[?page=k]` or `/category/<slug>/page/<k>`
    Category { c: u32, k: u32 },
    /// `/item/<n>`
    Item(u32),
    /// `/img/<name>.jpg`
    Image,
    /// `/files/catalog.pdf`
    Pdf,
    /// `/files/download?id=<x>` (a PDF without an extension in its URL).
    Download,
    /// `/_sandbox/truth.json`
    TruthJson,
    /// `/_sandbox/stats.json`
    StatsJson,
    /// `/_sandbox/requests.json`
    RequestsJson,
    /// `/traps` (traps mode)
    Traps,
    /// A trap page (traps mode).
    Trap(Trap),
    /// `/calendar/<y>/<m>` (traps mode)
    Calendar { y: i32, m: u32 },
    /// Anything under `/private/` (traps mode; disallowed by robots.txt).
    Private,
    /// No such page.
    NotFound,
}

/// The individual trap pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Trap {
    /// `/trap/redirect/1` (302), `/2` (301), `/3` (302) -> `/trap/chain-end`.
    Redirect(u8),
    /// `/trap/chain-end`: an item reachable only through the redirect chain.
    ChainEnd,
    /// `/trap/loop/a` -> `/trap/loop/b` -> `/trap/loop/a`.
    LoopA,
    /// See [`Trap::LoopA`].
    LoopB,
    /// `/trap/flaky`: 500 on the first request, then an item.
    Flaky,
    /// `/trap/busy`: 503 with `Retry-After: 1` on the first request, then an item.
    Busy,
    /// `/trap/slow`: answers after [`super::SLOW_PAGE_DELAY`].
    Slow,
    /// `/trap/huge`: [`super::HUGE_PAGE_BYTES`] of HTML, streamed.
    Huge,
    /// `/trap/malformed`: broken HTML that still holds an item.
    Malformed,
    /// `/trap/latin1`: windows-1252, declared in the Content-Type header.
    Latin1,
    /// `/trap/sjis`: Shift_JIS, declared only by `<meta charset>`.
    ShiftJis,
    /// `/trap/base`: a page with `<base href="/trap/based/">` and relative links.
    Base,
    /// `/trap/based/alpha`: an item reached through the base page's relative link.
    BasedAlpha,
    /// `/trap/based/beta`: an item reached through the base page's relative link.
    BasedBeta,
}

/// Parses a strictly canonical decimal number (no sign, no leading zero).
fn parse_num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

impl Layout {
    /// The route of a request path and query.
    pub fn route(&self, path: &str, query: Option<&str>) -> Route {
        match path {
            "/" => return Route::Home,
            "/robots.txt" => return Route::Robots,
            "/_sandbox/truth.json" => return Route::TruthJson,
            "/_sandbox/stats.json" => return Route::StatsJson,
            "/_sandbox/requests.json" => return Route::RequestsJson,
            "/files/catalog.pdf" => return Route::Pdf,
            "/files/download" => return Route::Download,
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/item/") {
            return match parse_num(rest) {
                Some(n) if n >= 1 && n <= self.n => Route::Item(n),
                _ => Route::NotFound,
            };
        }
        if let Some(rest) = path.strip_prefix("/category/") {
            let (slug, k) = match rest.split_once('/') {
                None => match query_param(query, "page") {
                    None => (rest, Some(1)),
                    Some(v) => (rest, parse_num(v)),
                },
                Some((slug, tail)) => match tail.strip_prefix("page/") {
                    Some(k) => (slug, parse_num(k)),
                    None => return Route::NotFound,
                },
            };
            let c = CATEGORIES[..self.cats as usize].iter().position(|(s, _)| *s == slug);
            return match (c, k) {
                (Some(c), Some(k)) if k >= 1 && k <= self.cat_pages(c as u32) => {
                    Route::Category { c: c as u32, k }
                }
                _ => Route::NotFound,
            };
        }
        if let Some(rest) = path.strip_prefix("/img/") {
            return if rest.ends_with(".jpg") && !rest.contains('/') {
                Route::Image
            } else {
                Route::NotFound
            };
        }
        if !self.traps {
            return Route::NotFound;
        }
        if path == "/traps" {
            return Route::Traps;
        }
        if path.starts_with("/private/") {
            return Route::Private;
        }
        if let Some(rest) = path.strip_prefix("/calendar/") {
            if let Some((y, m)) = rest.split_once('/') {
                let y = y
                    .strip_prefix('-')
                    .map_or_else(|| parse_num(y).map(|v| v as i64), |p| parse_num(p).map(|v| -(v as i64)));
                if let (Some(y), Some(m)) = (y, parse_num(m)) {
                    if (1..=12).contains(&m) && y.abs() <= 1_000_000 {
                        return Route::Calendar { y: y as i32, m };
                    }
                }
            }
            return Route::NotFound;
        }
        let trap = match path {
            "/trap/redirect/1" => Trap::Redirect(1),
            "/trap/redirect/2" => Trap::Redirect(2),
            "/trap/redirect/3" => Trap::Redirect(3),
            "/trap/chain-end" => Trap::ChainEnd,
            "/trap/loop/a" => Trap::LoopA,
            "/trap/loop/b" => Trap::LoopB,
            "/trap/flaky" => Trap::Flaky,
            "/trap/busy" => Trap::Busy,
            "/trap/slow" => Trap::Slow,
            "/trap/huge" => Trap::Huge,
            "/trap/malformed" => Trap::Malformed,
            "/trap/latin1" => Trap::Latin1,
            "/trap/sjis" => Trap::ShiftJis,
            "/trap/base" => Trap::Base,
            "/trap/based/alpha" => Trap::BasedAlpha,
            "/trap/based/beta" => Trap::BasedBeta,
            _ => return Route::NotFound,
        };
        Route::Trap(trap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(pages: u32) -> Layout {
        Layout::new(&SandboxOptions { pages, traps: false })
    }

    #[test]
    fn pagination_tree() {
        assert_eq!(page_level(1), 0);
        assert_eq!(page_level(2), 1);
        assert_eq!(page_level(9), 1);
        assert_eq!(page_level(10), 2);
        assert_eq!(page_level(73), 2);
        assert_eq!(page_level(74), 3);
        assert_eq!(level_first(0), 1);
        assert_eq!(level_first(1), 2);
        assert_eq!(level_first(2), 10);
        assert_eq!(level_first(3), 74);
        assert_eq!(level_first(4), 586);
        let l = layout(20_000);
        assert_eq!(l.cats, 10);
        assert_eq!(l.cat_pages(0), 100);
        assert_eq!(l.child_pages(0, 1), 2..10);
        assert_eq!(l.child_pages(0, 12), 90..98);
        assert_eq!(l.child_pages(0, 13), 98..101);
        assert_eq!(l.child_pages(0, 14), 0..0);
    }

    #[test]
    fn items_partition() {
        for pages in [1, 7, 50, 333, 500] {
            let l = layout(pages);
            let mut seen = vec![false; pages as usize + 1];
            for c in 0..l.cats {
                for k in 1..=l.cat_pages(c) {
                    for j in l.page_items(c, k) {
                        let n = l.item_at(c, j);
                        assert!(!seen[n as usize]);
                        seen[n as usize] = true;
                        assert_eq!(l.item_place(n), (c, j));
                        assert_eq!(l.item_page(n), k);
                    }
                }
            }
            assert!(seen[1..].iter().all(|s| *s), "pages={pages}");
        }
    }

    #[test]
    fn routes() {
        let l = Layout::new(&SandboxOptions { pages: 500, traps: true });
        assert_eq!(l.route("/", None), Route::Home);
        assert_eq!(l.route("/item/500", None), Route::Item(500));
        assert_eq!(l.route("/item/501", None), Route::NotFound);
        assert_eq!(l.route("/item/0", None), Route::NotFound);
        assert_eq!(l.route("/item/07", None), Route::NotFound);
        assert_eq!(l.route("/ITEM/3", None), Route::NotFound);
        assert_eq!(l.route("/category/music", None), Route::Category { c: 1, k: 1 });
        assert_eq!(l.route("/category/music", Some("page=3")), Route::Category { c: 1, k: 3 });
        assert_eq!(l.route("/category/music/page/2", None), Route::Category { c: 1, k: 2 });
        assert_eq!(l.route("/category/music", Some("page=4")), Route::NotFound);
        assert_eq!(l.route("/calendar/2026/11", None), Route::Calendar { y: 2026, m: 11 });
        assert_eq!(l.route("/calendar/2026/13", None), Route::NotFound);
        assert_eq!(l.route("/trap/loop/b", None), Route::Trap(Trap::LoopB));
        assert_eq!(l.route("/private/x", None), Route::Private);
        let l = layout(500);
        assert_eq!(l.route("/traps", None), Route::NotFound);
        assert_eq!(l.route("/trap/flaky", None), Route::NotFound);
    }
}
