//! Observing a run: live counters, the summary, and the progress line.

mod progress;
mod stats;

pub use progress::Progress;
pub use stats::{ErrorKind, Stats, Summary};
