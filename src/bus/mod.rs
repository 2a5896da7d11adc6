//! The local message bus: publish/subscribe [`Topic`]s (by name, or by glob with
//! [`Bus::subscribe_pattern`]) and point-to-point [`Queue`]s with acknowledged deliveries.
//! docs/bus.md has each channel's guarantees and how they map to Redis, RabbitMQ and Kafka.
//!
//! The crawl's own channels are the `requests` and `pages` queues and the `items` and
//! `events` topics; an embedding program reaches them, and adds its own, through [`Bus`].

mod pattern;
mod queue;
mod schedule;
mod topic;

use std::any::Any;
use std::sync::Arc;

use dashmap::DashMap;

pub use pattern::{Pattern, PatternError, PatternSubscription};
pub use queue::{Closed, Consumer, DeadLetter, Delivery, PublishError, Queue, QueueConfig, QueueStats};
pub use schedule::{
    parse_coordinates, parse_cron, parse_timezone, run_schedule, run_schedule_from, solar_event_on, Firing,
    Resume, Schedule, ScheduleError, SystemClock, TokioClock, Trigger, WallClock, DEFAULT_GRACE,
};
pub use topic::{Filter, Overflow, Subscription, Topic};

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
}

impl<T: Send + Sync + 'static> Channel for Queue<T> {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
    fn close(&self) {
        Queue::close(self);
    }
}

/// A channel exists under that name with another message type.
#[derive(Debug, thiserror::Error)]
#[error("bus channel '{0}' exists with another message type")]
pub struct WrongType(pub String);

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
        entry.as_any().downcast_ref::<Topic<T>>().cloned().ok_or_else(|| WrongType(name.to_string()))
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
        entry.as_any().downcast_ref::<Queue<T>>().cloned().ok_or_else(|| WrongType(name.to_string()))
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
