//! `frontier: { backend: amqp }`: the crawl's requests as persistent messages on a durable
//! RabbitMQ queue (`<name>.requests`), shared by every process of the crawl.
//!
//! - **admit**: each link new to the shared seen-set (a Redis set, `brokers.redis`:
//!   RabbitMQ has none) is published persistent on a confirm channel; `admit` returns when
//!   the broker confirmed every message.
//! - **lease**: one consumer per process with manual acks and `basic.qos` = the fetch
//!   concurrency (or `brokers.amqp.prefetch`); deliveries wait in a local buffer until the
//!   scheduler leases them. A token is the consumer channel's epoch and the delivery tag.
//! - **ack**: `basic.ack` of the delivery, only when the request is fully done. A process
//!   that dies (or loses its connection) leaves its unacked messages to the broker, which
//!   delivers them again to the others: no lease expires, [`SharedStore::lease_duration`] is
//!   `None`.
//! - **pending**: a process that holds nothing closes its consumer channel (so its buffered
//!   deliveries go back to the queue), then reads the queue's ready messages and consumers
//!   with a passive `queue.declare`. A consumer is open exactly while its process holds or
//!   may get work, and the broker requeues a closed channel's messages in the same step as it
//!   drops its consumer, so "no message ready and no consumer" means nothing is queued or
//!   held anywhere. A process reopens its consumer when it sees ready messages.
//! - **reconnect**: any failed call drops the connection; the next call connects again
//!   with backoff, declares the topology and the queues again and resumes consuming.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use serde::{Deserialize, Serialize};

use super::broker::AmqpBroker;
use super::config::{QueueSpec, QueueType};
use super::topology;
use crate::bridges::counters::Backoff;
use crate::bridges::redis::frontier::TAKE_ITEMS_SCRIPT;
use crate::bridges::BridgeError;
use crate::crawl::shared::{
    parse_start_url, Admit, LeaseToken, Leased, Pending, SharedStore, StoreError, StoreResult,
};
use crate::spec::{CrawlSpec, QueueOrder};
use crate::state::PendingRequest;

/// The `x-max-priority` of the requests queue with `order: priority`: rule priorities are
/// clamped to 0..=this (RabbitMQ advises at most 10 levels).
pub const MAX_PRIORITY: u8 = 10;

/// How long `lease` waits for a delivery when the buffer is empty and the consumer is open.
const LEASE_WAIT: Duration = Duration::from_millis(50);

/// Tries of one admit's publish (each reconnecting for up to [`RECONNECT_FOR`]) before it
/// fails: the broker may be away for minutes.
const ADMIT_ATTEMPTS: u32 = 5;

/// How long one call keeps trying to reconnect before it gives up (the next call tries again).
const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// A request as a message body: the request's fields and its priority (spelled out, not
/// `#[serde(flatten)]`: flattening cannot carry the `u128` fingerprints of a redirect chain).
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    url: String,
    depth: u32,
    #[serde(default)]
    redirect_chain: Vec<u128>,
    #[serde(default)]
    priority: i32,
}

impl Message {
    fn new(request: PendingRequest, priority: i32) -> Self {
        Self { url: request.url, depth: request.depth, redirect_chain: request.redirect_chain, priority }
    }

    fn into_request(self) -> (PendingRequest, i32) {
        (
            PendingRequest { url: self.url, depth: self.depth, redirect_chain: self.redirect_chain },
            self.priority,
        )
    }
}

/// A delivery waiting to be leased.
struct Buffered {
    epoch: u64,
    tag: u64,
    redelivered: bool,
    request: PendingRequest,
    priority: i32,
}

/// The connection and its long-lived channels.
struct Link {
    generation: u64,
    connection: Connection,
    publish: Channel,
    control: Channel,
}

#[derive(Default)]
struct State {
    /// The current consumer channel's epoch; deliveries and tokens of older epochs are
    /// void (the broker took their messages back).
    epoch: u64,
    /// The consumer channel, while consuming.
    consumer: Option<Channel>,
    /// Whether this process wants a consumer (it is not idle).
    wanted: bool,
    buffer: VecDeque<Buffered>,
    /// Leases held: (epoch, tag) -> redelivered.
    held: HashMap<(u64, u64), bool>,
}

