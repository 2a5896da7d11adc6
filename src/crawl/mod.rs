//! The crawl pipeline: the Scheduler (frontier), Fetchers, Parsers and Sinks, and the pieces
//! they are made of (URL normalisation, HTML extraction, HTTP, robots.txt).
//!
//! The actors themselves (scheduler, fetchers, parsers, sinks) and their messages are
//! internal: the runtime builds them. What a program uses is re-exported here: the channel
//! messages ([`CrawlRequest`], [`Page`], [`PageItems`], [`Item`], [`Event`]), the traits to
//! plug in ([`PageParser`], [`ItemSink`]) and the built-in parser and sinks; the public
//! submodules are the building blocks worth using on their own ([`urls`], [`extract`],
//! [`robots`], [`http`], [`guard`], [`frontier`], [`routing`]) and the broker seam
//! ([`shared`]).
//!
//! A parser turns a [`Page`] into links and [`Item`]s; here the spec's own, [`SpecParser`]:
//!
//! ```
//! use std::sync::Arc;
//! use arachne::crawl::{urls, CrawlRequest, Page, PageParser, SpecParser};
//! use arachne::spec::{ItemRule, ParseSpec};
//! use arachne::url::Url;
//!
//! let url = Url::parse("https://shop.example/p/1")?;
//! let request = CrawlRequest {
//!     fingerprint: urls::fingerprint(&url),
//!     host: urls::host_key(&url).into(),
//!     url,
//!     depth: 0,
//!     redirect_chain: Vec::new(),
//!     queue: Default::default(),
//! };
//! let page = Page {
//!     request: Arc::new(request),
//!     status: 200,
//!     body: r#"<h1>Dune</h1><a href="/p/2">next</a>"#.into(),
//!     fetched_at: arachne::chrono::Utc::now(),
//! };
//! let rule = ItemRule {
//!     name: "book".into(),
//!     matches: "/p/".into(),
//!     fields: [("title".to_string(), "h1".to_string())].into_iter().collect(),
//! };
//! let parser = SpecParser::new(&ParseSpec { follow: vec!["a[href]".into()], items: vec![rule] })?;
//! let parsed = parser.parse(&page);
//! assert_eq!(parsed.links[0].as_str(), "https://shop.example/p/2");
//! assert_eq!(parsed.items[0].fields["title"], "Dune");
//! assert_eq!(parsed.items[0].url, "https://shop.example/p/1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod backlog;
pub mod clock;
pub mod extract;
pub(crate) mod fetcher;
pub mod frontier;
pub mod guard;
pub mod http;
mod lanes;
pub(crate) mod messages;
pub(crate) mod parser;
pub(crate) mod recrawl;
pub mod robots;
pub mod routing;
pub(crate) mod scan;
pub(crate) mod scheduler;
pub mod seen;
pub mod shared;
pub(crate) mod sink;
pub(crate) mod spill;
pub mod urls;

pub use messages::{CrawlRequest, Event, Item, Page, PageItems, Parsed};
pub use parser::{PageParser, SpecParser};
pub use sink::{ItemSink, JsonlSink, StdoutSink};
