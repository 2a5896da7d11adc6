//! The frontier: what has been seen, what may be fetched, and what to fetch next.
//!
//! Pure data, no I/O: the `Scheduler` actor feeds it links and
//! robots.txt answers and drains it into the `requests` queue. Requests wait in one queue per
//! host within each queue of the crawl's routing (lanes: `default`, and those of
//! `queues:`); the highest-priority queue with a request ready goes first, each within its
//! own cap and rate; within a queue hosts take turns (round robin), each within its
//! concurrency cap, its rate limit (governor, keyed by host) and its robots.txt
//! Crawl-delay, which hold across queues.
//!
//! Memory stays within `frontier.memory`: the seen-set is compact ([`SeenSet`], ~18 bytes a
//! URL) and, when it and the requests waiting in memory pass the budget, the backlogs with
//! the most waiting spill them to disk (a spill store, `crawl/spill.rs`) and read them back in order as their
//! turn comes (the backlog's order and every politeness rule are the same either way).

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use regex::RegexSet;
use texting_robots::Robot;
use url::Url;

use super::backlog;
pub use super::backlog::Lost;
use super::guard::AddressGuard;
use super::lanes::Lane;
use super::messages::CrawlRequest;
use super::routing::{QueueId, Routing, RoutingError};
pub use super::seen::SeenSet;
use super::spill::SpillStore;
use super::urls::{self, Fingerprint};
use crate::spec::{CrawlSpec, QueueOrder, RobotsPolicy};

/// The slowest `fetch.per_host.rate` there is: one request a day (a slower one is refused
/// by validation).
pub const MIN_RATE: f64 = 1.0 / 86_400.0;

/// The most redirect hops one request may follow.
pub const MAX_REDIRECTS: usize = 10;

/// Why a frontier cannot be built from a spec (validation reports both first, with their
/// positions).
#[derive(Debug, thiserror::Error)]
pub enum FrontierError {
    /// A `frontier.priorities` regex does not compile.
    #[error("bad frontier.priorities regex: {0}")]
    Priorities(#[from] regex::Error),
    /// `routes:` or the worker's queues are wrong.
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

/// What became of a link offered to the frontier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Queued; when `fetch_robots` is set, that host's robots.txt must be fetched first.
    Queued {
        /// The host (`host[:port]`) whose robots.txt is wanted.
        fetch_robots: Option<Arc<str>>,
    },
    /// Already seen.
    Duplicate,
    /// Deeper than `max_depth`.
    TooDeep,
    /// Outside the domains, include/exclude, a binary file, or past `max_pages`.
    OutOfScope,
    /// A redirect back into its own chain.
    RedirectLoop,
    /// A redirect chain longer than [`MAX_REDIRECTS`].
    TooManyRedirects,
    /// Disallowed by the host's robots.txt.
    RobotsBlocked,
}

/// What the frontier has to hand out now.
#[derive(Debug)]
pub enum Next {
    /// This request may be fetched now.
    Request(CrawlRequest),
    /// Nothing now; a host becomes ready at this instant.
    WaitUntil(Instant),
    /// Nothing is ready, and no host is waiting for time to pass.
    Idle,
}

/// Which origins a crawl may visit: hosts (the seeds' or `scope.domains`, with their
/// subdomains), ports, and addresses ([`AddressGuard`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Origins {
    domains: HashSet<String>,
    /// The domains are the seeds' hosts (the spec names none): start URLs add theirs.
    implicit: bool,
    ports: Ports,
    guard: AddressGuard,
}

/// The ports of a crawl's origins.
#[derive(Debug, Clone)]
enum Ports {
    /// `scope.ports` absent or empty: a URL on its scheme's default port, or on a port one
    /// of the seeds names.
    Seeds(HashSet<u16>),
    /// `scope.ports`: exactly these (a URL's port, or its scheme's default).
    Listed(HashSet<u16>),
}

impl Origins {
    /// Whether `url` is http(s) on an allowed host, port and address.
    pub fn allows(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let host_ok = url.host_str().is_some_and(|h| {
            self.domains.contains(h)
                || self.domains.iter().any(|d| {
                    h.len() > d.len()
                        && h.ends_with(d.as_str())
                        && h.as_bytes()[h.len() - d.len() - 1] == b'.'
                })
        });
        let port_ok = match &self.ports {
            Ports::Seeds(ports) => url.port().is_none_or(|p| ports.contains(&p)),
            Ports::Listed(ports) => url.port_or_known_default().is_some_and(|p| ports.contains(&p)),
        };
        let address_ok = self.guard.allows_url(url);
        if host_ok && port_ok && !address_ok {
            tracing::debug!(%url, "not requested: a non-public address in a crawl of public hosts");
        }
        host_ok && port_ok && address_ok
    }

    /// The crawl's address guard (also the HTTP client's DNS resolver).
    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }
}

/// The compiled `scope:` of a spec.
#[derive(Debug)]
pub struct Scope {
    origins: Origins,
    include: Option<RegexSet>,
    exclude: Option<RegexSet>,
    max_depth: u32,
    max_pages: u64,
}

impl Scope {
    /// Compiles the scope; `seeds` give the domains when the spec names none, and the
    /// ports when it names no `scope.ports`.
    pub fn new(spec: &CrawlSpec, seeds: &[Url]) -> Result<Self, regex::Error> {
        Self::with_guard(spec, seeds, AddressGuard::new(seeds, spec.scope.allow_private))
    }

    /// [`Scope::new`] with a given address guard (one with resolver overrides, in tests).
    pub fn with_guard(spec: &CrawlSpec, seeds: &[Url], guard: AddressGuard) -> Result<Self, regex::Error> {
        let domains: HashSet<String> = if spec.scope.domains.is_empty() {
            seeds.iter().filter_map(|u| u.host_str().map(str::to_ascii_lowercase)).collect()
        } else {
            spec.scope.domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect()
        };
        let ports = if spec.scope.ports.is_empty() {
            Ports::Seeds(seeds.iter().filter_map(Url::port).collect())
        } else {
            Ports::Listed(spec.scope.ports.iter().copied().collect())
        };
        let set = |v: &Vec<String>| -> Result<Option<RegexSet>, regex::Error> {
            if v.is_empty() {
                Ok(None)
            } else {
                RegexSet::new(v).map(Some)
            }
        };
        Ok(Self {
            origins: Origins { domains, implicit: spec.scope.domains.is_empty(), ports, guard },
            include: set(&spec.scope.include)?,
            exclude: set(&spec.scope.exclude)?,
            max_depth: spec.scope.max_depth,
            max_pages: spec.scope.max_pages,
        })
    }

