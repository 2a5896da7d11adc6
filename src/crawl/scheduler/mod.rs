//! The Scheduler actor: owns the [`Frontier`], admits discovered links, fetches robots.txt,
//! and keeps the `requests` queue filled within the politeness limits. It also knows when
//! the crawl is done: every admitted request has been completed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use reqwest::Client;
use texting_robots::Robot;
use tokio::sync::mpsc::UnboundedSender;
use url::Url;

mod control;
mod polite;
mod remote;

pub use control::{FrontierView, Inspect, Steer};
pub use remote::SharedFrontier;

use super::frontier::{Admission, Frontier, Next};
use super::messages::{CrawlRequest, Event};
use super::recrawl::Revisits;
use super::robots;
use super::urls::{self, Fingerprint, FingerprintBuildHasher};
use crate::bus::{Queue, Topic};
use crate::observe::{ErrorKind, Stats};
use crate::state::{Batch, PendingRequest, StateStore};

/// Seeds the crawl: URLs at depth 0.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Seed(pub Vec<Url>);

/// A fetcher is done with a request's HTTP exchange: its host has a free slot.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FetchFinished {
    /// The request.
    pub request: Arc<CrawlRequest>,
}

/// A request is fully processed. Its links (or its redirect target) are offered first, so
/// the crawl can never look finished while work is still being discovered.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Completed {
    /// The request that was processed.
    pub request: Arc<CrawlRequest>,
    /// Links found on the page, or the redirect target.
    pub links: Vec<Url>,
    /// Whether `links` is a redirect target (same depth, chain extended).
    pub redirect: bool,
    /// Whether the page's items went to the sinks: then it is durably done only when the
    /// sinks acknowledge it ([`Durable`]).
    pub to_sinks: bool,
}

/// A sink has durably written the items of these pages: everything up to `position`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Durable {
    /// The sink's name (its key in the state store).
    pub sink: String,
    /// Its position (bytes) after the flush; `None` for sinks without one.
    pub position: Option<u64>,
    /// The pages whose items it wrote since its last report.
    pub pages: Vec<Fingerprint>,
}

/// A sink failed for good (it writes nothing more): the pages waiting for it will never be
/// durable. With a shared frontier their leases go back to the broker at once, for the
/// other processes (or the next run).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SinkFailed {
    /// The sink's name.
    pub sink: String,
}

/// A request (or its page) was dead-lettered: it counts as done.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct DeadLettered {
    /// The request.
    pub request: Arc<CrawlRequest>,
    /// Why (the actor and its last panic, or the last error).
    pub reason: String,
}

/// Queue again the requests a previous run admitted and did not finish, with its seen-set,
/// read from the state store (`--state-dir`) one at a time.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Restore;

/// Commit the state now (at the end of a run); answers once it is durable.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct Checkpoint;

/// Crawl again: the seen-set is forgotten and the seeds, with every page of the last crawl
/// (conditionally: unchanged pages answer 304), are queued again. Skipped while a crawl is
/// still in progress.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Reseed;

/// Stop handing out requests; finish when what is in flight has completed (Ctrl-C).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Drain;

#[derive(Message)]
#[rtype(result = "()")]
struct RobotsLoaded {
    host: Arc<str>,
    robot: Option<Robot>,
}

/// Everything the scheduler is built from; kept so a restart rebuilds nothing it must keep.
pub struct SchedulerParts {
    /// The frontier.
    pub frontier: Frontier,
    /// Where requests go.
    pub requests: Queue<CrawlRequest>,
    /// Where notable events go.
    pub events: Topic<Event>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Client for robots.txt.
    pub client: Client,
    /// User-Agent, for robots.txt groups.
    pub user_agent: String,
    /// Told each time the crawl becomes idle: done, or drained.
    pub done: UnboundedSender<()>,
    /// The seeds, for reseeding.
    pub seeds: Vec<Url>,
    /// The pages to revisit on a reseed.
    pub revisits: Option<Arc<Revisits>>,
    /// The durable state (`--state-dir`).
    pub store: Option<Arc<StateStore>>,
    /// Sinks that report positions; a page is durably done when all of them have it.
    pub durable_sinks: u32,
    /// A frontier shared with other processes through a broker (`frontier.backend: redis`,
    /// `kafka`, ...), behind the broker seam ([`crate::crawl::shared::SharedStore`]).
    pub shared: Option<SharedFrontier>,
}

