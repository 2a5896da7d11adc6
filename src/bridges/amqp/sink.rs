//! `output: - amqp: { exchange, routing_key, headers }`: each item published persistent to
//! an exchange on a confirm channel; the sink's `flush` returns once the broker confirmed
//! every item written so far, so its acknowledgement to the scheduler means "in RabbitMQ".

use std::io;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};

use super::broker::AmqpBroker;
use super::config::{render_template, AmqpOutputSpec};
use super::topology;
use crate::bridges::BridgeError;
use crate::crawl::{Item, ItemSink};
use crate::spec::CrawlSpec;

/// Items published and not yet confirmed before `write` waits for their confirmations.
const IN_FLIGHT: usize = 10_000;

/// Publishes each item (one JSON object, the text of a jsonl line) to an exchange with a
/// rendered routing key and headers, persistent (`delivery_mode` 2), with publisher
/// confirms. Runs its connection on a runtime of its own (the sink's thread blocks on it).
///
/// **At least once**: an item whose confirm did not arrive before a crash is published
/// again by the run that fetches its page again. A message the exchange cannot route (no
/// bound queue) is confirmed and dropped by the broker, as AMQP specifies.
pub struct AmqpSink {
    name: String,
    out: AmqpOutputSpec,
    broker: AmqpBroker,
    runtime: Option<tokio::runtime::Runtime>,
    connection: Option<(Connection, Channel)>,
    in_flight: Vec<PublisherConfirm>,
    published: u64,
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink").field("name", &self.name).field("published", &self.published).finish()
    }
}

impl AmqpSink {
    /// Connects to `brokers.amqp`, declares its topology and opens a confirm channel, so a
    /// wrong address or login is an error before the crawl starts. Blocks.
    pub fn open(spec: &CrawlSpec, out: &AmqpOutputSpec) -> Result<Self, BridgeError> {
        let name = format!("amqp:{}", out.exchange);
        let broker = AmqpBroker::from_spec(spec, &format!("output '{name}'"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("amqp-sink")
            .enable_all()
            .build()
            .map_err(|e| BridgeError::Amqp { url: broker.masked_url().into(), reason: e.to_string() })?;
        let mut sink = Self {
            name,
            out: out.clone(),
            broker,
            runtime: Some(runtime),
            connection: None,
            in_flight: Vec::new(),
            published: 0,
        };
        sink.connect()?;
        Ok(sink)
    }

    /// Runs `work` on the sink's own runtime and waits for it on this thread (the sink's
    /// `write` and `flush` are called from an actor, inside another runtime, where tokio's
    /// `block_on` is not allowed).
    fn block<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let runtime = self.runtime.as_ref().ok_or("the sink is closed")?;
        futures::executor::block_on(runtime.spawn(work)).map_err(|e| format!("the AMQP task failed: {e}"))
    }

    fn connect(&mut self) -> Result<(), BridgeError> {
        let broker = self.broker.clone();
        let name = self.name.clone();
        let url = broker.masked_url().to_string();
        let connected = self.block(async move {
            let connection = broker.connect(&name).await?;
            let channel = connection.create_channel().await.map_err(|e| broker.error(&e))?;
            topology::declare(&channel, &broker, &broker.spec().topology).await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| broker.error(&e))?;
            Ok::<_, BridgeError>((connection, channel))
        });
        let connected = connected.map_err(|reason| BridgeError::Amqp { url, reason })??;
        self.connection = Some(connected);
        Ok(())
    }

    /// Items the broker has confirmed so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    fn wait_all(&mut self) -> io::Result<()> {
        let confirms = std::mem::take(&mut self.in_flight);
        let results = self.block(futures::future::join_all(confirms)).map_err(io::Error::other)?;
        let mut failure = None;
        for result in results {
            match result {
                Ok(Confirmation::Ack(_)) => self.published += 1,
                Ok(other) => {
                    failure = Some(format!("{}: the broker did not confirm an item: {other:?}", self.name))
                }
                Err(e) => failure = Some(format!("{}: {}", self.name, self.broker.error(&e))),
            }
        }
        match failure {
            Some(message) => {
                // The channel may be gone: the next write connects again.
                self.connection = None;
                Err(io::Error::other(message))
            }
            None => Ok(()),
        }
    }
}

impl ItemSink for AmqpSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        if self.in_flight.len() >= IN_FLIGHT {
            self.wait_all()?;
        }
        if self.connection.is_none() {
            self.connect().map_err(io::Error::other)?;
        }
        let Some((_, channel)) = &self.connection else { return Err(io::Error::other("no AMQP channel")) };
        let payload = serde_json::to_vec(item).map_err(io::Error::other)?;
        let routing_key = render_template(&self.out.routing_key, item);
        let mut headers = FieldTable::default();
        for (k, v) in &self.out.headers {
            headers
                .insert(k.as_str().into(), AMQPValue::LongString(LongString::from(render_template(v, item))));
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        let exchange = self.out.exchange.clone();
        let channel = channel.clone();
        let sent = self.block(async move {
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    properties,
                )
                .await
        });
        match sent.map_err(io::Error::other)? {
            Ok(confirm) => {
                self.in_flight.push(confirm);
                Ok(())
            }
            Err(e) => {
                self.connection = None;
                Err(io::Error::other(format!("{}: {}", self.name, self.broker.error(&e))))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wait_all()
    }
}

impl Drop for AmqpSink {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropped from inside the actor system's runtime: no blocking shutdown there.
            runtime.shutdown_background();
        }
    }
}