    /// Whether a URL may be crawled at all (scheme, origin, include/exclude, binary files).
    pub fn allows(&self, url: &Url) -> bool {
        !urls::has_binary_extension(url)
            && self.origins.allows(url)
            && self.include.as_ref().is_none_or(|re| re.is_match(url.as_str()))
            && !self.exclude.as_ref().is_some_and(|re| re.is_match(url.as_str()))
    }

    /// The origins part of the scope (for robots.txt redirects, and the address guard).
    pub fn origins(&self) -> &Origins {
        &self.origins
    }
}

#[derive(Debug)]
enum RobotsState {
    /// Not asked for yet (or robots.txt is ignored).
    Unknown,
    /// Being fetched; requests wait.
    Fetching,
    /// Known; `None` allows everything.
    Known(Option<Arc<Robot>>),
}

/// What holds for a host across every queue: politeness and robots.txt.
#[derive(Debug)]
struct HostQueue {
    /// Requests waiting, in every queue.
    queued: usize,
    in_flight: u32,
    robots: RobotsState,
    /// While robots.txt is fetched: a URL of the host (to fetch it again after a restart).
    robots_url: Option<Url>,
    crawl_delay: Option<Duration>,
    not_before: Option<Instant>,
}

/// What one queue's turn came to.
enum Step {
    Request(CrawlRequest),
    Wait(Instant),
    /// The whole crawl is at its rate: nothing from any queue before then.
    CrawlWait(Instant),
    Idle,
}

/// One queue of the frontier as the dashboard and the summary show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Requests waiting.
    pub queued: usize,
    /// Requests handed out and not finished.
    pub in_flight: u32,
    /// The most ever in flight at once.
    pub max_in_flight: u32,
}

/// The frontier of one crawl.
pub struct Frontier {
    scope: Scope,
    seen: Arc<SeenSet>,
    /// `frontier.memory`: the seen-set and the requests in memory.
    memory: usize,
    /// [`backlog::request_bytes`] of the requests in memory.
    backlog_bytes: usize,
    /// Where requests spill; made at the first spill unless a directory was given.
    spill: Option<SpillStore>,
    spill_dir: Option<PathBuf>,
    /// After a failed spill: no new try before the backlog reaches this many bytes.
    spill_retry_at: usize,
    /// Whether the first spill was logged.
    spilled_once: bool,
    /// Requests that could not be read back from the spill files, not yet reported.
    lost: Option<Lost>,
    hosts: HashMap<Arc<str>, HostQueue>,
    /// One per queue of `routing`, by [`QueueId`].
    lanes: Vec<Lane>,
    /// The lanes by priority, highest first: each group's lanes (of one priority) take
    /// turns, from the group's turn.
    groups: Vec<(Vec<usize>, usize)>,
    routing: Arc<Routing>,
    per_host: u32,
    limiter: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    robots: RobotsPolicy,
    /// With `order: priority`: the rules' regexes and their priorities.
    priorities: Option<(RegexSet, Vec<i32>)>,
    admitted: u64,
    queued: usize,
    /// The rate every host gets unless it has its own (requests/s; 0: no limit).
    rate: f64,
    /// Hosts with a rate of their own (set by remote control).
    host_rates: HashMap<Arc<str>, (f64, Option<DefaultDirectRateLimiter>)>,
    /// Hosts paused by remote control.
    paused: HashSet<Arc<str>>,
    /// The rate of every request, whatever its host (set by remote control; 0: none).
    crawl_rate: (f64, Option<DefaultDirectRateLimiter>),
}

/// One host as the dashboard shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostView {
    /// `host[:port]`.
    pub host: String,
    /// Requests waiting.
    pub queued: usize,
    /// Requests handed out and not finished.
    pub in_flight: u32,
    /// Paused by remote control.
    pub paused: bool,
    /// Its request rate (requests/s; 0: no limit).
    pub rate: f64,
    /// robots.txt's Crawl-delay, in seconds.
    pub crawl_delay_s: Option<f64>,
    /// `unknown`, `fetching` or `known`.
    pub robots: &'static str,
}

/// A rate limiter for `rate` requests per second (`None`: no limit).
///
/// Whatever the rate, no panic: one below [`MIN_RATE`] (refused by validation, but the
/// builder takes any spec) waits a day between requests.
pub(super) fn quota(rate: f64) -> Option<Quota> {
    (rate > 0.0 && rate.is_finite())
        .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / rate.max(MIN_RATE))))
        .flatten()
        .map(|q| q.allow_burst(NonZeroU32::MIN))
}

impl Frontier {
    /// An empty frontier for a spec, with its routing (every queue consumed); fails on a
    /// bad `frontier.priorities` regex or bad `routes:`.
    pub fn new(spec: &CrawlSpec, scope: Scope) -> Result<Self, FrontierError> {
        Self::with_routing(spec, scope, Arc::new(Routing::new(spec)?))
    }

    /// An empty frontier for a spec with this routing (a worker's: `--queues`).
    pub fn with_routing(
        spec: &CrawlSpec,
        scope: Scope,
        routing: Arc<Routing>,
    ) -> Result<Self, FrontierError> {
        let rate = spec.fetch.per_host.rate;
        let limiter = quota(rate).map(RateLimiter::dashmap);
        let rules = &spec.frontier.priorities;
        let priorities = if spec.frontier.order == QueueOrder::Priority && !rules.is_empty() {
            let set = RegexSet::new(rules.iter().map(|r| r.matches.as_str()))?;
            Some((set, rules.iter().map(|r| r.priority).collect()))
        } else {
            None
        };
        Ok(Self {
            scope,
            seen: Arc::new(SeenSet::new()),
            memory: usize::try_from(spec.frontier.memory.0).unwrap_or(usize::MAX),
            backlog_bytes: 0,
            spill: None,
            spill_dir: None,
            spill_retry_at: 0,
            spilled_once: false,
            lost: None,
            hosts: HashMap::new(),
            lanes: routing.queues().iter().map(|q| Lane::new(q, spec.frontier.order)).collect(),
            groups: priority_groups(&routing),
            routing,
            per_host: spec.fetch.per_host.concurrency.max(1),
            limiter,
            robots: spec.fetch.robots_txt,
            priorities,
            admitted: 0,
            queued: 0,
            rate,
            host_rates: HashMap::new(),
            paused: HashSet::new(),
            crawl_rate: (0.0, None),
        })
    }

