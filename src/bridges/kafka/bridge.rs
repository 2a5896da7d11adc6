//! `bridges: - kind: kafka`: a local topic out to a Kafka topic, or a Kafka topic into a
//! local topic (its own consumer group; an offset is committed only after the message was
//! published locally).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::broker::{KafkaBroker, LinkContext};
use crate::bridges::counters::{run_bridge, Runner};
use crate::bridges::encode::encode;
use crate::bridges::{BridgeCounters, BridgeError};
use crate::bus::{Bus, Firing, Overflow, Subscription, Topic};
use crate::crawl::{Event, PageItems};
use crate::spec::{BridgeDirection, BridgeSpec, CrawlSpec};

/// Local messages an outbound bridge buffers (the oldest are dropped past it, counted as
/// undelivered: a bridge never slows the crawl down).
const OUT_BUFFER: usize = 4096;
/// Messages an outbound bridge has sent and awaits the confirmations of, at most.
const IN_FLIGHT: usize = 1024;
/// How often an inbound bridge measures its consumer lag.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// A message that arrived on a Kafka topic, as an inbound bridge publishes it on its local
/// topic (`Topic<KafkaMessage>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaMessage {
    /// The Kafka topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The key, as text (lossy UTF-8), if any.
    pub key: Option<String>,
    /// The payload: parsed JSON when it is JSON; otherwise the text as a JSON string.
    pub payload: serde_json::Value,
}

use crate::bridges::ConsumerLag as LagMap;

/// A `kafka` bridge: an actor (started by the runtime from `bridges:`, or by you with
/// `RuntimeBuilder::actor`) that runs one direction.
pub struct KafkaBridge {
    label: String,
    counters: Arc<BridgeCounters>,
    lag: LagMap,
    runner: Runner,
}

impl std::fmt::Debug for KafkaBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBridge").field("label", &self.label).finish()
    }
}

impl KafkaBridge {
    /// The bridge a `bridges:` entry describes: `channel` is the Kafka topic; outbound,
    /// `events` carries [`Event`]s, `items` each item of its pages, `schedules`
    /// [`Firing`]s and any other topic `serde_json::Value`s, keyed by `key` (a JSON field of
    /// the message, when given); inbound, a local topic of [`KafkaMessage`]s, consumed by
    /// the group `group` (`<crawl name>.bridge.<kafka topic>` when absent).
    pub fn from_spec(
        broker: &KafkaBroker,
        spec: &CrawlSpec,
        b: &BridgeSpec,
        bus: &Bus,
    ) -> Result<Self, BridgeError> {
        let kafka_topic = b.channel.clone().unwrap_or_default();
        match b.direction {
            BridgeDirection::In => {
                let group = b.group.clone().unwrap_or_else(|| format!("{}.bridge.{kafka_topic}", spec.name));
                Self::inbound(broker, &kafka_topic, &group, bus.topic::<KafkaMessage>(&b.topic)?)
            }
            BridgeDirection::Out => {
                let key = b.key.clone();
                let topic = b.topic.as_str();
                match topic {
                    "events" => Self::outbound_json(broker, &kafka_topic, key, &bus.topic::<Event>(topic)?),
                    "schedules" => {
                        Self::outbound_json(broker, &kafka_topic, key, &bus.topic::<Firing>(topic)?)
                    }
                    "items" => {
                        let sub = bus.topic::<PageItems>(topic)?.subscribe(OUT_BUFFER, Overflow::DropOldest);
                        Self::outbound(broker, &kafka_topic, sub, "items", move |page: &PageItems| {
                            page.items.iter().filter_map(|item| encode(item, key.as_deref())).collect()
                        })
                    }
                    _ => Self::outbound_json(
                        broker,
                        &kafka_topic,
                        key,
                        &bus.topic::<serde_json::Value>(topic)?,
                    ),
                }
            }
        }
    }

