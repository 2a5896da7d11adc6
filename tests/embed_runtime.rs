//! The embedding API's runtime behaviour, through the public API: user actors drained and
//! stopped in order, factory errors, the exact item limit, a sandbox and sinks that outlive
//! the run, supervisors of the user's own, `ctx.subscribe`, and panics on stderr.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use arachne::bus::{Overflow, Subscription, Topic};
use arachne::crawl::{Item, PageItems};
use arachne::runtime::{FactoryError, RunError, Runtime, SharedSink};
use arachne::sandbox::{truth, SandboxOptions, SandboxServer};
use arachne::spec::CrawlSpec;
use arachne::supervise::{ContextExt, Published, Strategy, SupervisorConfig};

const PAGES: u32 = 120;

fn spec(extra: &str) -> CrawlSpec {
    spec_of(PAGES, extra)
}

fn spec_of(pages: u32, extra: &str) -> CrawlSpec {
    let text = format!(
        "name: embed\nsandbox: {{ pages: {pages} }}\nseeds: [\"{{sandbox}}/\"]\noutput: []\n\
         parse:\n  items:\n    - {{ name: product, match: \"/item/\", fields: {{ title: h1 }} }}\n{extra}"
    );
    arachne::spec::load_str(&text, "embed.yaml", arachne::spec::NO_OVERRIDES).expect("spec")
}

fn want() -> arachne::sandbox::Truth {
    truth(&SandboxOptions { pages: PAGES, traps: false }, 20)
}

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: String) {
    log.lock().expect("log").push(line);
}

/// Reads `items` the old way (a stream over a kept subscription, an empty `finished`),
/// taking ~5 ms per page, and logs its stop calls.
struct Slow {
    name: &'static str,
    items: Arc<Subscription<PageItems>>,
    pages: Arc<AtomicU64>,
    log: Log,
}

impl Actor for Slow {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(Subscription::shared_stream(self.items.clone()));
    }
    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        note(&self.log, format!("{}: stopping at {} pages", self.name, self.pages.load(Ordering::SeqCst)));
        Running::Stop
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        note(&self.log, format!("{}: stopped", self.name));
    }
}

impl Supervised for Slow {}

impl StreamHandler<Arc<PageItems>> for Slow {
    fn handle(&mut self, _: Arc<PageItems>, ctx: &mut Context<Self>) {
        self.pages.fetch_add(1, Ordering::SeqCst);
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(Duration::from_millis(5))));
    }
    fn finished(&mut self, _: &mut Context<Self>) {}
}

#[test]
fn user_actors_handle_every_page_then_stop_in_reverse_start_order() {
    let log: Log = Arc::default();
    let (first, second) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let slow = |name: &'static str, pages: &Arc<AtomicU64>| {
        let (pages, log) = (pages.clone(), log.clone());
        move |bus: &arachne::bus::Bus| {
            let items = Arc::new(bus.items()?.subscribe(64, Overflow::Block));
            Ok(Slow { name, items, pages, log })
        }
    };
    let summary = Runtime::builder(spec(""))
        .actor("first", slow("first", &first))
        .actor("second", slow("second", &second))
        .run()
        .expect("run");
    let want = want();
    assert_eq!(summary.pages_fetched, want.pages_fetched);
    assert_eq!(first.load(Ordering::SeqCst), want.pages_fetched, "no page cut off");
    assert_eq!(second.load(Ordering::SeqCst), want.pages_fetched, "no page cut off");
    let n = want.pages_fetched;
    assert_eq!(
        *log.lock().expect("log"),
        [
            format!("second: stopping at {n} pages"),
            "second: stopped".to_string(),
            format!("first: stopping at {n} pages"),
            "first: stopped".to_string(),
        ],
        "stopped after the drain, the last started first"
    );
}

struct Idle;
impl Actor for Idle {
    type Context = Context<Self>;
}
impl Supervised for Idle {}

#[test]
fn a_failing_factory_is_a_start_error_naming_the_actor() {
    let err = Runtime::builder(spec(""))
        .actor("fine", |_| Ok(Idle))
        .actor("typo", |bus| {
            // `items` carries `PageItems`: asking for strings is a type error at start.
            let _wrong: Topic<String> = bus.topic("items")?;
            Ok(Idle)
        })
        .run()
        .expect_err("the factory failed");
    match &err {
        RunError::ActorStart { actor, .. } => assert_eq!(actor, "typo"),
        other => panic!("expected ActorStart, got {other:?}"),
    }
    assert!(err.to_string().contains("actor 'typo' could not start"), "{err}");
    assert!(std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("items")), "{err}");

    let err = Runtime::builder(spec(""))
        .actor("boom", |_| -> Result<Idle, FactoryError> { panic!("no configuration for boom") })
        .run()
        .expect_err("the factory panicked");
    match &err {
        RunError::ActorStart { actor, source } => {
            assert_eq!(actor, "boom");
            assert!(source.to_string().contains("no configuration for boom"), "{source}");
        }
        other => panic!("expected ActorStart, got {other:?}"),
    }
}

