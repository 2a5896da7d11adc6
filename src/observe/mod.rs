//! Observing a run: live counters, the summary, the progress line, the secrets that are
//! masked in everything printed, and the dashboard (HTTP: web page, JSON API, Prometheus
//! `/metrics`, remote control; docs/observe.md).
//!
//! The live counters of a run are a [`Stats`]; a [`Summary`] is their snapshot (what a run
//! returns):
//!
//! ```
//! use std::time::Duration;
//! use arachne::observe::{secrets, Stats};
//!
//! let stats = Stats::default();
//! Stats::incr(&stats.pages_fetched);
//! let summary = stats.summary(Duration::from_secs(2));
//! assert_eq!(summary.pages_fetched, 1);
//!
//! // Whatever is printed goes through `mask`: a tracked secret never shows.
//! secrets::register("hunter2-but-longer");
//! assert_eq!(secrets::mask("password=hunter2-but-longer"), "password=***");
//! ```

mod control;
pub mod dashboard;
mod live;
mod process;
mod progress;
pub mod secrets;
mod stats;
mod workers;

pub use control::{ControlAction, ControlError, ControlRequest, Controller};
pub use live::{Histogram, HostFigures, HostTable, SinkCounts, StatusCounts, LATENCY_BUCKETS};
pub use process::{unix_millis, ProcessFigures};
pub use progress::Progress;
pub use stats::{ErrorKind, Stats, Summary};
pub use workers::{
    Heartbeat, RegistryError, RemoteCommand, WorkerAgent, WorkerFigures, WorkerRegistry, HEARTBEAT_EVERY,
    LOST_AFTER_BEATS,
};
