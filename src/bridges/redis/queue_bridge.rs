//! The `redis-queue` bridge: a local queue <-> a Redis list (`fifo`, `lifo`) or sorted set
//! (`priority`), scrapy-redis's three queue kinds, with a reliable pop.
//!
//! - **out**: each message of a local `Queue<serde_json::Value>` is pushed (as JSON) to the
//!   Redis key, and acked locally once Redis took it (a failure nacks it back to the local
//!   queue and the bridge retries with backoff).
//! - **in**: entries are leased from the Redis key (a lease in `<key>:leases` that
//!   expires, renewed while held), published on a local `Queue<RedisQueueMessage>`, and
//!   removed from Redis only when the local consumer has acked the delivery (or it was
//!   dead-lettered locally). A process that dies loses nothing: its leases expire and any
//!   bridge on the same key (this process restarted, or another) puts them back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;
use serde::Serialize;
use tokio::sync::mpsc;

use super::frontier::RedisFrontier;
use super::{Backoff, BridgeCounters, BridgeError, RedisBroker};
use crate::bridges::counters::{run_bridge, Runner};
use crate::bus::{Bus, Queue, QueueConfig, TryPublishError};
use crate::spec::{BridgeDirection, BridgeSpec, QueueOrder};

/// The local queue's capacity (the most entries leased and not yet acked locally).
const LOCAL_CAPACITY: usize = 256;
/// How often an idle inbound bridge looks at the Redis key.
const POLL: Duration = Duration::from_millis(100);
/// The lease when the spec gives none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// A message taken from a Redis queue, as an inbound bridge publishes it on its local
/// queue. Its Redis lease is acknowledged when the message is dropped after the local
/// delivery was acked (or dead-lettered); until then it is held, and renewed.
#[derive(Debug, Serialize)]
pub struct RedisQueueMessage {
    /// The Redis key it came from.
    pub key: String,
    /// The entry: parsed JSON when it is JSON; otherwise the text as a JSON string.
    pub payload: serde_json::Value,
    #[serde(skip)]
    receipt: Receipt,
}

/// Sends its lease token back to the bridge when the message is gone.
#[derive(Debug)]
struct Receipt {
    token: Vec<u8>,
    done: mpsc::UnboundedSender<Vec<u8>>,
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if !self.token.is_empty() {
            let _ = self.done.send(std::mem::take(&mut self.token));
        }
    }
}

/// A `redis-queue` bridge (see the module documentation): an actor, started by the runtime
/// from `bridges:`, or by you with `RuntimeBuilder::actor`.
pub struct RedisQueueBridge {
    label: String,
    counters: Arc<BridgeCounters>,
    runner: Runner,
}

impl std::fmt::Debug for RedisQueueBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueBridge").field("label", &self.label).finish()
    }
}

impl RedisQueueBridge {
    /// The bridge a `bridges:` entry describes: `channel` is the Redis key, `topic` the
    /// local queue, `order` the key's kind, `lease` how long an entry is held unacked.
    pub fn from_spec(broker: &RedisBroker, spec: &BridgeSpec, bus: &Bus) -> Result<Self, BridgeError> {
        let key = spec.channel.clone().unwrap_or_default();
        let order = spec.order.unwrap_or_default();
        let lease = spec.lease.map_or(DEFAULT_LEASE, |l| l.0);
        let config = QueueConfig { capacity: LOCAL_CAPACITY, order: QueueOrder::Fifo, max_deliveries: 5 };
        Ok(match spec.direction {
            BridgeDirection::In => Self::inbound(broker, &key, order, lease, bus.queue(&spec.topic, config)?),
            BridgeDirection::Out => Self::outbound(broker, &key, order, bus.queue(&spec.topic, config)?),
        })
    }

    /// Redis `key` (of kind `order`) -> the local `queue`, entries held for `lease` at a time.
    pub fn inbound(
        broker: &RedisBroker,
        key: &str,
        order: QueueOrder,
        lease: Duration,
        queue: Queue<RedisQueueMessage>,
    ) -> Self {
        let label = format!("redis-queue {key} -> {}", queue.name());
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Inbound {
            store: RedisFrontier::for_queue(broker, key, order, lease),
            key: key.to_string(),
            lease,
            queue,
            counters: counters.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Self { label, counters, runner }
    }

    /// The local `queue` -> Redis `key` (of kind `order`).
    pub fn outbound(
        broker: &RedisBroker,
        key: &str,
        order: QueueOrder,
        queue: Queue<serde_json::Value>,
    ) -> Self {
        let label = format!("{} -> redis-queue {key}", queue.name());
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Outbound {
            store: RedisFrontier::for_queue(broker, key, order, DEFAULT_LEASE),
            queue,
            counters: counters.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Self { label, counters, runner }
    }

    /// Its counters.
    pub fn counters(&self) -> Arc<BridgeCounters> {
        self.counters.clone()
    }

    /// What it bridges.
    pub fn describe(&self) -> &str {
        &self.label
    }
}

impl Actor for RedisQueueBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        run_bridge(&self.runner, &self.counters, ctx);
    }
}

