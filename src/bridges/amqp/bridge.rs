//! `bridges: - kind: amqp`: a local topic out to an exchange (persistent messages, publisher
//! confirms), or a queue into a local topic (manual acks: a message is acked only after it
//! was published locally). Both reconnect with backoff and declare `brokers.amqp.topology`
//! again on every connection.

use std::sync::Arc;

use actix::prelude::*;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use serde::{Deserialize, Serialize};

use super::broker::AmqpBroker;
use super::topology;
use crate::bridges::counters::{run_bridge, Backoff, Runner};
use crate::bridges::encode::encode;
use crate::bridges::{BridgeCounters, BridgeError};
use crate::bus::{Bus, Firing, Overflow, Subscription, Topic};
use crate::crawl::{Event, PageItems};
use crate::spec::{BridgeDirection, BridgeSpec};

/// Local messages an outbound bridge buffers (the oldest are dropped past it, counted as
/// undelivered: a bridge never slows the crawl down).
const OUT_BUFFER: usize = 4096;
/// Messages an outbound bridge has sent and awaits the confirms of, at most.
const IN_FLIGHT: usize = 1024;
/// Unacked messages an inbound bridge takes at once (`basic.qos`).
const IN_PREFETCH: u16 = 64;

/// A message that arrived on a queue, as an inbound bridge publishes it on its local
/// topic (`Topic<AmqpMessage>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmqpMessage {
    /// The exchange it was published to (`""`: the default exchange).
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
    /// Delivered before without an ack (a consumer died or lost its connection).
    pub redelivered: bool,
    /// The payload: parsed JSON when it is JSON; otherwise the text as a JSON string.
    pub payload: serde_json::Value,
}

type Prepare = Arc<dyn Fn() -> BoxFuture<'static, Result<(), BridgeError>> + Send + Sync>;
type Encode<T> = Box<dyn Fn(&T) -> Vec<(Option<String>, Vec<u8>)> + Send + Sync>;

/// An `amqp` bridge: an actor (started by the runtime from `bridges:`) that runs one
/// direction.
pub struct AmqpBridge {
    label: String,
    counters: Arc<BridgeCounters>,
    runner: Runner,
    prepare: Option<Prepare>,
}

impl std::fmt::Debug for AmqpBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBridge").field("label", &self.label).finish()
    }
}

impl AmqpBridge {
    /// The bridge a `bridges:` entry describes: `channel` is the exchange (`out`) or the
    /// queue (`in`). Outbound, `events` carries [`Event`]s, `items` each item of its pages,
    /// `schedules` [`Firing`]s and any other topic `serde_json::Value`s, each routed by the
    /// text of its JSON field `key` (the local topic's name when absent); inbound, a local
    /// topic of [`AmqpMessage`]s.
    pub fn from_spec(broker: &AmqpBroker, b: &BridgeSpec, bus: &Bus) -> Result<Self, BridgeError> {
        let target = b.channel.clone().unwrap_or_default();
        let topic = b.topic.as_str();
        match b.direction {
            BridgeDirection::In => Ok(Self::inbound(broker, &target, bus.topic::<AmqpMessage>(topic)?)),
            BridgeDirection::Out => {
                let key = b.key.clone();
                let (sub, encode): (_, Encode<_>) = match topic {
                    "events" => {
                        return Ok(Self::outbound_json(broker, &target, key, &bus.topic::<Event>(topic)?))
                    }
                    "schedules" => {
                        return Ok(Self::outbound_json(broker, &target, key, &bus.topic::<Firing>(topic)?))
                    }
                    "items" => (
                        bus.topic::<PageItems>(topic)?.subscribe(OUT_BUFFER, Overflow::DropOldest),
                        Box::new(move |page: &PageItems| {
                            page.items.iter().filter_map(|item| encode(item, key.as_deref())).collect()
                        }),
                    ),
                    _ => {
                        return Ok(Self::outbound_json(
                            broker,
                            &target,
                            key,
                            &bus.topic::<serde_json::Value>(topic)?,
                        ))
                    }
                };
                Ok(Self::outbound(broker, &target, sub, "items", encode))
            }
        }
    }