#[test]
fn max_items_writes_exactly_that_many_to_every_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = dir.path().join("items.jsonl");
    let mut limited = spec("scope: { max_items: 37 }\n");
    limited.output = vec![arachne::spec::OutputSpec::Jsonl(jsonl.clone())];
    let memory = SharedSink::new(Vec::<Item>::new());
    let summary = Runtime::builder(limited).sink("memory", memory.clone()).run().expect("run");
    let lines = std::fs::read_to_string(&jsonl).expect("jsonl").lines().count();
    assert_eq!((summary.items, lines, memory.lock().len()), (37, 37, 37));
    assert!(summary.pages_fetched < want().pages_fetched, "stopped early: {}", summary.pages_fetched);

    // The same through a stop handle, on a spec without a limit.
    let memory = SharedSink::new(Vec::<Item>::new());
    let builder = Runtime::builder(spec("")).sink("memory", memory.clone());
    builder.stop_handle().stop_after_items(25);
    let summary = builder.run().expect("run");
    assert_eq!((summary.items, memory.lock().len()), (25, 25));
    let distinct: std::collections::HashSet<String> = memory.lock().iter().map(|i| i.url.clone()).collect();
    assert_eq!(distinct.len(), 25, "25 different items");
}

#[test]
fn a_sandbox_and_a_sink_of_the_program_outlive_the_run() {
    let site = SandboxServer::start(SandboxOptions { pages: PAGES, traps: false }, 0).expect("sandbox");
    let memory = SharedSink::new(Vec::<Item>::new());
    let summary = Runtime::builder(spec(""))
        .sandbox_url(site.base_url())
        .sink("memory", memory.clone())
        .run()
        .expect("run");
    let truth = site.truth(20);
    let requests = site.stats().total_requests;
    assert!(requests >= truth.pages_fetched, "the program's sandbox was crawled: {requests}");
    let items = memory.into_inner().expect("the run gave its handle back");
    assert_eq!((summary.items, items.len() as u64), (truth.items, truth.items));
    // Still serving after the run: a second run crawls it again.
    let again = Runtime::builder(spec("")).sandbox_url(site.base_url()).run().expect("second run");
    assert_eq!(again.items, truth.items);
    assert!(site.stats().total_requests > requests);
}

/// Panics on every page it is given.
struct Crasher {
    items: Topic<PageItems>,
}

impl Actor for Crasher {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.subscribe(&self.items);
    }
}
impl Supervised for Crasher {}
impl Handler<Published<PageItems>> for Crasher {
    type Result = ();
    fn handle(&mut self, page: Published<PageItems>, _: &mut Context<Self>) {
        panic!("crasher: cannot handle {}", page.request.url);
    }
}

fn side_config() -> SupervisorConfig {
    SupervisorConfig {
        name: String::new(),
        strategy: Strategy::OneForOne,
        max_restarts: 3,
        within: Duration::from_secs(60),
    }
}

#[test]
fn a_crashing_side_actor_under_its_own_supervisor_does_not_fail_the_crawl() {
    let summary = Runtime::builder(spec(""))
        .supervisor("side", side_config(), |s| s.actor("crasher", |bus| Ok(Crasher { items: bus.items()? })))
        .run()
        .expect("the crawl is not failed by its side actor");
    assert_eq!((summary.pages_fetched, summary.items), (want().pages_fetched, want().items));
    assert!(summary.restarts >= 3, "the side actor was restarted within its subtree: {}", summary.restarts);

    // Under the root, the same actor ends the run (past the default intensity, 10 restarts
    // within 60 s, in a crawl long enough for its back-off) ...
    let err = Runtime::builder(spec_of(2000, ""))
        .actor("crasher", |bus| Ok(Crasher { items: bus.items()? }))
        .run()
        .expect_err("a crash loop under the root fails the run");
    assert!(matches!(err, RunError::Escalated(ref e) if e.supervisor == "root"), "{err}");
    // ... and so does a subtree that escalates.
    let err = Runtime::builder(spec_of(2000, ""))
        .supervisor("side", side_config(), |s| {
            s.actor("crasher", |bus| Ok(Crasher { items: bus.items()? })).escalate(true)
        })
        .run()
        .expect_err("an escalating subtree fails the run");
    assert!(matches!(err, RunError::Escalated(ref e) if e.supervisor == "side"), "{err}");
}

