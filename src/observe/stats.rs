//! Live counters of a run, shared by every actor, and the run summary built from them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::live::{HostTable, SinkCounts, StatusCounts};

/// Why a page failed, as counted in the summary's `errors` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The request did not finish within `fetch.timeout`.
    Timeout,
    /// No connection could be made, or it broke.
    Connect,
    /// The final answer had this non-success status.
    HttpStatus(u16),
    /// The body was larger than `fetch.max_body`.
    BodyTooLarge,
    /// A redirect led back to a URL of its own chain.
    RedirectLoop,
    /// More redirect hops than the limit.
    TooManyRedirects,
    /// A redirect without a usable Location.
    BadRedirect,
    /// The server's answer was not HTTP (garbage, a head too large or with too many headers).
    BadResponse,
    /// The body ended before its announced length, or the connection broke while it came.
    Truncated,
    /// A name that resolves only to non-public addresses, in a crawl of public hosts.
    BlockedAddress,
    /// Anything else the HTTP client reported.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::HttpStatus(code) => write!(f, "http_{code}"),
            ErrorKind::BodyTooLarge => f.write_str("body_too_large"),
            ErrorKind::RedirectLoop => f.write_str("redirect_loop"),
            ErrorKind::TooManyRedirects => f.write_str("too_many_redirects"),
            ErrorKind::BadRedirect => f.write_str("bad_redirect"),
            ErrorKind::BadResponse => f.write_str("bad_response"),
            ErrorKind::Truncated => f.write_str("truncated"),
            ErrorKind::BlockedAddress => f.write_str("blocked_address"),
            ErrorKind::Other => f.write_str("other"),
        }
    }
}

/// The counters of one run. Every field is a monotonic counter unless it says gauge.
#[derive(Debug, Default)]
pub struct Stats {
    /// Responses that ended in a 2xx (HTML or not).
    pub pages_fetched: AtomicU64,
    /// Requests that failed for good (after retries).
    pub pages_failed: AtomicU64,
    /// Items written to the items topic.
    pub items: AtomicU64,
    /// Discovered links already seen.
    pub duplicates_skipped: AtomicU64,
    /// Distinct URLs not requested because robots.txt disallows them.
    pub robots_blocked: AtomicU64,
    /// Distinct URLs outside the scope (domains, include/exclude, binary files, max_pages).
    pub out_of_scope: AtomicU64,
    /// Links dropped because they were deeper than `max_depth`.
    pub too_deep: AtomicU64,
    /// Redirect hops followed (their target was queued).
    pub redirects: AtomicU64,
    /// Requests tried again after a retryable failure.
    pub retries: AtomicU64,
    /// Actor restarts after a panic.
    pub restarts: AtomicU64,
    /// Deliveries given back to their queue unacked.
    pub redeliveries: AtomicU64,
    /// Messages dead-lettered.
    pub dead_letters: AtomicU64,
    /// Schedule firings.
    pub firings: AtomicU64,
    /// Conditional requests answered 304.
    pub not_modified: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Reconnections to a broker (the shared frontier's Redis).
    pub reconnects: AtomicU64,
    /// Requests a stopping process had taken from a shared frontier and gave back unstarted.
    pub released: AtomicU64,
    /// Distinct links past the per-page cap, not followed.
    pub links_dropped: AtomicU64,
    /// The pages whose links were capped, with the number dropped (the first few).
    links_dropped_pages: DashMap<String, u64>,
    /// Gauge: requests waiting in the frontier.
    pub queued: AtomicU64,
    /// Gauge: requests handed out and not yet finished.
    pub in_flight: AtomicU64,
    /// Pages fetched, by HTTP status (for `/metrics`).
    pub status: StatusCounts,
    /// Requests, errors and latency per host (bounded).
    pub hosts: HostTable,
    /// Items written, per sink.
    pub sinks: SinkCounts,
    /// Per queue of the crawl's routing (docs/routing.md), by queue number; set once, at
    /// the start of a routed run ([`Stats::set_queues`]).
    pub queues: OnceLock<Vec<QueueCounters>>,
    errors: DashMap<ErrorKind, u64>,
    /// The first detail of each kind of error.
    error_details: DashMap<ErrorKind, String>,
}

/// The most pages named in the summary's `links_dropped_pages`.
const MAX_CAPPED_PAGES: usize = 20;

/// The counters of one queue of the crawl's routing.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// The queue's name.
    pub name: String,
    /// Requests of this queue fetched here that ended in a 2xx (or a 304).
    pub fetched: AtomicU64,
    /// Requests of this queue that failed for good here (after its retries).
    pub failed: AtomicU64,
    /// Gauge: requests of this queue waiting in this process.
    pub queued: AtomicU64,
    /// Gauge: requests of this queue in flight in this process.
    pub in_flight: AtomicU64,
    /// The most requests of this queue ever in flight at once in this process.
    pub max_in_flight: AtomicU64,
}

/// One queue in the summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueSummary {
    /// Requests fetched with a 2xx (or a 304) by this process.
    pub fetched: u64,
    /// Requests that failed for good in this process.
    pub failed: u64,
    /// The most in flight at once in this process.
    pub max_in_flight: u64,
}

/// The longest error detail kept for the summary, in bytes.
const MAX_DETAIL_LEN: usize = 300;

impl Stats {
    /// Adds one to a counter.
    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed page under its kind; the first `detail` of each kind is kept for the
    /// summary's `error_details`.
    pub fn failed(&self, kind: ErrorKind, detail: &str) {
        Self::incr(&self.pages_failed);
        *self.errors.entry(kind).or_insert(0) += 1;
        self.error_details.entry(kind).or_insert_with(|| {
            let mut end = detail.len().min(MAX_DETAIL_LEN);
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail[..end].to_string()
        });
    }

