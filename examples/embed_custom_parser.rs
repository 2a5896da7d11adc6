//! Embedding arachne with an item parser and a sink written in Rust.
//!
//! The crawl spec says *where* to crawl (the built-in sandbox shop) and which links to
//! follow (its `parse.follow` selectors, here the default: every `a[href]`); an item
//! parser of our own (`RuntimeBuilder::item_parser`, a plain closure) takes the items
//! instead of the YAML `parse.items` rules, so we write no link finding. The items go to a
//! sink we read after the run through a `SharedSink` handle. The run is checked against
//! the sandbox's truth: one item per product page, each with the right title and a price.
//!
//!     cargo run --example embed_custom_parser

use std::error::Error;

use arachne::crawl::{Item, Page};
use arachne::runtime::{Runtime, SharedSink};
use arachne::sandbox::{truth, SandboxOptions};
use serde_json::{Map, Value};

const PAGES: u32 = 200;

/// An item from each product page's `<h1>` (the title) and `<span class="price">`.
fn shop_items(page: &Page) -> Vec<Item> {
    if !page.url().path().starts_with("/item/") {
        return Vec::new();
    }
    let html = page.body.as_str();
    let mut fields = Map::new();
    if let Some(title) = between(html, "<h1>", "</h1>") {
        fields.insert("title".into(), Value::String(title.trim().to_string()));
    }
    if let Some(price) = between(html, "<span class=\"price\">", "</span>") {
        fields.insert("price".into(), Value::String(price.trim().to_string()));
    }
    vec![Item { rule: "product".into(), fields, url: page.url().to_string(), fetched_at: page.fetched_at }]
}

/// The text between the first `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(
        &format!("name: custom-parser\nsandbox: {{ pages: {PAGES} }}\nseeds: [\"{{sandbox}}/\"]\n"),
        "embed_custom_parser.yaml",
        arachne::spec::NO_OVERRIDES,
    )?;
    // A `Vec<Item>` is a sink; the handle reads it after the run.
    let collected = SharedSink::new(Vec::<Item>::new());
    let summary = Runtime::builder(spec)
        .item_parser(shop_items) // links: the spec's `parse.follow`
        .without_spec_outputs() // no stdout sink: only ours
        .sink("memory", collected.clone())
        .run()?;

    // The sandbox knows exactly what a correct crawl finds.
    let truth = truth(&SandboxOptions { pages: PAGES, traps: false }, 20);
    let items = collected.lock();
    if items.len() as u64 != truth.items || summary.pages_fetched != truth.pages_fetched {
        return Err(format!(
            "expected {} items from {} pages, got {} from {}",
            truth.items,
            truth.pages_fetched,
            items.len(),
            summary.pages_fetched
        )
        .into());
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