    /// The crawl's routing: its queues, and which this process consumes.
    pub fn routing(&self) -> &Arc<Routing> {
        &self.routing
    }

    /// Each queue: waiting, in flight, the most in flight at once.
    pub fn queue_views(&self) -> Vec<QueueView> {
        self.lanes
            .iter()
            .zip(self.routing.queues())
            .map(|(lane, q)| QueueView {
                name: q.name.to_string(),
                queued: lane.queued,
                in_flight: lane.in_flight,
                max_in_flight: lane.max_in_flight,
            })
            .collect()
    }

    /// Requests waiting in one queue, and in flight from it.
    pub fn queue_load(&self, queue: QueueId) -> (usize, u32) {
        self.lanes.get(queue.index()).map_or((0, 0), |l| (l.queued, l.in_flight))
    }

    /// Sets the rate of every request, whatever its host (requests/s; 0: no limit).
    pub fn set_crawl_rate(&mut self, rate: f64) {
        self.crawl_rate = (rate, quota(rate).map(RateLimiter::direct));
    }

    /// The rate of every request (0: no limit).
    pub fn crawl_rate(&self) -> f64 {
        self.crawl_rate.0
    }

    /// Hands out no request for `host` until [`Frontier::resume_host`].
    pub fn pause_host(&mut self, host: &str) {
        self.paused.insert(host.into());
    }

    /// Hands out requests for `host` again.
    pub fn resume_host(&mut self, host: &str) {
        if let Some(host) = self.paused.take(host) {
            self.schedule(&host);
        }
    }

    /// Sets the rate (requests/s, 0: no limit) of `host`, or of every host without a rate
    /// of its own.
    pub fn set_rate(&mut self, host: Option<&str>, rate: f64) {
        match host {
            Some(host) => {
                let host: Arc<str> = host.into();
                self.host_rates.insert(host.clone(), (rate, quota(rate).map(RateLimiter::direct)));
                self.schedule(&host);
            }
            None => {
                self.rate = rate;
                self.limiter = quota(rate).map(RateLimiter::dashmap);
            }
        }
    }

    /// A host's politeness for a crawl shared by many processes: the least time between
    /// two of its requests (the larger of `1 / rate` and robots.txt's Crawl-delay; zero for
    /// none) and its `per_host.concurrency`.
    pub fn politeness_of(&self, host: &Arc<str>) -> (Duration, u32) {
        let rate = self.host_rates.get(host).map_or(self.rate, |(r, _)| *r);
        let by_rate = if rate > 0.0 && rate.is_finite() {
            Duration::from_secs_f64(1.0 / rate.max(MIN_RATE))
        } else {
            Duration::ZERO
        };
        let delay = self.hosts.get(host).and_then(|hq| hq.crawl_delay).unwrap_or_default();
        (by_rate.max(delay), self.per_host)
    }

    /// The rate every host gets unless it has its own.
    pub fn default_rate(&self) -> f64 {
        self.rate
    }

    /// Hosts the frontier knows.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The busiest `limit` hosts (most in flight, then most queued, then by name).
    pub fn hosts_view(&self, limit: usize) -> Vec<HostView> {
        let mut hosts: Vec<HostView> = self
            .hosts
            .iter()
            .map(|(host, hq)| HostView {
                host: host.to_string(),
                queued: hq.queued,
                in_flight: hq.in_flight,
                paused: self.paused.contains(host),
                rate: self.host_rates.get(host).map_or(self.rate, |(r, _)| *r),
                crawl_delay_s: hq.crawl_delay.map(|d| d.as_secs_f64()),
                robots: match hq.robots {
                    RobotsState::Unknown => "unknown",
                    RobotsState::Fetching => "fetching",
                    RobotsState::Known(_) => "known",
                },
            })
            .collect();
        hosts.sort_by(|a, b| {
            (b.in_flight, b.queued).cmp(&(a.in_flight, a.queued)).then_with(|| a.host.cmp(&b.host))
        });
        hosts.truncate(limit);
        hosts
    }

    /// The compiled scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The shared seen-set (fingerprints of every URL offered and not dropped for depth).
    pub fn seen(&self) -> &Arc<SeenSet> {
        &self.seen
    }

    /// Spills into `dir` (the run's own: what is there is removed now, and the directory
    /// when the frontier is dropped) instead of a new directory in the system's temp dir.
    pub fn set_spill_dir(&mut self, dir: PathBuf) {
        if self.spilled_bytes() > 0 {
            tracing::warn!(dir = %dir.display(), "the frontier has spilled already: it keeps its spill directory");
            return;
        }
        self.spill = Some(SpillStore::new(dir.clone()));
        self.spill_dir = Some(dir);
    }

    /// The bytes the frontier takes: its seen-set and the requests waiting in memory.
    pub fn memory_bytes(&self) -> usize {
        self.seen.memory_bytes() + self.backlog_bytes
    }