    /// Names the queues of a routed run (by queue number); once, before the crawl starts.
    pub fn set_queues<S: Into<String>>(&self, names: impl IntoIterator<Item = S>) {
        let counters = names.into_iter().map(|n| QueueCounters { name: n.into(), ..Default::default() });
        let _ = self.queues.set(counters.collect());
    }

    /// The counters of queue number `index`, in a routed run.
    pub fn queue(&self, index: usize) -> Option<&QueueCounters> {
        self.queues.get().and_then(|q| q.get(index))
    }

    /// Copies the frontier's per-queue gauges.
    pub fn queue_gauges(&self, views: &[crate::crawl::frontier::QueueView]) {
        let Some(queues) = self.queues.get() else { return };
        for (counters, view) in queues.iter().zip(views) {
            counters.queued.store(view.queued as u64, Ordering::Relaxed);
            counters.in_flight.store(u64::from(view.in_flight), Ordering::Relaxed);
            counters.max_in_flight.fetch_max(u64::from(view.max_in_flight), Ordering::Relaxed);
        }
    }

    /// Counts `dropped` links of `page` past the per-page link cap; the
    /// first 20 such pages are named in the summary.
    pub fn links_capped(&self, page: &str, dropped: u64) {
        self.links_dropped.fetch_add(dropped, Ordering::Relaxed);
        if self.links_dropped_pages.len() < MAX_CAPPED_PAGES {
            *self.links_dropped_pages.entry(page.to_string()).or_insert(0) += dropped;
        }
    }

    /// The first detail of each kind of error.
    pub fn error_details(&self) -> BTreeMap<String, String> {
        self.error_details.iter().map(|e| (e.key().to_string(), e.value().clone())).collect()
    }

    /// The error counts by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.iter().map(|e| (e.key().to_string(), *e.value())).collect()
    }

    /// A summary of the run so far.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let elapsed_s = elapsed.as_secs_f64();
        let pages_fetched = get(&self.pages_fetched);
        Summary {
            pages_fetched,
            pages_failed: get(&self.pages_failed),
            items: get(&self.items),
            duplicates_skipped: get(&self.duplicates_skipped),
            robots_blocked: get(&self.robots_blocked),
            out_of_scope: get(&self.out_of_scope),
            too_deep: get(&self.too_deep),
            redirects: get(&self.redirects),
            retries: get(&self.retries),
            restarts: get(&self.restarts),
            redeliveries: get(&self.redeliveries),
            dead_letters: get(&self.dead_letters),
            firings: get(&self.firings),
            not_modified: get(&self.not_modified),
            bytes: get(&self.bytes),
            reconnects: get(&self.reconnects),
            released: get(&self.released),
            links_dropped: get(&self.links_dropped),
            links_dropped_pages: self
                .links_dropped_pages
                .iter()
                .map(|e| (e.key().clone(), *e.value()))
                .collect(),
            errors: self.errors(),
            queues: self
                .queues
                .get()
                .map(|queues| {
                    let summary = |q: &QueueCounters| QueueSummary {
                        fetched: get(&q.fetched),
                        failed: get(&q.failed),
                        max_in_flight: get(&q.max_in_flight),
                    };
                    queues.iter().map(|q| (q.name.clone(), summary(q))).collect()
                })
                .unwrap_or_default(),
            consumer_lag: BTreeMap::new(),
            error_details: self.error_details(),
            elapsed_s,
            pages_per_s: if elapsed_s > 0.0 { pages_fetched as f64 / elapsed_s } else { 0.0 },
        }
    }
}

/// What `--summary-json` writes (a contract: fields may be added, never renamed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Responses that ended in a 2xx.
    pub pages_fetched: u64,
    /// Requests that failed for good.
    pub pages_failed: u64,
    /// Items produced.
    pub items: u64,
    /// Discovered links already seen.
    pub duplicates_skipped: u64,
    /// Distinct URLs disallowed by robots.txt.
    pub robots_blocked: u64,
    /// Distinct URLs outside the scope.
    pub out_of_scope: u64,
    /// Links deeper than `max_depth`.
    pub too_deep: u64,
    /// Redirect hops followed.
    pub redirects: u64,
    /// Retries after retryable failures.
    pub retries: u64,
    /// Actor restarts.
    pub restarts: u64,
    /// Deliveries given back unacked.
    pub redeliveries: u64,
    /// Messages dead-lettered.
    pub dead_letters: u64,
    /// Schedule firings.
    pub firings: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Reconnections to a broker.
    pub reconnects: u64,
    /// Requests a stopping process gave back to a shared frontier unstarted.
    #[serde(default)]
    pub released: u64,
    /// Distinct links not followed because their page had more than the per-page cap
    /// (`arachne::crawl::extract::MAX_LINKS`).
    #[serde(default)]
    pub links_dropped: u64,
    /// The pages whose links were capped (the first 20), with how many each dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links_dropped_pages: BTreeMap<String, u64>,
    /// Failed pages by kind (`timeout`, `http_404`, `body_too_large`, `redirect_loop`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Per queue of the crawl's routing (`routes:`, `queues:`): what this process fetched
    /// from each; absent without routing (docs/routing.md).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, QueueSummary>,
    /// Inbound broker bridges' consumer lag at the end, per `topic/partition` (messages
    /// behind the end of the partition); absent without such bridges.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer_lag: BTreeMap<String, i64>,
    /// For each kind of error, what the first one said (e.g. `connect`: "connection refused").
    #[serde(default)]
    pub error_details: BTreeMap<String, String>,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// `pages_fetched / elapsed_s`.
    pub pages_per_s: f64,
}
