//! The `redis-pubsub` bridge: a local topic <-> a Redis channel (or, inbound, a pattern),
//! with a heartbeat, reconnection with backoff, and resubscription.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::time::{interval_at, sleep_until, timeout, Instant, MissedTickBehavior};

use super::{Backoff, BridgeCounters, BridgeError, RedisBroker};
use crate::bridges::counters::{run_bridge, Runner};
use crate::bus::{Bus, Firing, Overflow, Subscription, Topic};
use crate::crawl::{Event, PageItems};
use crate::spec::{BridgeDirection, BridgeSpec};

/// Messages an outbound bridge buffers from its local topic (the oldest are dropped past
/// it, and counted as undelivered: a bridge never slows the crawl down).
const OUT_BUFFER: usize = 4096;

/// A message that arrived on a Redis channel, as an inbound bridge publishes it on its
/// local topic (`Topic<ChannelMessage>`) or hands it to a handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMessage {
    /// The Redis channel it was published on.
    pub channel: String,
    /// The PSUBSCRIBE pattern that matched it, for pattern subscriptions.
    pub pattern: Option<String>,
    /// The payload: parsed JSON when it is JSON; otherwise the text as a JSON string
    /// (bytes that are not UTF-8 are replaced by U+FFFD).
    pub payload: serde_json::Value,
}

impl ChannelMessage {
    fn from_msg(msg: &redis::Msg) -> Self {
        let bytes = msg.get_payload_bytes();
        let payload = serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()));
        let pattern = if msg.from_pattern() { msg.get_pattern::<String>().ok() } else { None };
        Self { channel: msg.get_channel_name().to_string(), pattern, payload }
    }
}

/// Which channel, and how the connection is watched.
#[derive(Debug, Clone)]
pub struct PubSubOptions {
    /// The Redis channel; with `pattern`, a PSUBSCRIBE glob (inbound only).
    pub channel: String,
    /// PSUBSCRIBE to `channel` as a glob instead of SUBSCRIBE.
    pub pattern: bool,
    /// Every this long the connection is PINGed, and the answer must come within the same
    /// time; otherwise the connection counts as dead and is replaced (redis-py's
    /// `health_check_interval`). A connection the server closes is noticed at once.
    pub health_check_interval: Duration,
}

impl PubSubOptions {
    /// `channel`, exact, with a 5 s health check.
    pub fn channel(channel: impl Into<String>) -> Self {
        Self { channel: channel.into(), pattern: false, health_check_interval: Duration::from_secs(5) }
    }

    /// `glob`, a PSUBSCRIBE pattern (inbound only), with a 5 s health check.
    pub fn pattern(glob: impl Into<String>) -> Self {
        Self { pattern: true, ..Self::channel(glob) }
    }

    /// Sets the health-check interval.
    pub fn health_check_interval(mut self, every: Duration) -> Self {
        self.health_check_interval = every.max(Duration::from_millis(10));
        self
    }
}

impl From<&str> for PubSubOptions {
    fn from(channel: &str) -> Self {
        Self::channel(channel)
    }
}

/// A `redis-pubsub` bridge, or a per-channel handler: an actor (start it under the
/// runtime's supervisor with `RuntimeBuilder::actor`, or with `Actor::start`), or a plain
/// future ([`PubSubBridge::run`]).
///
/// - **Outbound** ([`PubSubBridge::outbound`]): every message of a local topic is
///   PUBLISHed, as JSON, to one channel. While Redis is unreachable the messages are
///   dropped and counted (`undelivered`); the connection is retried with backoff.
/// - **Inbound** ([`PubSubBridge::inbound`], [`RedisBroker::on_message`]): SUBSCRIBE (or
///   PSUBSCRIBE) on a dedicated connection; each message becomes a [`ChannelMessage`] on
///   a local topic, or a call of the handler. A lost connection is replaced and the
///   subscription made again; what Redis published meanwhile is lost (pub/sub keeps
///   nothing).
///
/// Both watch their connection: a PING every `health_check_interval` that must answer
/// within the same time. Reconnection waits 100 ms, doubling to 30 s, with jitter.
pub struct PubSubBridge {
    label: String,
    counters: Arc<BridgeCounters>,
    runner: Runner,
}

impl std::fmt::Debug for PubSubBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubBridge").field("label", &self.label).field("counters", &self.counters).finish()
    }
}

/// Where an inbound bridge's messages go.
#[derive(Clone)]
enum Target {
    Topic(Topic<ChannelMessage>),
    Handler(Arc<Mutex<dyn FnMut(ChannelMessage) + Send>>),
}

