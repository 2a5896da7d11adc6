//! Bridges: actors that bind a local bus topic to an external broker, so that the rest of
//! the actor tree does not see the difference (docs/redis.md).
//!
//! What exists now: the `redis-pubsub` bridge in both directions ([`redis::PubSubBridge`]),
//! a per-channel handler for the embedding API ([`redis::RedisBroker::on_message`]), the
//! Redis sink ([`redis::RedisSink`], `output: - redis: {...}`), and the startup check
//! that turns a wrong URL or password into a clear error before the crawl starts.

pub mod redis;

use std::sync::Arc;

use actix::ArbiterHandle;

use crate::bus::Bus;
use crate::observe::Stats;
use crate::spec::{BridgeKind, CrawlSpec};
use crate::supervise::{Restart, Supervisor};

pub use self::redis::BridgeCounters;

/// Why a broker or a bridge could not be used. Every URL in it has its password masked.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The URL does not say how to reach a broker.
    #[error("bad Redis URL '{url}': {reason}")]
    BadUrl {
        /// The URL, password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made, or the server did not answer in time.
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable {
        /// The URL, password masked.
        url: String,
        /// Connection refused, timed out, name not resolved, ...
        reason: String,
    },
    /// The server refused the credentials, or wants some and got none.
    #[error("Redis at {url} refused the credentials: {reason}")]
    AuthFailed {
        /// The URL, password masked.
        url: String,
        /// The server's answer.
        reason: String,
    },
    /// The TLS handshake (`rediss://`) failed.
    #[error("TLS with Redis at {url} failed: {reason}")]
    Tls {
        /// The URL, password masked.
        url: String,
        /// The handshake error.
        reason: String,
    },
    /// Any other error from the server or the client.
    #[error("Redis at {url}: {reason}")]
    Redis {
        /// The URL, password masked.
        url: String,
        /// The error.
        reason: String,
    },
    /// A Redis bridge or output without `brokers.redis`.
    #[error("`brokers.redis` is not set, but {0} needs it")]
    NoBroker(String),
    /// The bridge's local topic exists with another message type.
    #[error(transparent)]
    Bus(#[from] crate::bus::WrongType),
}

/// Starts the spec's `bridges:` under `sup` on `arbiter`: first checks each broker they
/// use (connect and PING, within `connect_timeout`), so a wrong URL or password is an
/// error before anything is crawled; then starts one actor per bridge. Outbound bridges
/// subscribe to their local topic at once, so they miss nothing published after this.
pub async fn start(
    spec: &CrawlSpec,
    bus: &Bus,
    sup: &mut Supervisor,
    arbiter: &ArbiterHandle,
    stats: &Arc<Stats>,
) -> Result<Vec<Arc<BridgeCounters>>, BridgeError> {
    let _ = stats; // Bridge counters are not in the run's Stats yet (docs/redis.md).
    let redis_bridges: Vec<_> = spec.bridges.iter().filter(|b| b.kind == BridgeKind::RedisPubsub).collect();
    if redis_bridges.is_empty() {
        return Ok(Vec::new());
    }
    let broker_spec = spec.brokers.redis.as_ref().ok_or_else(|| BridgeError::NoBroker("a bridge".into()))?;
    let broker = redis::RedisBroker::from_spec(broker_spec)?;
    broker.check().await?;
    let mut counters = Vec::new();
    for (i, b) in redis_bridges.into_iter().enumerate() {
        let bridge = redis::PubSubBridge::from_spec(&broker, b, bus)?;
        counters.push(bridge.counters());
        let name = format!("bridge-{i}-{}", bridge.describe());
        sup.start(name, Restart::Transient, arbiter, move |_| bridge);
    }
    Ok(counters)
}
