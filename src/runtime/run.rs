//! One run: the actor tree's start, the wait for the end, and the orderly stop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Arbiter, System};
use tokio::sync::oneshot;
use url::Url;

use super::builder::RuntimeBuilder;
use super::error::RunError;
use crate::bus::{Bus, Overflow, QueueConfig};
use crate::crawl::fetcher::{FetchShared, Fetcher};
use crate::crawl::frontier::{Frontier, Scope};
use crate::crawl::parser::{ParseShared, ParserActor, SpecParser};
use crate::crawl::scheduler::{Drain, Scheduler, SchedulerParts, Seed};
use crate::crawl::sink::{SinkActor, SinkResult};
use crate::crawl::{http, urls, CrawlRequest, Event, Item, Page, PageParser};
use crate::observe::{Progress, Stats, Summary};
use crate::sandbox::{SandboxOptions, SandboxServer};
use crate::spec::CrawlSpec;
use crate::supervise::{Restart, Supervisor, SupervisorConfig};

/// How long sinks get to flush after the crawl ended.
const SINK_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn run(builder: RuntimeBuilder) -> Result<Summary, RunError> {
    let started = Instant::now();
    let spec = builder.spec.clone();
    let sandbox = match &spec.sandbox {
        Some(s) => Some(
            SandboxServer::start(SandboxOptions { pages: s.pages, traps: s.traps }, s.port)
                .map_err(RunError::Sandbox)?,
        ),
        None => None,
    };
    let seeds = seed_urls(&spec, sandbox.as_ref().map(|s| s.base_url()))?;
    let scope = Scope::new(&spec, &seeds)?;
    let parser: Arc<dyn PageParser> = match builder.parser.clone() {
        Some(p) => p,
        None => Arc::new(SpecParser::new(&spec.parse)?),
    };
    let client = http::build_client(&spec.fetch)?;
    let system = System::new();
    let result = system.block_on(crawl(builder, spec, seeds, scope, parser, client, started));
    System::current().stop();
    drop(sandbox);
    result
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

async fn crawl(
    builder: RuntimeBuilder,
    spec: CrawlSpec,
    seeds: Vec<Url>,
    scope: Scope,
    parser: Arc<dyn PageParser>,
    client: reqwest::Client,
    started: Instant,
) -> Result<Summary, RunError> {
    let stats = Arc::new(Stats::default());
    let bus = Bus::new();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let concurrency = spec.fetch.concurrency.max(1) as usize;
    let max_deliveries = spec.supervision.max_deliveries;
    let requests = bus.queue::<CrawlRequest>(
        "requests",
        QueueConfig { capacity: concurrency, order: crate::spec::QueueOrder::Fifo, max_deliveries },
    )?;
    let parsers = cores.max(1);
    let pages = bus.queue::<Page>(
        "pages",
        QueueConfig { capacity: parsers * 8, order: crate::spec::QueueOrder::Fifo, max_deliveries },
    )?;
    let items = bus.topic::<Item>("items")?;
    let events = bus.topic::<Event>("events")?;

    let mut sup = Supervisor::new(SupervisorConfig::from_spec("root", &spec.supervision), stats.clone());
    let main = Arbiter::current();
    let mut arbiters = Vec::new();

    // Ordered start: sinks first (items need somewhere to go), then the scheduler, the
    // parsers and the fetchers that report to it, then the user's actors.
    let mut sinks_done: Vec<oneshot::Receiver<SinkResult>> = Vec::new();
    for (name, sink) in builder.sinks {
        let (tx, rx) = oneshot::channel();
        let subscription = items.subscribe(1024, Overflow::Block);
        sup.start(name.clone(), Restart::Transient, &main, move |_| {
            SinkActor::new(name, sink, subscription, tx)
        });
        sinks_done.push(rx);
    }

    let (done_tx, mut done_rx) = oneshot::channel();
    let parts = SchedulerParts {
        frontier: Frontier::new(&spec, scope),
        requests: requests.clone(),
        events: events.clone(),
        stats: stats.clone(),
        client: client.clone(),
        user_agent: spec.fetch.user_agent.clone(),
        done: done_tx,
    };
    let scheduler = sup.start("scheduler", Restart::Permanent, &main, move |_| Scheduler::new(parts));

    let parse_shared = Arc::new(ParseShared {
        parser,
        pages: pages.clone(),
        items: items.clone(),
        scheduler: scheduler.clone(),
        stats: stats.clone(),
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
        requests: requests.clone(),
        pages: pages.clone(),
        events: events.clone(),
        scheduler: scheduler.clone(),
        stats: stats.clone(),
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

    for start in builder.actors {
        start(&mut sup, &main, &bus);
    }

    let _progress = Progress::start(stats.clone(), !builder.progress);
    scheduler.do_send(Seed(seeds));

    // Wait for the end: the crawl is done, a stop was asked for, or an actor escalated.
    let mut stop_rx = builder.stop.subscribe();
    let stop_after = builder.stop_after.unwrap_or(Duration::MAX);
    let deadline = tokio::time::sleep(stop_after.min(Duration::from_secs(100 * 365 * 86400)));
    tokio::pin!(deadline);
    let mut draining = false;
    let mut escalation = None;
    loop {
        tokio::select! {
            _ = &mut done_rx => break,
            watched = sup.watch() => {
                if let Err(e) = watched {
                    tracing::error!("{e}");
                    escalation = Some(e);
                }
                break;
            }
            _ = tokio::signal::ctrl_c(), if builder.ctrl_c => {
                if draining {
                    eprintln!("\nstopping now");
                    std::process::exit(130);
                }
                eprintln!("\ndraining (Ctrl-C again to stop at once)");
                draining = true;
                scheduler.do_send(Drain);
            }
            _ = stop_rx.wait_for(|stop| *stop), if !draining => {
                draining = true;
                scheduler.do_send(Drain);
            }
            _ = &mut deadline, if !draining => {
                tracing::info!("stopping after {stop_after:?}");
                draining = true;
                scheduler.do_send(Drain);
            }
        }
    }

    // Orderly stop: no more requests or pages; sinks read what is left and flush.
    requests.close();
    pages.close();
    items.close();
    events.close();
    let mut sink_error = None;
    for done in sinks_done {
        match tokio::time::timeout(SINK_DRAIN_TIMEOUT, done).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(e))) => sink_error = sink_error.or(Some(e)),
            Ok(Err(_)) => sink_error = sink_error.or(Some("a sink ended without reporting".to_string())),
            Err(_) => sink_error = sink_error.or(Some("a sink did not finish flushing in time".to_string())),
        }
    }
    sup.stop_all();
    for arbiter in arbiters {
        arbiter.stop();
        let _ = arbiter.join();
    }

    let mut summary = stats.summary(started.elapsed());
    summary.redeliveries = requests.stats().redeliveries.load(Ordering::Relaxed)
        + pages.stats().redeliveries.load(Ordering::Relaxed);
    summary.dead_letters = requests.stats().dead_letters.load(Ordering::Relaxed)
        + pages.stats().dead_letters.load(Ordering::Relaxed);
    if let Some(e) = escalation {
        return Err(RunError::Escalated(e));
    }
    if let Some(e) = sink_error {
        return Err(RunError::Sink(e));
    }
    Ok(summary)
}
