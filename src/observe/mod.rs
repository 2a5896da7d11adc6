//! Observing a run: live counters, the summary, the progress line, and the secrets that
//! are masked in everything printed.

mod progress;
pub mod secrets;
mod stats;

pub use progress::Progress;
pub use stats::{ErrorKind, Stats, Summary};
