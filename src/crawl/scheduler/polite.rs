//! Politeness across the processes of a shared crawl, over the broker seam
//! ([`SharedPoliteness`]; this file names no broker).
//!
//! When the store keeps politeness (Redis), a request the local frontier hands out (within
//! this process's own per-host limits) waits here for a permit from the broker: the host's
//! rate and Crawl-delay (a GCRA) and its `per_host.concurrency` hold for the whole crawl,
//! whichever process fetches. A granted concurrency slot is given back when the fetch ends
//! (with the next permit call, so one round trip serves both). A store without shared
//! politeness (Kafka, AMQP) leaves the requests to the local limits alone.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::Scheduler;
use crate::crawl::messages::CrawlRequest;
use crate::crawl::shared::{Permit, PermitAsk, SharedPoliteness, Slot};
use crate::crawl::urls::{Fingerprint, FingerprintBuildHasher};

/// Asks sent in one permit call, at most.
const ASK_BATCH: usize = 64;
/// Permit calls in flight at once, at most: a host at its rate gets one grant per call, so
/// overlapping calls keep a fast host busy across a round trip.
const CALLS_IN_FLIGHT: u32 = 4;
/// How long a request whose host is at its concurrency across the crawl waits before it
/// asks again (a slot of this process coming back asks at once).
const FULL_POLL: Duration = Duration::from_millis(25);
/// How long requests wait after a failed permit call before they ask again.
const RETRY_AFTER_ERROR: Duration = Duration::from_millis(200);

/// Requests waiting for a permit, and the slots this process holds.
pub(super) struct Gate {
    politeness: Arc<dyn SharedPoliteness>,
    /// Requests handed out by the local frontier, each with when it may ask (again), or,
    /// once granted, when it may start (and its slot).
    waiting: VecDeque<Waiting>,
    /// Slots held by requests in flight here.
    slots: HashMap<Fingerprint, Slot, FingerprintBuildHasher>,
    /// Slots of finished fetches, given back with the next call.
    done: Vec<Slot>,
    /// Permit calls in flight.
    asking: u32,
}

/// A request waiting for its permit, or for the start its permit gave it.
struct Waiting {
    request: CrawlRequest,
    at: Instant,
    /// Granted (with its slot, if any): it starts at `at` without asking again.
    granted: Option<Option<Slot>>,
}

impl Gate {
    fn wait(&mut self, request: CrawlRequest, at: Instant, granted: Option<Option<Slot>>) {
        self.waiting.push_back(Waiting { request, at, granted });
    }

    pub(super) fn new(politeness: Arc<dyn SharedPoliteness>) -> Self {
        Self { politeness, waiting: VecDeque::new(), slots: HashMap::default(), done: Vec::new(), asking: 0 }
    }

    /// Nothing waits, nothing is to be given back, no call is in flight.
    pub(super) fn idle(&self) -> bool {
        self.waiting.is_empty() && self.done.is_empty() && self.asking == 0
    }
}

impl Scheduler {
    fn gate(&mut self) -> Option<&mut Gate> {
        self.remote.as_mut().and_then(|r| r.gate.as_mut())
    }

    /// Requests waiting for a permit.
    pub(super) fn gated(&self) -> usize {
        self.remote.as_ref().and_then(|r| r.gate.as_ref()).map_or(0, |g| g.waiting.len())
    }

    /// A request the local frontier handed out: kept to wait for a permit (`None`), or
    /// returned to be fetched now when politeness is not shared.
    pub(super) fn gate_take(&mut self, request: CrawlRequest) -> Option<CrawlRequest> {
        match self.gate() {
            Some(gate) => {
                gate.wait(request, Instant::now(), None);
                None
            }
            None => Some(request),
        }
    }

    /// A fetch ended (or its request was dead-lettered): its slot goes back with the next call.
    pub(super) fn gate_finished(&mut self, fingerprint: &Fingerprint) {
        if let Some(gate) = self.gate() {
            if let Some(slot) = gate.slots.remove(fingerprint) {
                gate.done.push(slot);
            }
        }
    }

    /// Asks the broker for the permits of the requests whose turn it is, giving back the
    /// slots of finished fetches in the same call; wakes up for the next turn otherwise.
    pub(super) fn gate_ask(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let draining = self.draining;
        let Some(gate) = self.gate() else { return };
        if gate.asking >= CALLS_IN_FLIGHT {
            return;
        }
        if draining {
            // Their leases were given back when the drain began.
            for w in gate.waiting.drain(..) {
                gate.done.extend(w.granted.flatten());
            }
        }
        let mut requests = Vec::new();
        let mut starting = Vec::new();
        let mut later = VecDeque::with_capacity(gate.waiting.len());
        while let Some(w) = gate.waiting.pop_front() {
            match w.granted {
                Some(slot) if w.at <= now => starting.push((w.request, slot)),
                None if w.at <= now && requests.len() < ASK_BATCH => requests.push(w.request),
                _ => later.push_back(w),
            }
        }
        gate.waiting = later;
        let next_turn = gate.waiting.iter().map(|w| w.at).min();
        let nothing_to_send = requests.is_empty() && gate.done.is_empty();
        for (request, slot) in starting {
            self.start(request, slot);
        }
        if nothing_to_send {
            if let Some(at) = next_turn {
                self.wake_at_instant(at, ctx);
            }
            return;
        }
        let Some(gate) = self.gate() else { return };
        gate.asking += 1;
        let done = std::mem::take(&mut gate.done);
        let asks: Vec<PermitAsk> = requests
            .iter()
            .map(|r| {
                let (interval, concurrency) = self.frontier.politeness_of(&r.host);
                PermitAsk { host: r.host.clone(), interval, concurrency }
            })
            .collect();
        let politeness = self.gate().map(|g| g.politeness.clone()).expect("a gate");
        let returned = done.clone();
        ctx.spawn(async move { politeness.permits(done, asks).await }.into_actor(self).map(
            move |answers, act, ctx| {
                act.gate_answered(requests, returned, answers);
                act.pump(ctx);
            },
        ));
    }

    fn gate_answered(
        &mut self,
        requests: Vec<CrawlRequest>,
        returned: Vec<Slot>,
        answers: Result<Vec<Permit>, crate::crawl::shared::StoreError>,
    ) {
        let now = Instant::now();
        let draining = self.draining;
        let Some(gate) = self.gate() else { return };
        gate.asking -= 1;
        let answers = match answers {
            Ok(a) if a.len() == requests.len() => a,
            other => {
                if let Err(e) = other {
                    tracing::warn!("shared politeness: permit call failed: {e}");
                }
                gate.done.extend(returned);
                for r in requests {
                    gate.wait(r, now + RETRY_AFTER_ERROR, None);
                }
                return;
            }
        };
        for (request, permit) in requests.into_iter().zip(answers) {
            let Some(gate) = self.gate() else { return };
            match permit {
                Permit::Wait(d) => gate.wait(request, now + d, None),
                Permit::Full => gate.wait(request, now + FULL_POLL, None),
                Permit::Granted { slot, .. } if draining => gate.done.extend(slot),
                Permit::Granted { after, slot } if !after.is_zero() => {
                    gate.wait(request, now + after, Some(slot))
                }
                Permit::Granted { slot, .. } => self.start(request, slot),
            }
        }
    }

    /// A request with its permit goes to the fetchers (holding its slot until it ends).
    fn start(&mut self, request: CrawlRequest, slot: Option<Slot>) {
        if let (Some(slot), Some(gate)) = (slot, self.gate()) {
            gate.slots.insert(request.fingerprint, slot);
        }
        self.publish(request);
    }
}
