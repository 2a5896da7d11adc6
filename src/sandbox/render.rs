//! HTML of the normal pages (home, category pages, items), written straight into a `String`
//! with its capacity reserved: no template engine, deterministic from the page number.
//!
//! Every page is padded with description text to [`target_len`] bytes (pages end up
//! 11.1–11.7 KiB), taken from a pool of sentences built once per process.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::site::{h, item_price_pence, item_rating, write_category_href, write_item_href, write_item_title};
use super::site::{Layout, CATEGORIES, ITEMS_PER_PAGE};

/// Capacity reserved for a page (every page ends up a little under this).
pub(crate) const PAGE_CAPACITY: usize = 12 * 1024 + 512;

/// The length a normal page is padded to before its footer (pages end up 11.1–11.7 KiB).
pub(crate) fn target_len(seed: u64) -> usize {
    11_350 + (mix_small(seed) % 550) as usize - FOOTER_RESERVE
}

/// Room kept for the footer after padding.
const FOOTER_RESERVE: usize = 160;

fn mix_small(x: u64) -> u64 {
    h(x, 17)
}

const WORDS: &[&str] = &[
    "hand",
    "made",
    "from",
    "solid",
    "reclaimed",
    "timber",
    "and",
    "finished",
    "with",
    "natural",
    "oil",
    "each",
    "piece",
    "is",
    "slightly",
    "different",
    "which",
    "we",
    "think",
    "adds",
    "to",
    "its",
    "charm",
    "the",
    "joints",
    "are",
    "glued",
    "pinned",
    "for",
    "decades",
    "of",
    "daily",
    "use",
    "a",
    "soft",
    "cotton",
    "lining",
    "keeps",
    "contents",
    "safe",
    "while",
    "brass",
    "fittings",
    "age",
    "gracefully",
    "our",
    "workshop",
    "in",
    "small",
    "batches",
    "ships",
    "within",
    "two",
    "days",
    "care",
    "wipe",
    "damp",
    "cloth",
    "avoid",
    "direct",
    "sunlight",
    "customers",
    "often",
    "buy",
    "this",
    "together",
    "matching",
    "set",
    "gift",
    "wrapping",
    "available",
    "at",
    "checkout",
    "dimensions",
    "weight",
    "listed",
    "below",
    "colour",
    "may",
    "vary",
    "between",
    "screens",
    "returns",
    "accepted",
    "thirty",
    "after",
    "delivery",
    "warranty",
    "covers",
    "defects",
    "materials",
    "sourced",
    "locally",
    "sustainable",
];

/// A pool of sentences, built once: the padding text of every page is a run of it.
struct Pool {
    text: String,
    /// `(start, end)` byte ranges of the sentences in `text`.
    sentences: Vec<(u32, u32)>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut text = String::with_capacity(64 * 1024);
        let mut sentences = Vec::with_capacity(600);
        for s in 0..512u64 {
            let start = text.len();
            let words = 8 + h(s, 30) % 12;
            for w in 0..words {
                let word = WORDS[(h(s * 64 + w, 31) % WORDS.len() as u64) as usize];
                if w == 0 {
                    let mut cs = word.chars();
                    if let Some(first) = cs.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(cs.as_str());
                    }
                } else {
                    text.push(' ');
                    text.push_str(word);
                }
            }
            text.push_str(if h(s, 32) % 7 == 0 { "! " } else { ". " });
            sentences.push((start as u32, text.len() as u32));
        }
        Pool { text, sentences }
    })
}

/// Appends paragraphs of description text until `out` is at least `target` bytes long.
pub(crate) fn pad(out: &mut String, seed: u64, target: usize) {
    let pool = pool();
    let count = pool.sentences.len();
    let mut i = (h(seed, 33) % count as u64) as usize;
    let mut in_para = 0;
    let mut para_len = 0;
    while out.len() < target {
        if in_para == 0 {
            out.push_str("<p>");
            para_len = 3 + (h(seed ^ i as u64, 34) % 4) as usize;
        }
        let (a, b) = pool.sentences[i % count];
        out.push_str(&pool.text[a as usize..b as usize]);
        i += 1;
        in_para += 1;
        if in_para == para_len {
            out.push_str("</p>\n");
            in_para = 0;
        }
    }
    if in_para > 0 {
        out.push_str("</p>\n");
    }
}

/// Writes a price in pence as `£12.34`.
pub(crate) fn write_price(out: &mut String, pence: u64) {
    let _ = write!(out, "£{}.{:02}", pence / 100, pence % 100);
}

fn head(out: &mut String, title: &str, description_seed: u64) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    out.push_str(title);
    out.push_str(" | Arachne Sandbox Shop</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"description\" content=\"");
    let pool = pool();
    let (a, b) = pool.sentences[(h(description_seed, 35) % pool.sentences.len() as u64) as usize];
    out.push_str(pool.text[a as usize..b as usize].trim_end());
    out.push_str("\">\n</head>\n<body>\n<header class=\"site\"><p class=\"logo\">Arachne Sandbox Shop</p>\n");
}

/// Top navigation: home, the page's category and the next one (all depth 1).
fn nav(out: &mut String, layout: &Layout, c: u32) {
    out.push_str("<nav class=\"top\"><a href=\"/\">Home</a> | <a href=\"");
    write_category_href(out, c, 1);
    out.push_str("\">");
    out.push_str(CATEGORIES[c as usize].1);
    out.push_str("</a> | <a href=\"");
    let next = layout.next_cat(c);
    write_category_href(out, next, 1);
    out.push_str("\">");
    out.push_str(CATEGORIES[next as usize].1);
    out.push_str("</a></nav>\n</header>\n<main>\n");
}