impl Target {
    async fn deliver(&self, message: ChannelMessage) {
        match self {
            Target::Topic(topic) => topic.publish(message).await,
            Target::Handler(handler) => {
                let mut handler = handler.lock().unwrap_or_else(|e| e.into_inner());
                (handler)(message);
            }
        }
    }

    fn closed(&self) -> bool {
        matches!(self, Target::Topic(t) if t.is_closed())
    }
}

impl PubSubBridge {
    /// Redis `options.channel` (or pattern) -> the local `topic`.
    pub fn inbound(broker: &RedisBroker, options: PubSubOptions, topic: Topic<ChannelMessage>) -> Self {
        let label = format!("{} {} -> {}", subscribe_verb(&options), options.channel, topic.name());
        Self::inbound_to(broker, options, Target::Topic(topic), label)
    }

    /// The local `subscription`'s messages -> PUBLISH on `options.channel`, each message
    /// turned into zero or more payloads by `encode`.
    pub fn outbound<T, E>(
        broker: &RedisBroker,
        options: PubSubOptions,
        subscription: Subscription<T>,
        label: impl Into<String>,
        encode: E,
    ) -> Self
    where
        T: Send + Sync + 'static,
        E: Fn(&T) -> Vec<Vec<u8>> + Send + Sync + 'static,
    {
        let label = format!("{} -> PUBLISH {}", label.into(), options.channel);
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Outbound {
            broker: broker.clone(),
            options,
            subscription,
            encode: Box::new(encode),
            counters: counters.clone(),
            label: label.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Self { label, counters, runner }
    }

    /// The local `topic` -> PUBLISH on `options.channel`, each message as its JSON.
    pub fn outbound_json<T: Serialize + Send + Sync + 'static>(
        broker: &RedisBroker,
        options: PubSubOptions,
        topic: &Topic<T>,
    ) -> Self {
        let subscription = topic.subscribe(OUT_BUFFER, Overflow::DropOldest);
        Self::outbound(broker, options, subscription, topic.name(), |m: &T| {
            serde_json::to_string(m).map(|json| vec![masked(&json)]).unwrap_or_default()
        })
    }

    /// The bridge a `bridges:` entry describes. Outbound: `events` carries
    /// [`Event`](crate::crawl::Event)s, `items` each [`Item`](crate::crawl::Item) of
    /// its pages, `schedules` [`Firing`]s, and any other topic `serde_json::Value`s.
    /// Inbound: a topic of [`ChannelMessage`]s.
    pub fn from_spec(broker: &RedisBroker, spec: &BridgeSpec, bus: &Bus) -> Result<Self, BridgeError> {
        let mut options = PubSubOptions::channel(spec.channel.clone().unwrap_or_default())
            .health_check_interval(spec.health_check_interval.0);
        options.pattern = spec.pattern;
        let topic = spec.topic.as_str();
        Ok(match spec.direction {
            BridgeDirection::In => Self::inbound(broker, options, bus.topic::<ChannelMessage>(topic)?),
            BridgeDirection::Out => match topic {
                "events" => Self::outbound_json(broker, options, &bus.topic::<Event>(topic)?),
                "schedules" => Self::outbound_json(broker, options, &bus.topic::<Firing>(topic)?),
                "items" => {
                    let subscription =
                        bus.topic::<PageItems>(topic)?.subscribe(OUT_BUFFER, Overflow::DropOldest);
                    Self::outbound(broker, options, subscription, "items", |page: &PageItems| {
                        page.items
                            .iter()
                            .filter_map(|item| serde_json::to_string(item).ok())
                            .map(|j| masked(&j))
                            .collect()
                    })
                }
                _ => Self::outbound_json(broker, options, &bus.topic::<serde_json::Value>(topic)?),
            },
        })
    }

    fn inbound_to(broker: &RedisBroker, options: PubSubOptions, target: Target, label: String) -> Self {
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Inbound {
            broker: broker.clone(),
            options,
            target,
            counters: counters.clone(),
            label: label.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Self { label, counters, runner }
    }

    /// Its counters (shared: they keep counting while it runs).
    pub fn counters(&self) -> Arc<BridgeCounters> {
        self.counters.clone()
    }

    /// What it bridges, e.g. `SUBSCRIBE alerts -> remote.alerts`.
    pub fn describe(&self) -> &str {
        &self.label
    }

    /// Runs it without an actor: an outbound bridge until its topic is closed and drained,
    /// an inbound one until its topic is closed (a handler: until dropped).
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        (self.runner)()
    }
}

