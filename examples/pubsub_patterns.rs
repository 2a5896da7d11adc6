//! Publish/subscribe on the run's bus: content filters and glob (pattern) subscriptions.
//!
//! The crawl publishes an `Event` on the `events` topic for every page that fails for good
//! and every URL robots.txt blocks. Two actors of our own listen in:
//! - `relay` subscribes to `events` twice, each time with a content filter (only
//!   `PageFailed`, only `RobotsBlocked`), and republishes them as one-line notices on two
//!   topics of its own, `crawl.alerts` and `crawl.audit`;
//! - `watcher` subscribes to the pattern `crawl.*`, so it hears both topics through one
//!   subscription, each message tagged with the topic it came from.
//!
//! The sandbox runs with its traps (404s, a slow page, a huge page, a redirect loop, ...),
//! so there are failures to see. Checked: the filter saw exactly the failures the summary
//! counts, and the watcher heard more than one topic.
//!
//!     cargo run --example pubsub_patterns

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use arachne::bus::{Bus, Filter, Overflow, PatternSubscription, Subscription, Topic};
use arachne::crawl::Event;
use arachne::runtime::Runtime;

const SPEC: &str = r#"
name: pubsub
sandbox: { pages: 50, traps: true }
seeds: ["{sandbox}/"]
fetch: { timeout: 1s, retries: 1, max_body: 1MiB }
"#;

/// Buffer size of each subscription: far more than this crawl publishes.
const CAPACITY: usize = 1024;

/// Turns crawl events into notices on `crawl.alerts` and `crawl.audit`.
struct Relay {
    failures: Arc<Subscription<Event>>,
    blocked: Arc<Subscription<Event>>,
    alerts: Topic<String>,
    audit: Topic<String>,
    failures_seen: Arc<AtomicU64>,
}

impl Relay {
    fn new(bus: &Bus, failures_seen: Arc<AtomicU64>) -> Result<Self, Box<dyn Error + Send + Sync>> {
        let events = bus.events()?;
        // Content filters run on the publisher's side: unwanted events are never buffered.
        let only_failures: Filter<Event> = Arc::new(|e| matches!(e, Event::PageFailed { .. }));
        let only_blocked: Filter<Event> = Arc::new(|e| matches!(e, Event::RobotsBlocked { .. }));
        Ok(Relay {
            failures: Arc::new(events.subscribe_filtered(CAPACITY, Overflow::Block, Some(only_failures))),
            blocked: Arc::new(events.subscribe_filtered(CAPACITY, Overflow::Block, Some(only_blocked))),
            alerts: bus.topic("crawl.alerts")?,
            audit: bus.topic("crawl.audit")?,
            failures_seen,
        })
    }
}

impl Actor for Relay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Streams over the shared subscriptions: a restart attaches new streams to the
        // same buffers, so nothing is lost.
        ctx.add_stream(Subscription::shared_stream(self.failures.clone()));
        ctx.add_stream(Subscription::shared_stream(self.blocked.clone()));
    }
}

impl Supervised for Relay {}

impl StreamHandler<Arc<Event>> for Relay {
    fn handle(&mut self, event: Arc<Event>, _: &mut Context<Self>) {
        match &*event {
            Event::PageFailed { url, kind, .. } => {
                self.failures_seen.fetch_add(1, Ordering::Relaxed);
                self.alerts.publish_now(format!("{kind}: {url}"));
            }
            Event::RobotsBlocked { url } => self.audit.publish_now(format!("robots.txt: {url}")),
            _ => {}
        }
    }

    // Not the default, which stops the actor when its first stream ends: it has a second
    // one to read. (User actors are transient: one that stops is not restarted.)
    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Counts what it hears on every `crawl.*` topic, by topic.
struct Watcher {
    notices: Arc<PatternSubscription<String>>,
    heard: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Actor for Watcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(PatternSubscription::shared_stream(self.notices.clone()));
    }
}

impl Supervised for Watcher {}

impl StreamHandler<(Arc<str>, Arc<String>)> for Watcher {
    fn handle(&mut self, (topic, _notice): (Arc<str>, Arc<String>), _: &mut Context<Self>) {
        if let Ok(mut heard) = self.heard.lock() {
            *heard.entry(topic.to_string()).or_default() += 1;
        }
    }

    // The default `finished` stops the watcher when the bus closes at the end of the run,
    // once it has read everything: that is its normal end.
}

fn main() -> Result<(), Box<dyn Error>> {
    let spec = arachne::spec::load_str(SPEC, "pubsub_patterns.yaml", arachne::spec::NO_OVERRIDES)?;
    let failures_seen = Arc::new(AtomicU64::new(0));
    let heard = Arc::new(Mutex::new(BTreeMap::new()));

    // The factories run before the first seed is fetched, so subscribing in them (rather
    // than in `started`) misses nothing. A factory's error (a bad glob, a topic name taken
    // with another type) fails the run at its start, naming the actor.
    let (seen, h) = (failures_seen.clone(), heard.clone());
    let summary = Runtime::builder(spec)
        .without_spec_outputs()
        .actor("watcher", move |bus| {
            // Also attaches to `crawl.*` topics created later (the relay's).
            let notices = bus.subscribe_pattern::<String>("crawl.*", CAPACITY, Overflow::Block, None)?;
            Ok(Watcher { notices: Arc::new(notices), heard: h })
        })
        .actor("relay", move |bus| Relay::new(bus, seen))
        .run()?;

    let failures = failures_seen.load(Ordering::Relaxed);
    let heard = heard.lock().map_err(|_| "watcher mutex poisoned")?.clone();
    if failures == 0 || failures != summary.pages_failed {
        return Err(format!("filter saw {failures} failures, summary has {}", summary.pages_failed).into());
    }
    if heard.len() < 2 {
        return Err(format!("the pattern subscription heard only {heard:?}").into());
    }
    println!(
        "pubsub_patterns: ok: {failures} failures seen by the filter = summary {:?}; crawl.* heard {heard:?} in {:.2}s",
        summary.errors, summary.elapsed_s
    );
    Ok(())
}
