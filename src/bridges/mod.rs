//! Bridges: everything that talks to an external broker, one folder per broker
//! (`redis/`, `kafka/`, `amqp/`), and the one place that builds them from the spec (this file), as
//! Vector builds its components from their configs. The rest of the tree sees only the
//! broker seam's interfaces: a [`SharedStore`] for a shared frontier, an
//! [`ItemSink`] for an output, and supervised actors for `bridges:` entries.
//!
//! - [`open_frontier`]: `frontier.backend` -> the broker's [`SharedStore`].
//! - [`open_output`]: an `output:` entry that writes to a broker -> its [`ItemSink`].
//! - [`start`]: the spec's `bridges:` -> one supervised actor each.
//!
//! Every broker is checked (connected, logged in) before the crawl starts, so a wrong
//! address or password is a clear error and nothing is crawled.
//!
//! A bridge is declared in the spec (`bridges:`) and started by the runtime; broker URLs are
//! masked wherever they are printed:
//!
//! ```
//! use arachne::spec::{load_str, BridgeKind, NO_OVERRIDES};
//!
//! let spec = load_str(
//!     "name: t\nseeds: [\"https://example.com/\"]\n\
//!      brokers: { redis: { url: \"redis://:s3cret@127.0.0.1:6379/\" } }\n\
//!      bridges: [{ kind: redis-pubsub, topic: events, channel: crawl.events, direction: out }]\n",
//!     "t.yaml",
//!     NO_OVERRIDES,
//! )?;
//! assert_eq!(spec.bridges[0].kind, BridgeKind::RedisPubsub);
//! assert!(!format!("{:?}", spec.brokers).contains("s3cret"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod amqp;
mod counters;
mod encode;
pub mod kafka;
pub mod redis;

use std::sync::Arc;

use actix::ArbiterHandle;

pub use self::counters::{BridgeCounters, ConsumerLag};
use crate::bus::Bus;
use crate::crawl::shared::SharedStore;
use crate::crawl::ItemSink;
use crate::spec::{BridgeKind, CrawlSpec, Dedup, FrontierBackend, OutputSpec, RedisLayout};
use crate::supervise::{Restart, Supervisor};