impl RedisBroker {
    /// A handler bound to a Redis channel (or, with [`PubSubOptions::pattern`], a
    /// pattern): `handler` is called with each message, in order, on the actor's thread.
    /// Start the returned actor with `RuntimeBuilder::actor`:
    ///
    /// ```no_run
    /// use arachne::bridges::redis::{ChannelMessage, RedisBroker};
    /// use arachne::runtime::Runtime;
    ///
    /// let spec = arachne::spec::load_file("crawl.yaml".as_ref(), arachne::spec::NO_OVERRIDES)?;
    /// let redis = RedisBroker::new("redis://127.0.0.1:6379/")?;
    /// let summary = Runtime::builder(spec)
    ///     .actor("alerts", move |_bus| {
    ///         Ok(redis.on_message("alerts", |msg: ChannelMessage| println!("{}: {}", msg.channel, msg.payload)))
    ///     })
    ///     .run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_message<F>(&self, options: impl Into<PubSubOptions>, handler: F) -> PubSubBridge
    where
        F: FnMut(ChannelMessage) + Send + 'static,
    {
        let options = options.into();
        let label = format!("{} {} -> handler", subscribe_verb(&options), options.channel);
        PubSubBridge::inbound_to(self, options, Target::Handler(Arc::new(Mutex::new(handler))), label)
    }
}

/// `broker.on_message(options, handler)`: a handler actor bound to a Redis channel.
pub fn on_message<F>(broker: &RedisBroker, options: impl Into<PubSubOptions>, handler: F) -> PubSubBridge
where
    F: FnMut(ChannelMessage) + Send + 'static,
{
    broker.on_message(options, handler)
}

/// JSON leaving the process, every `${ENV}` secret in it masked.
fn masked(json: &str) -> Vec<u8> {
    crate::observe::secrets::mask(json).into_owned().into_bytes()
}

fn subscribe_verb(options: &PubSubOptions) -> &'static str {
    if options.pattern {
        "PSUBSCRIBE"
    } else {
        "SUBSCRIBE"
    }
}

impl Actor for PubSubBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        run_bridge(&self.runner, &self.counters, ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.counters.log_stopped(&self.label);
    }
}

/// A panic (in a handler) restarts the actor: a new connection and subscription.
impl Supervised for PubSubBridge {}

struct Inbound {
    broker: RedisBroker,
    options: PubSubOptions,
    target: Target,
    counters: Arc<BridgeCounters>,
    label: String,
}

impl Inbound {
    async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new();
        let mut subscribed_before = false;
        while !self.target.closed() {
            match self.subscribe().await {
                Ok(pubsub) => {
                    if subscribed_before {
                        BridgeCounters::add(&self.counters.reconnects, 1);
                        tracing::info!(bridge = %self.label, "resubscribed");
                    } else {
                        tracing::debug!(bridge = %self.label, "subscribed");
                    }
                    subscribed_before = true;
                    backoff.reset();
                    self.counters.set_connected(true);
                    let reason = self.pump(pubsub).await;
                    self.counters.set_connected(false);
                    match reason {
                        None => return,
                        Some(reason) => {
                            BridgeCounters::add(&self.counters.disconnects, 1);
                            tracing::warn!(bridge = %self.label, "connection lost ({reason}); resubscribing");
                        }
                    }
                }
                Err(e) => tracing::warn!(bridge = %self.label, "cannot subscribe: {e}"),
            }
            tokio::time::sleep(backoff.next_wait()).await;
        }
    }

    async fn subscribe(&self) -> Result<redis::aio::PubSub, BridgeError> {
        let mut pubsub = self.broker.pubsub().await?;
        let channel = self.options.channel.as_str();
        let subscribed = if self.options.pattern {
            pubsub.psubscribe(channel).boxed()
        } else {
            pubsub.subscribe(channel).boxed()
        };
        match timeout(self.broker.connect_timeout(), subscribed).await {
            Ok(Ok(())) => Ok(pubsub),
            Ok(Err(e)) => Err(self.broker.error(&e)),
            Err(_) => Err(BridgeError::Unreachable {
                broker: "Redis",
                url: self.broker.masked_url().to_string(),
                reason: "no answer to SUBSCRIBE".into(),
            }),
        }
    }

    /// Delivers messages until the connection is lost (`Some(why)`) or the topic closed.
    async fn pump(&self, pubsub: redis::aio::PubSub) -> Option<String> {
        let (mut sink, mut stream) = pubsub.split();
        let every = self.options.health_check_interval;
        let mut heartbeat = interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        self.target.deliver(ChannelMessage::from_msg(&msg)).await;
                        BridgeCounters::add(&self.counters.forwarded, 1);
                    }
                    None => return Some("the server closed the connection".into()),
                },
                _ = heartbeat.tick() => {
                    if self.target.closed() {
                        return None;
                    }
                    match timeout(every, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            BridgeCounters::add(&self.counters.health_checks_failed, 1);
                            return Some(format!("health check failed: {}", self.broker.error(&e)));
                        }
                        Err(_) => {
                            BridgeCounters::add(&self.counters.health_checks_failed, 1);
                            return Some(format!("health check: no answer to PING within {every:?}"));
                        }
                    }
                }
            }
        }
    }
}

