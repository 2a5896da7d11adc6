//! The local message bus: publish/subscribe [`Topic`]s and point-to-point [`Queue`]s with
//! acknowledged deliveries.
//!
//! The crawl's own channels are the `requests` and `pages` queues and the `items` and
//! `events` topics; an embedding program reaches them, and adds its own, through [`Bus`].

mod queue;
mod topic;

use std::any::Any;
use std::sync::Arc;

use dashmap::DashMap;

pub use queue::{Closed, Consumer, DeadLetter, Delivery, PublishError, Queue, QueueConfig, QueueStats};
pub use topic::{Filter, Overflow, Subscription, Topic};

/// A registry of named topics and queues, shared by every actor of a runtime.
#[derive(Clone, Default)]
pub struct Bus {
    topics: Arc<DashMap<String, Arc<dyn Any + Send + Sync>>>,
    queues: Arc<DashMap<String, Arc<dyn Any + Send + Sync>>>,
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

    /// The topic with this name, created on first use.
    pub fn topic<T: Send + Sync + 'static>(&self, name: &str) -> Result<Topic<T>, WrongType> {
        let entry =
            self.topics.entry(name.to_string()).or_insert_with(|| Arc::new(Topic::<T>::new(name))).clone();
        entry.downcast_ref::<Topic<T>>().cloned().ok_or_else(|| WrongType(name.to_string()))
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
        entry.downcast_ref::<Queue<T>>().cloned().ok_or_else(|| WrongType(name.to_string()))
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("topics", &self.topics.len()).field("queues", &self.queues.len()).finish()
    }
}
