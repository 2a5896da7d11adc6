//! The runtime: builds the supervised actor tree from a spec and runs the crawl to its end.
//!
//! This is the embedding API and exactly what `arachne run` uses:
//!
//! ```no_run
//! use arachne::runtime::Runtime;
//!
//! let spec = arachne::spec::load_file("crawl.yaml".as_ref(), arachne::spec::NO_OVERRIDES)?;
//! let summary = Runtime::builder(spec).run()?;
//! println!("{} pages, {} items", summary.pages_fetched, summary.items);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Inside an async program (tokio, actix) await [`RuntimeBuilder::run_async`] instead.
//!
//! Plug in your own [`PageParser`](crate::crawl::PageParser) with
//! [`RuntimeBuilder::parser`] (or only the items with [`RuntimeBuilder::item_parser`]),
//! your own [`ItemSink`](crate::crawl::ItemSink) with [`RuntimeBuilder::sink`] (read it
//! after the run through a [`SharedSink`]), and any actor of your own with
//! [`RuntimeBuilder::actor`] or under a supervisor of your own with
//! [`RuntimeBuilder::supervisor`]: it gets the [`Bus`](crate::bus::Bus) (with typed handles
//! to the crawl's topics: [`Bus::items`](crate::bus::Bus::items), ...), is supervised like
//! the built-in ones, and at the end of the run handles what it was sent before it is
//! stopped. [`StopHandle::stop_after_items`] (or `scope.max_items`) stops after exactly N
//! items. docs/embedding.md walks through all of it.

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

/// What a run returns (defined in [`crate::observe`], beside the live figures).
pub use crate::observe::Summary;
pub use actors::{FactoryError, Subtree};
pub use builder::{Runtime, RuntimeBuilder, StopHandle, DEFAULT_GRACE};
pub use error::RunError;
pub use parsers::ItemParser;
pub use sinks::SharedSink;
