//! The local message bus: publish/subscribe [`Topic`]s (by name, or by glob with
//! [`Bus::subscribe_pattern`]) and point-to-point [`Queue`]s with acknowledged deliveries.
//! docs/bus.md has each channel's guarantees and how they map to Redis, RabbitMQ and Kafka.
//!
//! # The built-in channels
//!
//! A run creates these on its bus before any actor starts; an embedding program reaches them
//! through [`Bus::topic`] and [`Bus::queue`] with exactly these message types (another type
//! is a [`WrongType`] error naming both), and adds channels of its own beside them.
//!
//! | name | channel and message type | from → to | guarantee |
//! |---|---|---|---|
//! | `requests` | [`Queue`]`<`[`CrawlRequest`](crate::crawl::CrawlRequest)`>` | scheduler (the frontier) → fetchers | at least once: an unacked request comes back; after `supervision.max_deliveries` it is dead-lettered |
//! | `pages` | [`Queue`]`<`[`Page`](crate::crawl::Page)`>` | fetchers → parsers | at least once, as `requests` |
//! | `items` | [`Topic`]`<`[`PageItems`](crate::crawl::PageItems)`>` | parsers → sinks, one message per parsed page (also one without items) | at most once per subscriber; a [`Overflow::Block`] subscriber (as the sinks are) loses nothing while subscribed, a [`Overflow::DropOldest`] one counts what it drops |
//! | `events` | [`Topic`]`<`[`Event`](crate::crawl::Event)`>` | every part → the dashboard, bridges, user actors | at most once, never waits: a full subscriber misses the event (`publish_now`) |
//! | `schedules` | [`Topic`]`<`[`Firing`]`>` | the clock → anyone; also each schedule's own `publish.topic` | at most once per subscriber |
//!
//! Bridges add the topics they name in the spec: an inbound one carries the broker's
//! message type (`ChannelMessage` for Redis pub/sub, `KafkaMessage`, `AmqpMessage`); an
//! outbound one reads `items`, `events`, `schedules` with the types above, and any other topic
//! as [`serde_json::Value`].
//!
//! ```
//! use arachne::bus::{Bus, Overflow, Topic, WrongType};
//!
//! let bus = Bus::new();
//! let prices: Topic<f64> = bus.topic("prices")?;
//! let sub = prices.subscribe(16, Overflow::DropOldest);
//! prices.publish_now(9.5);
//! assert_eq!(*sub.try_recv().expect("one message"), 9.5);
//!
//! // The same name with another message type is refused, and says both types.
//! let err: WrongType = bus.topic::<String>("prices").unwrap_err();
//! assert_eq!(err.expected, "alloc::string::String");
//! assert_eq!(err.found, "f64");
//! # Ok::<(), WrongType>(())
//! ```

mod pattern;
mod queue;
mod schedule;
mod topic;

use std::any::Any;
use std::sync::Arc;

use dashmap::DashMap;

pub use pattern::{Pattern, PatternError, PatternSubscription};
pub use queue::{
    Closed, Consumer, DeadLetter, Delivery, PublishError, Queue, QueueConfig, QueueStats, TryPublishError,
};
#[cfg(feature = "schedules")]
pub use schedule::{parse_coordinates, parse_cron, parse_timezone, solar_event_on};
pub use schedule::{
    run_schedule, run_schedule_from, Firing, Resume, Schedule, ScheduleError, SystemClock, TokioClock,
    Trigger, WallClock, DEFAULT_GRACE,
};
pub use topic::{Filter, Overflow, Subscription, Topic};

/// The order of a [`QueueConfig`] (also the spec's `frontier.order`).
pub use crate::spec::QueueOrder;
/// What [`Delivery::id`] returns.
pub use crate::supervise::blame::DeliveryId;

/// A registry of named topics and queues, shared by every actor of a runtime.
#[derive(Clone, Default)]
pub struct Bus {
    topics: Arc<DashMap<String, Arc<dyn Channel>>>,
    queues: Arc<DashMap<String, Arc<dyn Channel>>>,
    patterns: Arc<pattern::PatternRegistry>,
}

/// A topic or queue of any message type, as the registry holds it.
trait Channel: Send + Sync {
    fn as_any(&self) -> &(dyn Any + Send + Sync);
    fn close(&self);
    /// Messages buffered for subscribers that read them as streams.
    fn streamed_backlog(&self) -> usize {
        0
    }
    /// The message type's name.
    fn message_type(&self) -> &'static str;
}