/// Why a broker or a bridge could not be used. Every URL in it has its password masked, and
/// no secret from `${ENV}` is in it.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The address does not say how to reach a broker.
    #[error("bad {broker} URL '{url}': {reason}")]
    BadUrl {
        /// `Redis`, `Kafka`, ...
        broker: &'static str,
        /// The URL or address list, password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made, or the server did not answer in time.
    #[error("cannot reach {broker} at {url}: {reason}")]
    Unreachable {
        /// `Redis`, `Kafka`, ...
        broker: &'static str,
        /// The URL or address list, password masked.
        url: String,
        /// Connection refused, timed out, name not resolved, ...
        reason: String,
    },
    /// The server refused the credentials, or wants some and got none.
    #[error("{broker} at {url} refused the credentials: {reason}")]
    AuthFailed {
        /// `Redis`, `Kafka`, ...
        broker: &'static str,
        /// The URL or address list, password masked.
        url: String,
        /// The server's answer.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS with {broker} at {url} failed: {reason}")]
    Tls {
        /// `Redis`, `Kafka`, ...
        broker: &'static str,
        /// The URL or address list, password masked.
        url: String,
        /// The handshake error.
        reason: String,
    },
    /// Any other error from a Redis server or client.
    #[error("Redis at {url}: {reason}")]
    Redis {
        /// The URL, password masked.
        url: String,
        /// The error.
        reason: String,
    },
    /// Any other error from a Kafka broker or client (librdkafka's words).
    #[error("Kafka at {bootstrap}: {reason}")]
    Kafka {
        /// The bootstrap servers.
        bootstrap: String,
        /// The error.
        reason: String,
    },
    /// Any other error from an AMQP broker or client (lapin's words, which carry the
    /// broker's reply: `PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue
    /// ...`).
    #[error("AMQP at {url}: {reason}")]
    Amqp {
        /// The URL, password masked.
        url: String,
        /// The error.
        reason: String,
    },
    /// A bridge, output or frontier that needs `brokers.<broker>`, which is not set.
    #[error("`brokers.{broker}` is not set, but {user} needs it")]
    NoBroker {
        /// `redis`, `kafka`, ...
        broker: &'static str,
        /// What needs it: `the frontier`, `a bridge`, `output 'kafka:items'`.
        user: String,
    },
    /// A combination this version does not support.
    #[error("{0}")]
    Unsupported(String),
    /// The bridge's local topic exists with another message type.
    #[error(transparent)]
    Bus(#[from] crate::bus::WrongType),
}

/// An output that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("output '{name}': {error}")]
pub struct OutputError {
    /// The output's name (`redis:KEY`, `kafka:TOPIC`).
    pub name: String,
    /// Why.
    #[source]
    pub error: BridgeError,
}

/// What the runtime needs to know about the run to open a shared frontier.
#[derive(Debug, Clone, Copy)]
pub struct FrontierContext {
    /// `--state-dir` was given (a local store, which a shared frontier replaces).
    pub state_dir: bool,
}

/// The shared frontier of `frontier.backend` (`None` for `local`), connected and checked
/// before the crawl.
pub async fn open_frontier(
    spec: &CrawlSpec,
    context: FrontierContext,
) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    let backend = spec.frontier.backend;
    if backend == FrontierBackend::Local {
        return Ok(None);
    }
    if context.state_dir {
        return Err(BridgeError::Unsupported(format!(
            "--state-dir keeps a local frontier; with `frontier.backend: {}` the state lives in the broker",
            backend.name()
        )));
    }
    match backend {
        FrontierBackend::Local => Ok(None),
        FrontierBackend::Redis => Ok(Some(Arc::new(open_redis_frontier(spec).await?))),
        FrontierBackend::Kafka => Ok(Some(Arc::new(kafka::KafkaFrontier::open(spec).await?))),
        FrontierBackend::Amqp => Ok(Some(Arc::new(amqp::AmqpFrontier::open(spec).await?))),
    }
}

async fn open_redis_frontier(spec: &CrawlSpec) -> Result<redis::frontier::RedisFrontier, BridgeError> {
    let broker_spec = spec
        .brokers
        .redis
        .as_ref()
        .ok_or_else(|| BridgeError::NoBroker { broker: "redis", user: "the frontier".into() })?;
    let broker = redis::RedisBroker::from_spec(broker_spec)?;
    broker.check().await?;
    let layout = match spec.frontier.layout {
        RedisLayout::Native => redis::frontier::Layout::Native,
        RedisLayout::ScrapyRedis => redis::frontier::Layout::ScrapyRedis,
    };
    let lease = spec.frontier.lease.0;
    let bloom = spec.frontier.dedup == Dedup::Bloom;
    let order = redis::frontier::adopt_order(&broker, &spec.name, layout, spec.frontier.order, bloom).await?;
    let mut store = redis::frontier::RedisFrontier::new(&broker, &spec.name, order, layout, lease)
        .with_max_requests(spec.scope.max_pages);
    if bloom {
        store = store.with_bloom(spec.frontier.bloom.capacity, spec.frontier.bloom.error_rate);
    }
    Ok(store)
}

/// Where the workers of a crawl shared through a broker announce themselves and hear
/// remote control (the dashboard's view of every process); `None` for a local crawl, or
/// a broker without heartbeats yet (Kafka).
pub fn worker_registry(
    spec: &CrawlSpec,
) -> Result<Option<Arc<dyn crate::observe::WorkerRegistry>>, BridgeError> {
    match spec.frontier.backend {
        FrontierBackend::Redis => redis::heartbeat::registry(spec),
        _ => Ok(None),
    }
}

/// A sink with its name (`redis:KEY`, `kafka:TOPIC`).
pub type NamedSink = (String, Box<dyn ItemSink>);

/// The sink of an `output:` entry that writes to a broker, with its name, connected and
/// checked; `None` for the local outputs (jsonl, stdout). The error names the output.
pub fn open_output(spec: &CrawlSpec, output: &OutputSpec) -> Result<Option<NamedSink>, OutputError> {
    match output {
        OutputSpec::Jsonl(_) | OutputSpec::Stdout => Ok(None),
        OutputSpec::Redis(out) => {
            // Connects and PINGs now: a wrong URL or password fails before the crawl.
            let key = out.key.clone().unwrap_or_else(|| format!("{}:items", spec.name));
            let name = format!("redis:{key}");
            let sink = spec
                .brokers
                .redis
                .as_ref()
                .ok_or_else(|| BridgeError::NoBroker { broker: "redis", user: format!("output '{name}'") })
                .and_then(redis::RedisBroker::from_spec)
                .and_then(|broker| redis::RedisSink::connect(&broker, key));
            match sink {
                Ok(sink) => Ok(Some((name, Box::new(sink)))),
                Err(error) => Err(OutputError { name, error }),
            }
        }
        OutputSpec::Kafka(out) => {
            let name = format!("kafka:{}", out.topic);
            match kafka::KafkaSink::open(spec, out) {
                Ok(sink) => Ok(Some((name, Box::new(sink)))),
                Err(error) => Err(OutputError { name, error }),
            }
        }
        OutputSpec::Amqp(out) => {
            let name = format!("amqp:{}", out.exchange);
            match amqp::AmqpSink::open(spec, out) {
                Ok(sink) => Ok(Some((name, Box::new(sink)))),
                Err(error) => Err(OutputError { name, error }),
            }
        }
    }
}

/// The bridges a run started: their counters and, for inbound ones that have it, their
/// consumer lag.
#[derive(Debug, Default)]
pub struct StartedBridges {
    /// One per bridge.
    pub counters: Vec<Arc<BridgeCounters>>,
    /// One per inbound bridge that measures its lag.
    pub lags: Vec<ConsumerLag>,
    /// The outbound bridges' counters (they finish once their topic is closed and sent).
    pub outbound: Vec<Arc<BridgeCounters>>,
}

impl StartedBridges {
    /// Waits (at most `limit`) until every outbound bridge has finished: at the end of a
    /// run, after the bus is closed, so they send what they still hold before the process
    /// stops them.
    pub async fn finish(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.outbound.iter().all(|c| c.is_finished()) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("a bridge did not finish sending in time");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Every inbound bridge's consumer lag now, per `topic/partition`.
    pub fn consumer_lag(&self) -> std::collections::BTreeMap<String, i64> {
        let mut all = std::collections::BTreeMap::new();
        for lag in &self.lags {
            if let Ok(map) = lag.lock() {
                all.extend(map.iter().map(|(k, v)| (k.clone(), *v)));
            }
        }
        all
    }
}

/// Starts the spec's `bridges:` under `sup` on `arbiter`: first checks each broker they
/// use, so a wrong address or password is an error before anything is crawled; then
/// starts one actor per bridge. Outbound bridges subscribe to their local topic at once,
/// so they miss nothing published after this.
pub async fn start(
    spec: &CrawlSpec,
    bus: &Bus,
    sup: &mut Supervisor,
    arbiter: &ArbiterHandle,
) -> Result<StartedBridges, BridgeError> {
    let mut started = StartedBridges::default();
    let counters = &mut started.counters;
    let redis_bridges: Vec<_> = spec
        .bridges
        .iter()
        .filter(|b| matches!(b.kind, BridgeKind::RedisPubsub | BridgeKind::RedisQueue))
        .collect();
    if !redis_bridges.is_empty() {
        let broker_spec = spec
            .brokers
            .redis
            .as_ref()
            .ok_or_else(|| BridgeError::NoBroker { broker: "redis", user: "a bridge".into() })?;
        let broker = redis::RedisBroker::from_spec(broker_spec)?;
        broker.check().await?;
        for (i, b) in redis_bridges.into_iter().enumerate() {
            let name = format!("bridge-{i}");
            let bridge_counters = if b.kind == BridgeKind::RedisQueue {
                let bridge = redis::RedisQueueBridge::from_spec(&broker, b, bus)?;
                let c = bridge.counters();
                sup.start(format!("{name}-{}", bridge.describe()), Restart::Transient, arbiter, move |_| {
                    bridge
                });
                c
            } else {
                let bridge = redis::PubSubBridge::from_spec(&broker, b, bus)?;
                let c = bridge.counters();
                sup.start(format!("{name}-{}", bridge.describe()), Restart::Transient, arbiter, move |_| {
                    bridge
                });
                c
            };
            counters.push(bridge_counters.clone());
            if b.direction == crate::spec::BridgeDirection::Out {
                started.outbound.push(bridge_counters);
            }
        }
    }
    let kafka_bridges: Vec<_> = spec.bridges.iter().filter(|b| b.kind == BridgeKind::Kafka).collect();
    if !kafka_bridges.is_empty() {
        let broker = kafka::KafkaBroker::from_spec(spec, "a bridge")?;
        broker.check().await?;
        for (i, b) in kafka_bridges.into_iter().enumerate() {
            let bridge = kafka::KafkaBridge::from_spec(&broker, spec, b, bus)?;
            counters.push(bridge.counters());
            match b.direction {
                crate::spec::BridgeDirection::In => started.lags.push(bridge.lag()),
                crate::spec::BridgeDirection::Out => started.outbound.push(bridge.counters()),
            }
            let name = format!("bridge-kafka-{i}-{}", bridge.describe());
            sup.start(name, Restart::Transient, arbiter, move |_| bridge);
        }
    }
    let amqp_bridges: Vec<_> = spec.bridges.iter().filter(|b| b.kind == BridgeKind::Amqp).collect();
    if !amqp_bridges.is_empty() {
        let broker = amqp::AmqpBroker::from_spec(spec, "a bridge")?;
        broker.check().await?;
        for (i, b) in amqp_bridges.into_iter().enumerate() {
            let bridge = amqp::AmqpBridge::from_spec(&broker, b, bus)?;
            bridge.connect().await?;
            counters.push(bridge.counters());
            if b.direction == crate::spec::BridgeDirection::Out {
                started.outbound.push(bridge.counters());
            }
            let name = format!("bridge-amqp-{i}-{}", bridge.describe());
            sup.start(name, Restart::Transient, arbiter, move |_| bridge);
        }
    }
    Ok(started)
}
