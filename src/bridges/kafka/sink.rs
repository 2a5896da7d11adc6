//! `output: - kafka: { topic, key, compression }`: each item produced to a Kafka topic by an
//! idempotent producer; the sink acknowledges a page only when the broker confirmed its
//! items.

use std::io;
use std::time::Duration;

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use url::Url;

use super::broker::{KafkaBroker, LinkContext, TopicSpec};
use super::config::KafkaOutputSpec;
use crate::bridges::BridgeError;
use crate::crawl::{Item, ItemSink};
use crate::spec::CrawlSpec;

/// Items sent and not yet confirmed before `write` waits for their confirmations.
const IN_FLIGHT: usize = 10_000;

/// Produces each item, as one JSON object (the text of a jsonl line), to a Kafka topic,
/// keyed by its URL, its host or one of its fields.
///
/// `write` hands the item to librdkafka (which batches and compresses); `flush` (every
/// second, and at the end) returns once the broker confirmed every item written so far
/// (`acks=all`, idempotent producer: librdkafka's retries never duplicate nor reorder),
/// so the sink's acknowledgement to the scheduler means "in Kafka". While the broker is
/// unreachable librdkafka keeps retrying (up to `message.timeout.ms`, 5 minutes by default),
/// and `flush` waits on the sink's thread; a message that still fails is an error of the
/// run. **At least once** across a crash (a page whose confirmation arrived after the
/// process died is crawled and produced again by the next run).
pub struct KafkaSink {
    topic: String,
    key: String,
    producer: FutureProducer<LinkContext>,
    in_flight: Vec<DeliveryFuture>,
    produced: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("in_flight", &self.in_flight.len())
            .field("produced", &self.produced)
            .finish()
    }
}

impl KafkaSink {
    /// Checks `brokers.kafka` and creates the topic when missing, so a wrong address or
    /// login is an error before the crawl starts. Blocks (it runs before the actor system).
    pub fn open(spec: &CrawlSpec, out: &KafkaOutputSpec) -> Result<Self, BridgeError> {
        let broker = KafkaBroker::from_spec(spec, &format!("output 'kafka:{}'", out.topic))?;
        broker.check_blocking()?;
        let partitions = spec.frontier.kafka.partitions.max(1);
        let replication = spec.frontier.kafka.replication;
        futures::executor::block_on(broker.ensure_topics(vec![TopicSpec::new(
            &out.topic,
            partitions,
            replication,
        )]))?;
        let producer = broker
            .client_config(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("compression.codec", out.compression.as_str()),
            ])
            .create_with_context(LinkContext::default())
            .map_err(|e| broker.error(&e, ""))?;
        Ok(Self {
            topic: out.topic.clone(),
            key: out.key.clone(),
            producer,
            in_flight: Vec::new(),
            produced: 0,
        })
    }

    /// Items the broker has confirmed so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    fn key_of(&self, item: &Item) -> Option<String> {
        match self.key.as_str() {
            "url" => Some(item.url.clone()),
            "host" => Url::parse(&item.url).ok().and_then(|u| u.host_str().map(str::to_string)),
            field => item.fields.get(field).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }

    fn wait_all(&mut self) -> io::Result<()> {
        let deliveries = std::mem::take(&mut self.in_flight);
        let results = futures::executor::block_on(futures::future::join_all(deliveries));
        let mut failure = None;
        for result in results {
            match result {
                Ok(Ok(_)) => self.produced += 1,
                Ok(Err((e, _))) => {
                    failure = Some(format!("producing to Kafka topic '{}' failed: {e}", self.topic))
                }
                Err(_) => failure = Some(format!("producing to Kafka topic '{}' was cancelled", self.topic)),
            }
        }
        match failure {
            Some(message) => Err(io::Error::other(message)),
            None => Ok(()),
        }
    }
}

impl ItemSink for KafkaSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        if self.in_flight.len() >= IN_FLIGHT {
            self.wait_all()?;
        }
        let payload = serde_json::to_vec(item).map_err(io::Error::other)?;
        let key = self.key_of(item);
        loop {
            let mut record = FutureRecord::to(&self.topic).payload(&payload);
            if let Some(key) = &key {
                record = record.key(key);
            }
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push(delivery);
                    return Ok(());
                }
                Err((e, _))
                    if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    // librdkafka's queue is full: wait for what is in flight, then retry.
                    self.wait_all()?;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(io::Error::other(format!("Kafka topic '{}': {e}", self.topic))),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wait_all()
    }
}