/// The frontier's actor.
pub struct Scheduler {
    frontier: Frontier,
    requests: Queue<CrawlRequest>,
    events: Topic<Event>,
    stats: Arc<Stats>,
    client: Client,
    user_agent: String,
    done: UnboundedSender<()>,
    /// `done` was told of the current idle state already.
    idle_reported: bool,
    seeds: Vec<Url>,
    revisits: Option<Arc<Revisits>>,
    /// Admitted and not yet completed (queued here, in the requests queue, or in flight).
    outstanding: u64,
    /// Handed to the requests queue and not yet completed, with whether its HTTP exchange
    /// has finished. A request given back by a restarted fetcher is fetched again; keying
    /// by fingerprint keeps its second report from being counted twice.
    in_progress: HashMap<Fingerprint, bool, FingerprintBuildHasher>,
    seeded: bool,
    draining: bool,
    wake_at: Option<Instant>,
    store: Option<Arc<StateStore>>,
    durable_sinks: u32,
    /// Changes not yet committed to the store.
    batch: Batch,
    /// The store's first failed commit: the run stops and fails, and the store keeps the
    /// last commit that succeeded.
    store_error: Option<String>,
    /// Pages sent to the sinks, with the acknowledgements still missing.
    unacked_pages: HashMap<Fingerprint, u32, FingerprintBuildHasher>,
    /// With a shared frontier: its state.
    remote: Option<remote::Remote>,
    /// Paused by remote control: no request is handed out.
    paused: bool,
    /// Dead-lettered requests, for a requeue by remote control.
    dead: Vec<Arc<CrawlRequest>>,
}

impl Scheduler {
    /// A scheduler over `parts`.
    pub fn new(parts: SchedulerParts) -> Self {
        Self {
            frontier: parts.frontier,
            requests: parts.requests,
            events: parts.events,
            stats: parts.stats,
            client: parts.client,
            user_agent: parts.user_agent,
            done: parts.done,
            idle_reported: false,
            seeds: parts.seeds,
            revisits: parts.revisits,
            outstanding: 0,
            in_progress: HashMap::default(),
            seeded: false,
            draining: false,
            wake_at: None,
            store: parts.store,
            durable_sinks: parts.durable_sinks,
            batch: Batch::default(),
            store_error: None,
            unacked_pages: HashMap::default(),
            remote: parts.shared.map(remote::Remote::new),
            paused: false,
            dead: Vec::new(),
        }
    }

    /// Commits what changed since the last commit. After a failed commit nothing more is
    /// committed: the store keeps a consistent earlier state, the one a resume starts from.
    fn commit(&mut self) -> Result<(), String> {
        if let Some(e) = &self.store_error {
            return Err(e.clone());
        }
        let Some(store) = &self.store else { return Ok(()) };
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        store.commit(&batch).map_err(|e| e.to_string())
    }

    /// Commits; a failure stops the crawl (drains it), and the run ends with the error.
    fn save(&mut self, ctx: &mut Context<Self>) {
        if self.store_error.is_some() {
            return;
        }
        if let Err(e) = self.commit() {
            tracing::error!("state store: {e}: stopping the crawl (a resume starts from the last commit)");
            self.store_error = Some(e);
            self.draining = true;
            self.idle_reported = false;
            self.pump(ctx);
        }
    }

