//! One run: the actor tree's start, the wait for the end, and the orderly stop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Addr, Arbiter, System};
use tokio::sync::oneshot;
use url::Url;

use super::actors::UserActors;
use super::builder::{open_outputs, RuntimeBuilder};
use super::dead_letters::DeadLetterLog;
use super::error::RunError;
use super::limit::LimitedParser;
use super::parsers::SpecLinksUserItems;
use crate::bridges::FrontierContext;
use crate::bus::{Overflow, Queue, QueueConfig, Topic};
use crate::crawl::clock::Clock;
use crate::crawl::fetcher::{queue_specs, FetchShared, Fetcher};
use crate::crawl::frontier::{Frontier, FrontierError, Scope};
use crate::crawl::parser::{ParseShared, ParserActor, SpecParser};
use crate::crawl::recrawl::Revisits;
use crate::crawl::routing::Routing;
use crate::crawl::scheduler::SharedFrontier;
use crate::crawl::scheduler::{
    Checkpoint, DeadLettered, Drain, Reseed, Restore, Scheduler, SchedulerParts, Seed, SinkFailed,
};
use crate::crawl::shared::SharedStore;
use crate::crawl::sink::{FailureHook, ItemSink, SinkActor, SinkError, SinkResult};
use crate::crawl::{http, urls, CrawlRequest, Event, Page, PageItems, PageParser};
use crate::observe::dashboard::{Dashboard, DashboardOptions, ObserveParts, Observer};
use crate::observe::{Controller, Progress, Stats, Summary};
use crate::sandbox::{SandboxOptions, SandboxServer};
use crate::spec::{CrawlSpec, ParseSpec, QueueOrder};
use crate::state::{Resume, StateStore};
use crate::supervise::{Restart, Supervisor, SupervisorConfig};

/// How long sinks get to flush, and parsers to finish their pages, after the crawl ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn run(builder: RuntimeBuilder) -> Result<Summary, RunError> {
    let started = Instant::now();
    let spec = builder.spec.clone();
    let store = match &builder.state_dir {
        Some(dir) => Some(Arc::new(StateStore::open(dir).map_err(RunError::State)?)),
        None => None,
    };
    let resume = match &store {
        Some(store) => store.load().map_err(RunError::State)?,
        None => Resume::default(),
    };
    let sandbox = match &builder.sandbox_url {
        Some(_) => None,
        None => start_sandbox(&spec, store.as_deref(), &resume)?,
    };
    let base_url = builder.sandbox_url.clone().or_else(|| sandbox.as_ref().map(|s| s.base_url()));
    let seeds = seed_urls(&spec, base_url)?;
    let scope = Scope::new(&spec, &seeds)?;
    let parser = page_parser(&builder, &spec)?;
    let client = http::build_client(&spec.fetch, scope.origins().guard())?;
    let mut sinks = Vec::new();
    if builder.spec_outputs {
        sinks = open_outputs(&spec, resume.started.then_some(&resume.sink_positions))?;
    }
    let dead_letters = Arc::new(DeadLetterLog::beside(&spec));
    let system = System::new();
    let run =
        Run { builder, spec, seeds, scope, parser, client, store, resume, sinks, dead_letters, started };
    let result = system.block_on(run.crawl());
    System::current().stop();
    drop(sandbox);
    result
}

/// The run's parser (the user's, or the spec's rules, or the spec's links and the user's
/// items), cut at the item limit.
fn page_parser(builder: &RuntimeBuilder, spec: &CrawlSpec) -> Result<Arc<dyn PageParser>, RunError> {
    let inner: Arc<dyn PageParser> = match (&builder.parser, &builder.item_parser) {
        (Some(parser), _) => parser.clone(),
        (None, Some(items)) => {
            let follow_only = ParseSpec { items: Vec::new(), ..spec.parse.clone() };
            Arc::new(SpecLinksUserItems { links: SpecParser::new(&follow_only)?, items: items.clone() })
        }
        (None, None) => Arc::new(SpecParser::new(&spec.parse)?),
    };
    if spec.scope.max_items > 0 {
        builder.budget.limit_to(spec.scope.max_items);
    }
    Ok(Arc::new(LimitedParser { inner, budget: builder.budget.clone() }))
}

