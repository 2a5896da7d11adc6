//! The frontier's queues ([`Lane`]s): one per queue of the crawl's routing
//! ([`super::routing`]), each with its hosts' backlogs, its round robin of hosts, its cap on
//! requests in flight and its rate limiter. The per-host state they share (requests in
//! flight to a host, robots.txt, Crawl-delay) stays in the frontier, so politeness per host
//! holds across queues.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use governor::clock::{Clock, DefaultClock};
use governor::DefaultDirectRateLimiter;

use super::backlog::Backlog;
use super::routing::QueueConfig;
use crate::spec::QueueOrder;

/// One host's requests in one queue.
#[derive(Debug)]
pub(super) struct HostLane {
    pub(super) pending: Backlog,
    /// In the lane's `ready` or `waiting` right now.
    pub(super) scheduled: bool,
}

/// One queue of the frontier.
pub(super) struct Lane {
    pub(super) hosts: HashMap<Arc<str>, HostLane>,
    pub(super) ready: VecDeque<Arc<str>>,
    pub(super) waiting: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    /// Requests of this queue handed out and not finished.
    pub(super) in_flight: u32,
    /// The most there ever were in flight at once.
    pub(super) max_in_flight: u32,
    pub(super) concurrency: u32,
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
    /// The queue's rate limiter said no: nothing before this instant.
    pub(super) not_before: Option<Instant>,
    pub(super) queued: usize,
    /// Hand out nothing from it (a queue this process does not consume).
    pub(super) closed: bool,
    order: QueueOrder,
}

impl Lane {
    pub(super) fn new(config: &QueueConfig, order: QueueOrder) -> Self {
        let rate = config.rate.map_or(0.0, |r| r.per_second());
        Self {
            hosts: HashMap::new(),
            ready: VecDeque::new(),
            waiting: BinaryHeap::new(),
            in_flight: 0,
            max_in_flight: 0,
            concurrency: config.concurrency.max(1),
            limiter: super::frontier::quota(rate).map(governor::RateLimiter::direct),
            not_before: None,
            queued: 0,
            closed: !config.consumed,
            order,
        }
    }

    /// `host`'s backlog in this queue, made on first use.
    pub(super) fn host(&mut self, host: &Arc<str>) -> &mut HostLane {
        let order = self.order;
        self.hosts
            .entry(host.clone())
            .or_insert_with(|| HostLane { pending: Backlog::new(order), scheduled: false })
    }

    /// Whether the queue may hand out a request now (under its cap, past its rate's wait);
    /// `Err` with the instant it may again, when that is known.
    pub(super) fn open(&self, now: Instant) -> Result<(), Option<Instant>> {
        if self.closed || self.in_flight >= self.concurrency {
            return Err(None);
        }
        match self.not_before {
            Some(at) if at > now => Err(Some(at)),
            _ => Ok(()),
        }
    }

    /// Hosts whose wait is over go back into the round robin.
    pub(super) fn wake(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut woken = Vec::new();
        while let Some(Reverse((at, _))) = self.waiting.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, host))) = self.waiting.pop() {
                if let Some(hl) = self.hosts.get_mut(&host) {
                    hl.scheduled = false;
                }
                woken.push(host);
            }
        }
        woken
    }

    /// Takes a token of a queue's rate (its `limiter`); on a refusal, the instant to try
    /// again, kept in its `not_before`. (Over the fields, so that a host's backlog of the
    /// same lane may be borrowed meanwhile.)
    pub(super) fn take_token(
        limiter: &Option<DefaultDirectRateLimiter>,
        not_before: &mut Option<Instant>,
        now: Instant,
    ) -> Result<(), Instant> {
        match limiter.as_ref().map(|l| l.check()) {
            Some(Err(not_until)) => {
                let at = now + not_until.wait_time_from(DefaultClock::default().now());
                *not_before = Some(at);
                Err(at)
            }
            _ => Ok(()),
        }
    }

    /// A request of this queue was handed out.
    pub(super) fn started(&mut self) {
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        self.queued -= 1;
    }

    /// The earliest instant a waiting host of this queue may go.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse((at, _))| *at)
    }
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane").field("queued", &self.queued).field("in_flight", &self.in_flight).finish()
    }
}
