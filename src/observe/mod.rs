//! Observing a run: live counters, the summary, the progress line, the secrets that are
//! masked in everything printed, and the dashboard (HTTP: web page, JSON API, Prometheus
//! `/metrics`, remote control; docs/observe.md).

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