/// The spec's in-process sandbox. With `--state-dir` a free port is chosen once and kept in
/// the state: the saved URLs point there, so a resumed run serves the sandbox on it again.
fn start_sandbox(
    spec: &CrawlSpec,
    store: Option<&StateStore>,
    resume: &Resume,
) -> Result<Option<SandboxServer>, RunError> {
    let Some(s) = &spec.sandbox else { return Ok(None) };
    let saved = resume.sandbox_port.filter(|_| s.port == 0 && resume.started);
    let options = SandboxOptions { pages: s.pages, traps: s.traps };
    let server = SandboxServer::start(options, saved.unwrap_or(s.port)).map_err(|e| match saved {
        Some(port) => RunError::SandboxPort { port, source: e },
        None => RunError::Sandbox(e),
    })?;
    if let Some(store) = store {
        store.set_sandbox_port(server.port()).map_err(RunError::State)?;
    }
    Ok(Some(server))
}

/// `{sandbox}` substituted, parsed, normalised.
fn seed_urls(spec: &CrawlSpec, sandbox: Option<String>) -> Result<Vec<Url>, RunError> {
    spec.seeds
        .iter()
        .map(|seed| {
            let text = match (&sandbox, seed.contains("{sandbox}")) {
                (Some(base), true) => seed.replace("{sandbox}", base),
                (None, true) => return Err(RunError::NoSandbox(seed.clone())),
                _ => seed.clone(),
            };
            let mut url = Url::parse(text.trim())
                .map_err(|e| RunError::BadSeed { seed: text.clone(), reason: e.to_string() })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(RunError::BadSeed {
                    seed: text,
                    reason: "only http and https are crawled".into(),
                });
            }
            urls::normalize(&mut url);
            Ok(url)
        })
        .collect()
}

/// Everything a run is made of, before its actors start.
struct Run {
    builder: RuntimeBuilder,
    spec: CrawlSpec,
    seeds: Vec<Url>,
    scope: Scope,
    parser: Arc<dyn PageParser>,
    client: reqwest::Client,
    store: Option<Arc<StateStore>>,
    resume: Resume,
    sinks: Vec<(String, Box<dyn ItemSink>)>,
    dead_letters: Arc<DeadLetterLog>,
    started: Instant,
}