    /// Bytes of waiting requests spilled to disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.spill.as_ref().map_or(0, SpillStore::bytes)
    }

    /// Requests lost since the last call: spilled, and unreadable when read back (a
    /// damaged or removed spill file). With `--state-dir` they stay pending in the state
    /// store, and a resume fetches them.
    pub fn take_lost(&mut self) -> Option<Lost> {
        self.lost.take()
    }

    /// Requests of `host` in lane `li` were lost: they leave every count of waiting work.
    fn note_lost(&mut self, li: usize, host: &Arc<str>, lost: Option<Lost>) {
        let Some(lost) = lost else { return };
        self.queued -= lost.count;
        self.lanes[li].queued -= lost.count;
        if let Some(hq) = self.hosts.get_mut(host) {
            hq.queued -= lost.count;
        }
        match &mut self.lost {
            Some(l) => l.count += lost.count,
            None => self.lost = Some(lost),
        }
    }

    /// A start URL arrived (from a broker): when the scope's domains are the seeds' hosts,
    /// its host joins them; its port joins the seeds' ports, and the address guard counts
    /// it as a seed.
    pub fn add_start(&mut self, url: &Url) {
        let origins = &mut self.scope.origins;
        if let (true, Some(host)) = (origins.implicit, url.host_str()) {
            origins.domains.insert(host.to_ascii_lowercase());
        }
        if let (Ports::Seeds(ports), Some(port)) = (&mut origins.ports, url.port()) {
            ports.insert(port);
        }
        origins.guard.add_seed(url);
    }

    /// Forgets what was seen (and the `max_pages` count): the start of a re-crawl.
    pub fn forget_seen(&mut self) {
        self.seen.clear();
        self.release_spill_if_idle();
        self.admitted = 0;
    }

    /// Requests waiting in the frontier.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Offers a normalised link at `depth`, reached through `redirect_chain`.
    pub fn admit(&mut self, url: &Url, depth: u32, redirect_chain: Vec<Fingerprint>) -> Admission {
        match self.screen(url, depth, &redirect_chain) {
            Ok(fingerprint) => {
                let queue = self.routing.route(url);
                self.enqueue(url.clone(), fingerprint, depth, redirect_chain, queue)
            }
            Err(admission) => admission,
        }
    }

    /// The checks of [`Frontier::admit`] without queueing (for a frontier shared through a
    /// broker, where the broker queues): the fingerprint of a URL that is new here and in
    /// scope, now marked seen; or why not.
    pub fn screen(
        &mut self,
        url: &Url,
        depth: u32,
        redirect_chain: &[Fingerprint],
    ) -> Result<Fingerprint, Admission> {
        if depth > self.scope.max_depth {
            return Err(Admission::TooDeep);
        }
        let fingerprint = urls::fingerprint(url);
        if redirect_chain.contains(&fingerprint) {
            return Err(Admission::RedirectLoop);
        }
        if redirect_chain.len() >= MAX_REDIRECTS {
            return Err(Admission::TooManyRedirects);
        }
        if !self.seen.insert(fingerprint) {
            return Err(Admission::Duplicate);
        }
        if !self.scope.allows(url) || (self.scope.max_pages > 0 && self.admitted >= self.scope.max_pages) {
            return Err(Admission::OutOfScope);
        }
        Ok(fingerprint)
    }

    /// Queues a request a previous run admitted and did not finish: no dedup or scope check
    /// (its fingerprint is already in the restored seen-set).
    pub fn restore(&mut self, url: Url, depth: u32, redirect_chain: Vec<Fingerprint>) -> Admission {
        let queue = self.routing.route(&url);
        self.restore_to(url, depth, redirect_chain, queue)
    }

    /// [`Frontier::restore`] into a given queue (a request leased from that queue of a
    /// shared frontier).
    pub fn restore_to(
        &mut self,
        url: Url,
        depth: u32,
        redirect_chain: Vec<Fingerprint>,
        queue: QueueId,
    ) -> Admission {
        let fingerprint = urls::fingerprint(&url);
        self.seen.insert(fingerprint);
        self.enqueue(url, fingerprint, depth, redirect_chain, queue)
    }

    /// The queue a request for `url` goes to (the first route that matches).
    pub fn route(&self, url: &Url) -> QueueId {
        self.routing.route(url)
    }

    fn enqueue(
        &mut self,
        url: Url,
        fingerprint: Fingerprint,
        depth: u32,
        redirect_chain: Vec<Fingerprint>,
        queue: QueueId,
    ) -> Admission {
        let host: Arc<str> = urls::host_key(&url).into();
        let priority = self.priority_of(&url);
        let queue = if queue.index() < self.lanes.len() { queue } else { QueueId::DEFAULT };
        let request = CrawlRequest { url, fingerprint, host: host.clone(), depth, redirect_chain, queue };
        let obey = self.robots == RobotsPolicy::Obey;
        let hq = self.hosts.entry(host.clone()).or_insert_with(|| HostQueue {
            queued: 0,
            in_flight: 0,
            robots: if obey { RobotsState::Unknown } else { RobotsState::Known(None) },
            robots_url: None,
            crawl_delay: None,
            not_before: None,
        });
        if let RobotsState::Known(Some(robot)) = &hq.robots {
            if !robot.allowed(request.url.as_str()) {
                return Admission::RobotsBlocked;
            }
        }
        hq.queued += 1;
        self.backlog_bytes += backlog::request_bytes(&request);
        if matches!(hq.robots, RobotsState::Unknown) {
            hq.robots_url = Some(request.url.clone());
        }
        let lane = &mut self.lanes[queue.index()];
        lane.host(&host).pending.push(request, priority);
        lane.queued += 1;
        self.queued += 1;
        self.admitted += 1;
        let fetch_robots = match hq.robots {
            RobotsState::Unknown => {
                hq.robots = RobotsState::Fetching;
                Some(host)
            }
            RobotsState::Fetching => None,
            RobotsState::Known(_) => {
                self.schedule(&host);
                None
            }
        };
        self.keep_to_budget();
        Admission::Queued { fetch_robots }
    }

    /// robots.txt for `host` is known (`None`: allow everything). Returns the queued
    /// requests it disallows, which leave the frontier.
    pub fn robots_loaded(&mut self, host: &Arc<str>, robots: Option<Robot>) -> Vec<CrawlRequest> {
        if !self.hosts.contains_key(host) {
            return Vec::new();
        }
        let robots = robots.map(Arc::new);
        let mut blocked = Vec::new();
        if let Some(r) = &robots {
            for li in 0..self.lanes.len() {
                let lane = &mut self.lanes[li];
                let Some(hl) = lane.hosts.get_mut(host) else { continue };
                let before = hl.pending.memory_bytes();
                let (out, lost) =
                    hl.pending.remove_where(|req| !r.allowed(req.url.as_str()), self.spill.as_mut(), host);
                self.backlog_bytes = self.backlog_bytes + hl.pending.memory_bytes() - before;
                lane.queued -= out.len();
                self.queued -= out.len();
                if let Some(hq) = self.hosts.get_mut(host) {
                    hq.queued -= out.len();
                }
                blocked.extend(out);
                self.note_lost(li, host, lost);
            }
        }
        if let Some(hq) = self.hosts.get_mut(host) {
            if let Some(r) = &robots {
                hq.crawl_delay = r
                    .delay
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .map(|d| Duration::from_secs_f32(d.min(60.0)));
            }
            hq.robots = RobotsState::Known(robots);
            hq.robots_url = None;
        }
        self.schedule(host);
        blocked
    }

    /// Hosts whose robots.txt was being fetched, with a URL of each (to fetch it again after
    /// the scheduler restarted and lost the fetch in progress).
    pub fn refetch_robots(&self) -> Vec<(Arc<str>, Url)> {
        self.hosts
            .iter()
            .filter(|(_, hq)| matches!(hq.robots, RobotsState::Fetching))
            .filter_map(|(host, hq)| {
                let url = hq.robots_url.as_ref().or_else(|| {
                    self.lanes.iter().find_map(|l| l.hosts.get(host).and_then(|hl| hl.pending.any_url()))
                });
                url.map(|u| (host.clone(), u.clone()))
            })
            .collect()
    }

    /// A fetch for `host`, from `queue`, has finished: a slot is free.
    pub fn finished(&mut self, host: &Arc<str>, queue: QueueId) {
        if let Some(hq) = self.hosts.get_mut(host) {
            hq.in_flight = hq.in_flight.saturating_sub(1);
        }
        if let Some(lane) = self.lanes.get_mut(queue.index()) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
        self.schedule(host);
    }

    /// The next request that may be fetched now: from the highest-priority queue that has
    /// one ready (queues of one priority take turns).
    pub fn next(&mut self, now: Instant) -> Next {
        let mut earliest: Option<Instant> = None;
        for g in 0..self.groups.len() {
            let n = self.groups[g].0.len();
            for k in 0..n {
                let lane = self.groups[g].0[(self.groups[g].1 + k) % n];
                match self.next_in(lane, now) {
                    Step::Request(request) => {
                        self.groups[g].1 = (self.groups[g].1 + k + 1) % n;
                        return Next::Request(request);
                    }
                    Step::CrawlWait(at) => return Next::WaitUntil(at),
                    Step::Wait(at) => earliest = Some(earliest.map_or(at, |e| e.min(at))),
                    Step::Idle => {}
                }
            }
        }
        earliest.map_or(Next::Idle, Next::WaitUntil)
    }

    /// The next request of one queue: its hosts take turns, each within its politeness;
    /// then the queue's rate and the whole crawl's rate must allow it.
    fn next_in(&mut self, li: usize, now: Instant) -> Step {
        if let Err(at) = self.lanes[li].open(now) {
            return at.map_or(Step::Idle, Step::Wait);
        }
        for host in self.lanes[li].wake(now) {
            self.schedule_in(li, &host);
        }
        let lane = &mut self.lanes[li];
        while let Some(host) = lane.ready.pop_front() {
            let Some(hl) = lane.hosts.get_mut(&host) else { continue };
            hl.scheduled = false;
            let Some(hq) = self.hosts.get_mut(&host) else { continue };
            if hl.pending.is_empty()
                || hq.in_flight >= self.per_host
                || !matches!(hq.robots, RobotsState::Known(_))
                || (!self.paused.is_empty() && self.paused.contains(&host))
            {
                continue;
            }
            let mut not_before = hq.not_before.filter(|t| *t > now);
            if not_before.is_none() {
                let checked = match self.host_rates.get(&host) {
                    Some((_, limiter)) => limiter.as_ref().map(|l| l.check()),
                    None => self.limiter.as_ref().map(|l| l.check_key(&host)),
                };
                if let Some(Err(not_until)) = checked {
                    not_before = Some(now + not_until.wait_time_from(DefaultClock::default().now()));
                }
            }
            if let Some(at) = not_before {
                hl.scheduled = true;
                lane.waiting.push(Reverse((at, host)));
                continue;
            }
            // The host may go; the queue's rate, then the crawl's, must allow it too (when
            // they refuse, the host keeps its turn, and the token its own limiter gave is
            // spent: a host with a rate waits a little longer).
            if let Err(at) = Lane::take_token(&lane.limiter, &mut lane.not_before, now) {
                hl.scheduled = true;
                lane.ready.push_front(host);
                return Step::Wait(at);
            }
            if let Some(Err(not_until)) = self.crawl_rate.1.as_ref().map(|l| l.check()) {
                hl.scheduled = true;
                lane.ready.push_front(host);
                return Step::CrawlWait(now + not_until.wait_time_from(DefaultClock::default().now()));
            }
            let before = hl.pending.memory_bytes();
            let (request, lost) = hl.pending.pop(self.spill.as_mut(), &host);
            let after = hl.pending.memory_bytes();
            self.backlog_bytes = self.backlog_bytes + after - before;
            if request.is_some() {
                hq.in_flight += 1;
                hq.queued -= 1;
                hq.not_before = hq.crawl_delay.map(|d| now + d);
                lane.started();
                self.queued -= 1;
            }
            self.note_lost(li, &host, lost);
            self.schedule_in(li, &host);
            if after > before {
                self.keep_to_budget(); // spilled requests were read back
            }
            match request {
                Some(request) => return Step::Request(request),
                None => return self.next_in(li, now),
            }
        }
        lane.next_wake().map_or(Step::Idle, Step::Wait)
    }

    /// The priority of a URL: the first `frontier.priorities` rule that matches, else 0.
    pub fn priority_of(&self, url: &Url) -> i32 {
        match &self.priorities {
            Some((set, values)) => set.matches(url.as_str()).iter().next().map_or(0, |i| values[i]),
            None => 0,
        }
    }

    /// Puts a host in the round robin of every queue where it has work it may start.
    fn schedule(&mut self, host: &Arc<str>) {
        for li in 0..self.lanes.len() {
            self.schedule_in(li, host);
        }
    }

    /// Puts a host in one queue's round robin if it has work there it may start.
    fn schedule_in(&mut self, li: usize, host: &Arc<str>) {
        let Some(hq) = self.hosts.get(host) else { return };
        let Some(hl) = self.lanes[li].hosts.get_mut(host) else { return };
        if hl.scheduled
            || hl.pending.is_empty()
            || hq.in_flight >= self.per_host
            || !matches!(hq.robots, RobotsState::Known(_))
            || (!self.paused.is_empty() && self.paused.contains(host))
        {
            return;
        }
        hl.scheduled = true;
        self.lanes[li].ready.push_back(host.clone());
    }

    /// Spills waiting requests when the seen-set and the requests in memory are past
    /// `frontier.memory`: the backlogs (a host in one queue) with the most in memory first,
    /// each keeping the next [`KEEP_IN_MEMORY`] (then none, if that is not enough), down to
    /// half of what the requests may take (so spills come in large, rare writes). The
    /// seen-set is never spilled: when it alone takes the budget, the requests keep
    /// [`MIN_BACKLOG_SHARE`] of it.
    fn keep_to_budget(&mut self) {
        let allowance =
            self.memory.saturating_sub(self.seen.memory_bytes()).max(self.memory / MIN_BACKLOG_SHARE);
        if self.backlog_bytes <= allowance || self.backlog_bytes < self.spill_retry_at {
            return;
        }
        let target = allowance / 2;
        let store = self.spill.get_or_insert_with(|| SpillStore::new(temp_spill_dir()));
        if !self.spilled_once {
            self.spilled_once = true;
            tracing::info!(
                dir = %store.dir().display(),
                "frontier.memory ({} MiB) reached: waiting requests spill to disk",
                self.memory >> 20
            );
        }
        let mut by_size: Vec<(usize, usize, Arc<str>)> = Vec::new();
        for (li, lane) in self.lanes.iter().enumerate() {
            for (host, hl) in &lane.hosts {
                let bytes = hl.pending.memory_bytes();
                if bytes > 0 {
                    by_size.push((bytes, li, host.clone()));
                }
            }
        }
        by_size.sort_unstable_by_key(|(bytes, _, _)| std::cmp::Reverse(*bytes));
        for keep in [KEEP_IN_MEMORY, 0] {
            for (_, li, host) in &by_size {
                if self.backlog_bytes <= target {
                    return;
                }
                let Some(hl) = self.lanes[*li].hosts.get_mut(host) else { continue };
                let before = hl.pending.memory_bytes();
                let result = hl.pending.spill(store, keep);
                self.backlog_bytes = self.backlog_bytes + hl.pending.memory_bytes() - before;
                if let Err(e) = result {
                    tracing::warn!(
                        dir = %store.dir().display(),
                        "frontier.memory: could not spill waiting requests to disk ({e}); they stay in memory"
                    );
                    self.spill_retry_at = self.backlog_bytes + allowance / 2;
                    return;
                }
            }
        }
        self.spill_retry_at = 0;
    }

    /// Drops the spill files when no request waits (a re-crawl starts with none).
    fn release_spill_if_idle(&mut self) {
        if self.queued == 0 && self.spill_dir.is_none() {
            self.spill = None;
        }
    }
}

