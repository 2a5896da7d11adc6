//! Redis: the connection settings and their startup check ([`RedisBroker`]), the
//! `redis-pubsub` bridge and per-channel handlers ([`PubSubBridge`], [`on_message`]),
//! and the list sink ([`RedisSink`]). docs/redis.md says what each guarantees.
//!
//! Passwords are never printed: every URL in a log line or an error goes through
//! [`mask_url`].

#[cfg(feature = "redis")]
pub mod entry;
#[cfg(feature = "redis")]
pub mod frontier;
#[cfg(feature = "redis")]
pub mod heartbeat;
#[cfg(feature = "redis")]
pub mod politeness;
#[cfg(feature = "redis")]
mod pubsub;
#[cfg(feature = "redis")]
mod queue_bridge;
#[cfg(feature = "redis")]
mod sink;

use std::time::Duration;

#[cfg(feature = "redis")]
use redis::{Client, ErrorKind, IntoConnectionInfo, RedisError};

#[cfg(feature = "redis")]
pub use pubsub::{on_message, ChannelMessage, PubSubBridge, PubSubOptions};
#[cfg(feature = "redis")]
pub use queue_bridge::{RedisQueueBridge, RedisQueueMessage};
#[cfg(feature = "redis")]
pub use sink::RedisSink;

#[cfg(feature = "redis")]
pub(crate) use super::counters::Backoff;
pub use super::counters::BridgeCounters;
#[cfg(feature = "redis")]
use super::BridgeError;
#[cfg(feature = "redis")]
use crate::spec::RedisBrokerSpec;

/// The default for `brokers.redis.connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `url` with its password (and any `pass=`/`password=` query value) replaced by `***`,
/// for logs and errors. Works on text that is not a valid URL too: everything between
/// `://` and the last `@` is user information, and what follows its first `:` is masked
/// (a lone user name without `:` is masked whole, in case it was meant as a password).
///
/// ```
/// use arachne::bridges::redis::mask_url;
/// assert_eq!(mask_url("redis://:s3cret@host:6379/0"), "redis://:***@host:6379/0");
/// assert_eq!(mask_url("rediss://app:p/a@ss@host/"), "rediss://app:***@host/");
/// assert_eq!(mask_url("redis+unix:///run/r.sock?db=1&pass=x"), "redis+unix:///run/r.sock?db=1&pass=***");
/// assert_eq!(mask_url("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
/// ```
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        // Not URL-shaped at all: show nothing that could be a secret.
        return if url.contains('@') || url.contains(':') { "***".to_string() } else { url.to_string() };
    };
    let (head, rest) = url.split_at(scheme_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***@");
                }
                None => out.push_str("***@"),
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    match after_userinfo.split_once('?') {
        Some((before, query)) => {
            out.push_str(before);
            out.push('?');
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if matches!(k, "pass" | "password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
        }
        None => out.push_str(after_userinfo),
    }
    out
}

/// Whether `url` is a Redis URL this build can use (`redis://`, `rediss://`,
/// `redis+unix://`, `unix://`); the error says why not (without the URL).
pub fn check_url(url: &str) -> Result<(), String> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err("it is empty".into());
    }
    let parsed = url::Url::parse(trimmed).map_err(|e| format!("not a URL ({e})"))?;
    match parsed.scheme() {
        "redis" | "rediss" | "valkey" | "valkeys" | "unix" | "redis+unix" | "valkey+unix" => {}
        other => return Err(format!("scheme '{other}' is not redis://, rediss:// or redis+unix://")),
    }
    // Without the client (no `redis` feature) the scheme is all that is checked; the run
    // then says this build has no Redis support.
    #[cfg(feature = "redis")]
    trimmed.into_connection_info().map_err(|e| redis_reason(&e))?;
    Ok(())
}