    /// A request is durably done: it leaves the store's pending set.
    fn durably_done(&mut self, fingerprint: Fingerprint) {
        if self.store.is_some() {
            self.batch.done.push(fingerprint);
        }
    }

    /// Forgets an in-flight request that will never complete normally.
    fn finish_in_progress(&mut self, request: &CrawlRequest) -> bool {
        match self.in_progress.remove(&request.fingerprint) {
            None => false,
            Some(fetched) => {
                if !fetched {
                    self.frontier.finished(&request.host, request.queue);
                }
                self.outstanding = self.outstanding.saturating_sub(1);
                true
            }
        }
    }

    /// Offers a link to the frontier; true when it was queued.
    fn offer(&mut self, url: Url, depth: u32, chain: Vec<Fingerprint>, ctx: &mut Context<Self>) -> bool {
        if self.remote.is_some() {
            return match self.frontier.screen(&url, depth, &chain) {
                Ok(fingerprint) => {
                    self.remote_admit(fingerprint, &url, depth, &chain);
                    true
                }
                Err(refused) => {
                    self.refused(refused, &url);
                    false
                }
            };
        }
        let record = self.store.is_some().then(|| PendingRequest {
            url: url.to_string(),
            depth,
            redirect_chain: chain.iter().map(|f| f.0).collect(),
        });
        match self.frontier.admit(&url, depth, chain) {
            Admission::Queued { fetch_robots } => {
                self.outstanding += 1;
                self.idle_reported = false;
                if let Some(record) = record {
                    self.batch.admitted.push((urls::fingerprint(&url), record));
                }
                if let Some(host) = fetch_robots {
                    self.fetch_robots(host, url, ctx);
                }
                return true;
            }
            refused => self.refused(refused, &url),
        }
        false
    }

    /// Counts a link the frontier did not queue.
    fn refused(&self, admission: Admission, url: &Url) {
        let stats = &self.stats;
        match admission {
            Admission::Queued { .. } => {}
            Admission::Duplicate => Stats::incr(&stats.duplicates_skipped),
            Admission::TooDeep => Stats::incr(&stats.too_deep),
            Admission::OutOfScope => Stats::incr(&stats.out_of_scope),
            Admission::RobotsBlocked => self.robots_blocked(url),
            Admission::RedirectLoop => {
                self.failed(url, ErrorKind::RedirectLoop, "redirect leads back into its own chain")
            }
            Admission::TooManyRedirects => {
                self.failed(url, ErrorKind::TooManyRedirects, "too many redirects")
            }
        }
    }

    fn failed(&self, url: &Url, kind: ErrorKind, detail: &str) {
        self.stats.failed(kind, &format!("{url}: {detail}"));
        self.events.publish_now(Event::PageFailed {
            url: url.to_string(),
            kind: kind.to_string(),
            detail: detail.into(),
        });
    }

    fn robots_blocked(&self, url: &Url) {
        Stats::incr(&self.stats.robots_blocked);
        self.events.publish_now(Event::RobotsBlocked { url: url.to_string() });
    }

    fn fetch_robots(&mut self, host: Arc<str>, url: Url, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let agent = self.user_agent.clone();
        let origins = self.frontier.scope().origins().clone();
        ctx.spawn(
            async move { robots::load(&client, &url, &agent, &origins).await }
                .into_actor(self)
                .map(move |robot, _, ctx| ctx.notify(RobotsLoaded { host, robot })),
        );
    }