type Encode<T> = Box<dyn Fn(&T) -> Vec<Vec<u8>> + Send + Sync>;

struct Outbound<T: Send + Sync + 'static> {
    broker: RedisBroker,
    options: PubSubOptions,
    subscription: Subscription<T>,
    encode: Encode<T>,
    counters: Arc<BridgeCounters>,
    label: String,
}

impl<T: Send + Sync + 'static> Outbound<T> {
    async fn run(self: Arc<Self>) {
        let every = self.options.health_check_interval;
        let mut heartbeat = interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut backoff = Backoff::new();
        let mut conn: Option<redis::aio::MultiplexedConnection> = None;
        let mut retry_at = Instant::now();
        let mut connected_before = false;
        let mut drops_counted = self.subscription.dropped();
        loop {
            tokio::select! {
                biased;
                _ = sleep_until(retry_at), if conn.is_none() => match self.broker.single_connection().await {
                    Ok(c) => {
                        if connected_before {
                            BridgeCounters::add(&self.counters.reconnects, 1);
                            tracing::info!(bridge = %self.label, "reconnected");
                        }
                        connected_before = true;
                        backoff.reset();
                        conn = Some(c);
                        self.counters.set_connected(true);
                    }
                    Err(e) => {
                        tracing::warn!(bridge = %self.label, "cannot connect: {e}");
                        retry_at = Instant::now() + backoff.next_wait();
                    }
                },
                message = self.subscription.recv() => {
                    let Some(message) = message else { break };
                    self.count_drops(&mut drops_counted);
                    let payloads = (self.encode)(&message);
                    let Some(c) = conn.as_mut() else {
                        BridgeCounters::add(&self.counters.undelivered, payloads.len() as u64);
                        continue;
                    };
                    for (i, payload) in payloads.iter().enumerate() {
                        let mut publish = redis::cmd("PUBLISH");
                        publish.arg(&self.options.channel).arg(payload);
                        if let Err(e) = publish.query_async::<i64>(c).await {
                            BridgeCounters::add(&self.counters.undelivered, (payloads.len() - i) as u64);
                            self.lost(&mut conn, &mut retry_at, &mut backoff, format!("PUBLISH failed: {}", self.broker.error(&e)));
                            break;
                        }
                        BridgeCounters::add(&self.counters.forwarded, 1);
                    }
                }
                _ = heartbeat.tick() => {
                    let Some(c) = conn.as_mut() else { continue };
                    let ping = redis::cmd("PING");
                    let failure = match timeout(every, ping.query_async::<redis::Value>(c)).await {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(format!("health check failed: {}", self.broker.error(&e))),
                        Err(_) => Some(format!("health check: no answer to PING within {every:?}")),
                    };
                    if let Some(reason) = failure {
                        BridgeCounters::add(&self.counters.health_checks_failed, 1);
                        self.lost(&mut conn, &mut retry_at, &mut backoff, reason);
                    }
                }
            }
        }
        self.count_drops(&mut drops_counted);
        self.counters.set_connected(false);
    }

    /// Messages the local buffer dropped (Redis slower than the topic, or a connect attempt
    /// holding the bridge up) were not carried: counted as they happen, not only at the end.
    fn count_drops(&self, counted: &mut u64) {
        let dropped = self.subscription.dropped();
        BridgeCounters::add(&self.counters.undelivered, dropped.saturating_sub(*counted));
        *counted = dropped.max(*counted);
    }

    fn lost(
        &self,
        conn: &mut Option<redis::aio::MultiplexedConnection>,
        retry_at: &mut Instant,
        backoff: &mut Backoff,
        reason: String,
    ) {
        *conn = None;
        self.counters.set_connected(false);
        BridgeCounters::add(&self.counters.disconnects, 1);
        *retry_at = Instant::now() + backoff.next_wait();
        tracing::warn!(bridge = %self.label, "connection lost ({reason}); reconnecting");
    }
}
