//! arachne: an actor-based crawl runtime.
//!
//! One process runs a supervised tree of actors — a scheduler (the frontier), fetchers,
//! parsers and sinks — that talk over a local [`bus`] of topics and acked queues. The
//! [`spec`] module reads the YAML crawl spec; [`runtime`] builds and runs the tree from it,
//! and is the same API the `arachne` binary uses.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use arachne::prelude::*;
//!
//! /// A sink of one's own: keeps each item's URL.
//! struct Urls(Arc<Mutex<Vec<String>>>);
//!
//! impl ItemSink for Urls {
//!     fn write(&mut self, item: &Item) -> std::io::Result<()> {
//!         self.0.lock().unwrap().push(item.url.clone());
//!         Ok(())
//!     }
//!     fn flush(&mut self) -> std::io::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! // The built-in sandbox shop (on 127.0.0.1), 12 item pages, each item sent to our sink.
//! let spec = load_str(
//!     r#"
//! name: doc
//! sandbox: { pages: 12 }
//! seeds: ["{sandbox}/"]
//! output: []
//! parse:
//!   items: [{ name: product, match: "/item/\\d+$", fields: { title: h1 } }]
//! "#,
//!     "doc.yaml",
//!     NO_OVERRIDES,
//! )?;
//! let urls = Arc::new(Mutex::new(Vec::new()));
//! let summary: Summary = Runtime::builder(spec).sink("urls", Urls(urls.clone())).run()?;
//! assert_eq!(summary.items, 12);
//! assert_eq!(urls.lock().unwrap().len(), 12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The types of other crates that appear in arachne's public API are re-exported at the
//! root ([`actix`], [`url`], [`serde_json`], [`chrono`]), so an embedding program uses the
//! very versions arachne was built with.

pub mod bridges;
pub mod bus;
pub mod crawl;
pub mod observe;
pub mod prelude;
pub mod runtime;
pub mod sandbox;
pub mod spec;
pub mod state;
pub mod supervise;

pub use actix;
pub use chrono;
pub use serde_json;
pub use url;