    /// Moves ready requests into the `requests` queue while it has room.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if !self.draining && !self.paused {
            let now = Instant::now();
            while self.requests.room() > self.gated() {
                match self.frontier.next(now) {
                    Next::Request(request) => {
                        // With politeness shared through the broker, it waits for a permit.
                        let Some(request) = self.gate_take(request) else { continue };
                        if !self.publish(request) {
                            break;
                        }
                    }
                    Next::WaitUntil(at) => {
                        self.wake_at_instant(at, ctx);
                        break;
                    }
                    Next::Idle => break,
                }
            }
        }
        self.count_lost();
        self.stats.queued.store(self.frontier.queued() as u64, Ordering::Relaxed);
        self.stats.in_flight.store(self.in_progress.len() as u64, Ordering::Relaxed);
        if self.frontier.routing().is_routed() {
            self.stats.queue_gauges(&self.frontier.queue_views());
        }
        if self.remote.is_some() {
            self.gate_ask(ctx);
            self.remote_counters();
            if self.paused && !self.draining {
                return;
            }
            if !self.draining {
                self.remote_refill(ctx);
                self.remote_poll(ctx);
                return;
            }
        }
        self.check_done();
    }

    /// Hands a request to the fetchers; `false` when the `requests` queue refused it.
    fn publish(&mut self, request: CrawlRequest) -> bool {
        let fingerprint = request.fingerprint;
        if let Err(refused) = self.requests.try_publish(request, 0) {
            // Only a closed queue refuses here (room was checked).
            tracing::debug!(url = %refused.message.url, "requests queue refused: {}", refused.kind);
            self.gate_finished(&fingerprint);
            return false;
        }
        self.in_progress.insert(fingerprint, false);
        true
    }

    /// Requests the frontier could not read back from its spill files leave the crawl as
    /// failed (with `--state-dir` they stay pending in the store, for a resume).
    fn count_lost(&mut self) {
        let Some(lost) = self.frontier.take_lost() else { return };
        tracing::error!(
            count = lost.count,
            "queued requests lost: their spill file could not be read: {}",
            lost.error
        );
        for _ in 0..lost.count {
            self.stats.failed(
                ErrorKind::Other,
                &format!("a spilled request could not be read back: {}", lost.error),
            );
        }
        self.outstanding = self.outstanding.saturating_sub(lost.count as u64);
    }

    fn wake_at_instant(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if self.wake_at.is_some_and(|w| w <= at) {
            return;
        }
        self.wake_at = Some(at);
        ctx.run_later(at.saturating_duration_since(Instant::now()), |act, ctx| {
            act.wake_at = None;
            act.pump(ctx);
        });
    }

    fn check_done(&mut self) {
        let finished = if self.draining {
            self.in_progress.is_empty() && self.remote.as_ref().is_none_or(|r| r.idle_for_drain())
        } else {
            self.seeded && self.outstanding == 0
        };
        if finished {
            self.report_idle();
        }
    }

    /// Tells the runtime the crawl is idle (done, or drained), once per idle period.
    fn report_idle(&mut self) {
        if !self.idle_reported {
            self.idle_reported = true;
            let _ = self.done.send(());
        }
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Many fetchers and parsers report here; never make them wait on a full mailbox.
        ctx.set_mailbox_capacity(usize::MAX >> 4);
        if self.remote.is_some() {
            self.remote_started(ctx);
        }
        if self.store.is_some() {
            ctx.run_interval(COMMIT_EVERY, |act, ctx| act.save(ctx));
        }
    }
}

/// How often admitted requests are committed to the state store.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The frontier survives a scheduler restart: it is the crawl's memory. Timers and robots
/// fetches in progress are cancelled by the restart, so they are started again.
impl Supervised for Scheduler {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.wake_at = None;
        self.frontier.refetch_robots().into_iter().for_each(|(host, url)| self.fetch_robots(host, url, ctx));
        ctx.notify(Wake);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Wake;

impl Handler<Wake> for Scheduler {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.pump(ctx);
    }
}

impl Handler<Seed> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: Seed, ctx: &mut Context<Self>) {
        self.seeded = true;
        for url in msg.0 {
            self.offer(url, 0, Vec::new(), ctx);
        }
        if self.remote.is_some() {
            self.remote_flush(None, ctx);
        }
        // The seeds and the mark that this state directory's run has started go in one
        // transaction: a run killed before it resumes as a fresh one.
        self.batch.mark_started = true;
        self.save(ctx);
        self.pump(ctx);
    }
}