impl<T: Send + Sync + 'static> Channel for Topic<T> {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
    fn close(&self) {
        Topic::close(self);
    }
    fn streamed_backlog(&self) -> usize {
        Topic::streamed_backlog(self)
    }
    fn message_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

impl<T: Send + Sync + 'static> Channel for Queue<T> {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
    fn close(&self) {
        Queue::close(self);
    }
    fn message_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A channel exists under that name with another message type. The module docs list the
/// built-in channels' types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bus {kind} '{name}' carries {found}, not {expected}")]
pub struct WrongType {
    /// The channel's name.
    pub name: String,
    /// `topic` or `queue`.
    pub kind: &'static str,
    /// The message type asked for (`std::any::type_name`).
    pub expected: &'static str,
    /// The message type the channel was created with.
    pub found: &'static str,
}

/// The channel as a `Topic<T>`/`Queue<T>`, or the error naming both types.
fn typed<C: Clone + 'static, T: 'static>(
    entry: &Arc<dyn Channel>,
    name: &str,
    kind: &'static str,
) -> Result<C, WrongType> {
    entry.as_any().downcast_ref::<C>().cloned().ok_or_else(|| WrongType {
        name: name.to_string(),
        kind,
        expected: std::any::type_name::<T>(),
        found: entry.message_type(),
    })
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// The topic with this name, created on first use. A new topic is attached at once to
    /// the live pattern subscriptions of its message type whose glob matches its name.
    pub fn topic<T: Send + Sync + 'static>(&self, name: &str) -> Result<Topic<T>, WrongType> {
        let entry = match self.topics.get(name) {
            Some(entry) => entry.clone(),
            None => self
                .topics
                .entry(name.to_string())
                .or_insert_with(|| {
                    let topic = Topic::<T>::new(name);
                    // Under the map's lock for this name: a pattern subscription registered
                    // after this read finds the topic when it walks the map.
                    for hook in self.patterns.read().unwrap_or_else(|e| e.into_inner()).iter() {
                        hook.offer_topic(&topic);
                    }
                    Arc::new(topic)
                })
                .clone(),
        };
        typed::<Topic<T>, T>(&entry, name, "topic")
    }

    /// Subscribes to every topic of message type `T` whose name matches the Redis-style
    /// glob `pattern` (`*`, `?`, `[...]`, `\` escapes), as Redis PSUBSCRIBE: those that
    /// exist and those [`Bus::topic`] creates later. Topics of another message type are
    /// skipped. One buffer of `capacity` messages with the `overflow` policy serves all of
    /// them; `filter` keeps only the messages for which it is true. Dropping the
    /// subscription unsubscribes from every topic.
    pub fn subscribe_pattern<T: Send + Sync + 'static>(
        &self,
        pattern: &str,
        capacity: usize,
        overflow: Overflow,
        filter: Option<Filter<T>>,
    ) -> Result<PatternSubscription<T>, PatternError> {
        let pattern = Pattern::new(pattern)?;
        let each_topic = |offer: &dyn Fn(&(dyn Any + Send + Sync))| {
            for entry in self.topics.iter() {
                offer(entry.value().as_any());
            }
        };
        Ok(pattern::subscribe(&self.patterns, each_topic, pattern, capacity, overflow, filter))
    }

    /// Closes every topic and queue that exists, and ends every pattern subscription once
    /// it has read what it holds: the runtime's shutdown.
    pub fn close(&self) {
        for hook in self.patterns.read().unwrap_or_else(|e| e.into_inner()).iter() {
            hook.close();
        }
        for entry in self.topics.iter() {
            entry.value().close();
        }
        for entry in self.queues.iter() {
            entry.value().close();
        }
    }

    /// Messages published on the bus's topics and still buffered in subscriptions that
    /// are read as streams ([`Subscription::shared_stream`], an actor's `add_stream`): the
    /// work the actors reading them have yet to do. The runtime waits for it to reach 0
    /// before it stops the user's actors.
    pub fn streamed_backlog(&self) -> usize {
        self.topics.iter().map(|entry| entry.value().streamed_backlog()).sum()
    }

    /// The queue with this name; `config` applies if this call creates it.
    pub fn queue<T: Send + Sync + 'static>(
        &self,
        name: &str,
        config: QueueConfig,
    ) -> Result<Queue<T>, WrongType> {
        let entry = self
            .queues
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Queue::<T>::new(name, config)))
            .clone();
        typed::<Queue<T>, T>(&entry, name, "queue")
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("topics", &self.topics.len())
            .field("queues", &self.queues.len())
            .field("patterns", &self.patterns.read().map_or(0, |p| p.len()))
            .finish()
    }
}