    fn outbound_json<T: Serialize + Send + Sync + 'static>(
        broker: &AmqpBroker,
        exchange: &str,
        key: Option<String>,
        topic: &Topic<T>,
    ) -> Self {
        let sub = topic.subscribe(OUT_BUFFER, Overflow::DropOldest);
        Self::outbound(
            broker,
            exchange,
            sub,
            topic.name(),
            Box::new(move |m: &T| encode(m, key.as_deref()).into_iter().collect()),
        )
    }

    fn outbound<T: Send + Sync + 'static>(
        broker: &AmqpBroker,
        exchange: &str,
        subscription: Subscription<T>,
        local: &str,
        encode: Encode<T>,
    ) -> Self {
        let label = format!("{local} -> amqp exchange {exchange}");
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Outbound {
            broker: broker.clone(),
            ready: std::sync::Mutex::new(None),
            exchange: exchange.to_string(),
            local: local.to_string(),
            subscription,
            encode,
            counters: counters.clone(),
        });
        let prepared = shared.clone();
        let prepare: Prepare = Arc::new(move || prepared.clone().prepare().boxed());
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Self { label, counters, runner, prepare: Some(prepare) }
    }

    /// Outbound: connects, declares the topology and opens the confirm channel now, before
    /// the crawl starts (so a short crawl loses no message to a slow first connection, and
    /// a refused declaration is an error before the crawl). Inbound: nothing to do.
    pub async fn connect(&self) -> Result<(), BridgeError> {
        match &self.prepare {
            Some(prepare) => prepare().await,
            None => Ok(()),
        }
    }

    /// The queue `queue` -> the local `topic`.
    pub fn inbound(broker: &AmqpBroker, queue: &str, topic: Topic<AmqpMessage>) -> Self {
        let label = format!("amqp queue {queue} -> {}", topic.name());
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Inbound {
            broker: broker.clone(),
            queue: queue.to_string(),
            topic,
            counters: counters.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Self { label, counters, runner, prepare: None }
    }

    /// Its counters (shared: they keep counting while it runs).
    pub fn counters(&self) -> Arc<BridgeCounters> {
        self.counters.clone()
    }

    /// What it bridges, e.g. `events -> amqp exchange crawl.events`.
    pub fn describe(&self) -> &str {
        &self.label
    }
}

impl Actor for AmqpBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        run_bridge(&self.runner, &self.counters, ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let c = &self.counters;
        tracing::info!(
            bridge = %self.label,
            forwarded = BridgeCounters::get(&c.forwarded),
            undelivered = BridgeCounters::get(&c.undelivered),
            reconnects = BridgeCounters::get(&c.reconnects),
            "bridge stopped"
        );
    }
}

/// A panic restarts the actor: a new connection (an inbound one's unacked messages were
/// requeued by the broker when the old one closed).
impl Supervised for AmqpBridge {}

/// Connects with backoff until it works (or `stop()` says to give up), declaring the
/// topology; counts reconnections after the first.
async fn connect_until(
    broker: &AmqpBroker,
    name: &str,
    counters: &BridgeCounters,
    first: &mut bool,
    stop: impl Fn() -> bool,
) -> Option<(Connection, Channel)> {
    let mut backoff = Backoff::new();
    loop {
        let connected = async {
            let connection = broker.connect(name).await?;
            let channel = connection.create_channel().await.map_err(|e| broker.error(&e))?;
            topology::declare(&channel, broker, &broker.spec().topology).await?;
            Ok::<_, BridgeError>((connection, channel))
        }
        .await;
        match connected {
            Ok(link) => {
                counters.set_connected(true);
                if !std::mem::take(first) {
                    BridgeCounters::add(&counters.reconnects, 1);
                    tracing::info!(bridge = name, "amqp bridge: reconnected");
                }
                return Some(link);
            }
            Err(e) if !stop() => {
                let wait = backoff.next_wait();
                tracing::warn!(bridge = name, "amqp bridge: cannot connect ({e}); next try in {wait:?}");
                tokio::time::sleep(wait).await;
            }
            Err(_) => return None,
        }
    }
}

struct Outbound<T: Send + Sync + 'static> {
    broker: AmqpBroker,
    /// The connection made before the crawl started ([`AmqpBridge::connect`]).
    ready: std::sync::Mutex<Option<(Connection, Channel)>>,
    exchange: String,
    local: String,
    subscription: Subscription<T>,
    encode: Encode<T>,
    counters: Arc<BridgeCounters>,
}

