//! Counters beyond the summary's, for `/metrics` and the dashboard: pages by HTTP status,
//! per-host requests, errors and latency (a bounded set of hosts), and items per sink.
//!
//! The hot path only adds to atomics: no allocation per page (a host's slot is allocated
//! once, the first time it is seen).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;

use crate::crawl::{Item, ItemSink};

/// The highest HTTP status counted under its own number (the rest count as 599).
const MAX_STATUS: usize = 599;

/// Pages fetched, by final HTTP status.
#[derive(Debug)]
pub struct StatusCounts(Box<[AtomicU64]>);

impl Default for StatusCounts {
    fn default() -> Self {
        Self((0..=MAX_STATUS).map(|_| AtomicU64::new(0)).collect())
    }
}

impl StatusCounts {
    /// Counts one page with this status.
    pub fn add(&self, status: u16) {
        self.0[usize::from(status).min(MAX_STATUS)].fetch_add(1, Ordering::Relaxed);
    }

    /// `(status, count)` for every status seen, in order.
    pub fn snapshot(&self) -> Vec<(u16, u64)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(s, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((s as u16, n))
            })
            .collect()
    }
}

/// The upper bounds (seconds) of the request-latency histogram's buckets (`+Inf` implied).
pub const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram with Prometheus's cumulative-on-read buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (same order as [`LATENCY_BUCKETS`]), the total count and
    /// the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        let count = self.count.load(Ordering::Relaxed);
        (cumulative, count, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// What is counted for one host.
#[derive(Debug, Default)]
pub struct HostFigures {
    /// Requests that got an answer or failed for good.
    pub requests: AtomicU64,
    /// Requests that failed for good.
    pub errors: AtomicU64,
    /// Time from sending the request to having its body (retries included).
    pub latency: Histogram,
}

/// Per-host figures for the first [`HostTable::LIMIT`] hosts seen; every later host is
/// counted under `other`, so a broad crawl cannot blow up the series count.
#[derive(Debug, Default)]
pub struct HostTable {
    hosts: DashMap<Arc<str>, HostFigures>,
    other: HostFigures,
}

impl HostTable {
    /// Hosts with figures of their own.
    pub const LIMIT: usize = 50;

    /// The label hosts past the limit are counted under.
    pub const OTHER: &'static str = "other";

    /// Records one request to `host` that took `elapsed`.
    pub fn record(&self, host: &Arc<str>, elapsed: Duration, failed: bool) {
        let note = |f: &HostFigures| {
            f.requests.fetch_add(1, Ordering::Relaxed);
            if failed {
                f.errors.fetch_add(1, Ordering::Relaxed);
            }
            f.latency.observe(elapsed);
        };
        if let Some(f) = self.hosts.get(host) {
            return note(&f);
        }
        if self.hosts.len() < Self::LIMIT {
            note(&self.hosts.entry(host.clone()).or_default());
        } else {
            note(&self.other);
        }
    }

    /// Calls `visit(label, figures)` for each host, then for `other` if it has any.
    pub fn for_each(&self, mut visit: impl FnMut(&str, &HostFigures)) {
        let mut names: Vec<Arc<str>> = self.hosts.iter().map(|e| e.key().clone()).collect();
        names.sort();
        for name in names {
            if let Some(f) = self.hosts.get(&name) {
                visit(&name, &f);
            }
        }
        if self.other.requests.load(Ordering::Relaxed) > 0 {
            visit(Self::OTHER, &self.other);
        }
    }
}

/// Items written, per sink.
#[derive(Debug, Default)]
pub struct SinkCounts(Mutex<Vec<(String, Arc<AtomicU64>)>>);

impl SinkCounts {
    /// Wraps `sink` so that every item it writes is counted under `name`.
    pub fn counted(&self, name: &str, sink: Box<dyn ItemSink>) -> Box<dyn ItemSink> {
        let count = Arc::new(AtomicU64::new(0));
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_string(), count.clone()));
        Box::new(CountedSink { inner: sink, count })
    }

    /// `(sink, items written)` for each sink, in start order.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let sinks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sinks.iter().map(|(n, c)| (n.clone(), c.load(Ordering::Relaxed))).collect()
    }
}

/// A sink that counts what its inner sink wrote.
struct CountedSink {
    inner: Box<dyn ItemSink>,
    count: Arc<AtomicU64>,
}

impl ItemSink for CountedSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        self.inner.write(item)?;
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn position(&self) -> Option<u64> {
        self.inner.position()
    }
}
