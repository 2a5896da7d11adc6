//! The frontier: what has been seen, what may be fetched, and what to fetch next.
//!
//! Pure data, no I/O: the `Scheduler` actor feeds it links and
//! robots.txt answers and drains it into the `requests` queue. Requests wait in one queue per
//! host; hosts take turns (round robin), each within its concurrency cap, its rate limit
//! (governor, keyed by host) and its robots.txt Crawl-delay.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashSet;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use regex::RegexSet;
use texting_robots::Robot;
use url::Url;

use super::backlog::Backlog;
use super::guard::AddressGuard;
use super::messages::CrawlRequest;
use super::urls::{self, Fingerprint, FingerprintBuildHasher};
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
    /// In `ready` or `waiting` right now.
    scheduled: bool,
    crawl_delay: Option<Duration>,
    not_before: Option<Instant>,
}

/// The frontier of one crawl.
pub struct Frontier {
    scope: Scope,
    seen: Arc<DashSet<Fingerprint, FingerprintBuildHasher>>,
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
            seen: Arc::new(DashSet::default()),
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
            scheduled: false,
            crawl_delay: None,
            not_before: None,
        });
        if let RobotsState::Known(Some(robot)) = &hq.robots {
            if !robot.allowed(request.url.as_str()) {
                return Admission::RobotsBlocked;
            }
        }
        hq.pending.push(request, priority);
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
            blocked = hq.pending.remove_where(|req| !r.allowed(req.url.as_str()));
            hq.crawl_delay =
                r.delay.filter(|d| d.is_finite() && *d > 0.0).map(|d| Duration::from_secs_f32(d.min(60.0)));
        }
        hq.robots = RobotsState::Known(robots);
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
            .filter_map(|(host, hq)| hq.pending.any_url().map(|u| (host.clone(), u.clone())))
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
            let Some(request) = hq.pending.pop() else { continue };
            hq.in_flight += 1;
            hq.not_before = hq.crawl_delay.map(|d| now + d);
            self.queued -= 1;
            self.schedule(&host);
            return Next::Request(request);
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
}