fn footer(out: &mut String, what: &str, num: u32) {
    let _ = write!(
        out,
        "</main>\n<footer><p>&copy; 2026 Arachne Sandbox Shop &middot; deterministic demo data &middot; {what} {num}</p></footer>\n</body>\n</html>\n"
    );
}

/// The home page: every category's first page, the featured items and, with traps, the
/// traps page.
pub(crate) fn home(layout: &Layout) -> String {
    let mut out = String::with_capacity(PAGE_CAPACITY);
    head(&mut out, "Home", 0);
    out.push_str("<nav class=\"top\"><a href=\"/\">Home</a></nav>\n</header>\n<main>\n<h1>Welcome to the Arachne Sandbox Shop</h1>\n<section class=\"categories\"><h2>Categories</h2>\n<ul>\n");
    for c in 0..layout.cats {
        out.push_str("<li><a href=\"");
        write_category_href(&mut out, c, 1);
        out.push_str("\">");
        out.push_str(CATEGORIES[c as usize].1);
        let _ = writeln!(out, "</a> ({} items)</li>", layout.cat_items(c));
    }
    out.push_str("</ul></section>\n<section class=\"featured\"><h2>Featured items</h2>\n<ul>\n");
    for n in 1..=layout.featured() {
        out.push_str("<li class=\"featured-item\"><a href=\"");
        write_item_href(&mut out, n);
        out.push_str("\">");
        write_item_title(&mut out, n);
        out.push_str("</a> <span class=\"price\">");
        write_price(&mut out, item_price_pence(n));
        out.push_str("</span></li>\n");
    }
    out.push_str("</ul></section>\n");
    if layout.traps {
        out.push_str("<p class=\"traps\"><a href=\"/traps\">The hard cases</a></p>\n");
    }
    out.push_str("<section class=\"about\"><h2>About the shop</h2>\n");
    pad(&mut out, 0, target_len(0));
    out.push_str("</section>\n");
    footer(&mut out, "home", 0);
    out
}

/// Page `k` of category `c`: its items, its child pages in the pagination tree, the nav.
pub(crate) fn category(layout: &Layout, c: u32, k: u32) -> String {
    let mut out = String::with_capacity(PAGE_CAPACITY);
    let pages = layout.cat_pages(c);
    let name = CATEGORIES[c as usize].1;
    let seed = 1_000_000 + u64::from(c) * 100_000 + u64::from(k);
    let mut title = String::with_capacity(48);
    let _ = write!(title, "{name}, page {k} of {pages}");
    head(&mut out, &title, seed);
    nav(&mut out, layout, c);
    let _ = write!(out, "<h1>{title}</h1>\n<ul class=\"products\">\n");
    for j in layout.page_items(c, k) {
        let n = layout.item_at(c, j);
        out.push_str("<li class=\"product\"><a href=\"");
        write_item_href(&mut out, n);
        out.push_str("\">");
        write_item_title(&mut out, n);
        out.push_str("</a> <span class=\"price\">");
        write_price(&mut out, item_price_pence(n));
        let _ = writeln!(out, "</span> <span class=\"stars\">{} of 5</span></li>", item_rating(n));
    }
    out.push_str("</ul>\n");
    let children = layout.child_pages(c, k);
    if !children.is_empty() {
        out.push_str("<nav class=\"pagination\">More pages:");
        for p in children {
            out.push_str(" <a href=\"");
            write_category_href(&mut out, c, p);
            let _ = write!(out, "\">{p}</a>");
        }
        out.push_str("</nav>\n");
    }
    let _ = write!(
        out,
        "<section class=\"blurb\"><h2>About {name}</h2>\n<p>Showing {} items per page.</p>\n",
        ITEMS_PER_PAGE
    );
    pad(&mut out, seed, target_len(seed));
    out.push_str("</section>\n");
    footer(&mut out, "category page", k);
    out
}

/// Item page `n`: title, price, rating, related items, description.
pub(crate) fn item(layout: &Layout, n: u32, related: &[u32]) -> String {
    let mut out = String::with_capacity(PAGE_CAPACITY);
    let (c, _) = layout.item_place(n);
    let mut title = String::with_capacity(32);
    write_item_title(&mut title, n);
    let seed = u64::from(n);
    head(&mut out, &title, seed);
    nav(&mut out, layout, c);
    let _ = write!(
        out,
        "<p class=\"breadcrumb\">Home &rsaquo; {} &rsaquo; {title}</p>\n<article class=\"product\">\n<h1>{title}</h1>\n<img src=\"/img/{}.jpg\" alt=\"{title}\" width=\"480\" height=\"360\">\n<p class=\"price-line\"><span class=\"price\">",
        CATEGORIES[c as usize].1,
        n % 100
    );
    write_price(&mut out, item_price_pence(n));
    let _ = write!(
        out,
        "</span> <span class=\"stock\">In stock</span></p>\n<p class=\"rating\">{} of 5</p>\n<p class=\"sku\">SKU AS-{n:06}</p>\n</article>\n<section class=\"related\"><h2>Related items</h2>\n<ul>\n",
        item_rating(n)
    );
    for &r in related {
        out.push_str("<li><a href=\"");
        write_item_href(&mut out, r);
        out.push_str("\">");
        write_item_title(&mut out, r);
        out.push_str("</a></li>\n");
    }
    out.push_str("</ul></section>\n<section class=\"description\"><h2>Description</h2>\n");
    pad(&mut out, seed, target_len(seed));
    out.push_str("</section>\n");
    footer(&mut out, "item", n);
    out
}