/// Whether `url` can be a seed node of a Redis Cluster: a usable Redis URL ([`check_url`])
/// over TCP (not a Unix socket), on database 0 (a cluster has no other).
pub fn check_cluster_url(url: &str) -> Result<(), String> {
    check_url(url)?;
    let parsed = url::Url::parse(url.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if parsed.scheme().ends_with("unix") {
        return Err("a Redis Cluster is reached over TCP, not a Unix socket".into());
    }
    let db = parsed.path().trim_matches('/');
    if !db.is_empty() && db != "0" {
        return Err(format!("database {db}: a Redis Cluster has only database 0"));
    }
    Ok(())
}

/// `seeds` where every seed without user information takes the first seed's (user and
/// password): a cluster has one set of credentials, so `nodes` may leave them out.
#[cfg(feature = "redis")]
fn with_first_credentials(seeds: &[&str]) -> Vec<String> {
    let first = seeds.first().and_then(|s| url::Url::parse(s.trim()).ok());
    seeds
        .iter()
        .map(|seed| {
            let (Some(first), Ok(mut url)) = (&first, url::Url::parse(seed.trim())) else {
                return seed.trim().to_string();
            };
            if url.username().is_empty() && url.password().is_none() {
                // Both setters only fail for URLs without a host, which check_cluster_url refused.
                let _ = url.set_username(first.username());
                let _ = url.set_password(first.password());
            }
            url.to_string()
        })
        .collect()
}

#[cfg(feature = "redis")]
/// The error's text without anything but the server's or client's words.
fn redis_reason(e: &RedisError) -> String {
    let text = e.to_string();
    // The client's "kind: detail" texts carry no URL; keep them on one line.
    text.lines().next().unwrap_or("").trim().to_string()
}

/// One Redis server, or one Redis Cluster, as `brokers.redis` describes it: its URL (parsed,
/// not yet connected) and the connect timeout. Cheap to clone.
///
/// With `brokers.redis.cluster: true` the URL (and `nodes`) are seed nodes of a Redis
/// Cluster: [`RedisBroker::connection`] is then a cluster connection that sends each
/// command to the node of its key's slot, and the keys a crawl uses carry a hash tag
/// ([`RedisBroker::is_cluster`], docs/redis.md "Redis Cluster").
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisBroker {
    /// The URL's server: the one server, or (cluster) the first seed node, for pub/sub (a
    /// Redis Cluster forwards every PUBLISH to every node).
    client: Client,
    /// The cluster's client, when `brokers.redis.cluster` is on.
    cluster: Option<redis::cluster::ClusterClient>,
    /// With a cluster: the other seed nodes' own clients, tried in turn for pub/sub when
    /// the first does not answer.
    other_seeds: Vec<Client>,
    masked: String,
    connect_timeout: Duration,
}

/// A connection for commands on keys: to the one server, or to a Redis Cluster (each
/// command, script call or pipeline goes to the node of its keys' slot, so the keys of one
/// call must share a slot: a hash tag). Cheap to clone; clones share the connection.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub enum RedisConnection {
    /// One server (multiplexed).
    Single(redis::aio::MultiplexedConnection),
    /// A Redis Cluster: connections to its primaries, following `MOVED`/`ASK` redirections.
    Cluster(redis::cluster_async::ClusterConnection),
}

#[cfg(feature = "redis")]
impl redis::aio::ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(feature = "redis")]
/// A blocking connection for commands on keys (the sink's): to the one server, or to a
/// Redis Cluster.
pub enum BlockingConnection {
    /// One server.
    Single(redis::Connection),
    /// A Redis Cluster.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

#[cfg(feature = "redis")]
impl BlockingConnection {
    /// Sends `commands` as one pipeline (on a cluster: a cluster pipeline, each command to
    /// its key's node) and waits until every one was answered; their answers are dropped.
    pub fn send_all(&mut self, commands: &[redis::Cmd]) -> redis::RedisResult<()> {
        match self {
            BlockingConnection::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in commands {
                    pipe.add_command(cmd.clone()).ignore();
                }
                pipe.query(c)
            }
            BlockingConnection::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in commands {
                    pipe.add_command(cmd.clone()).ignore();
                }
                pipe.query(c)
            }
        }
    }
}