/// Requests a backlog keeps in memory when its others spill (its next few, ready to hand out).
pub const KEEP_IN_MEMORY: usize = 16;

/// When the seen-set takes all of `frontier.memory`, waiting requests may still take this
/// fraction of it (1/n) in memory.
pub const MIN_BACKLOG_SHARE: usize = 16;

/// A new spill directory of this process in the system's temp dir.
fn temp_spill_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("arachne-spill-{}-{n}", std::process::id()))
}

/// The queues' lanes grouped by priority, highest first.
fn priority_groups(routing: &Routing) -> Vec<(Vec<usize>, usize)> {
    let mut priorities: Vec<i32> = routing.queues().iter().map(|q| q.priority).collect();
    priorities.sort_unstable_by(|a, b| b.cmp(a));
    priorities.dedup();
    priorities
        .into_iter()
        .map(|p| {
            let lanes = routing.queues().iter().enumerate().filter(|(_, q)| q.priority == p).map(|(i, _)| i);
            (lanes.collect(), 0)
        })
        .collect()
}

impl std::fmt::Debug for Frontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontier").field("queued", &self.queued).field("hosts", &self.hosts.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::CrawlSpec;

    fn spec(yaml_tweak: impl FnOnce(&mut CrawlSpec)) -> CrawlSpec {
        let mut spec: CrawlSpec = serde_json::from_value(serde_json::json!({
            "name": "t", "seeds": ["http://a.test/"], "fetch": {"robots_txt": "ignore"}
        }))
        .expect("valid spec");
        yaml_tweak(&mut spec);
        spec
    }

    fn url(s: &str) -> Url {
        let mut u = Url::parse(s).expect("url");
        urls::normalize(&mut u);
        u
    }

    fn frontier(s: &CrawlSpec) -> Frontier {
        let seeds = vec![url("http://a.test/")];
        Frontier::new(s, Scope::new(s, &seeds).expect("scope")).expect("frontier")
    }

    #[test]
    fn dedup_scope_depth_and_redirects() {
        let s = spec(|s| {
            s.scope.max_depth = 2;
            s.scope.exclude = vec!["/private/".into()];
        });
        let mut f = frontier(&s);
        assert!(matches!(f.admit(&url("http://a.test/x"), 1, vec![]), Admission::Queued { .. }));
        assert_eq!(f.admit(&url("http://A.TEST/x#frag"), 1, vec![]), Admission::Duplicate);
        assert_eq!(f.admit(&url("http://a.test/y"), 3, vec![]), Admission::TooDeep);
        assert_eq!(f.admit(&url("http://b.test/"), 1, vec![]), Admission::OutOfScope);
        assert_eq!(f.admit(&url("http://a.test/private/1"), 1, vec![]), Admission::OutOfScope);
        assert_eq!(f.admit(&url("http://a.test/doc.pdf"), 1, vec![]), Admission::OutOfScope);
        assert!(matches!(f.admit(&url("http://sub.a.test/"), 1, vec![]), Admission::Queued { .. }));
        let a = urls::fingerprint(&url("http://a.test/loop"));
        assert_eq!(f.admit(&url("http://a.test/loop"), 1, vec![a]), Admission::RedirectLoop);
        assert_eq!(
            f.admit(&url("http://a.test/z"), 1, vec![Fingerprint(1); MAX_REDIRECTS]),
            Admission::TooManyRedirects
        );
    }

    #[test]
    fn per_host_cap_and_round_robin() {
        let s = spec(|s| {
            s.fetch.per_host.concurrency = 1;
            s.scope.domains = vec!["a.test".into(), "b.test".into()];
        });
        let mut f = frontier(&s);
        for u in ["http://a.test/1", "http://a.test/2", "http://b.test/1"] {
            f.admit(&url(u), 0, vec![]);
        }
        let now = Instant::now();
        let Next::Request(first) = f.next(now) else { panic!("a request") };
        let Next::Request(second) = f.next(now) else { panic!("a request") };
        assert_ne!(first.host, second.host, "hosts take turns");
        assert!(matches!(f.next(now), Next::Idle), "both hosts at their cap");
        f.finished(&first.host, first.queue);
        assert!(matches!(f.next(now), Next::Request(_)));
    }

    #[test]
    fn priority_rules_order_each_host() {
        let s = spec(|s| {
            s.frontier.order = QueueOrder::Priority;
            s.frontier.priorities =
                vec![crate::spec::PriorityRule { matches: "/item/".into(), priority: 10 }];
        });
        let mut f = frontier(&s);
        for u in ["http://a.test/list", "http://a.test/item/1", "http://a.test/list2", "http://a.test/item/2"]
        {
            f.admit(&url(u), 0, vec![]);
        }
        let mut order = Vec::new();
        while let Next::Request(r) = f.next(Instant::now()) {
            order.push(r.url.path().to_string());
            f.finished(&r.host, r.queue);
        }
        assert_eq!(order, ["/item/1", "/item/2", "/list", "/list2"]);
    }

    #[test]
    fn rate_limit_waits() {
        let s = spec(|s| s.fetch.per_host.rate = 2.0);
        let mut f = frontier(&s);
        f.admit(&url("http://a.test/1"), 0, vec![]);
        f.admit(&url("http://a.test/2"), 0, vec![]);
        let now = Instant::now();
        let Next::Request(r) = f.next(now) else { panic!("a request") };
        f.finished(&r.host, r.queue);
        match f.next(now) {
            Next::WaitUntil(at) => assert!(at > now && at <= now + Duration::from_millis(600)),
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    fn paused_hosts_and_rates_set_at_run_time() {
        let s = spec(|s| s.scope.domains = vec!["a.test".into(), "b.test".into()]);
        let mut f = frontier(&s);
        for u in ["http://a.test/1", "http://a.test/2", "http://b.test/1"] {
            f.admit(&url(u), 0, vec![]);
        }
        f.pause_host("a.test");
        let now = Instant::now();
        let Next::Request(r) = f.next(now) else { panic!("b's request") };
        assert_eq!(&*r.host, "b.test");
        assert!(matches!(f.next(now), Next::Idle), "a.test is paused");
        assert!(f.hosts_view(10).iter().any(|h| h.host == "a.test" && h.paused && h.queued == 2));
        f.set_rate(Some("a.test"), 1.0);
        f.resume_host("a.test");
        let Next::Request(r) = f.next(now) else { panic!("a's request") };
        f.finished(&r.host, r.queue);
        assert!(matches!(f.next(now), Next::WaitUntil(_)), "a.test now waits for its own rate");
        assert_eq!(f.hosts_view(10).iter().find(|h| h.host == "a.test").map(|h| h.rate), Some(1.0));
        f.set_rate(None, 3.0);
        assert_eq!(f.default_rate(), 3.0);
        assert_eq!(f.hosts_view(10).iter().find(|h| h.host == "b.test").map(|h| h.rate), Some(3.0));
    }

    #[test]
    fn a_rate_for_the_whole_crawl() {
        let s = spec(|s| s.scope.domains = vec!["a.test".into(), "b.test".into()]);
        let mut f = frontier(&s);
        for u in ["http://a.test/1", "http://b.test/1"] {
            f.admit(&url(u), 0, vec![]);
        }
        f.set_crawl_rate(1.0);
        assert_eq!(f.crawl_rate(), 1.0);
        let now = Instant::now();
        let Next::Request(first) = f.next(now) else { panic!("a request") };
        assert!(matches!(f.next(now), Next::WaitUntil(_)), "one request a second in all");
        f.set_crawl_rate(0.0);
        let Next::Request(second) = f.next(now) else { panic!("the other request") };
        assert_ne!(first.host, second.host, "the waiting host kept its turn");
    }

    #[test]
    fn robots_hold_then_filter() {
        let s = spec(|s| s.fetch.robots_txt = RobotsPolicy::Obey);
        let mut f = frontier(&s);
        let Admission::Queued { fetch_robots: Some(host) } =
            f.admit(&url("http://a.test/private/x"), 0, vec![])
        else {
            panic!("robots wanted")
        };
        f.admit(&url("http://a.test/ok"), 0, vec![]);
        assert!(matches!(f.next(Instant::now()), Next::Idle), "held until robots.txt is known");
        let robot = Robot::new("arachne", b"User-agent: *\nDisallow: /private/\n").expect("robots");
        let blocked = f.robots_loaded(&host, Some(robot));
        assert_eq!(blocked.len(), 1);
        let Next::Request(r) = f.next(Instant::now()) else { panic!("a request") };
        assert_eq!(r.url.path(), "/ok");
        assert_eq!(f.admit(&url("http://a.test/private/y"), 0, vec![]), Admission::RobotsBlocked);
    }

    /// Every request of `f`, in the order handed out (each finished at once).
    fn drain(f: &mut Frontier) -> Vec<CrawlRequest> {
        let mut out = Vec::new();
        while let Next::Request(r) = f.next(Instant::now()) {
            f.finished(&r.host, r.queue);
            out.push(r);
        }
        out
    }

    #[test]
    fn past_its_memory_the_backlog_spills_in_order_and_comes_back_whole() {
        for order in [QueueOrder::Fifo, QueueOrder::Lifo, QueueOrder::Priority] {
            let s = spec(|s| {
                s.scope.domains = vec!["a.test".into(), "b.test".into()];
                s.frontier.memory = crate::spec::ByteSize(1 << 20);
                s.frontier.order = order;
                s.frontier.priorities = vec![crate::spec::PriorityRule { matches: "/7".into(), priority: 5 }];
            });
            let dir = tempfile::tempdir().expect("tempdir");
            let mut f = frontier(&s);
            f.set_spill_dir(dir.path().join("spill"));
            let mut admitted: HashMap<String, Vec<(String, i32)>> = HashMap::new();
            let mut most = 0;
            for i in 0..20_000 {
                let u = url(&format!("http://{}.test/{i}/{}", if i % 3 == 0 { "b" } else { "a" }, i % 10));
                assert!(matches!(f.admit(&u, i % 5, vec![]), Admission::Queued { .. }));
                admitted.entry(urls::host_key(&u)).or_default().push((u.to_string(), f.priority_of(&u)));
                most = most.max(f.memory_bytes());
            }
            assert!(f.spilled_bytes() > 0, "{order:?}: 20,000 requests do not fit in 1 MiB");
            assert!(most <= (1 << 20) + 4096, "{order:?}: the frontier took {most} bytes");
            let out = drain(&mut f);
            assert!(f.take_lost().is_none());
            assert_eq!(out.len(), 20_000, "{order:?}: every request came back");
            for (host, mut want) in admitted {
                match order {
                    QueueOrder::Fifo => {}
                    QueueOrder::Lifo => want.reverse(),
                    QueueOrder::Priority => want.sort_by_key(|(_, p)| -p), // stable: fifo among equals
                }
                let got: Vec<String> =
                    out.iter().filter(|r| *r.host == *host).map(|r| r.url.to_string()).collect();
                let want: Vec<String> = want.into_iter().map(|(u, _)| u).collect();
                assert_eq!(got, want, "{order:?}: {host}'s order");
            }
            assert_eq!(f.spilled_bytes(), 0);
            assert_eq!(f.memory_bytes(), f.seen().memory_bytes());
            drop(f);
            assert!(!dir.path().join("spill").exists(), "the spill directory goes with the frontier");
        }
    }

    #[test]
    fn spilled_requests_keep_depth_chain_and_politeness() {
        let s = spec(|s| {
            s.frontier.memory = crate::spec::ByteSize(crate::spec::MIN_FRONTIER_MEMORY);
            s.fetch.per_host.concurrency = 2;
            s.fetch.robots_txt = RobotsPolicy::Obey;
        });
        let mut f = frontier(&s);
        let chain = vec![Fingerprint(7), Fingerprint(9)];
        for i in 0..3000 {
            f.admit(
                &url(&format!("http://a.test/{i}")),
                i % 4,
                if i == 2999 { chain.clone() } else { vec![] },
            );
        }
        assert!(f.spilled_bytes() > 0);
        let host: Arc<str> = "a.test".into();
        let robot = Robot::new("arachne", b"User-agent: *\nDisallow: /1\n").expect("robots");
        let blocked = f.robots_loaded(&host, Some(robot));
        assert_eq!(blocked.len(), 1 + 10 + 100 + 1000, "spilled requests are filtered too");
        let now = Instant::now();
        let (Next::Request(a), Next::Request(b)) = (f.next(now), f.next(now)) else { panic!("two requests") };
        assert!(matches!(f.next(now), Next::Idle), "the per-host cap holds");
        f.finished(&a.host, a.queue);
        f.finished(&b.host, b.queue);
        let rest = drain(&mut f);
        assert_eq!(rest.len() + 2, 3000 - blocked.len());
        let last = rest.last().expect("the last one");
        assert_eq!((last.url.path(), last.depth, &last.redirect_chain), ("/2999", 2999 % 4, &chain));
        assert!(rest.iter().all(|r| r.depth == r.url.path()[1..].parse::<u32>().expect("n") % 4));
    }

    #[test]
    fn requests_of_every_queue_spill_and_come_back_in_their_queue() {
        let mut s: CrawlSpec = serde_json::from_value(serde_json::json!({
            "name": "t", "seeds": ["http://a.test/"], "fetch": {"robots_txt": "ignore"},
            "routes": [{ "match": "/doc/", "queue": "documents" }],
            "queues": { "documents": { "concurrency": 4 } },
        }))
        .expect("valid spec");
        s.scope.domains = vec!["a.test".into()];
        s.frontier.memory = crate::spec::ByteSize(crate::spec::MIN_FRONTIER_MEMORY);
        let mut f = frontier(&s);
        let docs = f.routing().id("documents").expect("documents");
        let mut want_docs = Vec::new();
        for i in 0..10_000 {
            let path = if i % 2 == 0 { format!("/doc/{i}") } else { format!("/{i}") };
            let u = url(&format!("http://a.test{path}"));
            if i % 2 == 0 {
                want_docs.push(u.to_string());
            }
            assert!(matches!(f.admit(&u, 0, vec![]), Admission::Queued { .. }));
        }
        assert!(f.spilled_bytes() > 0, "10,000 requests do not fit in the smallest budget");
        let out = drain(&mut f);
        assert_eq!(out.len(), 10_000, "every request came back");
        assert!(
            out.iter().all(|r| (r.queue == docs) == r.url.path().starts_with("/doc/")),
            "each in its queue"
        );
        let got_docs: Vec<String> =
            out.iter().filter(|r| r.queue == docs).map(|r| r.url.to_string()).collect();
        assert_eq!(got_docs, want_docs, "fifo within the queue, spilled or not");
        assert_eq!(f.queue_views().iter().map(|v| v.queued).sum::<usize>(), 0);
        assert_eq!(f.spilled_bytes(), 0);
    }
}
