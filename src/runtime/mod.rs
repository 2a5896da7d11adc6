//! The runtime: builds the supervised actor tree from a spec and runs the crawl to its end.
//!
//! This is the embedding API and exactly what `arachne run` uses:
//!
//! ```no_run
//! use arachne::runtime::Runtime;
//!
//! let spec = arachne::spec::load_file("crawl.yaml".as_ref(), &[])?;
//! let summary = Runtime::builder(spec).run()?;
//! println!("{} pages, {} items", summary.pages_fetched, summary.items);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Plug in your own [`PageParser`](crate::crawl::PageParser) with
//! [`RuntimeBuilder::parser`], your own [`ItemSink`](crate::crawl::ItemSink) with
//! [`RuntimeBuilder::sink`], and any actor of your own with [`RuntimeBuilder::actor`]: it
//! gets the [`Bus`](crate::bus::Bus) and is supervised like the built-in ones.

mod actors;
mod builder;
mod channels;
mod dead_letters;
mod error;
mod limit;
mod outcome;
mod parsers;
mod run;
mod sinks;

pub use actors::{FactoryError, Subtree};
pub use builder::{Runtime, RuntimeBuilder, StopHandle, DEFAULT_GRACE};
pub use error::RunError;
pub use parsers::ItemParser;
pub use sinks::SharedSink;