impl Handler<FetchFinished> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: FetchFinished, ctx: &mut Context<Self>) {
        self.gate_finished(&msg.request.fingerprint);
        if let Some(fetched) = self.in_progress.get_mut(&msg.request.fingerprint) {
            if !std::mem::replace(fetched, true) {
                self.frontier.finished(&msg.request.host, msg.request.queue);
            }
        }
        self.pump(ctx);
    }
}

impl Handler<Completed> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: Completed, ctx: &mut Context<Self>) {
        let parent = &msg.request;
        if !self.finish_in_progress(parent) {
            return; // reported already, by an earlier delivery of the same request
        }
        let (depth, chain) = if msg.redirect {
            let mut chain = parent.redirect_chain.clone();
            chain.push(parent.fingerprint);
            (parent.depth, chain)
        } else {
            (parent.depth.saturating_add(1), Vec::new())
        };
        for link in msg.links {
            // A redirect hop counts as followed when its target is queued (not when it is a
            // duplicate, out of scope or a loop).
            if self.offer(link, depth, chain.clone(), ctx) && msg.redirect {
                Stats::incr(&self.stats.redirects);
            }
        }
        if self.remote.is_some() {
            self.remote_complete(parent.fingerprint, msg.to_sinks, ctx);
        }
        if self.store.is_some() {
            if msg.to_sinks && self.durable_sinks > 0 {
                self.unacked_pages.insert(parent.fingerprint, self.durable_sinks);
            } else {
                self.durably_done(parent.fingerprint);
            }
        }
        self.pump(ctx);
    }
}

impl Handler<Durable> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: Durable, ctx: &mut Context<Self>) {
        if self.remote.is_some() {
            self.remote_durable(&msg.pages, ctx);
        }
        if self.store.is_none() {
            return;
        }
        for fp in msg.pages {
            if let Some(missing) = self.unacked_pages.get_mut(&fp) {
                *missing -= 1;
                if *missing == 0 {
                    self.unacked_pages.remove(&fp);
                    self.durably_done(fp);
                }
            }
        }
        if let Some(position) = msg.position {
            self.batch.sink_positions.push((msg.sink, position));
        }
        self.save(ctx);
    }
}

impl Handler<SinkFailed> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: SinkFailed, ctx: &mut Context<Self>) {
        if self.remote.is_some() {
            self.remote_sink_failed(&msg.sink, ctx);
        }
    }
}

impl Handler<DeadLettered> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: DeadLettered, ctx: &mut Context<Self>) {
        self.finish_in_progress(&msg.request);
        self.gate_finished(&msg.request.fingerprint);
        if self.remote.is_some() {
            self.remote_dead(&msg.request, msg.reason, ctx);
        }
        self.durably_done(msg.request.fingerprint);
        self.keep_dead(msg.request);
        self.pump(ctx);
    }
}

impl Handler<Restore> for Scheduler {
    type Result = ();
    fn handle(&mut self, _: Restore, ctx: &mut Context<Self>) {
        let Some(store) = self.store.clone() else { return };
        let seen = self.frontier.seen().clone();
        let mut pending = Vec::new();
        let read = store.for_each_seen(|fp| {
            seen.insert(fp);
        });
        let read = read.and_then(|()| {
            store.for_each_pending(|record| {
                let Ok(url) = Url::parse(&record.url) else {
                    tracing::warn!(url = %record.url, "state store: dropping an unparsable pending URL");
                    return;
                };
                let chain = record.redirect_chain.into_iter().map(Fingerprint).collect();
                if let Admission::Queued { fetch_robots } =
                    self.frontier.restore(url.clone(), record.depth, chain)
                {
                    self.outstanding += 1;
                    if let Some(host) = fetch_robots {
                        pending.push((host, url));
                    }
                }
            })
        });
        for (host, url) in pending {
            self.fetch_robots(host, url, ctx);
        }
        if let Err(e) = read {
            tracing::error!("state store: {e}: stopping the crawl (nothing is lost: the store is as it was)");
            self.store_error = Some(e.to_string());
            self.draining = true;
        }
    }
}