struct Inner {
    broker: AmqpBroker,
    queue: QueueSpec,
    /// A routed crawl's: the direct exchange requests are published to, and this queue's
    /// routing key (its binding); `None`: the default exchange, to the queue's name.
    exchange: Option<(String, String)>,
    /// Whether this process consumes the queue (a `--queues` worker may only publish to it).
    consume: bool,
    start_queue: String,
    prefetch: u16,
    priorities: bool,
    seen: ::redis::aio::ConnectionManager,
    seen_key: String,
    queued_key: String,
    redis_url: String,
    link: tokio::sync::Mutex<Option<Link>>,
    generations: AtomicU64,
    state: Mutex<State>,
    delivered: tokio::sync::Notify,
    reconnects: AtomicU64,
    unreadable: AtomicU64,
    claim_prefix: String,
}

/// A frontier kept in a RabbitMQ queue (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct AmqpFrontier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpFrontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpFrontier").field("queue", &self.inner.queue.name).finish()
    }
}

/// Which queue an [`AmqpFrontier`] keeps, and how (one queue of a routed crawl:
/// [`super::open_routed`]).
#[derive(Debug, Clone)]
pub struct QueueRole {
    /// The queue's name.
    pub queue: String,
    /// The direct exchange to publish to and this queue's routing key (it is bound with
    /// it); `None`: the default exchange.
    pub exchange: Option<(String, String)>,
    /// Consume it (else only publish to it and count it).
    pub consume: bool,
    /// The consumer's prefetch (`brokers.amqp.prefetch` wins).
    pub prefetch: u16,
}

/// The requests queue of crawl `name`.
pub fn requests_queue(spec: &CrawlSpec) -> String {
    spec.frontier.amqp.queue.clone().unwrap_or_else(|| format!("{}.requests", spec.name))
}

/// The start URLs queue of crawl `name`.
pub fn start_queue(spec: &CrawlSpec) -> String {
    spec.frontier.amqp.start_queue.clone().unwrap_or_else(|| format!("{}.start_urls", spec.name))
}

/// The Redis key of the seen-set of crawl `name`.
pub fn seen_key(name: &str) -> String {
    format!("arachne:{name}:amqp:seen")
}

impl AmqpFrontier {
    /// Connects to `brokers.amqp` and `brokers.redis` (the seen-set), declares the topology
    /// and the frontier's queues, and starts consuming: a wrong address, login or a
    /// conflicting declaration is an error here, before the crawl.
    pub async fn open(spec: &CrawlSpec) -> Result<Self, BridgeError> {
        let role = QueueRole {
            queue: requests_queue(spec),
            exchange: None,
            consume: true,
            prefetch: spec.fetch.concurrency.clamp(1, u32::from(u16::MAX)) as u16,
        };
        Self::open_queue(spec, role).await
    }

    /// [`AmqpFrontier::open`] for one queue of a routed crawl (see [`QueueRole`]).
    pub async fn open_queue(spec: &CrawlSpec, role: QueueRole) -> Result<Self, BridgeError> {
        let broker = AmqpBroker::from_spec(spec, "the frontier")?;
        let redis_spec = spec.brokers.redis.as_ref().ok_or_else(|| BridgeError::NoBroker {
            broker: "redis",
            user: "`frontier.backend: amqp` (its shared seen-set)".into(),
        })?;
        let redis = crate::bridges::redis::RedisBroker::from_spec(redis_spec)?;
        redis.check().await?;
        let seen = ::redis::aio::ConnectionManager::new(redis.client().clone())
            .await
            .map_err(|e| redis.error(&e))?;
        let priorities = spec.frontier.order == QueueOrder::Priority;
        let queue = QueueSpec {
            name: role.queue,
            durable: true,
            exclusive: false,
            auto_delete: false,
            kind: spec.frontier.amqp.kind,
            max_priority: priorities.then_some(MAX_PRIORITY),
            dead_letter_exchange: spec.frontier.amqp.dead_letter_exchange.clone(),
            dead_letter_routing_key: spec.frontier.amqp.dead_letter_routing_key.clone(),
            message_ttl: None,
            arguments: Default::default(),
        };
        let prefetch = broker.spec().prefetch.unwrap_or(role.prefetch);
        let inner = Inner {
            broker,
            queue,
            exchange: role.exchange,
            consume: role.consume,
            start_queue: start_queue(spec),
            prefetch,
            priorities,
            seen,
            seen_key: seen_key(&spec.name),
            queued_key: format!("arachne:{}:amqp:queued", spec.name),
            redis_url: redis.masked_url().to_string(),
            link: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
            state: Mutex::new(State { wanted: role.consume, ..State::default() }),
            delivered: tokio::sync::Notify::new(),
            reconnects: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            claim_prefix: format!("arachne:{}:amqp", spec.name),
        };
        let frontier = Self { inner: Arc::new(inner) };
        {
            let mut link = frontier.inner.link.lock().await;
            *link = Some(frontier.connect().await?);
        }
        tracing::info!(frontier = %frontier.describe(), "shared frontier in RabbitMQ");
        Ok(frontier)
    }