    /// The local `topic` -> Kafka `kafka_topic`, each message as its JSON, keyed by the
    /// message's `key` field when given.
    pub fn outbound_json<T: Serialize + Send + Sync + 'static>(
        broker: &KafkaBroker,
        kafka_topic: &str,
        key: Option<String>,
        topic: &Topic<T>,
    ) -> Result<Self, BridgeError> {
        let sub = topic.subscribe(OUT_BUFFER, Overflow::DropOldest);
        Self::outbound(broker, kafka_topic, sub, topic.name(), move |m: &T| {
            encode(m, key.as_deref()).into_iter().collect()
        })
    }

    /// The local `subscription` -> Kafka `kafka_topic`, each message turned into zero or
    /// more `(key, payload)` records by `encode`.
    pub fn outbound<T, E>(
        broker: &KafkaBroker,
        kafka_topic: &str,
        subscription: Subscription<T>,
        label: &str,
        encode: E,
    ) -> Result<Self, BridgeError>
    where
        T: Send + Sync + 'static,
        E: Fn(&T) -> Vec<(Option<String>, Vec<u8>)> + Send + Sync + 'static,
    {
        let producer: FutureProducer<LinkContext> = broker
            .client_config(&[("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5")])
            .create_with_context(LinkContext::default())
            .map_err(|e| broker.error(&e, ""))?;
        let label = format!("{label} -> kafka {kafka_topic}");
        let counters = Arc::new(BridgeCounters::default());
        let shared = Arc::new(Outbound {
            producer,
            kafka_topic: kafka_topic.to_string(),
            subscription,
            encode: Box::new(encode),
            counters: counters.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Ok(Self { label, counters, lag: LagMap::default(), runner })
    }

    /// Kafka `kafka_topic` (consumer group `group`) -> the local `topic`.
    pub fn inbound(
        broker: &KafkaBroker,
        kafka_topic: &str,
        group: &str,
        topic: Topic<KafkaMessage>,
    ) -> Result<Self, BridgeError> {
        let label = format!("kafka {kafka_topic} ({group}) -> {}", topic.name());
        let counters = Arc::new(BridgeCounters::default());
        let lag = LagMap::default();
        let shared = Arc::new(Inbound {
            broker: broker.clone(),
            kafka_topic: kafka_topic.to_string(),
            group: group.to_string(),
            topic,
            counters: counters.clone(),
            lag: lag.clone(),
        });
        let runner: Runner = Arc::new(move || shared.clone().run().boxed());
        Ok(Self { label, counters, lag, runner })
    }

    /// Its counters (shared: they keep counting while it runs).
    pub fn counters(&self) -> Arc<BridgeCounters> {
        self.counters.clone()
    }

    /// Inbound: the consumer lag per partition, updated every second.
    pub fn lag(&self) -> LagMap {
        self.lag.clone()
    }

    /// What it bridges, e.g. `events -> kafka crawl.events`.
    pub fn describe(&self) -> &str {
        &self.label
    }
}

impl Actor for KafkaBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        run_bridge(&self.runner, &self.counters, ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.counters.log_stopped(&self.label);
    }
}

/// A panic restarts the actor: a new producer or consumer (an inbound one resumes from
/// its group's last commit).
impl Supervised for KafkaBridge {}

type Encode<T> = Box<dyn Fn(&T) -> Vec<(Option<String>, Vec<u8>)> + Send + Sync>;

struct Outbound<T: Send + Sync + 'static> {
    producer: FutureProducer<LinkContext>,
    kafka_topic: String,
    subscription: Subscription<T>,
    encode: Encode<T>,
    counters: Arc<BridgeCounters>,
}