impl Run {
    async fn crawl(self) -> Result<Summary, RunError> {
        let Run {
            mut builder,
            spec,
            seeds,
            scope,
            parser,
            client,
            store,
            resume,
            mut sinks,
            dead_letters,
            started,
        } = self;
        sinks.append(&mut builder.sinks);
        let stats = Arc::new(Stats::default());
        let chaos = Arc::new(builder.chaos.clone());
        let bus = builder.bus.clone();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let concurrency = spec.fetch.concurrency.max(1) as usize;
        let max_deliveries = spec.supervision.max_deliveries;
        let requests = bus.queue::<CrawlRequest>(
            "requests",
            QueueConfig { capacity: concurrency, order: QueueOrder::Fifo, max_deliveries },
        )?;
        let parsers = cores.max(1);
        let pages = bus.queue::<Page>(
            "pages",
            QueueConfig { capacity: parsers * 8, order: QueueOrder::Fifo, max_deliveries },
        )?;
        let items = bus.topic::<PageItems>("items")?;
        let events = bus.topic::<Event>("events")?;

        let mut sup = Supervisor::new(SupervisorConfig::from_spec("root", &spec.supervision), stats.clone());
        let restart_events = events.clone();
        sup.on_restart(move |actor, reason| {
            restart_events
                .publish_now(Event::ActorRestarted { actor: actor.to_string(), reason: reason.to_string() });
        });
        let main = Arbiter::current();
        let mut arbiters = Vec::new();
        // Bridges before anything else: an unreachable broker or a wrong password fails the
        // run before a page is crawled, and outbound bridges miss no event.
        let bridges = crate::bridges::start(&spec, &bus, &mut sup, &main).await?;

        // Ordered start: the scheduler first (everyone reports to it), then the sinks (so
        // items have somewhere to go), the parsers, the fetchers, and the user's actors.
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let reseeds = spec.schedules.iter().any(|s| s.action.is_some());
        let revisits = reseeds.then(|| Arc::new(Revisits::default()));
        let durable_sinks = sinks.iter().filter(|(_, s)| s.position().is_some()).count() as u32;
        let routing = routing_of(&spec, builder.queues.as_deref())?;
        let context = FrontierContext { state_dir: store.is_some(), routing: routing.clone() };
        let shared_store = crate::bridges::open_frontier(&spec, context).await?;
        check_routing(&routing, shared_store.as_deref())?;
        if let Some(store) = shared_store.as_ref().filter(|_| spec.scope.max_items > 0) {
            // `max_items` counts the whole crawl where the broker keeps the count.
            builder.budget.share(store.clone(), tokio::runtime::Handle::current());
        }
        if routing.is_routed() {
            stats.set_queues(routing.queues().iter().map(|q| q.name.to_string()));
        }
        let shared = shared_store.clone().map(|store| SharedFrontier {
            store,
            // With `action: reseed`, an idle process keeps polling: another process may
            // start the next crawl of the shared frontier.
            wait_for_start_urls: spec.seeds.is_empty() || reseeds,
            lease_batch: concurrency,
            sinks: sinks.len() as u32,
        });
        let mut frontier = Frontier::with_routing(&spec, scope, routing.clone())?;
        if let Some(dir) = &builder.state_dir {
            // Beside the state: a resume finds and removes what a killed run left.
            frontier.set_spill_dir(dir.join("spill"));
        }
        let parts = SchedulerParts {
            frontier,
            requests: requests.clone(),
            events: events.clone(),
            stats: stats.clone(),
            client: client.clone(),
            user_agent: spec.fetch.user_agent.clone(),
            done: done_tx,
            seeds: seeds.clone(),
            revisits: revisits.clone(),
            store: store.clone(),
            durable_sinks,
            shared,
        };
        let scheduler = sup.start("scheduler", Restart::Permanent, &main, move |_| Scheduler::new(parts));
        watch_dead_letters(&requests, &scheduler, &events, &dead_letters, &stats, |r: &CrawlRequest| {
            r.clone()
        });
        watch_dead_letters(&pages, &scheduler, &events, &dead_letters, &stats, |p: &Page| {
            (*p.request).clone()
        });

        let mut sinks_done: Vec<(String, oneshot::Receiver<SinkResult>)> = Vec::new();
        for (name, sink) in sinks {
            let sink = stats.sinks.counted(&name, sink);
            let (tx, rx) = oneshot::channel();
            let subscription = items.subscribe(256, Overflow::Block);
            let acks = scheduler.clone().recipient();
            let actor_name = name.clone();
            let on_failure = sink_failure_hook(&scheduler, builder.stop_handle());
            sup.start(name.clone(), Restart::Transient, &main, move |_| {
                SinkActor::new(actor_name, sink, subscription, acks, tx).on_failure(on_failure)
            });
            sinks_done.push((name, rx));
        }

        let parse_shared = Arc::new(ParseShared {
            parser,
            pages: pages.clone(),
            items: items.clone(),
            scheduler: scheduler.clone(),
            stats: stats.clone(),
            chaos: chaos.clone(),
        });
        for i in 0..parsers {
            let arbiter = Arbiter::new();
            let shared = parse_shared.clone();
            sup.start(format!("parser-{i}"), Restart::Permanent, &arbiter.handle(), move |_| {
                ParserActor::new(shared)
            });
            arbiters.push(arbiter);
        }

        let fetchers = (cores / 2).max(1);
        let fetch_shared = Arc::new(FetchShared {
            client,
            spec: spec.fetch.clone(),
            queue_specs: if routing.is_routed() { queue_specs(&spec.fetch, &routing) } else { Vec::new() },
            requests: requests.clone(),
            pages: pages.clone(),
            events: events.clone(),
            scheduler: scheduler.clone(),
            stats: stats.clone(),
            chaos,
            revisits,
        });
        for i in 0..fetchers {
            let arbiter = Arbiter::new();
            let shared = fetch_shared.clone();
            let prefetch = concurrency.div_ceil(fetchers);
            sup.start(format!("fetcher-{i}"), Restart::Permanent, &arbiter.handle(), move |_| {
                Fetcher::new(shared, prefetch)
            });
            arbiters.push(arbiter);
        }

        if !spec.schedules.is_empty() {
            let reseed = scheduler.clone();
            let on_reseed = Box::new(move |_: &crate::bus::Firing| reseed.do_send(Reseed));
            let clock = match &shared_store {
                None => Clock::new(spec.schedules.clone(), bus.clone(), stats.clone(), on_reseed),
                Some(store) => {
                    let claim = claim_ticks(store.clone());
                    Clock::shared(spec.schedules.clone(), bus.clone(), stats.clone(), on_reseed, claim)
                }
            }
            .map_err(|e| RunError::Schedule(e.to_string()))?;
            sup.start("clock", Restart::Permanent, &main, move |_| clock);
        }

        let (escalations_tx, mut escalations) = tokio::sync::mpsc::unbounded_channel();
        let (actors, subtrees) = (std::mem::take(&mut builder.actors), std::mem::take(&mut builder.subtrees));
        let user_actors = match UserActors::start(&mut sup, actors, subtrees, &bus, &stats, &escalations_tx) {
            Ok(started) => started,
            Err(e) => {
                sup.stop_all();
                stop_arbiters(arbiters);
                return Err(e);
            }
        };

        let _progress = Progress::start(stats.clone(), !builder.progress);
        let _observer =
            observe(&mut builder, &spec, &sup, &user_actors, &scheduler, &stats, &events, &requests, &pages)?;
        count_redeliveries(&requests, &pages, &stats, &events);
        if resume.started {
            tracing::info!(pending = resume.pending, seen = resume.seen, "resuming from the state directory");
            scheduler.do_send(Restore);
            scheduler.do_send(Seed(Vec::new()));
        } else {
            scheduler.do_send(Seed(seeds));
        }

        let keep_running = !spec.schedules.is_empty();
        let ends = Ends { done: &mut done_rx, escalations: &mut escalations };
        let stopped = match wait_for_end(&builder, &mut sup, &scheduler, ends, keep_running).await {
            Ok(stopped) => stopped,
            Err(e) => {
                // Every child was stopped; sinks wrote their whole lines as they went down.
                sup.stop_all();
                stop_arbiters(arbiters);
                return Err(RunError::Escalated(e));
            }
        };

        // Orderly stop: no more requests; parsers finish the pages they hold and publish
        // their items; then the sinks read what is left, flush and acknowledge; then the
        // state is committed one last time.
        requests.close();
        pages.close();
        drain(&pages).await;
        bus.close();
        bridges.finish(DRAIN_TIMEOUT).await;
        let mut sink_error = None;
        for (sink, done) in sinks_done {
            let other =
                |kind, text: &str| SinkError { sink: sink.clone(), source: std::io::Error::new(kind, text) };
            let failure = match tokio::time::timeout(DRAIN_TIMEOUT, done).await {
                Ok(Ok(Ok(_))) => None,
                Ok(Ok(Err(e))) => Some(e),
                Ok(Err(_)) => Some(other(std::io::ErrorKind::Other, "it ended without reporting")),
                Err(_) => Some(other(std::io::ErrorKind::TimedOut, "it did not finish flushing in time")),
            };
            sink_error = sink_error.or(failure);
        }
        let checkpoint = match scheduler.send(Checkpoint).await {
            Ok(result) => result,
            Err(e) => Err(format!("the scheduler is gone: {e}")),
        };
        if let Some(store) = &shared_store {
            // Leave the broker cleanly (a Kafka consumer leaves its group at once).
            store.close().await;
        }
        // The user's actors finish what was published to them, then stop (last started
        // first); then the built-in actors.
        user_actors.drain(&bus, tokio::time::Instant::now() + DRAIN_TIMEOUT).await;
        sup.stop_all();
        stop_arbiters(arbiters);

        let mut summary = stats.summary(started.elapsed());
        summary.consumer_lag = bridges.consumer_lag();
        summary.redeliveries = requests.stats().redeliveries.load(Ordering::Relaxed)
            + pages.stats().redeliveries.load(Ordering::Relaxed);
        summary.dead_letters = requests.stats().dead_letters.load(Ordering::Relaxed)
            + pages.stats().dead_letters.load(Ordering::Relaxed)
            + shared_store.as_ref().map_or(0, |s| s.dead_letters());
        if let Some(e) = sink_error {
            return Err(RunError::Sink(e));
        }
        checkpoint.map_err(RunError::Checkpoint)?;
        if !stopped {
            // A crawl that ran to its end; a stopped one was cut short by its user.
            let pages_dead = pages.stats().dead_letters.load(Ordering::Relaxed);
            super::outcome::check(&summary, pages_dead, dead_letters.first())?;
        }
        Ok(summary)
    }
}

