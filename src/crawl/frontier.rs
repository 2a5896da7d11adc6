//! The frontier: what has been seen, what may be fetched, and what to fetch next.
//!
//! Pure data, no I/O: the `Scheduler` actor feeds it links and
//! robots.txt answers and drains it into the `requests` queue. Requests wait in one queue per
//! host; hosts take turns (round robin), each within its concurrency cap, its rate limit
//! (governor, keyed by host) and its robots.txt Crawl-delay.
//!
//! Memory stays within `frontier.memory`: the seen-set is compact ([`SeenSet`], ~18 bytes a
//! URL) and, when it and the requests waiting in memory pass the budget, the hosts with the
//! most waiting spill them to disk ([`SpillStore`]) and read them back in order as their turn
//! comes (the backlog's order and every politeness rule are the same either way).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use regex::RegexSet;
use texting_robots::Robot;
use url::Url;

pub use super::backlog::Lost;
use super::backlog::{self, Backlog};
use super::guard::AddressGuard;
use super::messages::CrawlRequest;
pub use super::seen::SeenSet;
use super::spill::SpillStore;
use super::urls::{self, Fingerprint};
use crate::spec::{CrawlSpec, QueueOrder, RobotsPolicy};

/// The slowest `fetch.per_host.rate` there is: one request a day (a slower one is refused
/// by validation).
pub const MIN_RATE: f64 = 1.0 / 86_400.0;

/// The most redirect hops one request may follow.
pub const MAX_REDIRECTS: usize = 10;

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

#[derive(Debug)]
struct HostQueue {
    pending: Backlog,
    in_flight: u32,
    robots: RobotsState,
    /// While robots.txt is fetched: a URL of the host (to fetch it again after a restart).
    robots_url: Option<Url>,
    /// In `ready` or `waiting` right now.
    scheduled: bool,
    crawl_delay: Option<Duration>,
    not_before: Option<Instant>,
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
    ready: VecDeque<Arc<str>>,
    waiting: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    per_host: u32,
    limiter: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    robots: RobotsPolicy,
    order: QueueOrder,
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
fn quota(rate: f64) -> Option<Quota> {
    (rate > 0.0 && rate.is_finite())
        .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / rate.max(MIN_RATE))))
        .flatten()
        .map(|q| q.allow_burst(NonZeroU32::MIN))
}

