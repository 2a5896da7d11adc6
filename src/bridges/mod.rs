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
// Shared by the broker modules: a build without some of them leaves parts unused.
#[cfg_attr(not(all(feature = "redis", feature = "kafka", feature = "amqp")), allow(dead_code))]
mod counters;
#[cfg_attr(not(all(feature = "redis", feature = "kafka", feature = "amqp")), allow(dead_code))]
mod encode;
pub mod kafka;
pub mod redis;

use std::sync::Arc;

use actix::ArbiterHandle;

pub use self::counters::{BridgeCounters, ConsumerLag};
use crate::bus::Bus;
use crate::crawl::shared::SharedStore;
use crate::crawl::ItemSink;
use crate::spec::{BridgeKind, BridgeSpec, CrawlSpec, FrontierBackend, OutputSpec};
use crate::supervise::Supervisor;

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
    /// The spec needs a broker this build was compiled without (a cargo feature left out).
    #[error("this build has no {broker} support: rebuild with --features {broker}")]
    NotBuilt {
        /// `redis`, `kafka` or `amqp`: the broker, and the cargo feature.
        broker: &'static str,
    },
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
#[derive(Debug, Clone)]
pub struct FrontierContext {
    /// `--state-dir` was given (a local store, which a shared frontier replaces).
    pub state_dir: bool,
    /// The crawl's routing, with the queues this process consumes (`--queues`).
    pub routing: Arc<crate::crawl::routing::Routing>,
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
        FrontierBackend::Redis => open_redis_frontier(spec).await,
        FrontierBackend::Kafka => open_kafka_frontier(spec, &context).await,
        FrontierBackend::Amqp => open_amqp_frontier(spec, &context).await,
    }
}

#[cfg(feature = "kafka")]
async fn open_kafka_frontier(
    spec: &CrawlSpec,
    context: &FrontierContext,
) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    if context.routing.is_routed() {
        return Ok(Some(Arc::new(kafka::open_routed(spec, &context.routing).await?)));
    }
    Ok(Some(Arc::new(kafka::KafkaFrontier::open(spec).await?)))
}

#[cfg(not(feature = "kafka"))]
async fn open_kafka_frontier(
    _: &CrawlSpec,
    _: &FrontierContext,
) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    Err(BridgeError::NotBuilt { broker: "kafka" })
}

#[cfg(feature = "amqp")]
async fn open_amqp_frontier(
    spec: &CrawlSpec,
    context: &FrontierContext,
) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    if context.routing.is_routed() {
        return Ok(Some(Arc::new(amqp::open_routed(spec, &context.routing).await?)));
    }
    Ok(Some(Arc::new(amqp::AmqpFrontier::open(spec).await?)))
}

#[cfg(not(feature = "amqp"))]
async fn open_amqp_frontier(
    _: &CrawlSpec,
    _: &FrontierContext,
) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    Err(BridgeError::NotBuilt { broker: "amqp" })
}

#[cfg(not(feature = "redis"))]
async fn open_redis_frontier(_: &CrawlSpec) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    Err(BridgeError::NotBuilt { broker: "redis" })
}

#[cfg(feature = "redis")]
async fn open_redis_frontier(spec: &CrawlSpec) -> Result<Option<Arc<dyn SharedStore>>, BridgeError> {
    let store = redis_frontier(spec).await?;
    Ok(Some(Arc::new(store)))
}

#[cfg(feature = "redis")]
async fn redis_frontier(spec: &CrawlSpec) -> Result<redis::frontier::RedisFrontier, BridgeError> {
    use crate::spec::{Dedup, RedisLayout, RedisSerializer};
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
    redis::frontier::check_queue_keys(&broker, &spec.name, layout, order, spec.queues.keys()).await?;
    let serializer = match spec.frontier.serializer {
        RedisSerializer::Json => redis::entry::Serializer::Json,
        RedisSerializer::Pickle => redis::entry::Serializer::Pickle,
    };
    let mut store = redis::frontier::RedisFrontier::new(&broker, &spec.name, order, layout, lease)
        .with_serializer(serializer)
        .with_max_requests(spec.scope.max_pages)
        .with_queues(spec.queues.keys());
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
        #[cfg(feature = "redis")]
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
            let key = out.key.clone().unwrap_or_else(|| default_items_key(spec));
            let name = format!("redis:{key}");
            named(name, open_redis_sink(spec, key))
        }
        OutputSpec::Kafka(out) => named(format!("kafka:{}", out.topic), open_kafka_sink(spec, out)),
        OutputSpec::Amqp(out) => named(format!("amqp:{}", out.exchange), open_amqp_sink(spec, out)),
    }
}

/// The redis sink's key without `key:`: `<name>:items` (scrapy-redis's), or on a Redis
/// Cluster `{<name>}:items`, beside the crawl's other keys.
fn default_items_key(spec: &CrawlSpec) -> String {
    if spec.brokers.redis.as_ref().is_some_and(|r| r.cluster) {
        format!("{{{}}}:items", spec.name)
    } else {
        format!("{}:items", spec.name)
    }
}