impl<T: Send + Sync + 'static> Outbound<T> {
    /// Until the local topic is closed and drained: each message produced, up to
    /// [`IN_FLIGHT`] awaiting their confirmations at once; a delivery that fails (after
    /// librdkafka's own retries) is counted as undelivered.
    async fn run(self: Arc<Self>) {
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        while open || !in_flight.is_empty() {
            tokio::select! {
                message = self.subscription.recv(), if open && in_flight.len() < IN_FLIGHT => match message {
                    Some(message) => {
                        for (key, payload) in (self.encode)(&message) {
                            in_flight.push(self.clone().produce(key, payload));
                        }
                    }
                    None => open = false,
                },
                Some(delivered) = in_flight.next() => {
                    let counter = if delivered { &self.counters.forwarded } else { &self.counters.undelivered };
                    BridgeCounters::add(counter, 1);
                }
            }
        }
    }

    async fn produce(self: Arc<Self>, key: Option<String>, payload: Vec<u8>) -> bool {
        let mut record = FutureRecord::to(&self.kafka_topic).payload(&payload);
        if let Some(key) = &key {
            record = record.key(key);
        }
        match self.producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => true,
            Err((e, _)) => {
                tracing::warn!(topic = %self.kafka_topic, "kafka bridge: produce failed: {e}");
                false
            }
        }
    }
}

struct Inbound {
    broker: KafkaBroker,
    kafka_topic: String,
    group: String,
    topic: Topic<KafkaMessage>,
    counters: Arc<BridgeCounters>,
    lag: LagMap,
}

impl Inbound {
    /// Until the local topic is closed: each message published locally, then its offset
    /// committed (at least once: a crash between the two delivers it again).
    async fn run(self: Arc<Self>) {
        let consumer: StreamConsumer<LinkContext> = match self
            .broker
            .client_config(&[
                ("group.id", self.group.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "100"),
            ])
            .create_with_context(LinkContext::default())
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("kafka bridge: cannot create the consumer: {e}");
                return;
            }
        };
        if let Err(e) = consumer.subscribe(&[self.kafka_topic.as_str()]) {
            tracing::error!("kafka bridge: cannot subscribe to {}: {e}", self.kafka_topic);
            return;
        }
        let consumer = Arc::new(consumer);
        let watcher = actix::spawn(self.clone().watch_lag(consumer.clone()));
        while !self.topic.is_closed() {
            let received = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
            let message = match received {
                Err(_) => continue,
                Ok(Err(e)) => {
                    tracing::debug!("kafka bridge: {e}");
                    continue;
                }
                Ok(Ok(m)) => m,
            };
            consumer.context().alive();
            let payload = message.payload().unwrap_or_default();
            let local = KafkaMessage {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: serde_json::from_slice(payload).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(payload).into_owned())
                }),
            };
            self.topic.publish(local).await;
            BridgeCounters::add(&self.counters.forwarded, 1);
            if let Err(e) = consumer.commit_message(&message, CommitMode::Async) {
                tracing::debug!("kafka bridge: commit failed: {e}");
            }
        }
        watcher.abort();
    }

    /// Every second: messages behind the end of each assigned partition.
    async fn watch_lag(self: Arc<Self>, consumer: Arc<StreamConsumer<LinkContext>>) {
        let mut tick = tokio::time::interval(LAG_EVERY);
        loop {
            tick.tick().await;
            let (consumer, topic) = (consumer.clone(), self.kafka_topic.clone());
            let measured = tokio::task::spawn_blocking(move || lag_of(&consumer, &topic)).await;
            if let Ok(Some(lag)) = measured {
                if let Ok(mut map) = self.lag.lock() {
                    *map = lag;
                }
            }
        }
    }
}

fn lag_of(consumer: &StreamConsumer<LinkContext>, topic: &str) -> Option<BTreeMap<String, i64>> {
    let assignment = consumer.assignment().ok()?;
    let mut list = TopicPartitionList::new();
    for e in assignment.elements_for_topic(topic) {
        list.add_partition(topic, e.partition());
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(5)).ok()?;
    let mut lag = BTreeMap::new();
    for e in committed.elements_for_topic(topic) {
        let (low, high) = consumer.fetch_watermarks(topic, e.partition(), Duration::from_secs(5)).ok()?;
        let position = match e.offset() {
            Offset::Offset(o) => o.max(low),
            _ => low,
        };
        lag.insert(format!("{topic}/{}", e.partition()), (high - position).max(0));
    }
    Some(lag)
}
