//! The runtime builder: a spec plus the user's parser, sinks and actors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Supervised};
use tokio::sync::watch;

use super::actors::{starter, ActorStarter, FactoryError, Subtree, SubtreeSpec};
use super::error::RunError;
use super::limit::ItemBudget;
use super::parsers::ItemParser;
use super::run;
use crate::bus::{Bus, Firing, Topic};
use crate::crawl::sink::{ItemSink, JsonlSink, StdoutSink};
use crate::crawl::{Event, PageItems, PageParser};
use crate::observe::dashboard::Dashboard;
use crate::observe::Summary;
use crate::spec::{CrawlSpec, OutputSpec};
use crate::supervise::{Chaos, Restart, SupervisorConfig};

/// How long a stop (Ctrl-C, SIGTERM, `stop_after`, a [`StopHandle`]) lets the requests in
/// flight finish before it cancels them: well under the default `fetch.timeout` (30 s), and
/// under the usual 10 to 30 s a service manager waits after SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A named sink.
pub(crate) type NamedSink = (String, Box<dyn ItemSink>);

/// The entry point of the embedding API.
#[derive(Debug)]
pub struct Runtime;

impl Runtime {
    /// A builder for a run of `spec`.
    pub fn builder(spec: CrawlSpec) -> RuntimeBuilder {
        let (stop_tx, _) = watch::channel(false);
        let stop = Arc::new(stop_tx);
        let bus = Bus::new();
        // The built-in topics exist from the start, with their types: a channel of the same
        // name and another type cannot be made, and their typed handles cannot fail.
        let items = bus.topic::<PageItems>("items").expect("a new bus has no 'items'");
        let events = bus.topic::<Event>("events").expect("a new bus has no 'events'");
        let schedules = bus.topic::<Firing>("schedules").expect("a new bus has no 'schedules'");
        RuntimeBuilder {
            spec,
            parser: None,
            item_parser: None,
            sinks: Vec::new(),
            spec_outputs: true,
            actors: Vec::new(),
            subtrees: Vec::new(),
            progress: false,
            ctrl_c: false,
            stop_after: None,
            grace: DEFAULT_GRACE,
            budget: Arc::new(ItemBudget::new(stop.clone())),
            stop,
            bus,
            items,
            events,
            schedules,
            sandbox_url: None,
            state_dir: None,
            chaos: Chaos::default(),
            dashboard: None,
            queues: None,
        }
    }
}

/// Asks a running crawl to stop: what is in flight drains, sinks flush, `run` returns.
#[derive(Clone, Debug)]
pub struct StopHandle {
    stop: Arc<watch::Sender<bool>>,
    budget: Arc<ItemBudget>,
}

impl StopHandle {
    /// Drains and stops the run (idempotent). Requests in flight finish (within the
    /// [grace](RuntimeBuilder::grace)), and their items are written: to stop at an exact
    /// number of items, use [`StopHandle::stop_after_items`].
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the run once it has published `n` items in all (counted from its start, as
    /// `scope.max_items`): no item past the `n`-th is published, so every sink writes
    /// exactly `n` (when the site has that many), and no more links are followed. Called
    /// when more than `n` were published already, it stops the run at once. A lower limit
    /// (the spec's, or an earlier call) stays.
    ///
    /// ```no_run
    /// # fn demo(spec: arachne::spec::CrawlSpec) -> Result<(), arachne::runtime::RunError> {
    /// let builder = arachne::runtime::Runtime::builder(spec);
    /// builder.stop_handle().stop_after_items(40);
    /// let summary = builder.run()?;
    /// assert!(summary.items <= 40);
    /// # Ok(()) }
    /// ```
    pub fn stop_after_items(&self, n: u64) {
        self.budget.limit_to(n);
    }
}

/// Configures a run; [`RuntimeBuilder::run`] runs it.
pub struct RuntimeBuilder {
    pub(crate) spec: CrawlSpec,
    pub(crate) parser: Option<Arc<dyn PageParser>>,
    pub(crate) item_parser: Option<Arc<dyn ItemParser>>,
    pub(crate) sinks: Vec<NamedSink>,
    pub(crate) spec_outputs: bool,
    pub(crate) actors: Vec<ActorStarter>,
    pub(crate) subtrees: Vec<SubtreeSpec>,
    pub(crate) progress: bool,
    pub(crate) ctrl_c: bool,
    pub(crate) stop_after: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) stop: Arc<watch::Sender<bool>>,
    pub(crate) budget: Arc<ItemBudget>,
    pub(crate) bus: Bus,
    items: Topic<PageItems>,
    events: Topic<Event>,
    schedules: Topic<Firing>,
    pub(crate) sandbox_url: Option<String>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) chaos: Chaos,
    pub(crate) dashboard: Option<Dashboard>,
    pub(crate) queues: Option<Vec<String>>,
}

