//! The crawl spec: its types and defaults (`model`), units, loading with line and column
//! errors ([`load_file`], [`load_str`]), `--set` overrides, `${ENV}` substitution, and
//! validation.
//!
//! How it works: the YAML text is read into a tree of nodes that remember their line and
//! column; overrides and `${ENV}` edit that tree; a serde deserializer over the tree builds
//! the [`CrawlSpec`] (collecting unknown keys with "did you mean" hints); then semantic
//! checks run on the result, finding their positions in the tree by key path.
//!
//! ```
//! use arachne::spec::{load_str, OutputSpec, NO_OVERRIDES};
//!
//! let spec = load_str("name: demo\nseeds: [\"https://example.com/\"]\nfetch: { timeout: 5s }\n", "demo.yaml", NO_OVERRIDES)?;
//! assert_eq!(spec.fetch.timeout.0, std::time::Duration::from_secs(5));
//! assert_eq!(spec.output, [OutputSpec::Stdout], "the default output");
//! # Ok::<(), arachne::spec::SpecErrors>(())
//! ```

mod de;
mod error;
mod load;
mod model;
mod overrides;
mod routing;
mod schema;
mod tree;
mod units;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use load::{load_file, load_str, NO_OVERRIDES};
pub use model::*;
pub use routing::{QueueSpec, RouteSpec, DEFAULT_QUEUE};
pub use schema::json_schema;
pub use units::{ByteSize, HumanDuration, Rate, DURATION_FORMS, RATE_FORMS, SIZE_FORMS};
