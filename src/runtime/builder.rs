//! The runtime builder: a spec plus the user's parser, sinks and actors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ArbiterHandle, Context, Supervised};
use tokio::sync::watch;

use super::error::RunError;
use super::run;
use crate::bus::Bus;
use crate::crawl::sink::{ItemSink, JsonlSink, StdoutSink};
use crate::crawl::PageParser;
use crate::observe::dashboard::Dashboard;
use crate::observe::Summary;
use crate::spec::{CrawlSpec, OutputSpec};
use crate::supervise::{Chaos, Restart, Supervisor};

/// How long a stop (Ctrl-C, SIGTERM, `stop_after`, a [`StopHandle`]) lets the requests in
/// flight finish before it cancels them: well under the default `fetch.timeout` (30 s), and
/// under the usual 10 to 30 s a service manager waits after SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A named sink.
pub(crate) type NamedSink = (String, Box<dyn ItemSink>);

/// Starts a user actor under the root supervisor.
pub(crate) type ActorStarter = Box<dyn FnOnce(&mut Supervisor, &ArbiterHandle, &Bus) + Send>;

/// The entry point of the embedding API.
#[derive(Debug)]
pub struct Runtime;

impl Runtime {
    /// A builder for a run of `spec`.
    pub fn builder(spec: CrawlSpec) -> RuntimeBuilder {
        let (stop_tx, _) = watch::channel(false);
        RuntimeBuilder {
            spec,
            parser: None,
            sinks: Vec::new(),
            spec_outputs: true,
            actors: Vec::new(),
            progress: false,
            ctrl_c: false,
            stop_after: None,
            grace: DEFAULT_GRACE,
            stop: Arc::new(stop_tx),
            bus: Bus::new(),
            state_dir: None,
            chaos: Chaos::default(),
            dashboard: None,
        }
    }
}

/// Asks a running crawl to stop: what is in flight drains, sinks flush, `run` returns.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Drains and stops the run (idempotent).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Configures a run; [`RuntimeBuilder::run`] runs it.
pub struct RuntimeBuilder {
    pub(crate) spec: CrawlSpec,
    pub(crate) parser: Option<Arc<dyn PageParser>>,
    pub(crate) sinks: Vec<NamedSink>,
    pub(crate) spec_outputs: bool,
    pub(crate) actors: Vec<ActorStarter>,
    pub(crate) progress: bool,
    pub(crate) ctrl_c: bool,
    pub(crate) stop_after: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) stop: Arc<watch::Sender<bool>>,
    pub(crate) bus: Bus,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) chaos: Chaos,
    pub(crate) dashboard: Option<Dashboard>,
}

impl RuntimeBuilder {
    /// Replaces the spec's `parse:` rules with your parser.
    pub fn parser(mut self, parser: impl PageParser) -> Self {
        self.parser = Some(Arc::new(parser));
        self
    }

    /// Adds a sink of your own (besides the spec's `output:`).
    pub fn sink(mut self, name: impl Into<String>, sink: impl ItemSink) -> Self {
        self.sinks.push((name.into(), Box::new(sink)));
        self
    }

    /// Ignores the spec's `output:`: only the sinks added with [`RuntimeBuilder::sink`] run.
    pub fn without_spec_outputs(mut self) -> Self {
        self.spec_outputs = false;
        self
    }

