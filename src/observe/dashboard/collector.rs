//! What the dashboard remembers: the recent errors and dead letters, restarts per actor
//! (all from the `events` topic), and a once-a-second history of the run's counters for
//! the throughput chart. It also fans the events out to the server-sent-event streams.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::bus::{Overflow, Subscription, Topic};
use crate::crawl::Event;
use crate::observe::{unix_millis, Stats};

/// Recent errors and dead letters kept, each.
const RECENT: usize = 100;
/// History samples kept (one a second: ten minutes).
const HISTORY: usize = 600;
/// Recent events (of every kind) a new event stream starts with.
const REPLAY: usize = 100;
/// Events buffered for the collector; past it the oldest are dropped (the crawl never waits).
const EVENT_BUFFER: usize = 4096;

/// One event as the API and the event stream show it.
#[derive(Debug, Clone, Serialize)]
pub struct Stamped {
    /// When the dashboard saw it (Unix milliseconds).
    pub at_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Restarts of one actor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Restarts {
    /// How many.
    pub count: u64,
    /// The last one's reason.
    pub last_reason: String,
    /// When it was (Unix milliseconds).
    pub last_at_ms: u64,
}

/// One sample of the counters.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// When (Unix milliseconds).
    pub t_ms: u64,
    /// Pages fetched so far.
    pub pages_fetched: u64,
    /// Pages failed so far.
    pub pages_failed: u64,
    /// Items so far.
    pub items: u64,
}

#[derive(Debug, Default)]
struct Recent {
    errors: VecDeque<Stamped>,
    dead_letters: VecDeque<Stamped>,
    restarts: BTreeMap<String, Restarts>,
    history: VecDeque<Sample>,
    events: u64,
    /// The last [`REPLAY`] events as JSON, for a new stream.
    replay: VecDeque<Arc<str>>,
}

/// The dashboard's memory of the run.
#[derive(Debug)]
pub struct Collector {
    recent: Mutex<Recent>,
    stream: broadcast::Sender<Arc<str>>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Arc<Self> {
        let (stream, _) = broadcast::channel(1024);
        Arc::new(Self { recent: Mutex::new(Recent::default()), stream })
    }

    /// Subscribes to `events` now (so nothing published from here on is missed) and returns
    /// the future that collects until the topic closes.
    pub fn collect(
        self: &Arc<Self>,
        events: &Topic<Event>,
        stats: Arc<Stats>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let subscription = events.subscribe(EVENT_BUFFER, Overflow::DropOldest);
        let this = self.clone();
        async move { this.run(subscription, stats).await }
    }

    async fn run(&self, events: Subscription<Event>, stats: Arc<Stats>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(e) => self.record((*e).clone()),
                    None => break,
                },
                _ = tick.tick() => self.sample(&stats),
            }
        }
        self.sample(&stats);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, event: Event) {
        let stamped = Stamped { at_ms: unix_millis(), event };
        let json: Option<Arc<str>> = serde_json::to_string(&stamped).ok().map(Into::into);
        if let (Some(json), true) = (&json, self.stream.receiver_count() > 0) {
            let _ = self.stream.send(json.clone());
        }
        let mut recent = self.lock();
        recent.events += 1;
        if let Some(json) = json {
            if recent.replay.len() == REPLAY {
                recent.replay.pop_front();
            }
            recent.replay.push_back(json);
        }
        let ring = match &stamped.event {
            Event::PageFailed { .. } => &mut recent.errors,
            Event::DeadLettered { .. } => &mut recent.dead_letters,
            Event::ActorRestarted { actor, reason } => {
                let r = recent.restarts.entry(actor.clone()).or_default();
                r.count += 1;
                r.last_reason.clone_from(reason);
                r.last_at_ms = stamped.at_ms;
                return;
            }
            _ => return,
        };
        if ring.len() == RECENT {
            ring.pop_front();
        }
        ring.push_back(stamped);
    }

    fn sample(&self, stats: &Stats) {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let sample = Sample {
            t_ms: unix_millis(),
            pages_fetched: get(&stats.pages_fetched),
            pages_failed: get(&stats.pages_failed),
            items: get(&stats.items),
        };
        let mut recent = self.lock();
        if recent.history.len() == HISTORY {
            recent.history.pop_front();
        }
        recent.history.push_back(sample);
    }

    /// The recent errors, newest last.
    pub fn errors(&self) -> Vec<Stamped> {
        self.lock().errors.iter().cloned().collect()
    }

    /// The recent dead letters, newest last.
    pub fn dead_letters(&self) -> Vec<Stamped> {
        self.lock().dead_letters.iter().cloned().collect()
    }

    /// Restarts per actor.
    pub fn restarts(&self) -> BTreeMap<String, Restarts> {
        self.lock().restarts.clone()
    }

    /// The counters once a second, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        self.lock().history.iter().copied().collect()
    }

    /// Events seen so far.
    pub fn events_seen(&self) -> u64 {
        self.lock().events
    }

    /// The last events (up to 100), then the events from now on, as JSON texts (a slow
    /// reader skips what it missed).
    pub fn stream(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let recent = self.lock();
        (recent.replay.iter().cloned().collect(), self.stream.subscribe())
    }
}