fn named(
    name: String,
    sink: Result<Box<dyn ItemSink>, BridgeError>,
) -> Result<Option<NamedSink>, OutputError> {
    match sink {
        Ok(sink) => Ok(Some((name, sink))),
        Err(error) => Err(OutputError { name, error }),
    }
}

/// Connects and PINGs now: a wrong URL or password fails before the crawl.
#[cfg(feature = "redis")]
fn open_redis_sink(spec: &CrawlSpec, key: String) -> Result<Box<dyn ItemSink>, BridgeError> {
    let user = format!("output 'redis:{key}'");
    let broker_spec = spec.brokers.redis.as_ref().ok_or(BridgeError::NoBroker { broker: "redis", user })?;
    let broker = redis::RedisBroker::from_spec(broker_spec)?;
    Ok(Box::new(redis::RedisSink::connect(&broker, key)?))
}

#[cfg(not(feature = "redis"))]
fn open_redis_sink(_: &CrawlSpec, _: String) -> Result<Box<dyn ItemSink>, BridgeError> {
    Err(BridgeError::NotBuilt { broker: "redis" })
}

#[cfg(feature = "kafka")]
fn open_kafka_sink(spec: &CrawlSpec, out: &kafka::KafkaOutputSpec) -> Result<Box<dyn ItemSink>, BridgeError> {
    Ok(Box::new(kafka::KafkaSink::open(spec, out)?))
}

#[cfg(not(feature = "kafka"))]
fn open_kafka_sink(_: &CrawlSpec, _: &kafka::KafkaOutputSpec) -> Result<Box<dyn ItemSink>, BridgeError> {
    Err(BridgeError::NotBuilt { broker: "kafka" })
}

#[cfg(feature = "amqp")]
fn open_amqp_sink(spec: &CrawlSpec, out: &amqp::AmqpOutputSpec) -> Result<Box<dyn ItemSink>, BridgeError> {
    Ok(Box::new(amqp::AmqpSink::open(spec, out)?))
}

#[cfg(not(feature = "amqp"))]
fn open_amqp_sink(_: &CrawlSpec, _: &amqp::AmqpOutputSpec) -> Result<Box<dyn ItemSink>, BridgeError> {
    Err(BridgeError::NotBuilt { broker: "amqp" })
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
    let of = |kinds: &[BridgeKind]| -> Vec<&BridgeSpec> {
        spec.bridges.iter().filter(|b| kinds.contains(&b.kind)).collect()
    };
    let redis_bridges = of(&[BridgeKind::RedisPubsub, BridgeKind::RedisQueue]);
    if !redis_bridges.is_empty() {
        start_redis(spec, redis_bridges, bus, sup, arbiter, &mut started).await?;
    }
    let kafka_bridges = of(&[BridgeKind::Kafka]);
    if !kafka_bridges.is_empty() {
        start_kafka(spec, kafka_bridges, bus, sup, arbiter, &mut started).await?;
    }
    let amqp_bridges = of(&[BridgeKind::Amqp]);
    if !amqp_bridges.is_empty() {
        start_amqp(spec, amqp_bridges, bus, sup, arbiter, &mut started).await?;
    }
    Ok(started)
}

/// A bridge kind's starter when its broker's feature is left out.
#[cfg(not(all(feature = "redis", feature = "kafka", feature = "amqp")))]
macro_rules! not_built {
    ($name:ident, $broker:literal) => {
        async fn $name(
            _: &CrawlSpec,
            _: Vec<&BridgeSpec>,
            _: &Bus,
            _: &mut Supervisor,
            _: &ArbiterHandle,
            _: &mut StartedBridges,
        ) -> Result<(), BridgeError> {
            Err(BridgeError::NotBuilt { broker: $broker })
        }
    };
}

#[cfg(not(feature = "redis"))]
not_built!(start_redis, "redis");
#[cfg(not(feature = "kafka"))]
not_built!(start_kafka, "kafka");
#[cfg(not(feature = "amqp"))]
not_built!(start_amqp, "amqp");