/// What a sink that failed for good does: tells the scheduler (a shared frontier gets the
/// pages waiting for the sink back at once) and stops the run, which then ends with the
/// sink's error.
fn sink_failure_hook(scheduler: &Addr<Scheduler>, stop: super::StopHandle) -> FailureHook {
    let scheduler = scheduler.clone();
    Arc::new(move |sink: &str| {
        tracing::error!(sink, "a sink failed: stopping the crawl");
        scheduler.do_send(SinkFailed { sink: sink.to_string() });
        stop.stop();
    })
}

/// Stops the arbiters of the parsers and fetchers and waits for their threads.
fn stop_arbiters(arbiters: Vec<Arbiter>) {
    for arbiter in arbiters {
        arbiter.stop();
        let _ = arbiter.join();
    }
}

/// What ends a run besides a stop: the scheduler's "idle", a subtree's escalation.
struct Ends<'a> {
    done: &'a mut tokio::sync::mpsc::UnboundedReceiver<()>,
    escalations: &'a mut tokio::sync::mpsc::UnboundedReceiver<crate::supervise::Escalation>,
}

/// The crawl's routing, with the queues this worker consumes (`--queues`).
fn routing_of(spec: &CrawlSpec, queues: Option<&[String]>) -> Result<Arc<Routing>, RunError> {
    let mut routing = Routing::new(spec).map_err(FrontierError::from)?;
    if let Some(queues) = queues {
        routing.consume_only(queues).map_err(FrontierError::from)?;
    }
    Ok(Arc::new(routing))
}

