//! Embedding arachne with a parser and a sink written in Rust.
//!
//! The crawl spec only says *where* to crawl (the built-in sandbox shop); a `PageParser`
//! of our own replaces the YAML `parse:` rules, and an `ItemSink` of our own collects the
//! items in memory instead of the spec's `output:`. The run is checked against the
//! sandbox's truth: one item per product page, each with the right title and a price.
//!
//!     cargo run --example embed_custom_parser

use std::error::Error;
use std::io;
use std::sync::{Arc, Mutex};

use arachne::crawl::{urls, Item, ItemSink, Page, PageParser, Parsed};
use arachne::runtime::Runtime;
use arachne::sandbox::{truth, SandboxOptions};
use serde_json::{Map, Value};
use url::Url;

const PAGES: u32 = 200;

/// Finds links by scanning `<a href="...">` and builds an item from each product page's
/// `<h1>` (the title) and `<span class="price">`.
struct ShopParser;

impl PageParser for ShopParser {
    fn parse(&self, page: &Page) -> Parsed {
        let html = page.body.as_str();
        let links = html
            .split("<a ")
            .skip(1)
            .filter_map(|tag| between(tag.split('>').next()?, "href=\"", "\""))
            .filter_map(|href| page.url().join(&href.replace("&amp;", "&")).ok())
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(|mut url: Url| {
                urls::normalize(&mut url); // the frontier dedups on normalised URLs
                url
            })
            .collect();

        let mut items = Vec::new();
        if page.url().path().starts_with("/item/") {
            let mut fields = Map::new();
            if let Some(title) = between(html, "<h1>", "</h1>") {
                fields.insert("title".into(), Value::String(title.trim().to_string()));
            }
            if let Some(price) = between(html, "<span class=\"price\">", "</span>") {
                fields.insert("price".into(), Value::String(price.trim().to_string()));
            }
            items.push(Item {
                rule: "product".into(),
                fields,
                url: page.url().to_string(),
                fetched_at: page.fetched_at,
            });
        }
        Parsed { links, items }
    }
}

/// The text between the first `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Keeps every item in a shared vector the program reads after the run.
struct VecSink(Arc<Mutex<Vec<Item>>>);

impl ItemSink for VecSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        self.0.lock().map_err(|_| io::Error::other("poisoned"))?.push(item.clone());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // nothing to make durable: the items are in memory
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(
        &format!("name: custom-parser\nsandbox: {{ pages: {PAGES} }}\nseeds: [\"{{sandbox}}/\"]\n"),
        "embed_custom_parser.yaml",
        &[],
    )?;
    let collected = Arc::new(Mutex::new(Vec::new()));
    let summary = Runtime::builder(spec)
        .parser(ShopParser)
        .without_spec_outputs() // no stdout sink: only ours
        .sink("memory", VecSink(collected.clone()))
        .run()?;

    // The sandbox knows exactly what a correct crawl finds.
    let truth = truth(&SandboxOptions { pages: PAGES, traps: false }, 20);
    let items = collected.lock().map_err(|_| "sink mutex poisoned")?;
    if items.len() as u64 != truth.items {
        return Err(format!("expected {} items, the sink got {}", truth.items, items.len()).into());
    }
    let mut titles = Vec::new();
    for item in items.iter() {
        let text = |field: &str| item.fields.get(field).and_then(Value::as_str).unwrap_or_default();
        if text("title").is_empty() || !text("price").starts_with('£') {
            return Err(format!("item without a title or a price: {}", item.url).into());
        }
        titles.push(text("title").to_string());
    }
    titles.sort();
    if titles != truth.item_titles {
        return Err("the titles differ from the sandbox's truth".into());
    }
    println!(
        "embed_custom_parser: ok: {} items with titles from {} pages in {:.2}s",
        items.len(),
        summary.pages_fetched,
        summary.elapsed_s
    );
    Ok(())
}