    /// Adds an actor of your own, built by `make` with the run's bus, started on the main
    /// arbiter under the root supervisor as a transient child: restarted after a panic (same
    /// address; `Supervised::restarting` then `started` run again), not when it stops by
    /// itself (as actix stream handlers do when their topic closes at the end of the run).
    pub fn actor<A, F>(self, name: impl Into<String>, make: F) -> Self
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&Bus) -> A + Send + 'static,
    {
        self.actor_with_restart(name, Restart::Transient, make)
    }

    /// [`RuntimeBuilder::actor`] with another restart type.
    pub fn actor_with_restart<A, F>(mut self, name: impl Into<String>, restart: Restart, make: F) -> Self
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&Bus) -> A + Send + 'static,
    {
        let name = name.into();
        self.actors.push(Box::new(move |sup: &mut Supervisor, arbiter: &ArbiterHandle, bus: &Bus| {
            let bus = bus.clone();
            sup.start(name, restart, arbiter, move |_| make(&bus));
        }));
        self
    }

    /// The run's bus, to create topics and subscriptions before the run starts (where an
    /// error can be handled with `?`).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Shows the live progress line on standard error (off by default).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Handles Ctrl-C and SIGTERM: the first drains and stops; the second exits the process
    /// at once (status 130). Off by default: an embedding program usually has its own handler.
    pub fn handle_ctrl_c(mut self, on: bool) -> Self {
        self.ctrl_c = on;
        self
    }

    /// Stops gracefully after this long.
    pub fn stop_after(mut self, duration: Duration) -> Self {
        self.stop_after = Some(duration);
        self
    }

    /// How long a stop lets the requests in flight finish ([`DEFAULT_GRACE`]); then they
    /// are cancelled (with `--state-dir` they stay pending, for the next run), the pages
    /// already fetched are parsed, and the sinks flush.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// A handle that stops the run from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// The spec this run will use.
    pub fn spec(&self) -> &CrawlSpec {
        &self.spec
    }

    /// Keeps the frontier, the seen-set and the sinks' committed positions in `dir`, so a
    /// killed run resumes where it stopped (see docs/reliability.md).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Injects faults (`--chaos`).
    pub fn chaos(mut self, chaos: Chaos) -> Self {
        self.chaos = chaos;
        self
    }

    /// Serves this dashboard (web page, JSON API, `/metrics`, remote control) during the
    /// run. Without it, the spec's `observe:` key starts one.
    pub fn dashboard(mut self, dashboard: Dashboard) -> Self {
        self.dashboard = Some(dashboard);
        self
    }

    /// Runs the crawl to its end on a new actix system, blocking this thread, and returns
    /// its summary. For a plain `fn main`. Inside an async runtime (a `#[tokio::main]` or
    /// `#[actix::main]` program, an async task) it returns [`RunError::InsideRuntime`]
    /// instead of blocking that runtime: await [`RuntimeBuilder::run_async`] there.
    pub fn run(self) -> Result<Summary, RunError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(RunError::InsideRuntime);
        }
        run::run(self)
    }

    /// Runs the crawl to its end and resolves to its summary, without blocking the caller:
    /// for async programs (tokio, actix). The actor tree runs on an actix system of its own,
    /// on a thread of its own (actix's arbiters cannot share the caller's runtime), so the
    /// future can be awaited on any executor, and dropping it does not stop the crawl (use a
    /// [`StopHandle`] for that).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let spec = arachne::spec::load_file("crawl.yaml".as_ref(), &[])?;
    /// let summary = arachne::runtime::Runtime::builder(spec).run_async().await?;
    /// println!("{} pages", summary.pages_fetched);
    /// # Ok(()) }
    /// ```
    pub async fn run_async(self) -> Result<Summary, RunError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("arachne-runtime".into())
            .spawn(move || {
                let _ = tx.send(run::run(self));
            })
            .map_err(RunError::System)?;
        rx.await.unwrap_or_else(|_| {
            Err(RunError::System(std::io::Error::other(
                "the runtime's thread ended without a result (it panicked)",
            )))
        })
    }
}

/// Opens the spec's outputs: anew, or after the committed positions of a resumed run.
pub(crate) fn open_outputs(
    spec: &CrawlSpec,
    resume: Option<&std::collections::HashMap<String, u64>>,
) -> Result<Vec<NamedSink>, RunError> {
    let mut sinks: Vec<NamedSink> = Vec::new();
    for output in &spec.output {
        match output {
            OutputSpec::Jsonl(path) => {
                let name = format!("jsonl:{}", path.display());
                let position = resume.map(|r| r.get(&name).copied().unwrap_or(0));
                sinks.push((name, Box::new(open_jsonl(path, position)?)));
            }
            OutputSpec::Stdout => sinks.push(("stdout".to_string(), Box::new(StdoutSink))),
            _ => match crate::bridges::open_output(spec, output) {
                Ok(Some(named)) => sinks.push(named),
                Ok(None) => {}
                Err(e) => {
                    return Err(RunError::Output {
                        path: e.name,
                        source: std::io::Error::other(e.error.to_string()),
                    })
                }
            },
        }
    }
    Ok(sinks)
}

fn open_jsonl(path: &Path, resume_at: Option<u64>) -> Result<JsonlSink, RunError> {
    let err = |source| RunError::Output { path: path.display().to_string(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    match resume_at {
        Some(position) => JsonlSink::resume(path, position).map_err(err),
        None => JsonlSink::create(path).map_err(err),
    }
}