impl RuntimeBuilder {
    /// Replaces the spec's `parse:` rules with your parser: it finds the links to follow
    /// and the items. To keep the spec's link following, use
    /// [`RuntimeBuilder::item_parser`].
    pub fn parser(mut self, parser: impl PageParser) -> Self {
        self.parser = Some(Arc::new(parser));
        self.item_parser = None;
        self
    }

    /// Takes the items with your parser (a closure `Fn(&Page) -> Vec<Item>` will do),
    /// while the spec's `parse.follow` selectors keep finding the links (its `parse.items`
    /// rules are not used).
    ///
    /// ```no_run
    /// use arachne::crawl::{Item, Page};
    /// # fn demo(spec: arachne::spec::CrawlSpec) -> Result<(), arachne::runtime::RunError> {
    /// let summary = arachne::runtime::Runtime::builder(spec)
    ///     .item_parser(|page: &Page| -> Vec<Item> {
    ///         if !page.url().path().starts_with("/item/") {
    ///             return Vec::new();
    ///         }
    ///         let mut fields = serde_json::Map::new();
    ///         fields.insert("length".into(), page.body.len().into());
    ///         vec![Item { rule: "page".into(), fields, url: page.url().to_string(), fetched_at: page.fetched_at }]
    ///     })
    ///     .run()?;
    /// # Ok(()) }
    /// ```
    pub fn item_parser(mut self, parser: impl ItemParser) -> Self {
        self.item_parser = Some(Arc::new(parser));
        self.parser = None;
        self
    }

    /// Adds a sink of your own (besides the spec's `output:`). To read it after the run,
    /// give a [`SharedSink`](super::SharedSink) and keep a clone.
    pub fn sink(mut self, name: impl Into<String>, sink: impl ItemSink) -> Self {
        self.sinks.push((name.into(), Box::new(sink)));
        self
    }

    /// Ignores the spec's `output:`: only the sinks added with [`RuntimeBuilder::sink`] run.
    pub fn without_spec_outputs(mut self) -> Self {
        self.spec_outputs = false;
        self
    }