    /// Connects, declares, opens the publish (confirm) and control channels and, when
    /// wanted, the consumer; all of it within the connect timeout plus [`QUERY_WAIT`] (a
    /// broker that goes away mid-handshake never answers).
    async fn connect(&self) -> Result<Link, BridgeError> {
        let limit = self.inner.broker.connect_timeout() + QUERY_WAIT;
        match tokio::time::timeout(limit, self.connect_unbounded()).await {
            Ok(link) => link,
            Err(_) => Err(self.timed_out("connecting and declaring", limit)),
        }
    }

    fn timed_out(&self, what: &str, limit: Duration) -> BridgeError {
        BridgeError::Unreachable {
            broker: "AMQP",
            url: self.inner.broker.masked_url().to_string(),
            reason: format!("{what} took longer than {limit:?}"),
        }
    }

    async fn connect_unbounded(&self) -> Result<Link, BridgeError> {
        let inner = &self.inner;
        let broker = &inner.broker;
        let connection = broker.connect(&format!("frontier {}", inner.queue.name)).await?;
        let control = connection.create_channel().await.map_err(|e| broker.error(&e))?;
        topology::declare(&control, broker, &broker.spec().topology).await?;
        topology::declare_queue(&control, broker, &inner.queue).await?;
        if let Some((exchange, key)) = &inner.exchange {
            topology::declare_routed(&control, broker, exchange, &inner.queue.name, key).await?;
        }
        let start = QueueSpec {
            name: inner.start_queue.clone(),
            kind: QueueType::Classic,
            max_priority: None,
            ..inner.queue.clone()
        };
        topology::declare_queue(&control, broker, &start).await?;
        let publish = connection.create_channel().await.map_err(|e| broker.error(&e))?;
        publish.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| broker.error(&e))?;
        let generation = inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let link = Link { generation, connection, publish, control };
        let wanted = {
            let mut state = self.state();
            // Whatever this process held came back to the queue with the old connection.
            state.epoch += 1;
            state.consumer = None;
            state.buffer.clear();
            state.held.clear();
            state.wanted
        };
        if wanted {
            self.start_consumer_unbounded(&link).await?;
        }
        Ok(link)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a consumer channel with the prefetch and starts buffering its deliveries,
    /// within [`QUERY_WAIT`].
    async fn start_consumer(&self, link: &Link) -> Result<(), BridgeError> {
        match tokio::time::timeout(QUERY_WAIT, self.start_consumer_unbounded(link)).await {
            Ok(started) => started,
            Err(_) => Err(self.timed_out("opening the consumer", QUERY_WAIT)),
        }
    }

