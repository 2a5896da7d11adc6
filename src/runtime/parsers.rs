//! A parser for items only: the spec's `parse.follow` keeps finding the links.

use std::sync::Arc;

use crate::crawl::parser::SpecParser;
use crate::crawl::{Item, Page, PageParser, Parsed};

/// Takes the items out of a page, leaving the links to the spec's `parse.follow` selectors
/// ([`RuntimeBuilder::item_parser`](super::RuntimeBuilder::item_parser)). A closure
/// `Fn(&Page) -> Vec<Item>` is one.
///
/// ```
/// use arachne::crawl::{Item, Page};
/// use arachne::runtime::ItemParser;
///
/// let titles = |page: &Page| -> Vec<Item> {
///     let Some(start) = page.body.find("<h1>") else { return Vec::new() };
///     let title = page.body[start + 4..].split("</h1>").next().unwrap_or_default();
///     let mut fields = serde_json::Map::new();
///     fields.insert("title".into(), title.into());
///     vec![Item { rule: "title".into(), fields, url: page.url().to_string(), fetched_at: page.fetched_at }]
/// };
/// fn is_item_parser(_: &impl ItemParser) {}
/// is_item_parser(&titles);
/// ```
pub trait ItemParser: Send + Sync + 'static {
    /// The items found on `page` (a panic here is handled as in [`PageParser::parse`]).
    fn items(&self, page: &Page) -> Vec<Item>;
}

impl<F> ItemParser for F
where
    F: Fn(&Page) -> Vec<Item> + Send + Sync + 'static,
{
    fn items(&self, page: &Page) -> Vec<Item> {
        self(page)
    }
}

/// The spec's link following and the user's items.
pub(crate) struct SpecLinksUserItems {
    /// The spec's `parse:` without its item rules: links only.
    pub(crate) links: SpecParser,
    pub(crate) items: Arc<dyn ItemParser>,
}

impl PageParser for SpecLinksUserItems {
    fn parse(&self, page: &Page) -> Parsed {
        let links = self.links.parse(page);
        Parsed { links: links.links, items: self.items.items(page), links_dropped: links.links_dropped }
    }
}
