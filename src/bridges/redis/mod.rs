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

#[cfg(feature = "redis")]
/// The error's text without anything but the server's or client's words.
fn redis_reason(e: &RedisError) -> String {
    let text = e.to_string();
    // The client's "kind: detail" texts carry no URL; keep them on one line.
    text.lines().next().unwrap_or("").trim().to_string()
}

/// One Redis server, as `brokers.redis` describes it: its URL (parsed, not yet connected)
/// and the connect timeout. Cheap to clone.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisBroker {
    client: Client,
    masked: String,
    connect_timeout: Duration,
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
        Ok(Self { client, masked, connect_timeout: DEFAULT_CONNECT_TIMEOUT })
    }

    /// The broker of `brokers.redis`.
    pub fn from_spec(spec: &RedisBrokerSpec) -> Result<Self, BridgeError> {
        let broker = match &spec.ca_file {
            None => Self::new(&spec.url)?,
            Some(ca) => Self::with_ca(&spec.url, ca)?,
        };
        Ok(broker.with_connect_timeout(spec.connect_timeout.0))
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
        Ok(Self { client, masked, connect_timeout: DEFAULT_CONNECT_TIMEOUT })
    }

    /// Connecting and the startup PING give up after `timeout`.
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

    /// The redis-rs client, for code of your own (the Redis frontier builds on it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Connects and PINGs within the connect timeout: `Ok` when the server is reachable
    /// and accepts the credentials. The error says which of those failed.
    pub async fn check(&self) -> Result<(), BridgeError> {
        let mut conn = self.connection().await?;
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.connect_timeout, ping.query_async::<redis::Value>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// [`RedisBroker::check`] for code outside an async runtime (blocks the thread for at
    /// most about twice the connect timeout).
    pub fn check_blocking(&self) -> Result<(), BridgeError> {
        self.blocking_connection().map(|_| ())
    }

    /// A multiplexed async connection (connect timeout, and the same as response timeout).
    pub async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, BridgeError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.connect_timeout));
        let connect = self.client.get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.connect_timeout + Duration::from_millis(100), connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// A blocking connection, PINGed, with read and write timeouts of the connect timeout.
    pub fn blocking_connection(&self) -> Result<redis::Connection, BridgeError> {
        let mut conn =
            self.client.get_connection_with_timeout(self.connect_timeout).map_err(|e| self.error(&e))?;
        conn.set_read_timeout(Some(self.connect_timeout)).map_err(|e| self.error(&e))?;
        conn.set_write_timeout(Some(self.connect_timeout)).map_err(|e| self.error(&e))?;
        redis::cmd("PING").query::<redis::Value>(&mut conn).map_err(|e| self.error(&e))?;
        Ok(conn)
    }

    /// A dedicated pub/sub connection, within the connect timeout.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, BridgeError> {
        match tokio::time::timeout(self.connect_timeout, self.client.get_async_pubsub()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> BridgeError {
        BridgeError::Unreachable {
            broker: "Redis",
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
            return BridgeError::AuthFailed { broker: "Redis", url, reason };
        }
        if e.kind() == ErrorKind::InvalidClientConfig {
            return BridgeError::BadUrl { broker: "Redis", url, reason };
        }
        let lower = reason.to_ascii_lowercase();
        if ["tls", "ssl", "certificate", "handshake"].iter().any(|w| lower.contains(w)) {
            return BridgeError::Tls { broker: "Redis", url, reason };
        }
        if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
            return BridgeError::Unreachable { broker: "Redis", url, reason };
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
}
