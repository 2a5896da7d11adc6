//! The frontier: what has been seen, what may be fetched, and what to fetch next.
//!
//! Pure data, no I/O: the `Scheduler` actor feeds it links and
//! robots.txt answers and drains it into the `requests` queue. Requests wait in one queue per
//! host within each queue of the crawl's routing (lanes: `default`, and those of
//! `queues:`); the highest-priority queue with a request ready goes first, each within its
//! own cap and rate; within a queue hosts take turns (round robin), each within its
//! concurrency cap, its rate limit (governor, keyed by host) and its robots.txt
//! Crawl-delay, which hold across queues.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashSet;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use regex::RegexSet;
use texting_robots::Robot;
use url::Url;

use super::guard::AddressGuard;
use super::lanes::Lane;
use super::messages::CrawlRequest;
use super::routing::{QueueId, Routing, RoutingError};
use super::urls::{self, Fingerprint, FingerprintBuildHasher};
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
    seen: Arc<DashSet<Fingerprint, FingerprintBuildHasher>>,
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
            seen: Arc::new(DashSet::default()),
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
    pub fn seen(&self) -> &Arc<DashSet<Fingerprint, FingerprintBuildHasher>> {
        &self.seen
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
            crawl_delay: None,
            not_before: None,
        });
        if let RobotsState::Known(Some(robot)) = &hq.robots {
            if !robot.allowed(request.url.as_str()) {
                return Admission::RobotsBlocked;
            }
        }
        hq.queued += 1;
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
        Admission::Queued { fetch_robots }
    }

    /// robots.txt for `host` is known (`None`: allow everything). Returns the queued
    /// requests it disallows, which leave the frontier.
    pub fn robots_loaded(&mut self, host: &Arc<str>, robots: Option<Robot>) -> Vec<CrawlRequest> {
        let Some(hq) = self.hosts.get_mut(host) else { return Vec::new() };
        let robots = robots.map(Arc::new);
        let mut blocked = Vec::new();
        if let Some(r) = &robots {
            for lane in &mut self.lanes {
                if let Some(hl) = lane.hosts.get_mut(host) {
                    let out = hl.pending.remove_where(|req| !r.allowed(req.url.as_str()));
                    lane.queued -= out.len();
                    blocked.extend(out);
                }
            }
            hq.crawl_delay =
                r.delay.filter(|d| d.is_finite() && *d > 0.0).map(|d| Duration::from_secs_f32(d.min(60.0)));
        }
        hq.robots = RobotsState::Known(robots);
        hq.queued -= blocked.len();
        self.queued -= blocked.len();
        self.schedule(host);
        blocked
    }

    /// Hosts whose robots.txt was being fetched, with a URL of each (to fetch it again after
    /// the scheduler restarted and lost the fetch in progress).
    pub fn refetch_robots(&self) -> Vec<(Arc<str>, Url)> {
        self.hosts
            .iter()
            .filter(|(_, hq)| matches!(hq.robots, RobotsState::Fetching))
            .filter_map(|(host, _)| {
                let url =
                    self.lanes.iter().find_map(|l| l.hosts.get(host).and_then(|hl| hl.pending.any_url()));
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
            let Some(request) = hl.pending.pop() else { continue };
            hq.in_flight += 1;
            hq.queued -= 1;
            hq.not_before = hq.crawl_delay.map(|d| now + d);
            lane.started();
            self.queued -= 1;
            self.schedule_in(li, &host);
            return Step::Request(request);
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
}