/// Some queues only needs a shared frontier (with the local one, nobody else would take
/// the other queues' work), and named queues a store that keeps them.
fn check_routing(routing: &Routing, store: Option<&dyn SharedStore>) -> Result<(), RunError> {
    match store {
        None if !routing.consumes_all() => Err(RunError::Unsupported(
            "--queues takes some of the queues of a crawl shared by several processes: it needs \
             a shared frontier, `frontier.backend: redis`, `amqp` or `kafka` (with the local frontier this one \
             process consumes every queue)"
                .into(),
        )),
        Some(store) if routing.is_routed() && !store.supports_queues() => Err(RunError::Unsupported(format!(
            "routing to named queues is not supported by this frontier yet ({}): use the local, redis, amqp or kafka frontier",
            store.describe()
        ))),
        _ => Ok(()),
    }
}

/// One firing per tick across the processes of a shared crawl: the store decides who takes
/// it. When the broker cannot say, this process fires (at least once beats never).
fn claim_ticks(store: Arc<dyn SharedStore>) -> crate::crawl::clock::ClaimFn {
    Arc::new(move |firing: &crate::bus::Firing| {
        let key = format!("{}:{}", firing.schedule, firing.scheduled_for.timestamp_millis());
        let claimed = store.claim(key, Duration::from_secs(3600));
        Box::pin(async move {
            claimed.await.unwrap_or_else(|e| {
                tracing::warn!("schedule: cannot tell whether another process fired this tick ({e}): firing");
                true
            })
        })
    })
}