/// A panic restarts the actor; the leases it held expire and come back.
impl Supervised for RedisQueueBridge {}

struct Outbound {
    store: RedisFrontier,
    queue: Queue<serde_json::Value>,
    counters: Arc<BridgeCounters>,
}

impl Outbound {
    /// Until the local queue is closed and empty: push each message, ack it once Redis
    /// has it; on an error, give it back and wait before the next try.
    async fn run(self: Arc<Self>) {
        let consumer = self.queue.consumer(64);
        let mut backoff = Backoff::new();
        while let Some(delivery) = consumer.next().await {
            let entry = match serde_json::to_vec(&**delivery.message()) {
                Ok(e) => e,
                Err(e) => {
                    delivery.reject(format!("not JSON: {e}"));
                    continue;
                }
            };
            match self.store.push_raw(&[(entry, 0)]).await {
                Ok(()) => {
                    delivery.ack();
                    backoff.reset();
                    BridgeCounters::add(&self.counters.forwarded, 1);
                }
                Err(e) => {
                    tracing::warn!("redis-queue bridge: push failed (retried): {e}");
                    delivery.nack(true);
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }
}

struct Inbound {
    store: RedisFrontier,
    key: String,
    lease: Duration,
    queue: Queue<RedisQueueMessage>,
    counters: Arc<BridgeCounters>,
}

impl Inbound {
    /// Until the local queue is closed: lease what the local queue has room for, publish
    /// it, ack in Redis what was acked locally, renew what is held, reap expired leases.
    async fn run(self: Arc<Self>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let mut held: HashSet<Vec<u8>> = HashSet::new();
        let mut renew = tokio::time::interval((self.lease / 3).max(Duration::from_millis(30)));
        let mut reap = tokio::time::interval((self.lease / 2).max(Duration::from_millis(50)));
        let mut poll = tokio::time::interval(POLL);
        while !self.queue.is_closed() {
            tokio::select! {
                Some(token) = done_rx.recv() => {
                    let mut tokens = vec![token];
                    while let Ok(t) = done_rx.try_recv() {
                        tokens.push(t);
                    }
                    for t in &tokens {
                        held.remove(t);
                    }
                    if let Err(e) = self.store.ack_raw(&tokens).await {
                        tracing::warn!("redis-queue bridge: ack failed (the leases expire instead): {e}");
                    }
                }
                _ = renew.tick() => {
                    let tokens: Vec<Vec<u8>> = held.iter().cloned().collect();
                    if let Err(e) = self.store.renew_raw(&tokens).await {
                        tracing::warn!("redis-queue bridge: renewing leases failed: {e}");
                    }
                }
                _ = reap.tick() => {
                    match self.store.reap().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(key = %self.key, entries = n, "redis-queue bridge: took back expired leases"),
                        Err(e) => tracing::warn!("redis-queue bridge: reap failed: {e}"),
                    }
                }
                _ = poll.tick() => self.take(&done_tx, &mut held).await,
            }
        }
    }

    /// Leases what the local queue has room for and publishes it there.
    async fn take(&self, done: &mpsc::UnboundedSender<Vec<u8>>, held: &mut HashSet<Vec<u8>>) {
        let room = self.queue.room();
        if room == 0 {
            return;
        }
        let leased = match self.store.lease_raw(room).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("redis-queue bridge: lease failed: {e}");
                return;
            }
        };
        for (token, entry) in leased {
            held.insert(token.clone());
            let payload = serde_json::from_slice(&entry)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&entry).into_owned()));
            let message = RedisQueueMessage {
                key: self.key.clone(),
                payload,
                receipt: Receipt { token, done: done.clone() },
            };
            // There is room (it was asked for above), so only a closed queue refuses.
            if let Err(TryPublishError { message: mut refused, .. }) = self.queue.try_publish(message, 0) {
                // Not delivered: no ack in Redis; the lease expires and the entry comes back.
                refused.receipt.token.clear();
                return;
            }
            BridgeCounters::add(&self.counters.forwarded, 1);
        }
    }
}