    /// Adds an actor of your own, built by `make` with the run's bus when the run starts
    /// (before the first page is fetched, so it misses nothing it subscribes to there), on
    /// the main arbiter, under the root supervisor as a *transient* child: restarted in
    /// place after a panic (same address; `Supervised::restarting`, then `started` again),
    /// not when it stops by itself. An `Err` from `make`, or a panic in it, fails the run
    /// at its start with [`RunError::ActorStart`] naming the actor.
    ///
    /// At the end of the run, once the crawl has drained and the bus is closed, the user's
    /// actors handle what was published to them (what their stream subscriptions hold)
    /// and what their mailboxes hold, then they are stopped as actix actors stop
    /// (`stopping`, `stopped`), the last started first; the whole drain is bounded by 30 s.
    ///
    /// ```no_run
    /// use actix::prelude::*;
    /// use arachne::crawl::PageItems;
    /// use arachne::supervise::{ContextExt, Published};
    ///
    /// struct Counter { items: arachne::bus::Topic<PageItems>, pages: u64 }
    /// impl Actor for Counter {
    ///     type Context = Context<Self>;
    ///     fn started(&mut self, ctx: &mut Context<Self>) {
    ///         ctx.subscribe(&self.items);
    ///     }
    ///     fn stopped(&mut self, _: &mut Context<Self>) {
    ///         println!("{} pages", self.pages); // every page of the run
    ///     }
    /// }
    /// impl Supervised for Counter {}
    /// impl Handler<Published<PageItems>> for Counter {
    ///     type Result = ();
    ///     fn handle(&mut self, _: Published<PageItems>, _: &mut Context<Self>) {
    ///         self.pages += 1;
    ///     }
    /// }
    ///
    /// # fn demo(spec: arachne::spec::CrawlSpec) -> Result<(), arachne::runtime::RunError> {
    /// arachne::runtime::Runtime::builder(spec)
    ///     .actor("counter", |bus| Ok(Counter { items: bus.items()?, pages: 0 }))
    ///     .run()?;
    /// # Ok(()) }
    /// ```
    pub fn actor<A, F>(self, name: impl Into<String>, make: F) -> Self
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&Bus) -> Result<A, FactoryError> + Send + 'static,
    {
        self.actor_with_restart(name, Restart::Transient, make)
    }

    /// [`RuntimeBuilder::actor`] with another restart type.
    pub fn actor_with_restart<A, F>(mut self, name: impl Into<String>, restart: Restart, make: F) -> Self
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&Bus) -> Result<A, FactoryError> + Send + 'static,
    {
        self.actors.push(starter(name.into(), restart, make));
        self
    }

    /// Adds a supervisor of your own under the root, named `name`, with the actors `tree`
    /// adds to it: their panics count towards `config`'s intensity, not the root's. When
    /// the subtree exceeds it, its actors are stopped and the failure is logged; the crawl
    /// goes on (unless [`Subtree::escalate`] asks for the run to fail then). `config.name`
    /// is replaced by `name`.
    ///
    /// ```no_run
    /// use arachne::supervise::{Strategy, SupervisorConfig};
    /// use std::time::Duration;
    /// # struct Side;
    /// # impl actix::Actor for Side { type Context = actix::Context<Self>; }
    /// # impl actix::Supervised for Side {}
    /// # fn demo(spec: arachne::spec::CrawlSpec) {
    /// let config = SupervisorConfig {
    ///     name: String::new(),
    ///     strategy: Strategy::OneForOne,
    ///     max_restarts: 3,
    ///     within: Duration::from_secs(5),
    /// };
    /// let builder = arachne::runtime::Runtime::builder(spec)
    ///     .supervisor("side", config, |s| s.actor("reporter", |_| Ok(Side)));
    /// # }
    /// ```
    pub fn supervisor(
        mut self,
        name: impl Into<String>,
        mut config: SupervisorConfig,
        tree: impl FnOnce(Subtree) -> Subtree,
    ) -> Self {
        config.name = name.into();
        self.subtrees.push(SubtreeSpec { config, tree: tree(Subtree::new()) });
        self
    }

    /// The run's `items` topic: one [`PageItems`] per parsed page (the sinks read it).
    pub fn items(&self) -> Topic<PageItems> {
        self.items.clone()
    }

    /// The run's `events` topic: failures, dead letters, restarts ([`Event`]).
    pub fn events(&self) -> Topic<Event> {
        self.events.clone()
    }

    /// The run's `schedules` topic: one [`Firing`] per firing of the spec's schedules.
    pub fn schedules(&self) -> Topic<Firing> {
        self.schedules.clone()
    }

    /// Crawls a sandbox the program started itself ([`SandboxServer::start`](
    /// crate::sandbox::SandboxServer::start)) at `base_url`: the seeds' `{sandbox}` is
    /// replaced by it, and the spec's `sandbox:` key, if any, starts none. The program keeps
    /// the server (its address, its truth, its request counters) after the run.
    pub fn sandbox_url(mut self, base_url: impl Into<String>) -> Self {
        self.sandbox_url = Some(base_url.into());
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
        StopHandle { stop: self.stop.clone(), budget: self.budget.clone() }
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

    /// Consumes only these queues of the crawl's routing (`arachne run --queues`, Celery's
    /// `celery worker -Q`): this process fetches only their requests, still admits every
    /// link it finds into the queue its route names (for the workers that consume it), and
    /// ends when the whole crawl is done. Needs a shared frontier (`frontier.backend:
    /// redis`, `amqp` or `kafka`); a queue the spec does not have fails the run before it
    /// starts. By default a process consumes every queue. See docs/routing.md.
    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues = Some(queues.into_iter().map(Into::into).collect());
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
    /// let spec = arachne::spec::load_file("crawl.yaml".as_ref(), arachne::spec::NO_OVERRIDES)?;
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
