//! The crawl pipeline: the Scheduler (frontier), Fetchers, Parsers and Sinks, and the pieces
//! they are made of (URL normalisation, HTML extraction, HTTP, robots.txt).

pub mod backlog;
pub mod clock;
pub mod extract;
pub mod fetcher;
pub mod frontier;
pub mod guard;
pub mod http;
pub mod messages;
pub mod parser;
pub mod recrawl;
pub mod robots;
pub mod scheduler;
pub mod shared;
pub mod sink;
pub mod urls;

pub use messages::{CrawlRequest, Event, Item, Page, PageItems, Parsed};
pub use parser::{PageParser, SpecParser};
pub use sink::{ItemSink, JsonlSink, StdoutSink};