impl Frontier {
    /// An empty frontier for a spec (fails on a bad `frontier.priorities` regex).
    pub fn new(spec: &CrawlSpec, scope: Scope) -> Result<Self, regex::Error> {
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
            ready: VecDeque::new(),
            waiting: BinaryHeap::new(),
            per_host: spec.fetch.per_host.concurrency.max(1),
            limiter,
            robots: spec.fetch.robots_txt,
            order: spec.frontier.order,
            priorities,
            admitted: 0,
            queued: 0,
            rate,
            host_rates: HashMap::new(),
            paused: HashSet::new(),
            crawl_rate: (0.0, None),
        })
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
                queued: hq.pending.len(),
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

    fn note_lost(&mut self, lost: Option<Lost>) {
        let Some(lost) = lost else { return };
        self.queued -= lost.count;
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
            Ok(fingerprint) => self.enqueue(url.clone(), fingerprint, depth, redirect_chain),
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
        let fingerprint = urls::fingerprint(&url);
        self.seen.insert(fingerprint);
        self.enqueue(url, fingerprint, depth, redirect_chain)
    }

    fn enqueue(
        &mut self,
        url: Url,
        fingerprint: Fingerprint,
        depth: u32,
        redirect_chain: Vec<Fingerprint>,
    ) -> Admission {
        let host: Arc<str> = urls::host_key(&url).into();
        let priority = self.priority_of(&url);
        let request = CrawlRequest { url, fingerprint, host: host.clone(), depth, redirect_chain };
        let obey = self.robots == RobotsPolicy::Obey;
        let order = self.order;
        let hq = self.hosts.entry(host.clone()).or_insert_with(|| HostQueue {
            pending: Backlog::new(order),
            in_flight: 0,
            robots: if obey { RobotsState::Unknown } else { RobotsState::Known(None) },
            robots_url: None,
            scheduled: false,
            crawl_delay: None,
            not_before: None,
        });
        if let RobotsState::Known(Some(robot)) = &hq.robots {
            if !robot.allowed(request.url.as_str()) {
                return Admission::RobotsBlocked;
            }
        }
        self.backlog_bytes += backlog::request_bytes(&request);
        if matches!(hq.robots, RobotsState::Unknown) {
            hq.robots_url = Some(request.url.clone());
        }
        hq.pending.push(request, priority);
        self.queued += 1;
        self.admitted += 1;
        let fetch_robots = match hq.robots {
            RobotsState::Unknown => {
                hq.robots = RobotsState::Fetching;
                self.keep_to_budget();
                Some(host)
            }
            RobotsState::Fetching => None,
            RobotsState::Known(_) => {
                self.schedule(&host);
                None
            }
        };
        if fetch_robots.is_none() {
            self.keep_to_budget();
        }
        Admission::Queued { fetch_robots }
    }

    /// robots.txt for `host` is known (`None`: allow everything). Returns the queued
    /// requests it disallows, which leave the frontier.
    pub fn robots_loaded(&mut self, host: &Arc<str>, robots: Option<Robot>) -> Vec<CrawlRequest> {
        let Some(hq) = self.hosts.get_mut(host) else { return Vec::new() };
        let robots = robots.map(Arc::new);
        let mut blocked = Vec::new();
        let mut lost = None;
        if let Some(r) = &robots {
            let before = hq.pending.memory_bytes();
            (blocked, lost) =
                hq.pending.remove_where(|req| !r.allowed(req.url.as_str()), self.spill.as_mut(), host);
            self.backlog_bytes = self.backlog_bytes + hq.pending.memory_bytes() - before;
            hq.crawl_delay =
                r.delay.filter(|d| d.is_finite() && *d > 0.0).map(|d| Duration::from_secs_f32(d.min(60.0)));
        }
        hq.robots = RobotsState::Known(robots);
        hq.robots_url = None;
        self.queued -= blocked.len();
        self.note_lost(lost);
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
                hq.robots_url.as_ref().or(hq.pending.any_url()).map(|u| (host.clone(), u.clone()))
            })
            .collect()
    }

    /// A fetch for `host` has finished: a slot is free.
    pub fn finished(&mut self, host: &Arc<str>) {
        if let Some(hq) = self.hosts.get_mut(host) {
            hq.in_flight = hq.in_flight.saturating_sub(1);
        }
        self.schedule(host);
    }

    /// The next request that may be fetched now.
    pub fn next(&mut self, now: Instant) -> Next {
        while let Some(Reverse((at, _))) = self.waiting.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, host))) = self.waiting.pop() {
                if let Some(hq) = self.hosts.get_mut(&host) {
                    hq.scheduled = false;
                }
                self.schedule(&host);
            }
        }
        while let Some(host) = self.ready.pop_front() {
            let Some(hq) = self.hosts.get_mut(&host) else { continue };
            hq.scheduled = false;
            if hq.pending.is_empty()
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
                hq.scheduled = true;
                self.waiting.push(Reverse((at, host)));
                continue;
            }
            if let Some(Err(not_until)) = self.crawl_rate.1.as_ref().map(|l| l.check()) {
                // The whole crawl is at its rate: this host keeps its turn (the token its own
                // limiter gave is spent: a host with its own rate waits a little longer).
                hq.scheduled = true;
                self.ready.push_front(host);
                return Next::WaitUntil(now + not_until.wait_time_from(DefaultClock::default().now()));
            }
            let before = hq.pending.memory_bytes();
            let (request, lost) = hq.pending.pop(self.spill.as_mut(), &host);
            let after = hq.pending.memory_bytes();
            if request.is_some() {
                hq.in_flight += 1;
                hq.not_before = hq.crawl_delay.map(|d| now + d);
                self.queued -= 1;
            }
            self.backlog_bytes = self.backlog_bytes + after - before;
            self.note_lost(lost);
            self.schedule(&host);
            if after > before {
                self.keep_to_budget(); // spilled requests were read back
            }
            match request {
                Some(request) => return Next::Request(request),
                None => continue,
            }
        }
        match self.waiting.peek() {
            Some(Reverse((at, _))) => Next::WaitUntil(*at),
            None => Next::Idle,
        }
    }

    /// The priority of a URL: the first `frontier.priorities` rule that matches, else 0.
    pub fn priority_of(&self, url: &Url) -> i32 {
        match &self.priorities {
            Some((set, values)) => set.matches(url.as_str()).iter().next().map_or(0, |i| values[i]),
            None => 0,
        }
    }

    /// Spills waiting requests when the seen-set and the requests in memory are past
    /// `frontier.memory`: the hosts with the most in memory first, each keeping the next
    /// [`KEEP_IN_MEMORY`] (then none, if that is not enough), down to half of what the
    /// requests may take (so spills come in large, rare writes). The seen-set is never
    /// spilled: when it alone takes the budget, the requests keep [`MIN_BACKLOG_SHARE`] of it.
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
        let mut by_size: Vec<(usize, &Arc<str>)> = self
            .hosts
            .iter()
            .filter(|(_, hq)| hq.pending.memory_bytes() > 0)
            .map(|(host, hq)| (hq.pending.memory_bytes(), host))
            .collect();
        by_size.sort_unstable_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        let hosts: Vec<Arc<str>> = by_size.into_iter().map(|(_, h)| h.clone()).collect();
        for keep in [KEEP_IN_MEMORY, 0] {
            for host in &hosts {
                if self.backlog_bytes <= target {
                    return;
                }
                let Some(hq) = self.hosts.get_mut(host) else { continue };
                let before = hq.pending.memory_bytes();
                let result = hq.pending.spill(store, keep);
                self.backlog_bytes = self.backlog_bytes + hq.pending.memory_bytes() - before;
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

    /// Puts a host in the round robin if it has work it may start.
    fn schedule(&mut self, host: &Arc<str>) {
        let Some(hq) = self.hosts.get_mut(host) else { return };
        if hq.scheduled
            || hq.pending.is_empty()
            || hq.in_flight >= self.per_host
            || !matches!(hq.robots, RobotsState::Known(_))
            || (!self.paused.is_empty() && self.paused.contains(host))
        {
            return;
        }
        hq.scheduled = true;
        self.ready.push_back(host.clone());
    }
}

/// Requests a host keeps in memory when its others spill (its next few, ready to hand out).
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
        f.finished(&first.host);
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
            f.finished(&r.host);
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
        f.finished(&r.host);
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
        f.finished(&r.host);
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
            f.finished(&r.host);
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
        f.finished(&a.host);
        f.finished(&b.host);
        let rest = drain(&mut f);
        assert_eq!(rest.len() + 2, 3000 - blocked.len());
        let last = rest.last().expect("the last one");
        assert_eq!((last.url.path(), last.depth, &last.redirect_chain), ("/2999", 2999 % 4, &chain));
        assert!(rest.iter().all(|r| r.depth == r.url.path()[1..].parse::<u32>().expect("n") % 4));
    }
}