/// `{name}`: `name` as a Redis Cluster hash tag, so that every key built around it hashes
/// to one slot (Redis hashes only what is between the first `{` and the next `}`).
pub fn hash_tag(name: &str) -> String {
    format!("{{{name}}}")
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("url", &self.masked)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

#[cfg(feature = "redis")]
impl RedisBroker {
    /// Parses `url` (nothing is connected yet); the connect timeout is 5 s.
    pub fn new(url: &str) -> Result<Self, BridgeError> {
        let masked = mask_url(url);
        check_url(url).map_err(|reason| BridgeError::BadUrl {
            broker: "Redis",
            url: masked.clone(),
            reason,
        })?;
        let client = Client::open(url.trim()).map_err(|e| BridgeError::BadUrl {
            broker: "Redis",
            url: masked.clone(),
            reason: redis_reason(&e),
        })?;
        Ok(Self::single(client, masked))
    }

    /// One server's broker on `client` (the connect timeout is 5 s).
    fn single(client: Client, masked: String) -> Self {
        Self {
            client,
            cluster: None,
            other_seeds: Vec::new(),
            masked,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The broker of `brokers.redis`.
    pub fn from_spec(spec: &RedisBrokerSpec) -> Result<Self, BridgeError> {
        let broker = match &spec.ca_file {
            None => Self::new(&spec.url)?,
            Some(ca) => Self::with_ca(&spec.url, ca)?,
        };
        let broker = broker.with_connect_timeout(spec.connect_timeout.0);
        if !spec.cluster {
            return Ok(broker);
        }
        let seeds: Vec<&str> =
            std::iter::once(spec.url.as_str()).chain(spec.nodes.iter().map(String::as_str)).collect();
        broker.into_cluster(&seeds, spec.ca_file.as_deref())
    }

    /// A Redis Cluster reached through the seed nodes `seeds` (any of them answers with the
    /// cluster's slot map; the first is also the pub/sub server). The connect timeout is
    /// 5 s, as with [`RedisBroker::new`].
    pub fn cluster(seeds: &[&str]) -> Result<Self, BridgeError> {
        let first = seeds.first().ok_or_else(|| BridgeError::BadUrl {
            broker: "Redis Cluster",
            url: String::new(),
            reason: "no seed node".into(),
        })?;
        Self::new(first)?.into_cluster(seeds, None)
    }

    fn into_cluster(mut self, seeds: &[&str], ca: Option<&std::path::Path>) -> Result<Self, BridgeError> {
        let masked = seeds.iter().map(|s| mask_url(s)).collect::<Vec<_>>().join(", ");
        let bad =
            |reason: String| BridgeError::BadUrl { broker: "Redis Cluster", url: masked.clone(), reason };
        for seed in seeds {
            check_cluster_url(seed).map_err(|reason| bad(format!("{}: {reason}", mask_url(seed))))?;
        }
        let seeds = with_first_credentials(seeds);
        let mut builder = redis::cluster::ClusterClientBuilder::new(seeds.iter().map(|s| s.trim()))
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.connect_timeout)
            // Redirections and node failures are retried a few times inside one call; longer
            // outages are the callers' (the frontier reconnects within its budget).
            .retries(3);
        let pem = match ca {
            Some(ca) => Some(std::fs::read(ca).map_err(|e| BridgeError::Tls {
                broker: "Redis Cluster",
                url: masked.clone(),
                reason: format!("cannot read the CA file {}: {e}", ca.display()),
            })?),
            None => None,
        };
        if let Some(pem) = &pem {
            builder =
                builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) });
        }
        let client = builder.build().map_err(|e| bad(redis_reason(&e)))?;
        self.other_seeds = seeds
            .iter()
            .skip(1)
            .map(|seed| match &pem {
                None => Client::open(seed.as_str()),
                Some(pem) => Client::build_with_tls(
                    seed.as_str(),
                    redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) },
                ),
            })
            .collect::<redis::RedisResult<_>>()
            .map_err(|e| bad(redis_reason(&e)))?;
        self.cluster = Some(client);
        self.masked = masked;
        Ok(self)
    }

    /// Whether this is a Redis Cluster (`brokers.redis.cluster`): the keys of one crawl then
    /// carry its name as a hash tag ([`hash_tag`]), so that each script's keys share a slot.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// "Redis" or "Redis Cluster", for messages.
    fn kind(&self) -> &'static str {
        if self.is_cluster() {
            "Redis Cluster"
        } else {
            "Redis"
        }
    }

    /// A `rediss://` broker whose certificate is checked against the CA in the PEM file `ca`
    /// (instead of the system's trust store).
    pub fn with_ca(url: &str, ca: &std::path::Path) -> Result<Self, BridgeError> {
        let masked = mask_url(url);
        check_url(url).map_err(|reason| BridgeError::BadUrl {
            broker: "Redis",
            url: masked.clone(),
            reason,
        })?;
        let pem = std::fs::read(ca).map_err(|e| BridgeError::Tls {
            broker: "Redis",
            url: masked.clone(),
            reason: format!("cannot read the CA file {}: {e}", ca.display()),
        })?;
        let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
        let client = Client::build_with_tls(url.trim(), certs).map_err(|e| BridgeError::Tls {
            broker: "Redis",
            url: masked.clone(),
            reason: redis_reason(&e),
        })?;
        Ok(Self::single(client, masked))
    }

    /// Connecting and the startup PING give up after `timeout`.
    ///
    /// Set it before [`RedisBroker::cluster`] turns this into a cluster's broker: a
    /// cluster client keeps the timeouts it was built with.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The URL with its password masked: what logs and errors show.
    pub fn masked_url(&self) -> &str {
        &self.masked
    }

    /// The redis-rs client of the URL's server (with a cluster: of the first seed node),
    /// for code of your own.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Connects and PINGs within the connect timeout: `Ok` when the server is reachable
    /// and accepts the credentials. The error says which of those failed. It also checks
    /// that `brokers.redis.cluster` says what the server is: a node of a Redis Cluster
    /// without it (its keys would answer `MOVED`), or `cluster: true` on a server that is
    /// not one, or a cluster whose `cluster_state` is not `ok`, is an error that says so.
    pub async fn check(&self) -> Result<(), BridgeError> {
        if self.cluster.is_some() {
            // The cluster connection reads the slot map from a seed node first: a server
            // without cluster support fails here.
            let mut conn = self.connection().await?;
            let ping = redis::cmd("PING");
            match tokio::time::timeout(self.connect_timeout, ping.query_async::<redis::Value>(&mut conn))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(self.error(&e)),
                Err(_) => return Err(self.timed_out()),
            }
            // `CLUSTER INFO` of any node the connection reaches.
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("INFO");
            let info = match tokio::time::timeout(self.connect_timeout, cmd.query_async::<String>(&mut conn))
                .await
            {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => return Err(self.error(&e)),
                Err(_) => return Err(self.timed_out()),
            };
            if !info.contains("cluster_state:ok") {
                let state =
                    info.lines().find(|l| l.starts_with("cluster_state:")).unwrap_or("cluster_state:?");
                return Err(BridgeError::Redis {
                    url: self.masked.clone(),
                    reason: format!(
                        "the Redis Cluster is not ready ({}): every slot must be served",
                        state.trim()
                    ),
                });
            }
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.connect_timeout, ping.query_async::<redis::Value>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(self.error(&e)),
            Err(_) => return Err(self.timed_out()),
        }
        // `INFO cluster` (a server that refuses INFO is taken as a single server).
        let mut info = redis::cmd("INFO");
        info.arg("cluster");
        if let Ok(Ok(info)) =
            tokio::time::timeout(self.connect_timeout, info.query_async::<String>(&mut conn)).await
        {
            if info.contains("cluster_enabled:1") {
                return Err(BridgeError::Redis {
                    url: self.masked.clone(),
                    reason: "this server is a node of a Redis Cluster: set `brokers.redis.cluster: true` \
                             (docs/redis.md, \"Redis Cluster\")"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// An async connection for commands on keys (connect timeout, and the same as response
    /// timeout): multiplexed to the one server, or a cluster connection.
    pub async fn connection(&self) -> Result<RedisConnection, BridgeError> {
        let Some(cluster) = &self.cluster else {
            return self.single_connection().await.map(RedisConnection::Single);
        };
        let config = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.connect_timeout);
        let connect = cluster.get_async_connection_with_config(config);
        match tokio::time::timeout(self.connect_timeout + Duration::from_millis(100), connect).await {
            Ok(Ok(conn)) => Ok(RedisConnection::Cluster(conn)),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// A multiplexed async connection to the URL's server (with a cluster: the first seed
    /// node), with the connect timeout as response timeout too.
    /// With a cluster, the other seeds are tried in turn when the first does not answer
    /// (every node of a cluster carries every PUBLISH).
    pub async fn single_connection(&self) -> Result<redis::aio::MultiplexedConnection, BridgeError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.connect_timeout));
        let mut last = None;
        for client in self.seed_clients() {
            let connect = client.get_multiplexed_async_connection_with_config(&config);
            match tokio::time::timeout(self.connect_timeout + Duration::from_millis(100), connect).await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(e)) => last = Some(self.error(&e)),
                Err(_) => last = Some(self.timed_out()),
            }
        }
        Err(last.unwrap_or_else(|| self.timed_out()))
    }

    /// The URL's client, then (cluster) the other seeds'.
    fn seed_clients(&self) -> impl Iterator<Item = &Client> {
        std::iter::once(&self.client).chain(&self.other_seeds)
    }

    /// A blocking connection for commands on keys, PINGed, with read and write timeouts of
    /// the connect timeout: to the one server ([`RedisBroker::blocking_connection`]), or a
    /// cluster connection.
    pub fn blocking_store_connection(&self) -> Result<BlockingConnection, BridgeError> {
        let Some(cluster) = &self.cluster else {
            return Ok(BlockingConnection::Single(self.blocking_connection()?));
        };
        let config = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.connect_timeout);
        let mut conn = cluster.get_connection_with_config(config).map_err(|e| self.error(&e))?;
        redis::cmd("PING").query::<redis::Value>(&mut conn).map_err(|e| self.error(&e))?;
        Ok(BlockingConnection::Cluster(Box::new(conn)))
    }

    /// A blocking connection to the URL's server (with a cluster: the first seed node),
    /// PINGed, with read and write timeouts of the connect timeout.
    pub fn blocking_connection(&self) -> Result<redis::Connection, BridgeError> {
        let mut conn =
            self.client.get_connection_with_timeout(self.connect_timeout).map_err(|e| self.error(&e))?;
        conn.set_read_timeout(Some(self.connect_timeout)).map_err(|e| self.error(&e))?;
        conn.set_write_timeout(Some(self.connect_timeout)).map_err(|e| self.error(&e))?;
        redis::cmd("PING").query::<redis::Value>(&mut conn).map_err(|e| self.error(&e))?;
        Ok(conn)
    }

    /// A dedicated pub/sub connection, within the connect timeout.
    /// With a cluster, on the first seed that answers (every node of a cluster carries every
    /// PUBLISH).
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, BridgeError> {
        let mut last = None;
        for client in self.seed_clients() {
            match tokio::time::timeout(self.connect_timeout, client.get_async_pubsub()).await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(e)) => last = Some(self.error(&e)),
                Err(_) => last = Some(self.timed_out()),
            }
        }
        Err(last.unwrap_or_else(|| self.timed_out()))
    }

    fn timed_out(&self) -> BridgeError {
        BridgeError::Unreachable {
            broker: self.kind(),
            url: self.masked.clone(),
            reason: format!("no answer within {:?} (connect_timeout)", self.connect_timeout),
        }
    }

    /// Sorts a redis-rs error into what the user has to fix.
    pub(crate) fn error(&self, e: &RedisError) -> BridgeError {
        let url = self.masked.clone();
        let reason = redis_reason(e);
        let code = e.code().unwrap_or("");
        let upper = reason.to_ascii_uppercase();
        if e.kind() == ErrorKind::AuthenticationFailed
            || matches!(code, "WRONGPASS" | "NOAUTH")
            || upper.contains("WRONGPASS")
            || upper.contains("NOAUTH")
            || upper.contains("INVALID PASSWORD")
            || (upper.contains("AUTH") && upper.contains("WITHOUT ANY PASSWORD CONFIGURED"))
        {
            let reason = if upper.contains("NOAUTH") {
                format!("the server requires a password and the URL gives none ({reason})")
            } else if upper.contains("WITHOUT ANY PASSWORD CONFIGURED") {
                format!("the URL gives a password but the server has none configured ({reason})")
            } else {
                format!("wrong user name or password ({reason})")
            };
            return BridgeError::AuthFailed { broker: self.kind(), url, reason };
        }
        if e.kind() == ErrorKind::InvalidClientConfig {
            return BridgeError::BadUrl { broker: self.kind(), url, reason };
        }
        let lower = reason.to_ascii_lowercase();
        if ["tls", "ssl", "certificate", "handshake"].iter().any(|w| lower.contains(w)) {
            return BridgeError::Tls { broker: self.kind(), url, reason };
        }
        if self.is_cluster() && upper.contains("CLUSTER SUPPORT DISABLED") {
            return BridgeError::Redis {
                url,
                reason: format!(
                    "the server is not a node of a Redis Cluster ({reason}): remove `brokers.redis.cluster`, \
                     or give the URL of a cluster node"
                ),
            };
        }
        if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
            return BridgeError::Unreachable { broker: self.kind(), url, reason };
        }
        BridgeError::Redis { url, reason }
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(mask_url("redis://user:pw@h:1/2"), "redis://user:***@h:1/2");
        assert_eq!(mask_url("redis://:pw@h"), "redis://:***@h");
        assert_eq!(mask_url("redis://pw@h"), "redis://***@h");
        assert_eq!(mask_url("rediss://:p#w?x@h/#insecure"), "rediss://:***@h/#insecure");
        assert_eq!(mask_url("redis://h:6379/?protocol=resp3"), "redis://h:6379/?protocol=resp3");
        assert_eq!(mask_url("unix:///s?password=x#f"), "unix:///s?password=***#f");
        assert_eq!(mask_url("not a url with:secret@"), "***");
        assert_eq!(mask_url("localhost"), "localhost");
    }

    #[test]
    fn checks_urls() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("rediss://:pw@example.com:6380/").is_ok());
        assert!(check_url("redis+unix:///tmp/redis.sock?db=2").is_ok());
        assert!(check_url("http://127.0.0.1/").unwrap_err().contains("scheme 'http'"));
        assert!(check_url("redis://127.0.0.1/abc").unwrap_err().contains("database"), "db");
        assert!(check_url("").is_err());
        assert!(check_url("127.0.0.1:6379").is_err());
        let e = RedisBroker::new("redis://:hunter2@127.0.0.1/x").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains(":***@"), "{e}");
    }

    #[test]
    fn cluster_seeds_and_hash_tags() {
        assert_eq!(hash_tag("shop"), "{shop}");
        assert!(check_cluster_url("redis://127.0.0.1:7000/").is_ok());
        assert!(check_cluster_url("redis://127.0.0.1:7000/0").is_ok());
        assert!(check_cluster_url("rediss://:pw@h:7000").is_ok());
        assert!(check_cluster_url("redis://127.0.0.1:7000/1").unwrap_err().contains("only database 0"));
        assert!(check_cluster_url("redis+unix:///tmp/r.sock").unwrap_err().contains("Unix socket"));
        let broker = RedisBroker::cluster(&["redis://:hunter2@127.0.0.1:7000/", "redis://127.0.0.1:7001/"])
            .expect("a cluster broker (nothing connected)");
        assert!(broker.is_cluster());
        assert_eq!(broker.masked_url(), "redis://:***@127.0.0.1:7000/, redis://127.0.0.1:7001/");
        assert!(!format!("{broker:?}").contains("hunter2"));
        assert!(!RedisBroker::new("redis://127.0.0.1:7000/").expect("broker").is_cluster());
        let e = RedisBroker::cluster(&["redis://127.0.0.1:7000/", "redis://:hunter2@h:1/5"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("only database 0") && !e.contains("hunter2"), "{e}");
    }
}