/// Starts the dashboard (the builder's, or the spec's `observe:`) and, with a shared
/// frontier, this worker's heartbeat and remote control.
#[allow(clippy::too_many_arguments)]
fn observe(
    builder: &mut RuntimeBuilder,
    spec: &CrawlSpec,
    sup: &Supervisor,
    user_actors: &UserActors,
    scheduler: &Addr<Scheduler>,
    stats: &Arc<Stats>,
    events: &Topic<Event>,
    requests: &Queue<CrawlRequest>,
    pages: &Queue<Page>,
) -> Result<Observer, RunError> {
    let dashboard = match (builder.dashboard.take(), &spec.observe) {
        (Some(d), _) => Some(d),
        (None, Some(o)) => {
            let d = Dashboard::bind(DashboardOptions::from_spec(Some(o), None)?)?;
            tracing::info!("dashboard: {}", d.browser_url());
            Some(d)
        }
        (None, None) => None,
    };
    let registry = crate::bridges::worker_registry(spec)?;
    let children = sup.children().iter().chain(user_actors.in_subtrees()).cloned().collect();
    let controller = Controller::new(scheduler.clone(), children, builder.stop_handle(), events.clone());
    Ok(Observer::start(ObserveParts {
        crawl: spec.name.clone(),
        stats: stats.clone(),
        events: events.clone(),
        requests: requests.clone(),
        pages: pages.clone(),
        controller,
        dashboard,
        registry,
    })?)
}