impl<T: Send + Sync + 'static> Outbound<T> {
    /// Connects at once (the topology is declared before the first message), then until
    /// the local topic is closed and drained: each message published persistent, up to
    /// [`IN_FLIGHT`] awaiting their confirms at once; one the broker does not confirm (or a
    /// broken connection) is counted as undelivered, and the bridge reconnects.
    async fn run(self: Arc<Self>) {
        let name = format!("bridge {} -> {}", self.local, self.exchange);
        let mut first = true;
        let prepared = self.ready.lock().ok().and_then(|mut r| r.take());
        let mut link = match prepared {
            Some(link) => {
                first = false;
                self.counters.set_connected(true);
                Some(link)
            }
            None => self.connect(&name, &mut first).await,
        };
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        while open || !in_flight.is_empty() {
            tokio::select! {
                message = self.subscription.recv(), if open && in_flight.len() < IN_FLIGHT => {
                    let Some(message) = message else {
                        open = false;
                        continue;
                    };
                    for (key, payload) in (self.encode)(&message) {
                        if link.is_none() {
                            link = self.connect(&name, &mut first).await;
                        }
                        let Some((_, channel)) = &link else { continue };
                        let routing_key = key.unwrap_or_else(|| self.local.clone());
                        let properties =
                            BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into());
                        let sent = channel
                            .basic_publish(
                                self.exchange.as_str().into(),
                                routing_key.as_str().into(),
                                BasicPublishOptions::default(),
                                &payload,
                                properties,
                            )
                            .await;
                        match sent {
                            Ok(confirm) => in_flight.push(confirm),
                            Err(e) => link = self.lost(&e.to_string()),
                        }
                    }
                }
                Some(confirmed) = in_flight.next() => match confirmed {
                    Ok(Confirmation::Ack(_)) => BridgeCounters::add(&self.counters.forwarded, 1),
                    other => {
                        BridgeCounters::add(&self.counters.undelivered, 1);
                        if link.is_some() {
                            link = self.lost(&format!("{other:?}"));
                        }
                    }
                },
            }
        }
        if let Some((connection, _)) = link {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                connection.close(200, "arachne: done".into()),
            )
            .await;
        }
    }

    /// The first connection, without retries: its error is the run's.
    async fn prepare(self: Arc<Self>) -> Result<(), BridgeError> {
        let broker = &self.broker;
        let connection = broker.connect(&format!("bridge {} -> {}", self.local, self.exchange)).await?;
        let channel = connection.create_channel().await.map_err(|e| broker.error(&e))?;
        topology::declare(&channel, broker, &broker.spec().topology).await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| broker.error(&e))?;
        if let Ok(mut ready) = self.ready.lock() {
            *ready = Some((connection, channel));
        }
        Ok(())
    }

    /// A connection with a confirm channel (retried with backoff until it works).
    async fn connect(&self, name: &str, first: &mut bool) -> Option<(Connection, Channel)> {
        let (connection, channel) =
            connect_until(&self.broker, name, &self.counters, first, || false).await?;
        match channel.confirm_select(ConfirmSelectOptions::default()).await {
            Ok(()) => Some((connection, channel)),
            Err(e) => self.lost(&e.to_string()),
        }
    }

    fn lost(&self, why: &str) -> Option<(Connection, Channel)> {
        tracing::warn!(exchange = %self.exchange, "amqp bridge: publishing failed ({why}); reconnecting");
        BridgeCounters::add(&self.counters.disconnects, 1);
        self.counters.set_connected(false);
        None
    }
}

struct Inbound {
    broker: AmqpBroker,
    queue: String,
    topic: Topic<AmqpMessage>,
    counters: Arc<BridgeCounters>,
}

impl Inbound {
    /// Until the local topic is closed: each message published locally, then acked (at
    /// least once: a crash between the two delivers it again, `redelivered: true`).
    async fn run(self: Arc<Self>) {
        let name = format!("bridge {} -> {}", self.queue, self.topic.name());
        let mut first = true;
        while !self.topic.is_closed() {
            let topic = self.topic.clone();
            let Some((connection, channel)) =
                connect_until(&self.broker, &name, &self.counters, &mut first, move || topic.is_closed())
                    .await
            else {
                return;
            };
            if let Err(e) = self.consume(&channel).await {
                tracing::warn!(queue = %self.queue, "amqp bridge: consuming stopped ({e}); reconnecting");
                BridgeCounters::add(&self.counters.disconnects, 1);
                self.counters.set_connected(false);
            }
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                connection.close(200, "arachne: done".into()),
            )
            .await;
        }
    }

    async fn consume(&self, channel: &Channel) -> Result<(), lapin::Error> {
        channel.basic_qos(IN_PREFETCH, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        while !self.topic.is_closed() {
            let next = tokio::time::timeout(std::time::Duration::from_millis(200), consumer.next()).await;
            let delivery = match next {
                Err(_) => continue,
                Ok(None) => return Ok(()),
                Ok(Some(d)) => d?,
            };
            let data = &delivery.data;
            let local = AmqpMessage {
                exchange: delivery.exchange.to_string(),
                routing_key: delivery.routing_key.to_string(),
                redelivered: delivery.redelivered,
                payload: serde_json::from_slice(data).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(data).into_owned())
                }),
            };
            self.topic.publish(local).await;
            BridgeCounters::add(&self.counters.forwarded, 1);
            channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await?;
        }
        Ok(())
    }
}
