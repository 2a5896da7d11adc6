//! What an embedding program needs most, in one `use arachne::prelude::*;`: loading a
//! spec, building and running the runtime, its results, the bus and its built-in channels'
//! message types, and the traits for a parser, a sink and a supervised actor of one's own.
//!
//! ```
//! use arachne::prelude::*;
//!
//! let spec: CrawlSpec = load_str("name: t\nseeds: [\"https://example.com/\"]\n", "t.yaml", NO_OVERRIDES)?;
//! let builder: RuntimeBuilder = Runtime::builder(spec);
//! let events: Topic<Event> = builder.bus().topic("events")?;
//! assert_eq!(events.subscriber_count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use crate::bus::{
    Bus, Delivery, Firing, Overflow, Queue, QueueConfig, Subscription, Topic, TryPublishError, WrongType,
};
pub use crate::crawl::{
    CrawlRequest, Event, Item, ItemSink, Page, PageItems, PageParser, Parsed, SpecParser,
};
pub use crate::observe::Summary;
pub use crate::runtime::{RunError, Runtime, RuntimeBuilder, StopHandle};
pub use crate::spec::{load_file, load_str, CrawlSpec, QueueOrder, SpecErrors, NO_OVERRIDES};
pub use crate::supervise::Restart;
pub use actix::Supervised;