/// Waits until the crawl is done (`Ok(false)`), a stop was asked for (Ctrl-C, SIGTERM,
/// `stop_after`, a [`StopHandle`](super::StopHandle)) and the drain finished or its grace
/// period ran out (`Ok(true)`), or an actor escalated.
async fn wait_for_end(
    builder: &RuntimeBuilder,
    sup: &mut Supervisor,
    scheduler: &Addr<Scheduler>,
    ends: Ends<'_>,
    keep_running: bool,
) -> Result<bool, crate::supervise::Escalation> {
    let Ends { done: done_rx, escalations } = ends;
    let mut stop_rx = builder.stop.subscribe();
    let stop_after = builder.stop_after.unwrap_or(Duration::from_secs(100 * 365 * 86400));
    let deadline = tokio::time::sleep(stop_after);
    tokio::pin!(deadline);
    let mut sigterm = terminate_signal(builder.ctrl_c);
    let mut draining = false;
    // Started by the drain: then what is still in flight is cancelled.
    let grace = tokio::time::sleep(stop_after);
    tokio::pin!(grace);
    loop {
        let start_drain = tokio::select! {
            idle = done_rx.recv() => {
                // With schedules the run waits for the next firing; otherwise idle is done.
                if draining || !keep_running || idle.is_none() {
                    return Ok(draining);
                }
                false
            }
            Some(escalation) = escalations.recv() => {
                tracing::error!("{escalation}");
                return Err(escalation);
            }
            watched = sup.watch() => {
                if let Err(e) = &watched {
                    tracing::error!("{e}");
                }
                return watched.map(|()| draining);
            }
            _ = tokio::signal::ctrl_c(), if builder.ctrl_c => {
                if draining {
                    eprintln!("\nstopping now");
                    std::process::exit(130);
                }
                eprintln!("\ndraining (Ctrl-C again to stop at once)");
                true
            }
            _ = async { match sigterm.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                if draining {
                    eprintln!("\nSIGTERM again: stopping now");
                    std::process::exit(130);
                }
                tracing::info!("SIGTERM: draining (for at most {:?}; SIGTERM again to stop at once)", builder.grace);
                true
            }
            _ = &mut grace, if draining => {
                tracing::warn!("grace period of {:?} over: cancelling the requests still in flight", builder.grace);
                return Ok(true);
            }
            _ = stop_rx.wait_for(|stop| *stop), if !draining => true,
            _ = &mut deadline, if !draining => {
                tracing::info!("stopping after {stop_after:?}");
                true
            }
        };
        if start_drain && !draining {
            draining = true;
            grace.as_mut().reset(tokio::time::Instant::now() + builder.grace);
            scheduler.do_send(Drain);
        }
    }
}

fn terminate_signal(enabled: bool) -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    enabled.then(|| signal(SignalKind::terminate()).ok()).flatten()
}

/// Waits (bounded) until the parsers have settled every page they were handed.
async fn drain(pages: &Queue<Page>) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while pages.unacked() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Keeps `stats.redeliveries` up to date from the queues (for the progress line) and
/// announces new redeliveries on `events`, twice a second.
fn count_redeliveries(
    requests: &Queue<CrawlRequest>,
    pages: &Queue<Page>,
    stats: &Arc<Stats>,
    events: &Topic<Event>,
) {
    let (requests, pages, stats, events) = (requests.clone(), pages.clone(), stats.clone(), events.clone());
    actix::spawn(async move {
        let mut seen = [0u64; 2];
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let now = [
                requests.stats().redeliveries.load(Ordering::Relaxed),
                pages.stats().redeliveries.load(Ordering::Relaxed),
            ];
            for (i, queue) in ["requests", "pages"].into_iter().enumerate() {
                if now[i] > seen[i] {
                    events.publish_now(Event::Redelivered {
                        queue: queue.to_string(),
                        count: now[i] - seen[i],
                    });
                }
            }
            seen = now;
            stats.redeliveries.store(now[0] + now[1], Ordering::Relaxed);
            if events.is_closed() {
                break;
            }
        }
    });
}

/// Dead letters of a queue are logged, announced, and count as done for the scheduler.
fn watch_dead_letters<T: Send + Sync + 'static>(
    queue: &Queue<T>,
    scheduler: &Addr<Scheduler>,
    events: &Topic<Event>,
    log: &Arc<DeadLetterLog>,
    stats: &Arc<Stats>,
    request_of: impl Fn(&T) -> CrawlRequest + Send + Sync + 'static,
) {
    let (scheduler, events, log, name) =
        (scheduler.clone(), events.clone(), log.clone(), queue.name().to_string());
    let stats = stats.clone();
    queue.on_dead_letter(move |letter| {
        Stats::incr(&stats.dead_letters);
        let request = Arc::new(request_of(&letter.message));
        tracing::warn!(queue = %name, url = %request.url, "dead-lettered: {}", letter.reason);
        log.record(&name, &request.url, letter.deliveries, &letter.reason);
        events.publish_now(Event::DeadLettered {
            queue: name.clone(),
            url: request.url.to_string(),
            reason: letter.reason.clone(),
        });
        scheduler.do_send(DeadLettered { request, reason: letter.reason.clone() });
    });
}