#[cfg(feature = "redis")]
async fn start_redis(
    spec: &CrawlSpec,
    bridges: Vec<&BridgeSpec>,
    bus: &Bus,
    sup: &mut Supervisor,
    arbiter: &ArbiterHandle,
    started: &mut StartedBridges,
) -> Result<(), BridgeError> {
    let broker_spec = spec
        .brokers
        .redis
        .as_ref()
        .ok_or_else(|| BridgeError::NoBroker { broker: "redis", user: "a bridge".into() })?;
    let broker = redis::RedisBroker::from_spec(broker_spec)?;
    broker.check().await?;
    for (i, b) in bridges.into_iter().enumerate() {
        let name = format!("bridge-{i}");
        let bridge_counters = if b.kind == BridgeKind::RedisQueue {
            let bridge = redis::RedisQueueBridge::from_spec(&broker, b, bus)?;
            let c = bridge.counters();
            sup.start(
                format!("{name}-{}", bridge.describe()),
                crate::supervise::Restart::Transient,
                arbiter,
                move |_| bridge,
            );
            c
        } else {
            let bridge = redis::PubSubBridge::from_spec(&broker, b, bus)?;
            let c = bridge.counters();
            sup.start(
                format!("{name}-{}", bridge.describe()),
                crate::supervise::Restart::Transient,
                arbiter,
                move |_| bridge,
            );
            c
        };
        started.counters.push(bridge_counters.clone());
        if b.direction == crate::spec::BridgeDirection::Out {
            started.outbound.push(bridge_counters);
        }
    }
    Ok(())
}

#[cfg(feature = "kafka")]
async fn start_kafka(
    spec: &CrawlSpec,
    bridges: Vec<&BridgeSpec>,
    bus: &Bus,
    sup: &mut Supervisor,
    arbiter: &ArbiterHandle,
    started: &mut StartedBridges,
) -> Result<(), BridgeError> {
    let broker = kafka::KafkaBroker::from_spec(spec, "a bridge")?;
    broker.check().await?;
    for (i, b) in bridges.into_iter().enumerate() {
        let bridge = kafka::KafkaBridge::from_spec(&broker, spec, b, bus)?;
        started.counters.push(bridge.counters());
        match b.direction {
            crate::spec::BridgeDirection::In => started.lags.push(bridge.lag()),
            crate::spec::BridgeDirection::Out => started.outbound.push(bridge.counters()),
        }
        let name = format!("bridge-kafka-{i}-{}", bridge.describe());
        sup.start(name, crate::supervise::Restart::Transient, arbiter, move |_| bridge);
    }
    Ok(())
}

#[cfg(feature = "amqp")]
async fn start_amqp(
    spec: &CrawlSpec,
    bridges: Vec<&BridgeSpec>,
    bus: &Bus,
    sup: &mut Supervisor,
    arbiter: &ArbiterHandle,
    started: &mut StartedBridges,
) -> Result<(), BridgeError> {
    let broker = amqp::AmqpBroker::from_spec(spec, "a bridge")?;
    broker.check().await?;
    for (i, b) in bridges.into_iter().enumerate() {
        let bridge = amqp::AmqpBridge::from_spec(&broker, b, bus)?;
        bridge.connect().await?;
        started.counters.push(bridge.counters());
        if b.direction == crate::spec::BridgeDirection::Out {
            started.outbound.push(bridge.counters());
        }
        let name = format!("bridge-amqp-{i}-{}", bridge.describe());
        sup.start(name, crate::supervise::Restart::Transient, arbiter, move |_| bridge);
    }
    Ok(())
}

/// A build without a broker's feature reads specs that name it, and refuses to use it.
#[cfg(all(test, not(any(feature = "redis", feature = "kafka", feature = "amqp"))))]
mod not_built_tests {
    use super::*;

    fn spec(extra: &str) -> CrawlSpec {
        let text = format!("name: t\nseeds: [\"https://example.com/\"]\n{extra}");
        crate::spec::load_str(&text, "t.yaml", crate::spec::NO_OVERRIDES).expect("loads in any build")
    }

    #[test]
    fn outputs_say_which_feature_is_missing() {
        let spec = spec(
            "brokers: { kafka: { bootstrap: \"127.0.0.1:9\" }, redis: { url: \"redis://127.0.0.1:9/\" }, \
             amqp: { url: \"amqp://127.0.0.1:9/%2f\" } }\n\
             output: [{ kafka: { topic: items } }, { redis: {} }, { amqp: { exchange: x } }]\n",
        );
        let messages: Vec<String> =
            spec.output.iter().map(|o| open_output(&spec, o).err().expect("refused").to_string()).collect();
        assert_eq!(
            messages,
            [
                "output 'kafka:items': this build has no kafka support: rebuild with --features kafka",
                "output 'redis:t:items': this build has no redis support: rebuild with --features redis",
                "output 'amqp:x': this build has no amqp support: rebuild with --features amqp",
            ]
        );
    }

    #[test]
    fn a_shared_frontier_says_which_feature_is_missing() {
        let spec = spec("frontier: { backend: kafka }\nbrokers: { kafka: { bootstrap: \"127.0.0.1:9\" } }\n");
        let routing = Arc::new(crate::crawl::routing::Routing::new(&spec).expect("routing"));
        let context = FrontierContext { state_dir: false, routing };
        let err = futures::executor::block_on(open_frontier(&spec, context)).err().expect("refused");
        assert_eq!(err.to_string(), "this build has no kafka support: rebuild with --features kafka");
    }
}
