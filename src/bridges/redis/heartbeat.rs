//! The workers of a crawl that shares Redis: heartbeats in a hash, remote control over a
//! pub/sub channel ([`RedisWorkers`], the Redis side of
//! [`WorkerRegistry`]).
//!
//! Keys: `<crawl>:workers` is a hash of worker id to its last heartbeat (JSON); a worker
//! silent for [`FORGET_AFTER`] is removed from it by the next reader. `<crawl>:control` is
//! the channel commands are published on; every worker subscribes to it.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use redis::AsyncCommands;
use tokio::sync::Mutex;

use super::RedisBroker;
use crate::bridges::BridgeError;
use crate::observe::{unix_millis, Heartbeat, RegistryError, RemoteCommand, WorkerRegistry};
use crate::spec::{CrawlSpec, FrontierBackend};

/// A worker not heard of for this long is removed from the hash (until then it is listed
/// as lost).
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// The registry of a crawl whose frontier is shared through Redis (`None` otherwise).
pub fn registry(spec: &CrawlSpec) -> Result<Option<std::sync::Arc<dyn WorkerRegistry>>, BridgeError> {
    if spec.frontier.backend != FrontierBackend::Redis {
        return Ok(None);
    }
    let broker_spec = spec
        .brokers
        .redis
        .as_ref()
        .ok_or_else(|| BridgeError::NoBroker { broker: "redis", user: "the frontier".into() })?;
    let broker = RedisBroker::from_spec(broker_spec)?;
    Ok(Some(std::sync::Arc::new(RedisWorkers::new(broker, &spec.name))))
}

/// Heartbeats and commands of one crawl's workers, in Redis.
pub struct RedisWorkers {
    broker: RedisBroker,
    hash: String,
    channel: String,
    conn: Mutex<Option<super::RedisConnection>>,
}

impl RedisWorkers {
    /// The registry of crawl `name` on `broker` (connects on first use). On a Redis
    /// Cluster the hash is `{<name>}:workers`, beside the crawl's other keys; the channel
    /// is on the first seed node (a cluster forwards every PUBLISH to every node).
    pub fn new(broker: RedisBroker, name: &str) -> Self {
        let tag = super::frontier::crawl_tag(&broker, name);
        Self {
            broker,
            hash: format!("{tag}:workers"),
            channel: format!("{name}:control"),
            conn: Mutex::new(None),
        }
    }

    /// A connection, made on first use and again after an error.
    async fn conn(&self) -> Result<super::RedisConnection, RegistryError> {
        let mut held = self.conn.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let c = self.broker.connection().await.map_err(|e| RegistryError(e.to_string()))?;
        *held = Some(c.clone());
        Ok(c)
    }

    /// Drops the connection after an error, so the next call reconnects.
    async fn failed(&self, e: &redis::RedisError) -> RegistryError {
        *self.conn.lock().await = None;
        RegistryError(self.broker.error(e).to_string())
    }
}

impl WorkerRegistry for RedisWorkers {
    fn beat<'a>(&'a self, beat: &'a Heartbeat) -> BoxFuture<'a, Result<(), RegistryError>> {
        async move {
            let json = serde_json::to_string(beat).map_err(|e| RegistryError(e.to_string()))?;
            let mut conn = self.conn().await?;
            match conn.hset::<_, _, _, ()>(&self.hash, &beat.worker, json).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.failed(&e).await),
            }
        }
        .boxed()
    }

    fn workers(&self) -> BoxFuture<'_, Result<Vec<Heartbeat>, RegistryError>> {
        async move {
            let mut conn = self.conn().await?;
            let all: Vec<(String, String)> = match conn.hgetall(&self.hash).await {
                Ok(all) => all,
                Err(e) => return Err(self.failed(&e).await),
            };
            let now = unix_millis();
            let mut beats = Vec::with_capacity(all.len());
            for (worker, json) in all {
                match serde_json::from_str::<Heartbeat>(&json) {
                    Ok(beat) if now.saturating_sub(beat.at_ms) < FORGET_AFTER.as_millis() as u64 => {
                        beats.push(beat)
                    }
                    _ => {
                        let _: Result<(), _> = conn.hdel(&self.hash, &worker).await;
                    }
                }
            }
            Ok(beats)
        }
        .boxed()
    }

    fn send<'a>(&'a self, command: &'a RemoteCommand) -> BoxFuture<'a, Result<(), RegistryError>> {
        async move {
            let json = serde_json::to_string(command).map_err(|e| RegistryError(e.to_string()))?;
            let mut conn = self.conn().await?;
            match conn.publish::<_, _, ()>(&self.channel, json).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.failed(&e).await),
            }
        }
        .boxed()
    }

    fn leave<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, Result<(), RegistryError>> {
        async move {
            let mut conn = self.conn().await?;
            match conn.hdel::<_, _, ()>(&self.hash, worker).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.failed(&e).await),
            }
        }
        .boxed()
    }

    fn commands(&self) -> BoxFuture<'_, Result<BoxStream<'static, RemoteCommand>, RegistryError>> {
        async move {
            let mut pubsub = self.broker.pubsub().await.map_err(|e| RegistryError(e.to_string()))?;
            pubsub
                .subscribe(&self.channel)
                .await
                .map_err(|e| RegistryError(self.broker.error(&e).to_string()))?;
            let stream = pubsub.into_on_message().filter_map(|msg| async move {
                let payload: String = msg.get_payload().ok()?;
                match serde_json::from_str::<RemoteCommand>(&payload) {
                    Ok(command) => Some(command),
                    Err(e) => {
                        tracing::warn!("ignoring a malformed remote command: {e}");
                        None
                    }
                }
            });
            Ok(stream.boxed())
        }
        .boxed()
    }
}

impl std::fmt::Debug for RedisWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWorkers").field("hash", &self.hash).field("channel", &self.channel).finish()
    }
}