impl Handler<Checkpoint> for Scheduler {
    type Result = ResponseActFuture<Self, Result<(), String>>;
    fn handle(&mut self, _: Checkpoint, ctx: &mut Context<Self>) -> Self::Result {
        let committed = self.commit();
        if self.remote.is_some() {
            // Whatever the drain cut off goes back to the other processes now.
            self.remote_give_back(true, ctx);
        }
        // With a shared frontier, the last acks (sent when the sinks flushed) and releases
        // must reach the broker before the process ends, or other processes wait for them.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        Box::pin(wait_for_remote_ops(deadline).map(move |_, _, _| committed))
    }
}

/// Resolves when no admit/ack call is in flight (or at `deadline`).
fn wait_for_remote_ops(deadline: Instant) -> std::pin::Pin<Box<dyn ActorFuture<Scheduler, Output = ()>>> {
    Box::pin(fut::wrap_future::<_, Scheduler>(tokio::time::sleep(std::time::Duration::from_millis(5))).then(
        move |_, act, _| -> std::pin::Pin<Box<dyn ActorFuture<Scheduler, Output = ()>>> {
            if act.remote.as_ref().is_some_and(|r| r.ops() > 0) && Instant::now() < deadline {
                wait_for_remote_ops(deadline)
            } else {
                Box::pin(fut::ready(()))
            }
        },
    ))
}

impl Handler<RobotsLoaded> for Scheduler {
    type Result = ();
    fn handle(&mut self, msg: RobotsLoaded, ctx: &mut Context<Self>) {
        for request in self.frontier.robots_loaded(&msg.host, msg.robot) {
            if self.remote.is_some() {
                self.remote_done(&request, ctx);
            }
            self.robots_blocked(&request.url);
            self.outstanding = self.outstanding.saturating_sub(1);
            self.durably_done(request.fingerprint);
        }
        self.pump(ctx);
    }
}

impl Handler<Reseed> for Scheduler {
    type Result = ();
    fn handle(&mut self, _: Reseed, ctx: &mut Context<Self>) {
        if self.draining {
            return;
        }
        if self.outstanding > 0 {
            tracing::info!(outstanding = self.outstanding, "reseed skipped: the last crawl is still running");
            return;
        }
        if self.remote.is_some() {
            // Once per tick across the processes (the clock claimed the firing).
            return self.remote_reseed(ctx);
        }
        self.frontier.forget_seen();
        self.reseed_offer(ctx);
    }
}

impl Scheduler {
    /// Offers the seeds and the pages to revisit again, after what was seen was forgotten.
    pub(super) fn reseed_offer(&mut self, ctx: &mut Context<Self>) {
        let revisits: Vec<(Url, u32)> = match &self.revisits {
            Some(r) => r.iter().map(|e| (e.url.clone(), e.depth)).collect(),
            None => Vec::new(),
        };
        tracing::info!(seeds = self.seeds.len(), revisits = revisits.len(), "reseeding");
        for url in self.seeds.clone() {
            self.offer(url, 0, Vec::new(), ctx);
        }
        for (url, depth) in revisits {
            self.offer(url, depth, Vec::new(), ctx);
        }
        if self.remote.is_some() {
            self.remote_flush(None, ctx);
        }
        self.pump(ctx);
    }
}

impl Handler<Drain> for Scheduler {
    type Result = ();
    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.draining = true;
        self.idle_reported = false;
        if self.remote.is_some() {
            self.remote_give_back(false, ctx);
        }
        self.pump(ctx);
    }
}