/// Reads `items` and a short topic of numbers with `ctx.subscribe`; panics once.
struct TwoStreams {
    items: Topic<PageItems>,
    numbers: Topic<u32>,
    pages: Arc<AtomicU64>,
    numbers_seen: Arc<AtomicU64>,
    panicked: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl Actor for TwoStreams {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.subscribe(&self.items);
        ctx.subscribe(&self.numbers);
        if !self.panicked.load(Ordering::SeqCst) {
            // Three numbers, then the topic ends: the actor must not stop with it.
            for n in 0..3 {
                self.numbers.publish_now(n);
            }
            self.numbers.close();
            ctx.run_later(Duration::from_millis(50), |act, _| {
                act.panicked.store(true, Ordering::SeqCst);
                panic!("two-streams: on purpose");
            });
        }
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}
impl Supervised for TwoStreams {}
impl Handler<Published<PageItems>> for TwoStreams {
    type Result = ();
    fn handle(&mut self, _: Published<PageItems>, ctx: &mut Context<Self>) {
        self.pages.fetch_add(1, Ordering::SeqCst);
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(Duration::from_millis(2))));
    }
}
impl Handler<Published<u32>> for TwoStreams {
    type Result = ();
    fn handle(&mut self, _: Published<u32>, _: &mut Context<Self>) {
        self.numbers_seen.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn ctx_subscribe_survives_a_restart_and_the_end_of_one_stream() {
    let pages = Arc::new(AtomicU64::new(0));
    let numbers = Arc::new(AtomicU64::new(0));
    let panicked = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    let (p, n, x, s) = (pages.clone(), numbers.clone(), panicked.clone(), stopped.clone());
    let summary = Runtime::builder(spec(""))
        .actor("two-streams", move |bus| {
            Ok(TwoStreams {
                items: bus.items()?,
                numbers: bus.topic("numbers")?,
                pages: p,
                numbers_seen: n,
                panicked: x,
                stopped: s,
            })
        })
        .run()
        .expect("run");
    assert!(panicked.load(Ordering::SeqCst) && summary.restarts >= 1, "restarted: {}", summary.restarts);
    assert_eq!(numbers.load(Ordering::SeqCst), 3);
    assert_eq!(pages.load(Ordering::SeqCst), want().pages_fetched, "every page, across the restart");
    assert!(stopped.load(Ordering::SeqCst), "stopped by the runtime at the end, not before");
}

/// Run as a child process by the next test: a crawl whose actor panics once, with no
/// tracing subscriber installed.
#[test]
fn panicking_child() {
    if std::env::var_os("ARACHNE_PANICKING_CHILD").is_none() {
        return;
    }
    let summary = Runtime::builder(spec(""))
        .actor("fragile", |_| Ok(Fragile))
        .run()
        .expect("a panic once is within the intensity");
    assert_eq!(summary.restarts, 1);
    assert!(!tracing::dispatcher::has_been_set(), "the runtime installed no subscriber");
}

struct Fragile;
impl Actor for Fragile {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        static ONCE: AtomicBool = AtomicBool::new(false);
        if !ONCE.swap(true, Ordering::SeqCst) {
            ctx.run_later(Duration::from_millis(10), |_, _| panic!("fragile: the bug to see"));
        }
    }
}
impl Supervised for Fragile {}

#[test]
fn a_supervised_panic_reaches_stderr_without_a_subscriber() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "panicking_child", "--nocapture", "--test-threads=1"])
        .env("ARACHNE_PANICKING_CHILD", "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stderr}");
    assert!(
        stderr.contains("actor 'fragile' panicked (restarted): fragile: the bug to see"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn the_typed_handles_are_the_runs_topics_and_their_names_keep_their_types() {
    let builder = Runtime::builder(spec(""));
    let wrong = builder.bus().topic::<String>("items");
    assert!(wrong.is_err(), "'items' carries PageItems from the start");
    assert!(builder.bus().topic::<u64>("events").is_err());
    let pages = builder.items().subscribe(1024, Overflow::Block);
    let events = builder.events().subscribe(1024, Overflow::Block);
    let summary = builder.run().expect("run");
    let mut seen = 0;
    while pages.try_recv().is_some() {
        seen += 1;
    }
    assert_eq!(seen, summary.pages_fetched, "one PageItems per parsed page, on the handle");
    assert_eq!(events.dropped(), 0);
}