    async fn start_consumer_unbounded(&self, link: &Link) -> Result<(), BridgeError> {
        let broker = &self.inner.broker;
        let channel = link.connection.create_channel().await.map_err(|e| broker.error(&e))?;
        channel
            .basic_qos(self.inner.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| broker.error(&e))?;
        let mut consumer = channel
            .basic_consume(
                self.inner.queue.name.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker.error(&e))?;
        let epoch = {
            let mut state = self.state();
            state.epoch += 1;
            state.consumer = Some(channel.clone());
            state.wanted = true;
            state.epoch
        };
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let delivery = match delivery {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::debug!("amqp frontier: the consumer stopped: {e}");
                        break;
                    }
                };
                let tag = delivery.delivery_tag;
                match serde_json::from_slice::<Message>(&delivery.data) {
                    Ok(message) => {
                        let (request, priority) = message.into_request();
                        let mut state = this.state();
                        if state.epoch == epoch {
                            state.buffer.push_back(Buffered {
                                epoch,
                                tag,
                                redelivered: delivery.redelivered,
                                request,
                                priority,
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!("amqp frontier: dropping a message that is not a request: {e}");
                        this.inner.unreadable.fetch_add(1, Ordering::Relaxed);
                        let _ = channel.basic_ack(tag, BasicAckOptions::default()).await;
                    }
                }
                this.inner.delivered.notify_waiters();
            }
        });
        Ok(())
    }

    /// The live connection's channels, reconnecting (with backoff, for up to a minute) when
    /// there is none.
    async fn link(&self) -> StoreResult<(u64, Channel, Channel)> {
        let mut guard = self.inner.link.lock().await;
        if let Some(link) = guard.as_ref() {
            if link.connection.status().connected()
                && link.publish.status().connected()
                && link.control.status().connected()
            {
                return Ok((link.generation, link.publish.clone(), link.control.clone()));
            }
            tracing::warn!(broker = %self.inner.broker.masked_url(), "amqp frontier: the connection is down; reconnecting");
            *guard = None;
        }
        let mut backoff = Backoff::new();
        let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
        loop {
            match self.connect().await {
                Ok(link) => {
                    self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(broker = %self.inner.broker.masked_url(), "amqp frontier: reconnected, topology declared, consuming again");
                    let channels = (link.generation, link.publish.clone(), link.control.clone());
                    *guard = Some(link);
                    return Ok(channels);
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let wait = backoff.next_wait();
                    tracing::warn!("amqp frontier: reconnecting failed ({e}); next try in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(StoreError::new(e)),
            }
        }
    }

    /// A call on connection `generation` failed: drop it so the next call reconnects.
    async fn failed(&self, generation: u64, e: &lapin::Error) -> StoreError {
        self.drop_link(generation).await;
        StoreError::new(self.inner.broker.error(e))
    }

    async fn drop_link(&self, generation: u64) {
        let mut guard = self.inner.link.lock().await;
        if guard.as_ref().is_some_and(|l| l.generation == generation) {
            if let Some(link) = guard.take() {
                let _ = bounded(link.connection.close(320, "arachne: reconnecting".into())).await;
            }
        }
    }

    /// Admits a batch: the seen-set, then the publish with confirms, then the `queued`
    /// set. Each step is retried (the broker step across reconnections, with backoff) for
    /// up to [`ADMIT_ATTEMPTS`] tries: the request whose links these are is acked only after
    /// this returns, and a link marked seen but never published would be lost.
    async fn admit_batch(&self, batch: Vec<Admit>) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // The shared seen-set first: SADD answers 1 for a fingerprint no process had. The
        // `queued` set says which of them the broker confirmed.
        let mut pipe = ::redis::pipe();
        for (fp, _, _) in &batch {
            let member = format!("{:032x}", fp.0);
            pipe.cmd("SADD").arg(&self.inner.seen_key).arg(&member);
            pipe.cmd("SISMEMBER").arg(&self.inner.queued_key).arg(&member);
        }
        let (answers, retried): (Vec<i64>, bool) = self
            .retry("the seen-set", || {
                let (pipe, mut conn) = (pipe.clone(), self.inner.seen.clone());
                async move { pipe.query_async(&mut conn).await }
            })
            .await?;
        // A process that died between its SADD and the broker's confirm left links seen but
        // never queued; its request comes back redelivered. While this process holds a
        // redelivered request (or after its own SADD had to be retried), links seen but not
        // confirmed as queued are published again (a duplicate only if another live process
        // is inside that same window).
        let force = retried || self.state().held.values().any(|redelivered| *redelivered);
        let new: Vec<_> = batch
            .into_iter()
            .zip(answers.chunks(2))
            .filter(|(_, a)| a[0] == 1 || (force && a[1] == 0))
            .map(|(admit, _)| admit)
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut attempt = 1;
        while let Err(e) = self.publish_confirmed(&new).await {
            if attempt >= ADMIT_ATTEMPTS {
                return Err(e);
            }
            attempt += 1;
            tracing::warn!(
                "amqp frontier: publishing {} requests failed ({e}); retrying after a reconnection",
                new.len()
            );
        }
        let members: Vec<String> = new.iter().map(|(fp, _, _)| format!("{:032x}", fp.0)).collect();
        let mut cmd = ::redis::cmd("SADD");
        cmd.arg(&self.inner.queued_key).arg(&members);
        let _: (i64, bool) = self
            .retry("the queued set", || {
                let (cmd, mut conn) = (cmd.clone(), self.inner.seen.clone());
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        Ok(())
    }

    /// A Redis call, retried with backoff; also says whether it had to be retried.
    async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> StoreResult<(T, bool)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        let mut backoff = Backoff::new();
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok((v, attempt > 1)),
                Err(e) if attempt < ADMIT_ATTEMPTS * 10 => {
                    let wait = backoff.next_wait();
                    tracing::warn!("amqp frontier: Redis ({what}) failed ({e}); next try in {wait:?}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.redis_error(e)),
            }
        }
    }

    /// Publishes the requests persistent and waits for every confirm, for at most
    /// [`CONFIRM_WAIT`] (a publish sent as the connection died may never be answered).
    async fn publish_confirmed(&self, new: &[Admit]) -> StoreResult<()> {
        let (generation, publish, _) = self.link().await?;
        match tokio::time::timeout(CONFIRM_WAIT, self.publish_on(generation, &publish, new)).await {
            Ok(done) => done,
            Err(_) => {
                self.drop_link(generation).await;
                Err(StoreError::new(BridgeError::Amqp {
                    url: self.inner.broker.masked_url().to_string(),
                    reason: format!("no publisher confirm within {CONFIRM_WAIT:?}"),
                }))
            }
        }
    }

    async fn publish_on(&self, generation: u64, publish: &Channel, new: &[Admit]) -> StoreResult<()> {
        let mut confirms = Vec::with_capacity(new.len());
        let (exchange, key) = match &self.inner.exchange {
            Some((exchange, key)) => (exchange.as_str(), key.as_str()),
            None => ("", self.inner.queue.name.as_str()),
        };
        // Through a routed crawl's exchange, an unroutable request (its binding deleted)
        // comes back, and is an error: never dropped quietly.
        let options = BasicPublishOptions { mandatory: self.inner.exchange.is_some(), ..Default::default() };
        for (_, request, priority) in new {
            let message = Message::new(request.clone(), *priority);
            let body = serde_json::to_vec(&message).map_err(StoreError::new)?;
            let mut properties = BasicProperties::default().with_delivery_mode(2);
            if self.inner.priorities {
                properties = properties.with_priority((*priority).clamp(0, i32::from(MAX_PRIORITY)) as u8);
            }
            let sent = publish.basic_publish(exchange.into(), key.into(), options, &body, properties).await;
            match sent {
                Ok(confirm) => confirms.push(confirm),
                Err(e) => return Err(self.failed(generation, &e).await),
            }
        }
        for confirm in confirms {
            match confirm.await {
                Ok(Confirmation::Ack(None)) => {}
                Ok(other) => {
                    return Err(StoreError::new(BridgeError::Amqp {
                        url: self.inner.broker.masked_url().to_string(),
                        reason: format!("the broker did not confirm a request: {other:?}"),
                    }))
                }
                Err(e) => return Err(self.failed(generation, &e).await),
            }
        }
        Ok(())
    }

    fn redis_error(&self, e: ::redis::RedisError) -> StoreError {
        StoreError::new(BridgeError::Redis { url: self.inner.redis_url.clone(), reason: e.to_string() })
    }

    async fn lease_some(&self, max: usize) -> StoreResult<Vec<Leased>> {
        let _ = self.link().await?;
        let notified = self.inner.delivered.notified();
        let wait = {
            let state = self.state();
            state.buffer.is_empty() && state.consumer.is_some()
        };
        if wait {
            let _ = tokio::time::timeout(LEASE_WAIT, notified).await;
        }
        let mut state = self.state();
        let mut leased = Vec::new();
        while leased.len() < max {
            let Some(b) = state.buffer.pop_front() else { break };
            if b.epoch != state.epoch {
                continue;
            }
            state.held.insert((b.epoch, b.tag), b.redelivered);
            leased.push(Leased {
                token: LeaseToken::new(format!("{}:{}", b.epoch, b.tag)),
                request: b.request,
                priority: b.priority,
            });
        }
        Ok(leased)
    }

    /// Acks the deliveries of `tokens`, or (`reject`) rejects them without requeue, so the
    /// broker sends them to the queue's dead-letter exchange.
    async fn settle(&self, tokens: Vec<LeaseToken>, reject: bool) -> StoreResult<()> {
        let (channel, acks) = {
            let mut state = self.state();
            let mut acks = Vec::new();
            for token in &tokens {
                let Some((epoch, tag)) = parse_token(token) else { continue };
                state.held.remove(&(epoch, tag));
                if epoch == state.epoch {
                    acks.push(tag);
                }
            }
            (state.consumer.clone().map(|c| (state.epoch, c)), acks)
        };
        // A token of an older epoch: its message went back to the queue with its channel.
        let Some((epoch, channel)) = channel else { return Ok(()) };
        for tag in acks {
            let acked = if reject {
                let options = BasicNackOptions { requeue: false, ..Default::default() };
                tokio::time::timeout(QUERY_WAIT, channel.basic_nack(tag, options)).await
            } else {
                tokio::time::timeout(QUERY_WAIT, channel.basic_ack(tag, BasicAckOptions::default())).await
            };
            let failure = match acked {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => self.inner.broker.error(&e),
                Err(_) => self.timed_out("an ack", QUERY_WAIT),
            };
            // The consumer channel is gone (the broker requeues what it held): forget its
            // deliveries and leases, and consume on a new channel.
            tracing::warn!("amqp frontier: ack failed ({failure}); the broker delivers the request again");
            self.consumer_lost(epoch, &channel).await;
            return Err(StoreError::new(failure));
        }
        Ok(())
    }

    /// The consumer channel of `epoch` failed: if it is still the current one, drop it with
    /// what it held and open another on the live connection.
    async fn consumer_lost(&self, epoch: u64, channel: &Channel) {
        let guard = self.inner.link.lock().await;
        let current = {
            let mut state = self.state();
            let current = state.epoch == epoch && state.consumer.is_some();
            if current {
                state.consumer = None;
                state.epoch += 1;
                state.buffer.clear();
                state.held.clear();
            }
            current
        };
        if !current {
            return;
        }
        let _ = bounded(channel.close(200, "arachne: consumer channel failed".into())).await;
        if let Some(link) = guard.as_ref() {
            if let Err(e) = self.start_consumer(link).await {
                tracing::warn!("amqp frontier: cannot consume again ({e}); the next call reconnects");
            }
        }
    }

    async fn release_tokens(&self, tokens: Vec<LeaseToken>) -> StoreResult<usize> {
        let (channel, tags) = {
            let mut state = self.state();
            let mut tags = Vec::new();
            for token in &tokens {
                let Some((epoch, tag)) = parse_token(token) else { continue };
                if state.held.remove(&(epoch, tag)).is_some() && epoch == state.epoch {
                    tags.push(tag);
                }
            }
            (state.consumer.clone(), tags)
        };
        let Some(channel) = channel else { return Ok(0) };
        let mut released = 0;
        for tag in tags {
            let options = BasicNackOptions { requeue: true, ..Default::default() };
            match tokio::time::timeout(QUERY_WAIT, channel.basic_nack(tag, options)).await {
                Ok(Ok(())) => released += 1,
                // The channel is gone: the broker requeued them already.
                Ok(Err(e)) => return Err(StoreError::new(self.inner.broker.error(&e))),
                Err(_) => return Err(StoreError::new(self.timed_out("a nack", QUERY_WAIT))),
            }
        }
        Ok(released)
    }

    async fn take_starts(&self, max: usize) -> StoreResult<Vec<String>> {
        let (generation, _, control) = self.link().await?;
        let mut urls = Vec::new();
        while urls.len() < max {
            let get =
                control.basic_get(self.inner.start_queue.as_str().into(), BasicGetOptions { no_ack: true });
            let Ok(got) = tokio::time::timeout(QUERY_WAIT, get).await else {
                self.drop_link(generation).await;
                return Err(StoreError::new(format!("no answer to basic.get within {QUERY_WAIT:?}")));
            };
            match got {
                Ok(Some(message)) => {
                    if let Some(url) = parse_start_url(&String::from_utf8_lossy(&message.delivery.data)) {
                        urls.push(url);
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.failed(generation, &e).await),
            }
        }
        Ok(urls)
    }

    async fn pending_now(&self) -> StoreResult<Pending> {
        let (generation, _, control) = self.link().await?;
        // Idle here (nothing held, nothing buffered): close the consumer, so that "no
        // consumer" on the queue means "nobody holds anything".
        let (held, buffered, closing) = {
            let mut state = self.state();
            let held = state.held.len() as u64;
            let buffered = state.buffer.len() as u64;
            let closing = if held == 0 && buffered == 0 {
                state.wanted = false;
                state.epoch += 1;
                state.consumer.take()
            } else {
                None
            };
            (held, buffered, closing)
        };
        if let Some(channel) = closing {
            if let Err(e) = bounded(channel.close(200, "arachne: idle".into())).await {
                return Err(self.failed(generation, &e).await);
            }
        }
        let queue = match topology::inspect_queue(&control, &self.inner.broker, &self.inner.queue.name).await
        {
            Ok(q) => q,
            Err(e) => {
                self.inner.link.lock().await.take();
                return Err(StoreError::new(e));
            }
        };
        let ready = u64::from(queue.message_count());
        let consumers = u64::from(queue.consumer_count());
        if held > 0 || buffered > 0 {
            return Ok(Pending { queued: ready + buffered, leased: held.max(1) });
        }
        if ready > 0 && self.inner.consume {
            let guard = self.inner.link.lock().await;
            if let Some(link) = guard.as_ref() {
                if let Err(e) = self.start_consumer(link).await {
                    drop(guard);
                    self.inner.link.lock().await.take();
                    return Err(StoreError::new(e));
                }
            }
        }
        Ok(Pending { queued: ready, leased: consumers })
    }

    async fn close_all(&self) {
        let consumer = self.state().consumer.take();
        if let Some(channel) = consumer {
            let _ = bounded(channel.close(200, "arachne: done".into())).await;
        }
        if let Some(link) = self.inner.link.lock().await.take() {
            let _ = bounded(link.connection.close(200, "arachne: done".into())).await;
        }
    }
}

/// How long an admit waits for the broker's confirms before it reconnects and publishes again.
const CONFIRM_WAIT: Duration = Duration::from_secs(30);

/// How long a query (a passive declare, a `basic.get`) may take before the connection is
/// taken for dead.
const QUERY_WAIT: Duration = Duration::from_secs(10);

/// How long closing a channel or a connection may take: on a connection that died, the
/// broker's `close-ok` never comes.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Runs a close for at most [`CLOSE_WAIT`]; a timeout counts as closed (the connection is
/// gone, and the broker requeues what it held).
async fn bounded(close: impl std::future::Future<Output = lapin::Result<()>>) -> lapin::Result<()> {
    tokio::time::timeout(CLOSE_WAIT, close).await.unwrap_or(Ok(()))
}

fn parse_token(token: &LeaseToken) -> Option<(u64, u64)> {
    let (epoch, tag) = token.as_str().split_once(':')?;
    Some((epoch.parse().ok()?, tag.parse().ok()?))
}

impl SharedStore for AmqpFrontier {
    fn describe(&self) -> String {
        format!(
            "AMQP queue '{}' at {} (seen-set: Redis set '{}' at {})",
            self.inner.queue.name,
            self.inner.broker.masked_url(),
            self.inner.seen_key,
            self.inner.redis_url
        )
    }

    fn admit(&self, batch: Vec<Admit>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move { this.admit_batch(batch).await })
    }

    fn lease(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<Leased>>> {
        let this = self.clone();
        Box::pin(async move { this.lease_some(max).await })
    }

    fn ack(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        Box::pin(async move { this.settle(tokens, false).await })
    }

    /// Rejected without requeue when the requests queue has a dead-letter exchange (the
    /// broker routes them there); acked otherwise.
    fn dead_letter(&self, letters: Vec<(LeaseToken, String)>) -> BoxFuture<'static, StoreResult<()>> {
        let this = self.clone();
        let reject = self.inner.queue.dead_letter_exchange.is_some();
        let tokens = letters.into_iter().map(|(token, _)| token).collect();
        Box::pin(async move { this.settle(tokens, reject).await })
    }

    fn lease_duration(&self) -> Option<Duration> {
        None
    }

    /// `basic.nack` with requeue: the broker delivers them to the others at once.
    fn release(&self, tokens: Vec<LeaseToken>) -> BoxFuture<'static, StoreResult<usize>> {
        let this = self.clone();
        Box::pin(async move { this.release_tokens(tokens).await })
    }

    fn take_start_urls(&self, max: usize) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        let this = self.clone();
        Box::pin(async move { this.take_starts(max).await })
    }

    /// `SET arachne:<name>:amqp:tick:<key> 1 NX PX <hold>` in the seen-set's Redis: the first
    /// process to ask wins (RabbitMQ has no such key).
    fn claim(&self, key: String, hold: Duration) -> BoxFuture<'static, StoreResult<bool>> {
        let this = self.clone();
        Box::pin(async move {
            let mut cmd = ::redis::cmd("SET");
            cmd.arg(format!("{}:tick:{key}", this.inner.claim_prefix))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1));
            let mut conn = this.inner.seen.clone();
            let set: Option<String> = cmd.query_async(&mut conn).await.map_err(|e| this.redis_error(e))?;
            Ok(set.is_some())
        })
    }

    /// `max_items` counted in the seen-set's Redis (`arachne:<name>:amqp:items`), as the
    /// Redis frontier counts it.
    fn take_items(&self, wanted: u64, limit: u64) -> Option<BoxFuture<'static, StoreResult<(u64, bool)>>> {
        let this = self.clone();
        Some(Box::pin(async move {
            let key = format!("{}:items", this.inner.claim_prefix);
            let ((granted, count), _): ((u64, u64), bool) = this
                .retry("the item count", || {
                    let mut conn = this.inner.seen.clone();
                    let mut invocation = TAKE_ITEMS_SCRIPT.prepare_invoke();
                    invocation.key(&key).arg(wanted).arg(limit);
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            Ok((granted, count >= limit))
        }))
    }

    /// Requests messages that were not requests (acked and dropped, with a warning).
    fn dead_letters(&self) -> u64 {
        self.inner.unreadable.load(Ordering::Relaxed)
    }

    fn pending(&self) -> BoxFuture<'static, StoreResult<Pending>> {
        let this = self.clone();
        Box::pin(async move { this.pending_now().await })
    }

    fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { this.close_all().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_messages() {
        assert_eq!(parse_token(&LeaseToken::new("3:17")), Some((3, 17)));
        assert_eq!(parse_token(&LeaseToken::new("x")), None);
        let request =
            PendingRequest { url: "http://a/".into(), depth: 2, redirect_chain: vec![u128::MAX, 7] };
        let text = serde_json::to_string(&Message::new(request.clone(), 3)).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"url":"http://a/","depth":2,"redirect_chain":[{},7],"priority":3}}"#, u128::MAX)
        );
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back.into_request(), (request, 3));
        // A plain producer's message: no chain, no priority.
        let plain: Message = serde_json::from_str(r#"{"url":"http://b/","depth":0}"#).unwrap();
        assert_eq!(plain.into_request().1, 0);
    }
}
