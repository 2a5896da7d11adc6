//! Why a run could not start, or failed.

use crate::supervise::Escalation;

/// A run that could not start or did not end well.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A seed is not a usable URL.
    #[error("seed '{seed}' is not a valid http(s) URL: {reason}")]
    BadSeed {
        /// The seed as written (after `{{sandbox}}` substitution).
        seed: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A seed uses `{sandbox}` but the spec starts no sandbox.
    #[error("seed '{0}' uses {{sandbox}} but the spec has no `sandbox:` key")]
    NoSandbox(String),
    /// The built-in sandbox site could not start.
    #[error("could not start the sandbox site: {0}")]
    Sandbox(#[source] std::io::Error),
    /// The sandbox of a resumed run could not take its port again.
    #[error(
        "could not serve the sandbox on port {port} again, where the saved state's URLs point: {source} \
         (free the port, or move the state directory away to start over)"
    )]
    SandboxPort {
        /// The port of the run being resumed.
        port: u16,
        /// Why it could not be bound.
        #[source]
        source: std::io::Error,
    },
    /// A scope regex does not compile.
    #[error("bad scope regex: {0}")]
    Scope(#[from] regex::Error),
    /// The frontier's priorities or the spec's routing do not compile, or `--queues`
    /// names a queue the crawl does not have.
    #[error(transparent)]
    Frontier(#[from] crate::crawl::frontier::FrontierError),
    /// The spec's parse rules do not compile.
    #[error("bad parse rules: {0}")]
    Parse(#[from] crate::crawl::extract::ExtractError),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// An output could not be opened.
    #[error("could not open output '{path}': {source}")]
    Output {
        /// The output's path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The actor system failed to start or stop.
    #[error("actor system: {0}")]
    System(#[source] std::io::Error),
    /// A bus channel was declared twice with different types.
    #[error(transparent)]
    Bus(#[from] crate::bus::WrongType),
    /// An actor failed more often than the restart intensity allows.
    #[error("the run failed: {0}")]
    Escalated(#[from] Escalation),
    /// The state directory could not be used.
    #[error("{0} (if the state is damaged, move the state directory away to start over)")]
    State(#[source] crate::state::StateError),
    /// A commit of the state failed: the run stopped; the store keeps the last commit.
    #[error("the run's state could not be saved: {0} (the same command resumes from the last state saved)")]
    Checkpoint(String),
    /// A schedule could not be set up.
    #[error("bad schedule: {0}")]
    Schedule(String),
    /// A broker could not be reached or refused us (checked before the crawl starts).
    #[error("broker: {0}")]
    Broker(#[from] crate::bridges::BridgeError),
    /// The dashboard (`--dashboard`, `observe:`) could not start.
    #[error(transparent)]
    Dashboard(#[from] crate::observe::dashboard::DashboardError),
    /// The blocking [`RuntimeBuilder::run`](super::RuntimeBuilder::run) was called inside
    /// an async runtime, which it would block.
    #[error(
        "RuntimeBuilder::run blocks its thread and cannot run inside an async runtime (tokio, actix): \
         await RuntimeBuilder::run_async() there"
    )]
    InsideRuntime,
    /// A user actor's factory failed (returned an error or panicked): the run did not start.
    #[error("actor '{actor}' could not start: {source}")]
    ActorStart {
        /// The actor's name.
        actor: String,
        /// The factory's error (a panic's message and place).
        #[source]
        source: super::FactoryError,
    },
    /// A combination of options this version does not support.
    #[error("{0}")]
    Unsupported(String),
    /// A sink could not write its items (its error is the [`source`](std::error::Error::source)).
    #[error("the run failed: {0}")]
    Sink(#[source] crate::crawl::sink::SinkError),
    /// Everything the run tried failed: not one page got through.
    #[error("the run failed: nothing was crawled, every request failed: {detail}")]
    NothingCrawled {
        /// What failed, with counts.
        detail: String,
        /// The run's counters.
        summary: Box<crate::observe::Summary>,
    },
}
